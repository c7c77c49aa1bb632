//! rowguard: the multi-tenant, multi-store core of a SaaS backend.
//!
//! A request's path: `api::edge` gives it a request id and problem+json errors; a
//! poem-openapi operation in `api/` parses it; the bearer token is verified without
//! database work; then `db::request_tx` opens the request's one transaction with a
//! single pipelined round trip that sets the tenant context (`app.tenant_id`,
//! `app.user_id`, `app.store_id`, transaction-local), checks tenant, membership, store
//! and permission, and switches to the runtime role `rowguard_api`. The handler's
//! hand-written SQL carries no tenant filter: PostgreSQL row-level security, declared
//! in `policies/`, filters every row. COMMIT ends the context with the transaction.
//!
//! Start-up (`app`) migrates (`sql/`), applies `policies/`, and refuses to serve if
//! the runtime role could bypass row-level security or a tenant-scoped table is not
//! covered (`db::rls_audit`, also behind `rowguard policies --check`).

pub mod app;
pub mod commands;
pub mod config;
pub mod error;
pub mod modules;
pub mod platform;
pub mod telemetry;
