//! `POST /api/v1/tenants`, `GET /api/v1/tenants/current/export` and `DELETE
//! /api/v1/tenants/current`: a person's further tenants, a tenant's data leaving with
//! it, and a tenant's deletion.

use chrono::{DateTime, TimeDelta, Utc};
use poem::Body;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Binary};

use super::export;
use crate::{
    modules::{
        Tag,
        tenancy::api::{Tenant, TenantStatus},
    },
    platform::{
        auth::access::{Operation, authorize},
        db::Database,
        domain::{Fields, Name},
        http::{
            json::{JsonBody, rfc3339},
            problem::ApiError,
            security::BearerAuth,
            text::NameText,
        },
    },
};

pub struct TenantLifecycleApi {
    pub db: Database,
    /// `ROWGUARD_DEFAULT_PLAN`: the plan a new tenant starts on.
    pub default_plan: String,
    /// `ROWGUARD_MAX_TENANTS_PER_USER`.
    pub max_tenants_per_user: i64,
    /// `ROWGUARD_TENANT_PURGE_DAYS`, as a duration.
    pub purge_after: TimeDelta,
}

// What each operation requires (see `platform::auth::access`): one line per route below.
/// Any signed-in person, in whichever tenant their token acts; a key is an
/// integration of one tenant and creates none. 409: the person created as many
/// tenants as one may.
const TENANTS_CREATE: Operation = Operation::member("tenants_create")
    .for_people_only()
    .returning(&[409]);
const TENANTS_EXPORT_CURRENT: Operation =
    Operation::permission("tenants_export_current", "tenants.export");
// DELETE /tenants/current is served by tenancy's `TenantsApi`, with the other methods
// of its path (poem-openapi documents a path from one API only); its rule is
// `super::delete_current_tenant`.

pub const OPERATIONS: &[Operation] = &[TENANTS_CREATE, TENANTS_EXPORT_CURRENT];

#[derive(Object)]
pub struct CreateTenantRequest {
    pub name: NameText,
}

#[derive(Object)]
pub struct DeleteTenantRequest {
    /// The tenant's name, exactly as it is: a deletion cannot be a slip.
    pub confirm_name: String,
}

/// A tenant deleted, waiting for its purge.
#[derive(Object, serde::Serialize)]
pub struct TenantDeletion {
    pub id: uuid::Uuid,
    pub status: TenantStatus,
    #[serde(serialize_with = "rfc3339")]
    pub deleted_at: DateTime<Utc>,
    /// From when the `tenants.purge` job erases every row of the tenant.
    #[serde(serialize_with = "rfc3339")]
    pub purge_after: DateTime<Utc>,
}

#[derive(ApiResponse)]
pub enum TenantCreated {
    /// The new tenant: the caller is its Owner; switch to it with
    /// `POST /auth/switch-tenant`.
    #[oai(status = 201)]
    Created(JsonBody<Tenant>),
}

#[derive(ApiResponse)]
pub enum TenantExport {
    /// Every row of the tenant, one JSON object per line:
    /// `{"type": "<table>", "row": {...}}`. Streamed: a truncated body (no final
    /// chunk) means the export failed part-way.
    #[oai(status = 200, content_type = "application/x-ndjson")]
    Ok(Binary<Body>),
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Tenancy")]
impl TenantLifecycleApi {
    /// Create another tenant. The caller becomes its Owner (with the system roles, as
    /// at registration), on the default plan; their token stays in its tenant, and
    /// `POST /auth/switch-tenant` moves to the new one. One person may create at most
    /// `ROWGUARD_MAX_TENANTS_PER_USER` tenants (their first, at registration,
    /// included; a deleted one counts until it is purged): beyond, 409 `conflict`.
    #[oai(path = "/tenants", method = "post", operation_id = "tenants_create")]
    async fn create(
        &self,
        auth: BearerAuth,
        body: JsonBody<CreateTenantRequest>,
    ) -> Result<TenantCreated, ApiError> {
        let mut fields = Fields::new();
        let name = fields.check("name", Name::parse(&body.name));
        let name = fields.finish(name)?;
        // Who the caller is, and that their token still holds: a session ended, an
        // account disabled or a membership removed creates nothing.
        let (tx, access) = authorize(&self.db, &auth.0, &TENANTS_CREATE).await?;
        let user = access.user();
        tx.rollback().await;
        let tenant = super::create_tenant(
            &self.db,
            user?,
            &name,
            &self.default_plan,
            self.max_tenants_per_user,
        )
        .await?;
        Ok(TenantCreated::Created(JsonBody(tenant.into())))
    }

    /// Every row of the current tenant, as NDJSON, streamed from the database: the
    /// tenant, and every table that holds its rows (found from the database's
    /// catalog, so a module's new table is included without new code), without
    /// password, token or key hashes. Read under the tenant's row-level security:
    /// no other tenant's row can appear.
    #[oai(
        path = "/tenants/current/export",
        method = "get",
        operation_id = "tenants_export_current"
    )]
    async fn export(&self, auth: BearerAuth) -> Result<TenantExport, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, &TENANTS_EXPORT_CURRENT).await?;
        let lines = export::stream(tx).await?;
        Ok(TenantExport::Ok(Binary(Body::from_bytes_stream(lines))))
    }
}
