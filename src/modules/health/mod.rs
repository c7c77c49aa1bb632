//! Liveness (`/health`) and readiness (`/health/db`) for load balancers and
//! orchestrators.

pub mod api;

use super::AppState;
use crate::platform::auth::access::Operation;

/// This module's operations, as the registry mounts them.
pub type Api = api::HealthApi;

pub fn api(state: &AppState) -> Api {
    api::HealthApi {
        db: state.db.clone(),
    }
}

pub const OPERATIONS: &[&[Operation]] = &[api::OPERATIONS];
