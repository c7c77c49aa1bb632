//! Tenancy: the tenant (a company), its members, and invitations to join it. The
//! rules (who may suspend or remove whom, that a tenant keeps an active Owner, who may
//! be invited with which role, how an invitation is accepted) are in `service`.

pub mod api;
mod db;
pub mod service;

pub use api::MemberStatus;
pub use db::{MemberRow, TenantRow};

use uuid::Uuid;

use crate::{error::Error, platform::db::RequestTx};

/// A member of the context's tenant (404 when `user_id` is not one).
pub async fn member(tx: &RequestTx, user_id: Uuid) -> Result<MemberRow, Error> {
    db::member(tx, user_id).await
}

/// Deletes the invitations naming `role_id` that are no longer pending (accepted,
/// revoked or expired), so that the role can be deleted.
pub async fn forget_finished_invitations_for_role(
    tx: &RequestTx,
    role_id: Uuid,
) -> Result<(), Error> {
    db::delete_finished_invitations_for_role(tx, role_id).await
}

/// A tenant the context can see (its own).
pub async fn tenant(tx: &RequestTx, id: Uuid) -> Result<TenantRow, Error> {
    db::tenant(tx, id).await
}

/// The context's tenant (a job's, which knows no id but its context's).
pub async fn current_tenant(tx: &RequestTx) -> Result<TenantRow, Error> {
    db::current_tenant(tx).await
}

/// A new tenant, its id being the transaction's context, with `user_id` its first
/// member (the caller gives them the Owner role).
pub async fn create_tenant(
    tx: &RequestTx,
    id: Uuid,
    name: &str,
    user_id: Uuid,
) -> Result<TenantRow, Error> {
    let tenant = db::create_tenant(tx, id, name).await?;
    db::add_member(tx, user_id).await?;
    Ok(tenant)
}

use super::AppState;
use crate::platform::auth::access::Operation;

/// This module's operations, as the registry mounts them.
pub type Api = (api::tenants::TenantsApi, api::invitations::InvitationsApi);

pub fn api(state: &AppState) -> Api {
    (
        api::tenants::TenantsApi {
            identity: state.identity.clone(),
            purge_after: state.tenant_purge_after,
        },
        api::invitations::InvitationsApi {
            identity: state.identity.clone(),
        },
    )
}

pub const OPERATIONS: &[&[Operation]] = &[api::tenants::OPERATIONS, api::invitations::OPERATIONS];

/// Makes `user_id` an active member of the context's tenant, within the plan's
/// `members` limit (the operator's `rowguard user assign-role`; a member already is a
/// 409).
pub async fn add_member(tx: &RequestTx, user_id: Uuid) -> Result<(), Error> {
    db::add_member(tx, user_id).await?;
    db::members_within_plan(tx).await
}

/// A new tenant as registration founds one, its id being the transaction's context:
/// `owner` its first member, its subscription started on `plan` (active, no trial),
/// its system roles made, and `owner` holding Owner. For the operator's `rowguard
/// tenant create` and the demo of `rowguard db seed`.
pub async fn found(
    tx: &RequestTx,
    id: Uuid,
    name: &str,
    owner: Uuid,
    plan: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<TenantRow, Error> {
    let tenant = create_tenant(tx, id, name, owner).await?;
    crate::modules::subscriptions::start(tx, plan, now).await?;
    let owner_role = crate::modules::rbac::service::create_system_roles(tx).await?;
    crate::modules::rbac::service::assign_role(tx, owner, owner_role, None).await?;
    Ok(tenant)
}
