//! Platform administration: the operator routes `/api/v1/platform/*`, for users with
//! `is_platform_admin` (everyone else 403 `forbidden`). So far the job queue: the
//! jobs that failed, died or wait, and retrying one. What these routes read is behind
//! SECURITY DEFINER functions that check the caller again (`sql/V10__jobs.sql`): the
//! request role cannot read the queue by itself.

pub mod api;

use super::AppState;
use crate::platform::auth::access::Operation;

/// This module's operations, as the registry mounts them.
pub type Api = api::PlatformJobsApi;

pub fn api(state: &AppState) -> Api {
    api::PlatformJobsApi {
        db: state.db.clone(),
    }
}

pub const OPERATIONS: &[&[Operation]] = &[api::OPERATIONS];
