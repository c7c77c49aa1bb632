//! Stores: a tenant's branches, and which members are linked to which store. A store
//! is also a context: `X-Store-ID` names one, and store-scoped tables (inventory) show
//! only its rows (docs/design.md invariant 4); the opening statement decides whether the
//! caller reaches it. Writes are audited (`service`).

pub mod api;
mod db;
mod service;

use uuid::Uuid;

use crate::{error::Error, platform::db::RequestTx};

/// Whether the context's tenant has a store of that id (for modules that take a
/// `store_id` in a body).
pub async fn exists(tx: &RequestTx, id: Uuid) -> Result<bool, Error> {
    db::exists(tx, id).await
}

/// This module's operations, as the registry mounts them.
pub type Api = api::StoresApi;

pub fn api(state: &super::AppState) -> Api {
    api::StoresApi {
        db: state.db.clone(),
    }
}

pub const OPERATIONS: &[&[crate::platform::auth::access::Operation]] = &[api::OPERATIONS];

/// Creates a store in the context's tenant, with its audit event, as `POST /stores`
/// does (within the plan's limit); its id.
pub async fn create(
    tx: &RequestTx,
    name: &crate::platform::domain::Name,
    code: Option<&str>,
    address: Option<&str>,
) -> Result<Uuid, Error> {
    Ok(service::create(tx, name, code, address).await?.id)
}
