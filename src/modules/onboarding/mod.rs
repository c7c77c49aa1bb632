//! Onboarding (docs/api.md, "Onboarding"): a new customer signs up with the plan they
//! chose. It is registration (`identity`) with a plan: the user, the tenant with its
//! system roles, the user as Owner, the subscription (the plan's trial when it has
//! one, else the free plan active) and the welcome and verification emails are made
//! in the one transaction that registration runs (`Identity::register`), so a failure
//! leaves nothing behind.

pub mod api;

use crate::platform::auth::access::Operation;

/// This module's operations, as the registry mounts them.
pub type Api = api::OnboardingApi;

pub fn api(state: &super::AppState) -> Api {
    api::OnboardingApi {
        identity: state.identity.clone(),
        db: state.db.clone(),
    }
}

pub const OPERATIONS: &[&[Operation]] = &[api::OPERATIONS];
