//! The platform layer: the machinery every feature module stands on, and that never
//! imports a module (`crate::modules`).
//!
//! - `db`: the pool, the request transaction and its opening statement (where a
//!   request's tenant context is set), migrations and policy files, the embedded
//!   cluster, the catalog audit, keyset pagination.
//! - `http`: the edge (request id, problem+json), the bearer security scheme (where a
//!   request is authenticated), shared request parsing.
//! - `auth`: password hashing, tokens, and `access` (what an operation declares, and
//!   the check of it in the opening round trip).
//! - `jobs`: the job queue: enqueueing in a request's transaction, the workers, the
//!   schedules of periodic kinds.
//! - `domain`: value types that parse their input.
//! - `email`: the templates of every message, and the mailer (SMTP, or the log).
//! - `metering`: the in-memory count of each tenant's API requests, flushed to the
//!   database every few seconds.
//! - `metrics`: the server's Prometheus metrics (requests by operationId, latency,
//!   pools, hashing and job queues), served apart from the API.

pub mod auth;
pub mod db;
pub mod domain;
pub mod email;
pub mod http;
pub mod jobs;
pub mod metering;
pub mod metrics;
