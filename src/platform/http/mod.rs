//! The HTTP edge every module's operations share: request ids and problem+json for
//! every failure (`edge`, `problem`), where a request is authenticated (`security`),
//! who it comes from as the throttles count it (`client`),
//! and the small pieces of request parsing that every module uses (`common`).

pub mod client;
pub mod common;
pub mod console;
pub mod cors;
pub mod edge;
pub mod json;
pub mod params;
pub mod problem;
pub mod security;
pub mod text;
pub mod trace;

use poem::{Endpoint, EndpointExt, middleware::CatchPanic};

/// What every endpoint is wrapped in: panics caught (a 500 problem), then the edge
/// (request id, trace, access log, metrics, body limit, problem+json for every
/// error).
pub fn edge_stack(endpoint: impl Endpoint) -> impl Endpoint {
    edge_stack_with(endpoint, edge::Edge::default())
}

/// [`edge_stack`] with the server's metrics and trusted proxies.
pub fn edge_stack_with(endpoint: impl Endpoint, edge: edge::Edge) -> impl Endpoint {
    endpoint
        .with(CatchPanic::new().with_handler(edge::panic_response))
        .with(edge)
}
