//! Platform administration: the operator routes `/api/v1/platform/*`, for users with
//! `is_platform_admin` (everyone else 403 `forbidden`): the job queue (the jobs that
//! failed, died or wait, and retrying one), and putting a tenant on a plan at once.
//! The request role cannot read the queue at all: once its transaction said the
//! caller is a platform admin, the route reads it through the queue's machinery
//! (`rowguard_auth`); a tenant's subscription is changed in a transaction of that
//! tenant's context, under row-level security.

pub mod api;

use super::AppState;
use crate::platform::auth::access::Operation;

/// This module's operations, as the registry mounts them.
pub type Api = (api::PlatformJobsApi, api::PlatformTenantsApi);

pub fn api(state: &AppState) -> Api {
    (
        api::PlatformJobsApi {
            db: state.db.clone(),
            queue: state.queue.clone(),
        },
        api::PlatformTenantsApi {
            db: state.db.clone(),
        },
    )
}

pub const OPERATIONS: &[&[Operation]] = &[api::OPERATIONS];
