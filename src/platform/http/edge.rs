//! What every request passes through before and after its operation: a request id
//! (on the response, on every log line, in every error body), an access log line, a
//! body size limit, panics caught, and every error turned into problem+json.

use std::{any::Any, time::Instant};

use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response,
    http::{HeaderValue, Method, StatusCode, header},
};
use tracing::Instrument;
use uuid::Uuid;

use super::problem::problem_response;
use crate::telemetry;

/// Request bodies above this size are refused with 413 before they are read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The outermost layer: request id, logging, problem+json for anything that escaped.
pub struct Edge;

impl<E: Endpoint> Middleware<E> for Edge {
    type Output = EdgeEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        EdgeEndpoint { inner }
    }
}

pub struct EdgeEndpoint<E> {
    inner: E,
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
        let id = request_id(&request);
        let span = tracing::info_span!(
            "request",
            request_id = %id,
            method = %request.method(),
            path = %logged_path(request.uri().path()),
        );
        let started = Instant::now();
        let id_for_task = id.clone();
        let mut response = telemetry::with_request_id(
            id_for_task,
            async {
                if let Err(response) = limit_body(&mut request).await {
                    return response;
                }
                match self.inner.call(request).await {
                    Ok(output) => output.into_response(),
                    Err(error) => {
                        let status = error.status();
                        let message = error.to_string();
                        let response = error.into_response();
                        if is_problem(&response) {
                            // An operation's own ApiError: already the right answer.
                            response
                        } else {
                            if status.is_server_error() {
                                tracing::error!(error = %message, "request failed");
                            }
                            problem_response(status, Some(message))
                        }
                    }
                }
            }
            .instrument(span.clone()),
        )
        .await;
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        span.in_scope(|| {
            tracing::info!(
                status = response.status().as_u16(),
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                "request finished"
            )
        });
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
