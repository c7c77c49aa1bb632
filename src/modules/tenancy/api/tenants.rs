//! `/api/v1/tenants/current` and `/api/v1/users`: the current tenant and its members.

use chrono::{DateTime, Utc};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, param::Path, param::Query};
use uuid::Uuid;

use crate::{
    modules::{
        Tag,
        identity::service::Identity,
        tenancy::{
            db::{self, MemberRow, TenantRow},
            service,
        },
        tenant_lifecycle::{self, DeleteTenantRequest, TenantDeletion},
    },
    platform::{
        auth::access::{Operation, authorize},
        domain::{Fields, Name},
        http::{
            common::{Deleted, Limit, page},
            json::{JsonBody, rfc3339},
            problem::ApiError,
            security::BearerAuth,
            text::NameText,
        },
    },
};

pub struct TenantsApi {
    pub identity: Identity,
    /// `ROWGUARD_TENANT_PURGE_DAYS`: from a deletion to its purge.
    pub purge_after: chrono::TimeDelta,
}

// What each operation requires (see `platform::auth::access`): one line per route below.
const TENANTS_GET_CURRENT: Operation = Operation::permission("tenants_get_current", "tenants.view");
const TENANTS_UPDATE_CURRENT: Operation =
    Operation::permission("tenants_update_current", "tenants.edit");
/// A person's decision, never an integration's: keys cannot delete their tenant.
const TENANTS_DELETE_CURRENT: Operation =
    Operation::permission("tenants_delete_current", "tenants.delete").for_people_only();
const USERS_LIST: Operation = Operation::permission("users_list", "users.view");
const USERS_GET: Operation = Operation::permission("users_get", "users.view");
/// 402: reactivating a member on an unpaid subscription (a member takes a seat of the
/// plan's `members`; suspending frees one, so the operation is not declared limited).
const USERS_UPDATE: Operation = Operation::permission("users_update", "users.edit")
    .reading_held_permissions()
    .returning(&[402, 409]);
const USERS_DELETE: Operation = Operation::permission("users_delete", "users.remove")
    .reading_held_permissions()
    .returning(&[409]);

pub const OPERATIONS: &[Operation] = &[
    TENANTS_GET_CURRENT,
    TENANTS_UPDATE_CURRENT,
    TENANTS_DELETE_CURRENT,
    USERS_LIST,
    USERS_GET,
    USERS_UPDATE,
    USERS_DELETE,
];

#[derive(Object, serde::Serialize)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub status: TenantStatus,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

/// A suspended tenant's members are refused on every request; a deleted one's too,
/// and its rows are erased by the `tenants.purge` job (`ROWGUARD_TENANT_PURGE_DAYS`
/// after its deletion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Active,
    Suspended,
    Deleted,
}

/// A suspended member is refused on every request in the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    Active,
    Suspended,
}

impl From<TenantRow> for Tenant {
    fn from(row: TenantRow) -> Self {
        Tenant {
            id: row.id,
            name: row.name,
            status: row.status,
            created_at: row.created_at,
        }
    }
}

#[derive(Object)]
pub struct UpdateTenantRequest {
    pub name: NameText,
}

#[derive(Object, serde::Serialize)]
pub struct Member {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    pub status: MemberStatus,
    #[serde(serialize_with = "rfc3339")]
    pub joined_at: DateTime<Utc>,
}

impl From<MemberRow> for Member {
    fn from(row: MemberRow) -> Self {
        Member {
            id: row.user_id,
            email: row.email,
            full_name: row.full_name,
            status: row.status,
            joined_at: row.joined_at,
        }
    }
}

#[derive(Object, serde::Serialize)]
pub struct MemberList {
    pub items: Vec<Member>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Object)]
pub struct UpdateMemberRequest {
    pub status: MemberStatus,
}

#[derive(ApiResponse)]
pub enum TenantResponse {
    #[oai(status = 200)]
    Ok(JsonBody<Tenant>),
}

#[derive(ApiResponse)]
pub enum TenantDeleted {
    /// Deleted: every token and key of the tenant stops working now; the rows are
    /// erased from `purge_after`.
    #[oai(status = 202)]
    Accepted(JsonBody<TenantDeletion>),
}

#[derive(ApiResponse)]
pub enum MemberListResponse {
    #[oai(status = 200)]
    Ok(JsonBody<MemberList>),
}

