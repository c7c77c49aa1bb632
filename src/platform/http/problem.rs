//! The HTTP edge of errors: RFC 9457 `application/problem+json` bodies with a stable
//! `code` (docs/api.md, "Errors"). Every operation returns `Result<_, ApiError>`, so every
//! failure a handler can produce is documented in the OpenAPI document, and anything
//! that fails before a handler (routing, body parsing, a panic) is turned into the same
//! shape by [`problem_response`].

use poem::http::StatusCode;
use poem_openapi::{ApiResponse, Object, payload::Json};

use crate::{
    error::{ConstraintKind, Error, FieldError},
    telemetry,
};

pub const CONTENT_TYPE: &str = "application/problem+json";

/// One invalid field.
#[derive(Debug, Clone, Object)]
pub struct ProblemField {
    /// The field, as named in the request body.
    pub field: String,
    pub message: String,
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Problem {
    /// A URI naming the kind of problem; `about:blank` when the code says it all.
    #[oai(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What happened, for a person reading it (clients switch on `code`).
    pub detail: String,
    /// Stable, snake_case: what clients switch on.
    pub code: String,
    /// For `forbidden`: the permission that was missing.
    #[oai(nullable)]
    pub permission: Option<String>,
    /// For `validation_failed`: each invalid field.
    #[oai(nullable)]
    pub errors: Option<Vec<ProblemField>>,
    /// The request id (also in the `x-request-id` header), so a report can be matched
    /// with the server's log.
    #[oai(nullable)]
    pub request_id: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.into(),
            permission: None,
            errors: None,
            request_id: telemetry::current_request_id(),
        }
    }
}

/// Every error response of the API.
#[derive(Debug, ApiResponse)]
#[oai(bad_request_handler = "bad_request")]
pub enum ApiError {
    /// The request is malformed (`bad_request`).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// Missing, invalid or expired credentials (`unauthenticated`, `token_expired`,
    /// `invalid_credentials`).
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// Not allowed (`forbidden` with `permission`, `store_access_denied`,
    /// `tenant_suspended`, `registration_disabled`).
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No such resource in this tenant (`not_found`).
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The request conflicts with the current state (`conflict`, `bootstrap_closed`).
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// The body is larger than the server accepts (`payload_too_large`).
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The body is not JSON, or has no `Content-Type` (`unsupported_media_type`).
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// The body is well-formed but invalid (`validation_failed`, with `errors`).
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// Too many attempts (`rate_limited`).
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] u64),
    /// A bug; the body carries the request id (`internal`).
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The database is unavailable or overloaded; retry (`unavailable`).
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

