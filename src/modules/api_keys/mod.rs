//! API keys: credentials for integrations (a point-of-sale terminal, a script), which
//! act as the member who created them, in their tenant, with at most the permissions
//! they were given and the creator still holds. `api` lists, creates and revokes them
//! (feature `api_keys`, a person's token only); the key format is the platform's
//! (`platform::auth::api_key`), and authenticating with a key is the request
//! transaction's (`platform::db::request_tx`, `begin_request.sql`).

pub mod api;
mod db;

/// This module's operations, as the registry mounts them.
pub type Api = api::ApiKeysApi;

pub fn api(state: &super::AppState) -> Api {
    api::ApiKeysApi {
        db: state.db.clone(),
    }
}

pub const OPERATIONS: &[&[crate::platform::auth::access::Operation]] = &[api::OPERATIONS];
