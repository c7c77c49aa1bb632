//! The audit trail: who changed what in a tenant. Every module that writes roles,
//! assignments, members, invitations or stores appends one event with [`record`], in
//! the same transaction as the write, so an event exists exactly when its change does.
//! `GET /api/v1/audit-events` reads them (`api`).

pub mod api;
mod db;

pub use db::Event;

use poem_openapi::Enum;

use crate::{error::Error, platform::db::RequestTx};

/// What happened: every action a write records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename = "AuditAction")]
pub enum Action {
    #[oai(rename = "api_key.created")]
    #[serde(rename = "api_key.created")]
    ApiKeyCreated,
    #[oai(rename = "api_key.revoked")]
    #[serde(rename = "api_key.revoked")]
    ApiKeyRevoked,
    #[oai(rename = "invitation.accepted")]
    #[serde(rename = "invitation.accepted")]
    InvitationAccepted,
    #[oai(rename = "invitation.created")]
    #[serde(rename = "invitation.created")]
    InvitationCreated,
    #[oai(rename = "invitation.revoked")]
    #[serde(rename = "invitation.revoked")]
    InvitationRevoked,
    #[oai(rename = "member.removed")]
    #[serde(rename = "member.removed")]
    MemberRemoved,
    #[oai(rename = "member.updated")]
    #[serde(rename = "member.updated")]
    MemberUpdated,
    #[oai(rename = "role.assigned")]
    #[serde(rename = "role.assigned")]
    RoleAssigned,
    #[oai(rename = "role.created")]
    #[serde(rename = "role.created")]
    RoleCreated,
    #[oai(rename = "role.deleted")]
    #[serde(rename = "role.deleted")]
    RoleDeleted,
    #[oai(rename = "role.permissions_set")]
    #[serde(rename = "role.permissions_set")]
    RolePermissionsSet,
    #[oai(rename = "role.unassigned")]
    #[serde(rename = "role.unassigned")]
    RoleUnassigned,
    #[oai(rename = "role.updated")]
    #[serde(rename = "role.updated")]
    RoleUpdated,
    #[oai(rename = "store.created")]
    #[serde(rename = "store.created")]
    StoreCreated,
    #[oai(rename = "store.deleted")]
    #[serde(rename = "store.deleted")]
    StoreDeleted,
    #[oai(rename = "store.updated")]
    #[serde(rename = "store.updated")]
    StoreUpdated,
    #[oai(rename = "store.user_linked")]
    #[serde(rename = "store.user_linked")]
    StoreUserLinked,
    #[oai(rename = "store.user_unlinked")]
    #[serde(rename = "store.user_unlinked")]
    StoreUserUnlinked,
    #[oai(rename = "tenant.updated")]
    #[serde(rename = "tenant.updated")]
    TenantUpdated,
}

/// The kind of thing an event's `target_id` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename = "AuditTarget", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Target {
    ApiKey,
    Invitation,
    Role,
    Store,
    Tenant,
    User,
}

/// Appends `event` for the context's tenant and user (the audit convention: call it
/// in the transaction of the write it describes).
pub async fn record(tx: &RequestTx, event: Event) -> Result<(), Error> {
    db::insert(tx, &event).await
}

/// This module's operations, as the registry mounts them.
pub type Api = api::AuditApi;

pub fn api(state: &super::AppState) -> Api {
    api::AuditApi {
        db: state.db.clone(),
    }
}

pub const OPERATIONS: &[&[crate::platform::auth::access::Operation]] = &[api::OPERATIONS];
