//! One integration test binary on purpose: one harness, one throwaway cluster (when
//! no DATABASE_URL is given), one link step.

mod auth;
mod contract;
mod cross_tenant;
mod faults;
mod fixtures;
mod health;
mod helpers;
mod invariants;
mod isolation;
mod me;
mod openapi;
mod operations;
mod policies;
mod products;
mod rbac;
mod request_context;
mod round_trips;
mod stores;
mod tenancy;
mod tokens;