#[derive(ApiResponse)]
pub enum MemberResponse {
    #[oai(status = 200)]
    Ok(JsonBody<Member>),
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
        let (tx, access) = authorize(&self.identity.db, &auth.0, &TENANTS_GET_CURRENT).await?;
        let tenant = async { db::tenant(&tx, access.tenant()?).await }.await;
        Ok(TenantResponse::Ok(JsonBody(
            tx.finish(tenant).await?.into(),
        )))
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
        body: JsonBody<UpdateTenantRequest>,
    ) -> Result<TenantResponse, ApiError> {
        let mut fields = Fields::new();
        let name = fields.check("name", Name::parse(&body.name));
        let name = fields.finish(name)?;
        let (tx, access) = authorize(&self.identity.db, &auth.0, &TENANTS_UPDATE_CURRENT).await?;
        let tenant = async { service::rename_tenant(&tx, access.tenant()?, &name).await }.await;
        Ok(TenantResponse::Ok(JsonBody(
            tx.finish(tenant).await?.into(),
        )))
    }

    /// Delete the current tenant. `confirm_name` must be the tenant's name (422
    /// `validation_failed` otherwise, nothing changed). The tenant is `deleted` at
    /// once: every session acting in it ends and every API key of it is revoked, so
    /// its tokens and keys answer 401 from the next request. Its rows are erased by
    /// the `tenants.purge` job `ROWGUARD_TENANT_PURGE_DAYS` later. Its members keep
    /// their accounts (users are not a tenant's) and their other tenants.
    #[oai(
        path = "/tenants/current",
        method = "delete",
        operation_id = "tenants_delete_current"
    )]
    async fn delete_current(
        &self,
        auth: BearerAuth,
        body: JsonBody<DeleteTenantRequest>,
    ) -> Result<TenantDeleted, ApiError> {
        let (tx, access) = authorize(&self.identity.db, &auth.0, &TENANTS_DELETE_CURRENT).await?;
        let deleted = async {
            tenant_lifecycle::delete_current_tenant(
                &tx,
                access.tenant()?,
                &body.confirm_name,
                self.purge_after,
            )
            .await
        }
        .await;
        Ok(TenantDeleted::Accepted(JsonBody(tx.finish(deleted).await?)))
    }

    /// The tenant's members, oldest first.
    #[oai(path = "/users", method = "get", operation_id = "users_list")]
    async fn list_users(
        &self,
        auth: BearerAuth,
        limit: Query<Option<Limit>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<MemberListResponse, ApiError> {
        let page = page(limit.0, cursor.0)?;
        let (tx, _) = authorize(&self.identity.db, &auth.0, &USERS_LIST).await?;
        let rows = db::list_members(tx, &page).await?;
        let (rows, next_cursor) = page.finish(rows, |m| (m.joined_at, m.user_id));
        Ok(MemberListResponse::Ok(JsonBody(MemberList {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor,
        })))
    }

    /// One member.
    #[oai(path = "/users/:id", method = "get", operation_id = "users_get")]
    async fn get_user(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<MemberResponse, ApiError> {
        let (tx, _) = authorize(&self.identity.db, &auth.0, &USERS_GET).await?;
        Ok(MemberResponse::Ok(JsonBody(
            db::read_member(tx, id.0).await?.into(),
        )))
    }

    /// Suspend or reactivate a member. A suspended member is refused on their next
    /// request, and their sessions in this tenant end: once reactivated, they sign in
    /// again. The last active Owner cannot be suspended (409). A suspended member holds
    /// no seat of the plan's `members`: reactivating one beyond the limit is 403
    /// `limit_exceeded`, and on an unpaid subscription 402 `payment_required`.
    #[oai(path = "/users/:id", method = "patch", operation_id = "users_update")]
    async fn update_user(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: JsonBody<UpdateMemberRequest>,
    ) -> Result<MemberResponse, ApiError> {
        let (tx, access) = authorize(&self.identity.db, &auth.0, &USERS_UPDATE).await?;
        let member =
            service::set_member_status(&self.identity, &tx, &access, id.0, body.status).await;
        Ok(MemberResponse::Ok(JsonBody(
            tx.finish(member).await?.into(),
        )))
    }

    /// Remove a member from the tenant, with their roles and store links. Their tokens
    /// stop working for this tenant on the next request. The last active Owner cannot
    /// be removed (409).
    #[oai(path = "/users/:id", method = "delete", operation_id = "users_delete")]
    async fn delete_user(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Deleted, ApiError> {
        let (tx, access) = authorize(&self.identity.db, &auth.0, &USERS_DELETE).await?;
        let removed = service::remove_member(&self.identity, &tx, &access, id.0).await;
        tx.finish(removed).await?;
        Ok(Deleted::NoContent)
    }
}
