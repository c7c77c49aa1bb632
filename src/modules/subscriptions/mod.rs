//! Plans and subscriptions. So far the plan catalog: the plans, their features and
//! their limits, code-defined and seeded by `sql/V12__plans.sql`, listed publicly at
//! `GET /api/v1/plans`. The subscriptions, the feature gate and the limits build on it.

pub mod api;
mod db;

/// This module's operations, as the registry mounts them.
pub type Api = api::PlansApi;

pub fn api(state: &super::AppState) -> Api {
    api::PlansApi {
        db: state.db.clone(),
    }
}

pub const OPERATIONS: &[&[crate::platform::auth::access::Operation]] = &[api::OPERATIONS];
