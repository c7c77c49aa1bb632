//! The harness (a database per test, the real server) and a client of its API: one
//! method of [`TestApp`] per OpenAPI operation, named for its operationId and taking
//! its path parameters and body, in the file of the module that serves it. Each
//! returns a [`Call`], which sends when awaited and gives the `reqwest::Response`; the
//! options only some requests need (`X-Store-ID`, a page, another header) are set on
//! the `Call`. The fixtures (a tenant, a member, a store...) are built on the same
//! methods. A new module adds one file here.

mod api_keys;
mod audit;
mod billing;
mod call;
mod edge;
pub mod fake_daraja;
mod harness;
mod health;
mod identity;
mod metrics;
mod notifications;
mod onboarding;
mod payments;
mod platform_admin;
mod process;
mod products;
mod rbac;
mod smtp_sink;
mod stores;
mod subscriptions;
mod tenancy;
mod tenant_lifecycle;
mod usage;

pub use api_keys::in_days;
pub use call::{Call, assert_problem, retry_after, text};
pub use harness::{
    TestApp, TestDb, as_user, connect, spawn_app, spawn_app_on, spawn_app_with, test_settings,
};
pub use identity::PASSWORD;
pub use payments::{mpesa_settings, spawn_paying_app};
pub use process::{OtlpCollector, ServerProcess};
pub use smtp_sink::{Mail, SmtpSink};
pub use tenancy::Tenant;
