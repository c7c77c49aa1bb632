//! What every request passes through before and after its operation: a request id
//! (on the response, on every log line, in every error body), its place in a W3C
//! trace (`traceparent`, see `trace`), an access log line (with the client's
//! address, and the user and tenant once the bearer scheme knows them), the request
//! counted on the server's metrics by operationId, a body size limit, panics caught,
//! and every error turned into problem+json.

use std::{any::Any, sync::Arc, time::Instant};

use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response,
    http::{HeaderValue, Method, StatusCode, header},
};
use poem_openapi::OperationId;
use tracing::{Instrument, field::Empty};
use uuid::Uuid;

use super::{
    client::{TrustedProxies, client_ip},
    problem::problem_response,
    trace::{TRACEPARENT, TraceParent},
};
use crate::{
    platform::metrics::{self, Metrics},
    telemetry,
};

/// Request bodies above this size are refused with 413 before they are read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The outermost layer: request id, trace, logging, metrics, problem+json for
/// anything that escaped.
#[derive(Clone, Default)]
pub struct Edge {
    /// Where answered requests are counted ([`Metrics::off`]: nowhere).
    pub metrics: Metrics,
    /// Whose forwarding headers name the client in the log (`ROWGUARD_TRUSTED_PROXIES`).
    pub trusted_proxies: Arc<TrustedProxies>,
}

impl<E: Endpoint> Middleware<E> for Edge {
    type Output = EdgeEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        EdgeEndpoint {
            inner,
            edge: self.clone(),
        }
    }
}

pub struct EdgeEndpoint<E> {
    inner: E,
    edge: Edge,
}

/// The request's own span in its trace: a child of the caller's `traceparent` when
/// that is valid, else the root of a new trace. When spans are exported, the ids are
/// those of the exported span (so the log and the collector name the same trace).
fn request_trace(span: &tracing::Span, incoming: Option<TraceParent>) -> TraceParent {
    if telemetry::exporting() {
        use opentelemetry::trace::{
            SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
        };
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        if let Some(parent) = incoming {
            let remote = SpanContext::new(
                TraceId::from_bytes(parent.trace_id),
                SpanId::from_bytes(parent.span_id),
                TraceFlags::new(parent.flags),
                true,
                TraceState::default(),
            );
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
        }
        let context = span.context();
        let exported = context.span().span_context().clone();
        if exported.is_valid() {
            return TraceParent {
                trace_id: exported.trace_id().to_bytes(),
                span_id: exported.span_id().to_bytes(),
                flags: exported.trace_flags().to_u8(),
            };
        }
    }
    match incoming {
        Some(parent) => parent.child(),
        None => TraceParent::new_root(),
    }
}

/// A caller's own request id is kept when it is short and plain (so it cannot inject
/// anything into logs); otherwise a new one is made.
fn request_id(request: &Request) -> String {
    request
        .header(REQUEST_ID_HEADER)
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| Uuid::new_v4().to_string())
}

/// Paths whose last segment is a secret (the payment gateway's callback carries its
/// token in the path, since the gateway cannot send a header): logged without it.
const SECRET_PATH_PREFIXES: &[&str] = &["/api/v1/payments/callbacks/"];

/// The path as the log shows it: a secret segment replaced by `{token}`.
fn logged_path(path: &str) -> std::borrow::Cow<'_, str> {
    match SECRET_PATH_PREFIXES
        .iter()
        .find(|prefix| path.starts_with(*prefix))
    {
        Some(prefix) => format!("{prefix}{{token}}").into(),
        None => path.into(),
    }
}