/// Body parsing failures of poem-openapi (malformed JSON, wrong types, a missing or
/// malformed parameter) become 400 problems instead of poem's plain-text answer.
fn bad_request(error: poem::Error) -> ApiError {
    ApiError::BadRequest(Json(Problem::new(
        StatusCode::BAD_REQUEST,
        "bad_request",
        error.to_string(),
    )))
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        use StatusCode as S;
        let problem = |status, code: &str, detail: &str| Json(Problem::new(status, code, detail));
        let bearer = || "Bearer".to_string();
        match error {
            Error::BadRequest(detail) => {
                ApiError::BadRequest(problem(S::BAD_REQUEST, "bad_request", &detail))
            }
            Error::InvalidToken(detail) => ApiError::Unauthorized(
                problem(S::UNAUTHORIZED, "unauthenticated", detail),
                bearer(),
            ),
            Error::Unauthenticated => ApiError::Unauthorized(
                problem(
                    S::UNAUTHORIZED,
                    "unauthenticated",
                    "a valid access token is required",
                ),
                bearer(),
            ),
            Error::TokenExpired => ApiError::Unauthorized(
                problem(
                    S::UNAUTHORIZED,
                    "token_expired",
                    "the access token has expired",
                ),
                "Bearer error=\"invalid_token\", error_description=\"expired\"".into(),
            ),
            Error::InvalidCredentials => ApiError::Unauthorized(
                problem(
                    S::UNAUTHORIZED,
                    "invalid_credentials",
                    "invalid email or password",
                ),
                bearer(),
            ),
            Error::Forbidden { permission } => {
                let mut body = Problem::new(
                    S::FORBIDDEN,
                    "forbidden",
                    format!("this requires the permission {permission}"),
                );
                body.permission = Some(permission);
                ApiError::Forbidden(Json(body))
            }
            Error::StoreAccessDenied => ApiError::Forbidden(problem(
                S::FORBIDDEN,
                "store_access_denied",
                "the store named by X-Store-ID is not accessible",
            )),
            Error::TenantSuspended => ApiError::Forbidden(problem(
                S::FORBIDDEN,
                "tenant_suspended",
                "the tenant or the membership is suspended",
            )),
            Error::NotFound => ApiError::NotFound(problem(
                S::NOT_FOUND,
                "not_found",
                "no such resource in this tenant",
            )),
            Error::Validation(fields) => {
                let mut body = Problem::new(
                    S::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    "the request body is invalid",
                );
                body.errors = Some(
                    fields
                        .into_iter()
                        .map(|FieldError { field, message }| ProblemField { field, message })
                        .collect(),
                );
                ApiError::Unprocessable(Json(body))
            }
            Error::Conflict(detail) => {
                ApiError::Conflict(problem(S::CONFLICT, "conflict", &detail))
            }
            Error::Constraint { kind, name } => {
                // Unnamed by the code that wrote: say what kind of thing happened, not
                // which part of the schema said so (logged for the operator).
                tracing::info!(constraint = %name, ?kind, "constraint violation not mapped by its writer");
                match kind {
                    ConstraintKind::Unique => {
                        ApiError::Conflict(problem(S::CONFLICT, "conflict", "it already exists"))
                    }
                    ConstraintKind::ForeignKey => ApiError::Conflict(problem(
                        S::CONFLICT,
                        "conflict",
                        "a row this request refers to does not exist or is still referred to",
                    )),
                    ConstraintKind::Check => ApiError::BadRequest(problem(
                        S::BAD_REQUEST,
                        "bad_request",
                        "a value is outside what can be stored",
                    )),
                }
            }
            Error::RateLimited { retry_after_secs } => ApiError::TooManyRequests(
                problem(S::TOO_MANY_REQUESTS, "rate_limited", "too many attempts"),
                retry_after_secs,
            ),
            Error::RegistrationClosed => ApiError::Forbidden(problem(
                S::FORBIDDEN,
                "registration_disabled",
                "registration is disabled on this server",
            )),
            Error::BootstrapClosed => ApiError::Conflict(problem(
                S::CONFLICT,
                "bootstrap_closed",
                "bootstrap is closed once any user exists",
            )),
            Error::PayloadTooLarge => ApiError::PayloadTooLarge(problem(
                S::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is too large",
            )),
            Error::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                ApiError::Unavailable(problem(
                    S::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the service is temporarily unavailable; retry",
                ))
            }
            Error::Internal(error) => {
                tracing::error!(error = ?error, "internal error");
                ApiError::Internal(problem(
                    S::INTERNAL_SERVER_ERROR,
                    "internal",
                    INTERNAL_DETAIL,
                ))
            }
        }
    }
}

/// The detail of every 500: the request id in the same body is what to report.
const INTERNAL_DETAIL: &str =
    "an unexpected error; the request id identifies it in the server's log";

/// The problem+json response for an error that reached the edge outside a typed
/// operation: unknown route, wrong method, a body too large, a panic.
pub fn problem_response(status: StatusCode, detail: Option<String>) -> poem::Response {
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::UNPROCESSABLE_ENTITY => "validation_failed",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        status if status.is_server_error() => "internal",
        _ => "bad_request",
    };
    // A server error's own message may carry internals: log it, never send it.
    let detail = match detail {
        _ if status.is_server_error() => INTERNAL_DETAIL.to_string(),
        Some(detail) => detail,
        None => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let body = Problem::new(status, code, detail);
    let mut response = poem::Response::builder()
        .status(status)
        .content_type(CONTENT_TYPE)
        .body(serde_json::to_vec(&problem_json(&body)).unwrap_or_default());
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            "www-authenticate",
            poem::http::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

fn problem_json(problem: &Problem) -> serde_json::Value {
    poem_openapi::types::ToJSON::to_json(problem).unwrap_or_default()
}
