//! `/api/v1/tenants/current` and `/api/v1/users`: the current tenant and its members,
//! with the members' role assignments.

use chrono::{DateTime, Utc};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, param::Query, payload::Json};
use serde_json::json;
use uuid::Uuid;

use crate::{
    error::Error,
    modules::{
        Tag,
        audit::db::{self as audit, Event},
        identity::{api::me::TenantDto, db as identity},
        rbac::db as rbac,
        tenancy::db::{self as tenancy, MemberRow},
    },
    platform::{
        auth::access::{Operation, authorize},
        db::{Database, RequestTx},
        domain::Name,
        http::{
            common::{Deleted, ensure_holds, invalid, page},
            problem::ApiError,
            security::BearerAuth,
        },
    },
};

pub struct TenantsApi {
    pub db: Database,
}

// What each operation requires (see `auth::access`): one line per route below.
const TENANTS_GET_CURRENT: Operation = Operation::permission("tenants_get_current", "tenants.view");
const TENANTS_UPDATE_CURRENT: Operation =
    Operation::permission("tenants_update_current", "tenants.edit");
const USERS_LIST: Operation = Operation::permission("users_list", "users.view");
const USERS_GET: Operation = Operation::permission("users_get", "users.view");
const USERS_UPDATE: Operation =
    Operation::permission("users_update", "users.edit").reading_held_permissions();
const USERS_DELETE: Operation =
    Operation::permission("users_delete", "users.remove").reading_held_permissions();
const USER_ROLES_LIST: Operation = Operation::permission("user_roles_list", "roles.assign");
const USER_ROLES_CREATE: Operation =
    Operation::permission("user_roles_create", "roles.assign").reading_held_permissions();
const USER_ROLES_DELETE: Operation =
    Operation::permission("user_roles_delete", "roles.assign").reading_held_permissions();

pub const OPERATIONS: &[Operation] = &[
    TENANTS_GET_CURRENT,
    TENANTS_UPDATE_CURRENT,
    USERS_LIST,
    USERS_GET,
    USERS_UPDATE,
    USERS_DELETE,
    USER_ROLES_LIST,
    USER_ROLES_CREATE,
    USER_ROLES_DELETE,
];

#[derive(Object)]
pub struct UpdateTenantRequest {
    pub name: String,
}

#[derive(Object)]
pub struct MemberDto {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    /// `active` or `suspended`.
    pub status: String,
    pub joined_at: DateTime<Utc>,
}

impl From<MemberRow> for MemberDto {
    fn from(row: MemberRow) -> Self {
        MemberDto {
            id: row.user_id,
            email: row.email,
            full_name: row.full_name,
            status: row.status,
            joined_at: row.joined_at,
        }
    }
}

#[derive(Object)]
pub struct MemberList {
    pub items: Vec<MemberDto>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Object)]
pub struct UpdateMemberRequest {
    /// `active` or `suspended`.
    pub status: String,
}

#[derive(Object)]
pub struct AssignRoleRequest {
    pub role_id: Uuid,
    /// Assign in this store only; omit for tenant-wide.
    #[oai(nullable)]
    pub store_id: Option<Uuid>,
}

