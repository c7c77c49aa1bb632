//! Properties of the platform every module stands on, rather than of one module's
//! operations.

mod cors;
mod cross_tenant;
mod distribution;
mod edge;
mod email;
mod embedded;
mod faults;
mod invariants;
mod isolation;
mod jobs;
mod metrics;
mod openapi;
mod operations;
mod policies;
mod processes;
mod request_context;
mod roles;
mod round_trips;
mod store_header;
mod tokens;
mod traces;
