//! Identity: who the user is. Users, passwords, sessions (refresh-token families) and
//! the access tokens they issue; registration and bootstrap (a user with their first
//! tenant), login with its throttle, password reset and change, and the caller's own
//! view (`/me`). The flows are in `service`; credentials are reached only through the
//! SECURITY DEFINER functions of `sql/V3__identity.sql` (`db`).

pub mod api;
mod db;
mod jobs;
pub mod service;

pub use jobs::jobs;

pub use db::UserRow;

use super::AppState;
use crate::platform::auth::access::Operation;

/// This module's operations, as the registry mounts them.
pub type Api = (api::auth::AuthApi, api::me::MeApi);

pub fn api(state: &AppState) -> Api {
    (
        api::auth::AuthApi {
            identity: state.identity.clone(),
        },
        api::me::MeApi {
            identity: state.identity.clone(),
        },
    )
}

pub const OPERATIONS: &[&[Operation]] = &[api::auth::OPERATIONS, api::me::OPERATIONS];
