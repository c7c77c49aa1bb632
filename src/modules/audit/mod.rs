//! The audit trail: who changed what in a tenant. Every module that writes roles,
//! assignments, members, invitations or stores appends one event with [`record`], in
//! the same transaction as the write, so an event exists exactly when its change does.
//! `GET /api/v1/audit-events` reads them (`api`).

pub mod api;
mod db;

pub use db::Event;

use crate::{error::Error, platform::db::RequestTx};

/// Appends `event` for the context's tenant and user (the audit convention: call it
/// in the transaction of the write it describes).
pub async fn record(tx: &RequestTx, event: Event<'_>) -> Result<(), Error> {
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
