//! One integration test binary on purpose: one harness, one throwaway cluster (when
//! no DATABASE_URL is given), one link step.
//!
//! One file per module of `src/modules`, named for it; the properties of the platform
//! underneath them all (`src/platform`: isolation, the request transaction, tokens,
//! the HTTP edge...) in `platform/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails by panicking, with the message"
)]

mod fixtures;
mod helpers;
mod platform;

mod api_keys;
mod audit;
mod billing;
mod commands;
mod console;
mod email;
mod health;
mod identity;
mod notifications;
mod onboarding;
mod payments;
mod payments_bench;
mod plan_gate;
mod platform_admin;
mod products;
mod rbac;
mod rbac_access;
mod stores;
mod subscriptions;
mod tenancy;
mod tenant_lifecycle;
mod usage;
