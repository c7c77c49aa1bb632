//! Platform administration: the operator routes `/api/v1/platform/*`, for users with
//! `is_platform_admin` (everyone else 403 `forbidden`). So far the job queue: the
//! jobs that failed, died or wait, and retrying one. The request role cannot read the
//! queue at all: once its transaction said the caller is a platform admin, the route
//! reads it through the queue's machinery (`rowguard_auth`).

pub mod api;

use super::AppState;
use crate::platform::auth::access::Operation;

/// This module's operations, as the registry mounts them.
pub type Api = api::PlatformJobsApi;

pub fn api(state: &AppState) -> Api {
    api::PlatformJobsApi {
        db: state.db.clone(),
        queue: state.queue.clone(),
    }
}

pub const OPERATIONS: &[&[Operation]] = &[api::OPERATIONS];