impl<E: Endpoint> Endpoint for EdgeEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut request: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let id = request_id(&request);
        let incoming = request.header(TRACEPARENT).and_then(TraceParent::parse);
        let client = request
            .remote_addr()
            .as_socket_addr()
            .map(|peer| client_ip(peer.ip(), request.headers(), &self.edge.trusted_proxies));
        // The user and tenant are recorded once the bearer scheme (or the API key's
        // row) says who the caller is (`telemetry::record_principal`).
        let span = tracing::info_span!(
            "request",
            request_id = %id,
            trace_id = Empty,
            method = %request.method(),
            path = %logged_path(request.uri().path()),
            client = Empty,
            user_id = Empty,
            tenant_id = Empty,
        );
        if let Some(client) = client {
            span.record("client", tracing::field::display(client));
        }
        let trace = request_trace(&span, incoming);
        span.record("trace_id", tracing::field::display(trace.trace_id_hex()));
        let id_for_task = id.clone();
        let handled = async {
            if let Err(response) = limit_body(&mut request).await {
                return (response, None);
            }
            match self.inner.call(request).await {
                Ok(output) => {
                    let response = output.into_response();
                    let operation = response.data::<OperationId>().map(|id| id.0);
                    (response, operation)
                }
                Err(error) => {
                    let operation = error.data::<OperationId>().map(|id| id.0);
                    let status = error.status();
                    let message = error.to_string();
                    let response = error.into_response();
                    if is_problem(&response) {
                        // An operation's own ApiError: already the right answer.
                        (response, operation)
                    } else {
                        if status.is_server_error() {
                            tracing::error!(error = %message, "request failed");
                        }
                        (problem_response(status, Some(message)), operation)
                    }
                }
            }
        }
        .instrument(span.clone());
        let (mut response, operation) = if self.edge.metrics.is_on() {
            telemetry::with_request_id(id_for_task, self.edge.metrics.scope(handled)).await
        } else {
            telemetry::with_request_id(id_for_task, handled).await
        };
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        if let Ok(value) = HeaderValue::from_str(&trace.header()) {
            response.headers_mut().insert(TRACEPARENT, value);
        }
        let elapsed = started.elapsed().as_secs_f64();
        let status = response.status().as_u16();
        self.edge
            .metrics
            .request(operation.unwrap_or(metrics::NO_OPERATION), status, elapsed);
        span.in_scope(|| tracing::info!(status, elapsed_ms = elapsed * 1000.0, "request finished"));
        Ok(response)
    }
}

fn is_problem(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with(super::problem::CONTENT_TYPE))
}

/// Refuses bodies over [`MAX_BODY_BYTES`]: by Content-Length when given, otherwise by
/// reading at most that much.
async fn limit_body(request: &mut Request) -> Result<(), Response> {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return Ok(());
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    match declared {
        Some(length) if length > MAX_BODY_BYTES => Err(too_large()),
        Some(_) => Ok(()),
        None => {
            let body = request.take_body();
            match body.into_bytes_limit(MAX_BODY_BYTES).await {
                Ok(bytes) => {
                    request.set_body(bytes);
                    Ok(())
                }
                Err(poem::error::ReadBodyError::PayloadTooLarge) => Err(too_large()),
                Err(error) => Err(problem_response(
                    StatusCode::BAD_REQUEST,
                    Some(error.to_string()),
                )),
            }
        }
    }
}

fn too_large() -> Response {
    problem_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        Some(format!(
            "request bodies are limited to {MAX_BODY_BYTES} bytes"
        )),
    )
}

/// A panic in a handler becomes a 500 problem with the request id. The request's
/// transaction, dropped during unwinding, discards its connection (see `RequestTx`).
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %message, "handler panicked");
    problem_response(StatusCode::INTERNAL_SERVER_ERROR, None)
}

#[cfg(test)]
mod tests {
    use super::logged_path;

    #[test]
    fn a_callback_token_never_reaches_the_log_and_other_paths_are_logged_as_they_are() {
        assert_eq!(
            logged_path("/api/v1/payments/callbacks/s3cr3t-token"),
            "/api/v1/payments/callbacks/{token}"
        );
        assert_eq!(logged_path("/api/v1/stores/42"), "/api/v1/stores/42");
    }
}