#[derive(Object)]
pub struct AssignmentDto {
    pub id: Uuid,
    pub role_id: Uuid,
    pub role_name: String,
    #[oai(nullable)]
    pub store_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl From<rbac::AssignmentRow> for AssignmentDto {
    fn from(row: rbac::AssignmentRow) -> Self {
        AssignmentDto {
            id: row.id,
            role_id: row.role_id,
            role_name: row.role_name,
            store_id: row.store_id,
            created_at: row.created_at,
        }
    }
}

#[derive(Object)]
pub struct AssignmentList {
    pub items: Vec<AssignmentDto>,
}

#[derive(ApiResponse)]
pub enum TenantResponse {
    #[oai(status = 200)]
    Ok(Json<TenantDto>),
}

#[derive(ApiResponse)]
pub enum MemberListResponse {
    #[oai(status = 200)]
    Ok(Json<MemberList>),
}

#[derive(ApiResponse)]
pub enum MemberResponse {
    #[oai(status = 200)]
    Ok(Json<MemberDto>),
}

#[derive(ApiResponse)]
pub enum AssignmentListResponse {
    #[oai(status = 200)]
    Ok(Json<AssignmentList>),
}

#[derive(ApiResponse)]
pub enum AssignmentCreated {
    #[oai(status = 201)]
    Created(Json<AssignmentDto>),
}

/// After a change that may have removed an Owner: the tenant must keep one.
async fn ensure_an_owner_remains(tx: &RequestTx) -> Result<(), Error> {
    if rbac::active_owner_count(tx).await? == 0 {
        return Err(Error::Conflict(
            "the tenant must keep at least one active Owner".into(),
        ));
    }
    Ok(())
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Tenancy")]
impl TenantsApi {
    /// The tenant the caller acts in.
    #[oai(
        path = "/tenants/current",
        method = "get",
        operation_id = "tenants_get_current"
    )]
    async fn get_current(&self, auth: BearerAuth) -> Result<TenantResponse, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, None, &TENANTS_GET_CURRENT).await?;
        let tenant = identity::tenant(&tx, auth.0.tid).await;
        Ok(TenantResponse::Ok(Json(tx.finish(tenant).await?.into())))
    }

    /// Rename the current tenant.
    #[oai(
        path = "/tenants/current",
        method = "patch",
        operation_id = "tenants_update_current"
    )]
    async fn update_current(
        &self,
        auth: BearerAuth,
        body: Json<UpdateTenantRequest>,
    ) -> Result<TenantResponse, ApiError> {
        let name = Name::parse(&body.name).map_err(|message| invalid("name", &message))?;
        let (tx, _) = authorize(&self.db, &auth.0, None, &TENANTS_UPDATE_CURRENT).await?;
        let result = async {
            let before = identity::tenant(&tx, auth.0.tid).await?;
            let tenant = tenancy::rename_tenant(&tx, auth.0.tid, name.as_str()).await?;
            audit::record(
                &tx,
                Event {
                    action: "tenant.updated",
                    target_type: "tenant",
                    target_id: Some(tenant.id),
                    store_id: None,
                    details: json!({"before": {"name": before.name}, "after": {"name": tenant.name}}),
                },
            )
            .await?;
            Ok(tenant)
        }
        .await;
        Ok(TenantResponse::Ok(Json(tx.finish(result).await?.into())))
    }

    /// The tenant's members, oldest first.
    #[oai(path = "/users", method = "get", operation_id = "users_list")]
    async fn list_users(
        &self,
        auth: BearerAuth,
        /// 1 to 100, default 50.
        limit: Query<Option<i64>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<MemberListResponse, ApiError> {
        let page = page(limit.0, cursor.0)?;
        let (tx, _) = authorize(&self.db, &auth.0, None, &USERS_LIST).await?;
        let rows = tenancy::list_members(tx, &page).await?;
        let (rows, next_cursor) = page.finish(rows, |m| (m.joined_at, m.user_id));
        Ok(MemberListResponse::Ok(Json(MemberList {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor,
        })))
    }

    /// One member.
    #[oai(path = "/users/:id", method = "get", operation_id = "users_get")]
    async fn get_user(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<MemberResponse, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, None, &USERS_GET).await?;
        let member = tenancy::member(&tx, id.0).await;
        Ok(MemberResponse::Ok(Json(tx.finish(member).await?.into())))
    }

    /// Suspend or reactivate a member. A suspended member is refused on their next
    /// request. The last active Owner cannot be suspended (409).
    #[oai(path = "/users/:id", method = "patch", operation_id = "users_update")]
    async fn update_user(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<UpdateMemberRequest>,
    ) -> Result<MemberResponse, ApiError> {
        if !matches!(body.status.as_str(), "active" | "suspended") {
            return Err(invalid("status", "must be active or suspended").into());
        }
        let (tx, access) = authorize(&self.db, &auth.0, None, &USERS_UPDATE).await?;
        let result = async {
            rbac::lock_owners(&tx).await?;
            let before = tenancy::member(&tx, id.0).await?;
            // Suspending someone takes their permissions away: only someone who holds
            // them all may (an Admin cannot suspend an Owner).
            ensure_holds(&access, &rbac::permissions_of(&tx, id.0).await?)?;
            tenancy::set_member_status(&tx, id.0, &body.status).await?;
            ensure_an_owner_remains(&tx).await?;
            audit::record(
                &tx,
                Event {
                    action: "member.updated",
                    target_type: "user",
                    target_id: Some(id.0),
                    store_id: None,
                    details: json!({"before": {"status": before.status}, "after": {"status": body.status}}),
                },
            )
            .await?;
            tenancy::member(&tx, id.0).await
        }
        .await;
        Ok(MemberResponse::Ok(Json(tx.finish(result).await?.into())))
    }

    /// Remove a member from the tenant, with their roles and store links. Their tokens
    /// stop working for this tenant on the next request. The last active Owner cannot
    /// be removed (409).
    #[oai(path = "/users/:id", method = "delete", operation_id = "users_delete")]
    async fn delete_user(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Deleted, ApiError> {
        let (tx, access) = authorize(&self.db, &auth.0, None, &USERS_DELETE).await?;
        let result = async {
            rbac::lock_owners(&tx).await?;
            let before = tenancy::member(&tx, id.0).await?;
            // As for suspension: an Admin cannot remove an Owner.
            ensure_holds(&access, &rbac::permissions_of(&tx, id.0).await?)?;
            tenancy::remove_member(&tx, id.0).await?;
            identity::revoke_member_sessions(&tx, id.0).await?;
            ensure_an_owner_remains(&tx).await?;
            audit::record(
                &tx,
                Event {
                    action: "member.removed",
                    target_type: "user",
                    target_id: Some(id.0),
                    store_id: None,
                    details: json!({"before": {"email": before.email, "status": before.status}}),
                },
            )
            .await
        }
        .await;
        tx.finish(result).await?;
        Ok(Deleted::NoContent)
    }

    /// A member's role assignments.
    #[oai(
        path = "/users/:id/roles",
        method = "get",
        operation_id = "user_roles_list"
    )]
    async fn list_user_roles(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<AssignmentListResponse, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, None, &USER_ROLES_LIST).await?;
        let result = async {
            tenancy::member(&tx, id.0).await?;
            rbac::assignments_of(&tx, id.0).await
        }
        .await;
        let rows = tx.finish(result).await?;
        Ok(AssignmentListResponse::Ok(Json(AssignmentList {
            items: rows.into_iter().map(Into::into).collect(),
        })))
    }

    /// Assign a role to a member, tenant-wide or in one store. The caller must hold
    /// every permission of the role (403 otherwise).
    #[oai(
        path = "/users/:id/roles",
        method = "post",
        operation_id = "user_roles_create"
    )]
    async fn create_user_role(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<AssignRoleRequest>,
    ) -> Result<AssignmentCreated, ApiError> {
        let (tx, access) = authorize(&self.db, &auth.0, None, &USER_ROLES_CREATE).await?;
        let result = async {
            tenancy::member(&tx, id.0).await?;
            let role = match rbac::role(&tx, body.role_id).await {
                Err(Error::NotFound) => return Err(invalid("role_id", "no such role")),
                other => other?,
            };
            if let Some(store_id) = body.store_id
                && matches!(tenancy::store(&tx, store_id).await, Err(Error::NotFound))
            {
                return Err(invalid("store_id", "no such store"));
            }
            ensure_holds(&access, &role.permissions)?;
            let assignment_id = rbac::assign(&tx, id.0, role.id, body.store_id).await?;
            audit::record(
                &tx,
                Event {
                    action: "role.assigned",
                    target_type: "user",
                    target_id: Some(id.0),
                    store_id: body.store_id,
                    details: json!({"after": {"assignment_id": assignment_id, "role_id": role.id, "role": role.name}}),
                },
            )
            .await?;
            rbac::assignment(&tx, id.0, assignment_id).await
        }
        .await;
        Ok(AssignmentCreated::Created(Json(
            tx.finish(result).await?.into(),
        )))
    }

    /// Remove a role assignment. The caller must hold every permission of the role;
    /// the last active Owner keeps theirs (409).
    #[oai(
        path = "/users/:id/roles/:assignment_id",
        method = "delete",
        operation_id = "user_roles_delete"
    )]
    async fn delete_user_role(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        assignment_id: Path<Uuid>,
    ) -> Result<Deleted, ApiError> {
        let (tx, access) = authorize(&self.db, &auth.0, None, &USER_ROLES_DELETE).await?;
        let result = async {
            rbac::lock_owners(&tx).await?;
            let assignment = rbac::assignment(&tx, id.0, assignment_id.0).await?;
            let role = rbac::role(&tx, assignment.role_id).await?;
            ensure_holds(&access, &role.permissions)?;
            rbac::unassign(&tx, assignment.id).await?;
            ensure_an_owner_remains(&tx).await?;
            audit::record(
                &tx,
                Event {
                    action: "role.unassigned",
                    target_type: "user",
                    target_id: Some(id.0),
                    store_id: assignment.store_id,
                    details: json!({"before": {"assignment_id": assignment.id, "role_id": role.id, "role": role.name}}),
                },
            )
            .await
        }
        .await;
        tx.finish(result).await?;
        Ok(Deleted::NoContent)
    }
}
