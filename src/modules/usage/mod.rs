//! Usage: what a tenant uses of its plan's limits, per period of its subscription.
//! `GET /api/v1/usage/current` counts stores, members and products live and reads the
//! period's api_requests as the servers last flushed them (`platform::metering`
//! counts them in memory, with no round trip on the request path);
//! `GET /api/v1/usage/history` lists the past periods as the hourly
//! `usage.aggregate` recorded them (`jobs`), which also tells the Owners when a limit
//! reaches 80% and 100%. Tables: `sql/V16__usage.sql`.

pub mod api;
mod db;
mod jobs;

pub use jobs::{AGGREGATE, AGGREGATE_TENANT, THRESHOLD_REACHED, jobs};

/// This module's operations, as the registry mounts them.
pub type Api = api::UsageApi;

pub fn api(state: &super::AppState) -> Api {
    api::UsageApi {
        db: state.db.clone(),
    }
}

pub const OPERATIONS: &[&[crate::platform::auth::access::Operation]] = &[api::OPERATIONS];
