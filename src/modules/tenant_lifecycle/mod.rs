//! A tenant's life beyond registration: a signed-in person creates more tenants
//! (`POST /tenants`), a tenant takes its data (`GET /tenants/current/export`) and
//! deletes itself (`DELETE /tenants/current`), and the `tenants.purge` job erases a
//! deleted tenant's rows `ROWGUARD_TENANT_PURGE_DAYS` later
//! (sql/V19__tenant_lifecycle.sql).

pub mod api;
mod db;
mod export;
mod jobs;

use chrono::{TimeDelta, Utc};
use uuid::Uuid;

pub use jobs::{PURGE, jobs};

use super::{AppState, rbac, subscriptions, tenancy};
use crate::{
    error::{Error, FieldError},
    platform::{
        auth::access::Operation,
        db::{Database, RequestTx, Scope},
        domain::Name,
    },
};

pub use api::{DeleteTenantRequest, TenantDeletion};

/// This module's operations, as the registry mounts them.
pub type Api = api::TenantLifecycleApi;

pub fn api(state: &AppState) -> Api {
    api::TenantLifecycleApi {
        db: state.db.clone(),
        default_plan: state.identity.limits.default_plan.clone(),
        max_tenants_per_user: state.max_tenants_per_user,
        purge_after: state.tenant_purge_after,
    }
}

pub const OPERATIONS: &[&[Operation]] = &[api::OPERATIONS];

/// A new tenant named `name`, with `user_id` its Owner (the system roles made as at
/// registration) and its subscription started on `plan`, in one transaction whose
/// context is the new tenant (so every insert passes the policies as a request's
/// would); refused with 409 once the user created `max_per_user` tenants.
pub async fn create_tenant(
    db: &Database,
    user_id: Uuid,
    name: &Name,
    plan: &str,
    max_per_user: i64,
) -> Result<tenancy::TenantRow, Error> {
    let tenant_id = Uuid::new_v4();
    let tx = db.begin_context(&Scope::tenant(tenant_id, user_id)).await?;
    let created = async {
        if db::tenants_created_by_current_user(&tx).await? >= max_per_user {
            return Err(Error::Conflict(format!(
                "one person may create at most {max_per_user} tenants"
            )));
        }
        let tenant = tenancy::create_tenant(&tx, tenant_id, name.as_str(), user_id).await?;
        subscriptions::start(&tx, plan, Utc::now()).await?;
        let owner = rbac::service::create_system_roles(&tx).await?;
        rbac::service::assign_role(&tx, user_id, owner, None).await?;
        Ok(tenant)
    }
    .await;
    tx.finish(created).await
}

/// Deletes the context's tenant (`DELETE /tenants/current`) once `confirm_name` is
/// exactly its name (422 otherwise, nothing changed): `deleted` at once, its sessions
/// ended and its keys revoked (`app.delete_current_tenant`), its rows erased by
/// `tenants.purge` from `purge_after` on.
pub async fn delete_current_tenant(
    tx: &RequestTx,
    tenant_id: Uuid,
    confirm_name: &str,
    purge_after: TimeDelta,
) -> Result<TenantDeletion, Error> {
    let tenant = tenancy::tenant(tx, tenant_id).await?;
    if confirm_name != tenant.name {
        return Err(Error::Validation(vec![FieldError::new(
            "confirm_name",
            "is not the tenant's name",
        )]));
    }
    let deleted_at = db::delete_current_tenant(tx)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(TenantDeletion {
        id: tenant.id,
        status: tenancy::api::TenantStatus::Deleted,
        deleted_at,
        purge_after: deleted_at + purge_after,
    })
}
