//! `GET /api/v1/users/{id}/access`: why a member can or cannot use a permission (in a
//! store, when one is named). The answer is the opening statement's own
//! (`RequestTx::access_of`, `platform/db/begin_request.sql`) for a request of that
//! member requiring that permission, so the explanation and the real outcome of a
//! request cannot drift apart; only the list of grants is read here, with the same
//! condition the statement grants by (a tenant-wide role, or one scoped to the store).

use poem_openapi::{ApiResponse, Enum, Object, OpenApi, param::Path, param::Query};
use uuid::Uuid;

use crate::{
    error::Error,
    modules::{Tag, operations},
    platform::{
        auth::access::{Operation, authorize},
        auth::catalog::{PERMISSION_CODES, PermissionCode},
        db::{Access, Database, RequestTx, Scope},
        http::{json::JsonBody, problem::ApiError, security::BearerAuth},
    },
};

pub struct AccessApi {
    pub db: Database,
}

/// 422: an unknown permission code.
const USERS_ACCESS: Operation =
    Operation::permission("users_access", "roles.view").returning(&[422]);

pub const OPERATIONS: &[Operation] = &[USERS_ACCESS];

/// Why a permission is refused although a role would grant it, in the order a request
/// is refused (the tenant, the membership, the store, then the plan). A permission
/// that no role grants is refused with `blocked_by: null` and no grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum BlockedBy {
    /// The member is suspended in the tenant.
    MemberSuspended,
    /// The tenant is suspended (or deleted).
    TenantSuspended,
    /// The operations that require this permission need a feature the tenant's plan
    /// lacks.
    FeatureNotInPlan,
    /// The store named is not one the member can reach (or not the tenant's).
    StoreNotReachable,
}

/// A role assignment that grants the permission where it was asked.
#[derive(Debug, Object, serde::Serialize)]
pub struct Grant {
    pub role_id: Uuid,
    pub role_name: String,
    /// The store the role is assigned in; `null`: tenant-wide.
    #[oai(nullable)]
    pub store_id: Option<Uuid>,
}

#[derive(Debug, Object, serde::Serialize)]
pub struct AccessExplanation {
    /// Whether a request of the member requiring the permission (in the store) would
    /// be let through.
    pub allowed: bool,
    pub permission: PermissionCode,
    #[oai(nullable)]
    pub store_id: Option<Uuid>,
    /// The assignments that grant the permission: tenant-wide roles, and roles
    /// scoped to the store asked about.
    pub grants: Vec<Grant>,
    #[oai(nullable)]
    pub blocked_by: Option<BlockedBy>,
}

#[derive(ApiResponse)]
pub enum AccessResponse {
    #[oai(status = 200)]
    Ok(JsonBody<AccessExplanation>),
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Rbac")]
impl AccessApi {
    /// Whether a member can use a permission, in a store if one is named, and why:
    /// the role assignments that grant it, or what blocks it. Computed by the rules
    /// every request is checked by. An unknown permission code is 422; a user who is
    /// not a member of the tenant, 404.
    #[oai(
        path = "/users/:id/access",
        method = "get",
        operation_id = "users_access"
    )]
    async fn explain(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// A permission code (`GET /permissions`).
        permission: Query<String>,
        /// The store to ask about; without it, only tenant-wide roles count, as for
        /// an operation that does not act in a store.
        store_id: Query<Option<Uuid>>,
    ) -> Result<AccessResponse, ApiError> {
        let Some(permission) = PERMISSION_CODES.iter().find(|code| **code == permission.0) else {
            return Err(Error::invalid("permission", "there is no such permission").into());
        };
        let (tx, access) = authorize(&self.db, &auth.0, &USERS_ACCESS).await?;
        let explained =
            async { explain(&tx, access.tenant()?, id.0, permission, store_id.0).await }.await;
        Ok(AccessResponse::Ok(JsonBody(tx.finish(explained).await?)))
    }
}

/// The feature of the plan that every operation requiring `permission` declares, if
/// they all declare one (`inventory.*` need `inventory`): without it, holding the
/// permission lets the member do nothing.
pub fn feature_of(permission: &str) -> Option<&'static str> {
    let requiring: Vec<Operation> = operations()
        .into_iter()
        .filter(|operation| operation.permission_code() == Some(permission))
        .collect();
    let first = requiring.first()?.feature?;
    requiring
        .iter()
        .all(|operation| operation.feature == Some(first))
        .then_some(first)
}

/// Explains `user_id`'s access to `permission` (in `store_id`) in `tenant_id`, the
/// context's tenant, inside `tx`. 404 when the user is not a member.
pub async fn explain(
    tx: &RequestTx,
    tenant_id: Uuid,
    user_id: Uuid,
    permission: &'static str,
    store_id: Option<Uuid>,
) -> Result<AccessExplanation, Error> {
    let feature = feature_of(permission);
    let scope = Scope {
        feature,
        ..Scope::tenant(tenant_id, user_id)
            .in_store(store_id)
            .requiring(permission)
    };
    let access = tx.access_of(&scope).await?;
    if access.member_status.is_none() {
        return Err(Error::NotFound);
    }
    let grants = grants(tx, user_id, permission, store_id).await?;
    let blocked_by = blocked_by(&access, store_id, !grants.is_empty());
    Ok(AccessExplanation {
        allowed: blocked_by.is_none() && access.permission_granted,
        permission: PermissionCode::from(permission.to_string()),
        store_id,
        grants,
        blocked_by,
    })
}

/// What refuses a member whose roles would grant the permission, in the order of
/// `access::refusal`. `None` with no grant: nothing but the missing grant refuses.
fn blocked_by(
    access: &Access,
    store_id: Option<Uuid>,
    granted_by_roles: bool,
) -> Option<BlockedBy> {
    if !access.tenant_active {
        Some(BlockedBy::TenantSuspended)
    } else if access.member_status.as_deref() != Some("active") {
        Some(BlockedBy::MemberSuspended)
    } else if store_id.is_some() && !access.store_accessible {
        Some(BlockedBy::StoreNotReachable)
    } else if granted_by_roles && !access.feature_in_plan {
        Some(BlockedBy::FeatureNotInPlan)
    } else {
        None
    }
}

/// The member's role assignments granting `permission`: tenant-wide, or in `store_id`
/// (the statement's `ur.store_id IS NULL OR ur.store_id = $7`).
async fn grants(
    tx: &RequestTx,
    user_id: Uuid,
    permission: &str,
    store_id: Option<Uuid>,
) -> Result<Vec<Grant>, Error> {
    let statement = tx
        .prepare(
            "SELECT ur.role_id, r.name, ur.store_id
             FROM user_roles AS ur
             JOIN roles AS r ON r.tenant_id = ur.tenant_id AND r.id = ur.role_id
             JOIN role_permissions AS rp ON rp.tenant_id = ur.tenant_id AND rp.role_id = ur.role_id
             WHERE ur.user_id = $1 AND rp.permission_code = $2
               AND (ur.store_id IS NULL OR ur.store_id = $3)
             ORDER BY ur.store_id NULLS FIRST, r.name, ur.role_id",
        )
        .await?;
    let rows = tx
        .query(&statement, &[&user_id, &permission, &store_id])
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Grant {
                role_id: row.try_get("role_id")?,
                role_name: row.try_get("name")?,
                store_id: row.try_get("store_id")?,
            })
        })
        .collect()
}
