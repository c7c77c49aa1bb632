//! The HTTP edge of errors: RFC 9457 `application/problem+json` bodies with a stable
//! `code` (docs/api.md, "Errors"). Every operation returns `Result<_, ApiError>`; the
//! OpenAPI document keeps, of `ApiError`'s statuses, those the operation's declaration
//! says it can answer with (`modules::spec_json`). Anything that fails before a
//! handler (routing, a body or parameter that does not parse, a panic) is turned into
//! the same shape: by `json::JsonBody`, `params::NameParameters` or
//! [`problem_response`].

use poem::http::StatusCode;
use poem_openapi::{ApiResponse, Enum, Object, payload::Json};

use crate::{
    error::{ConstraintKind, Error, FieldError},
    platform::auth::{
        access::PLATFORM_ADMIN,
        catalog::{FeatureCode, LimitCode, MissingGrant},
    },
    telemetry,
};

/// Every `code` a problem can have: what clients switch on (API.md, "Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ProblemCode {
    BadRequest,
    Unauthenticated,
    TokenExpired,
    InvalidCredentials,
    Forbidden,
    StoreAccessDenied,
    TenantSuspended,
    RegistrationDisabled,
    FeatureNotInPlan,
    LimitExceeded,
    PaymentRequired,
    NotFound,
    MethodNotAllowed,
    Conflict,
    BootstrapClosed,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    RateLimited,
    Internal,
    Unavailable,
    IdempotencyConflict,
    PaymentGatewayError,
}

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
    pub code: ProblemCode,
    /// For `forbidden`: the permission that was missing (`platform_admin` on the
    /// operator routes).
    #[oai(nullable)]
    pub permission: Option<MissingGrant>,
    /// For `feature_not_in_plan`: the feature the tenant's plan lacks.
    #[oai(nullable)]
    pub feature: Option<FeatureCode>,
    /// For `limit_exceeded`: the plan limit reached, ...
    #[oai(nullable)]
    pub limit: Option<LimitCode>,
    /// ... the plan's maximum, ...
    #[oai(nullable)]
    pub max: Option<i64>,
    /// ... and how many the tenant has.
    #[oai(nullable)]
    pub current: Option<i64>,
    /// For `validation_failed`: each invalid field.
    #[oai(nullable)]
    pub errors: Option<Vec<ProblemField>>,
    /// The request id (also in the `X-Request-ID` header), so a report can be matched
    /// with the server's log.
    #[oai(nullable)]
    pub request_id: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, code: ProblemCode, detail: impl Into<String>) -> Problem {
        Problem {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
            code,
            permission: None,
            feature: None,
            limit: None,
            max: None,
            current: None,
            errors: None,
            request_id: telemetry::current_request_id(),
        }
    }
}

/// Every error response of the API.
///
/// Request parsing failures do not come here: poem-openapi hands them to the *success*
/// type's `bad_request_handler`, which no operation has, so they reach the edge as
/// errors. The body's are already problems (`super::json::JsonBody`), parameters'
/// are named by `super::params`, and the edge answers the rest (`problem_response`).
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed (`bad_request`).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// Missing, invalid or expired credentials (`unauthenticated`, `token_expired`,
    /// `invalid_credentials`).
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// The tenant's subscription is unpaid: what its plan gates waits for payment
    /// (`payment_required`).
    #[oai(status = 402, content_type = "application/problem+json")]
    PaymentRequired(Json<Problem>),
    /// Not allowed (`forbidden` with `permission`, `store_access_denied`,
    /// `tenant_suspended`, `registration_disabled`, `feature_not_in_plan` with
    /// `feature`, `limit_exceeded` with `limit`, `max` and `current`).
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
    /// The payment gateway refused or could not be reached (`payment_gateway_error`).
    #[oai(status = 502, content_type = "application/problem+json")]
    BadGateway(Json<Problem>),
    /// The database is unavailable or overloaded; retry (`unavailable`).
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        use ProblemCode as C;
        use StatusCode as S;
        let problem = |status, code, detail: &str| Json(Problem::new(status, code, detail));
        let bearer = || "Bearer".to_string();
        match error {
            Error::BadRequest(detail) => {
                ApiError::BadRequest(problem(S::BAD_REQUEST, C::BadRequest, &detail))
            }
            Error::InvalidToken(detail) => ApiError::Unauthorized(
                problem(S::UNAUTHORIZED, C::Unauthenticated, detail),
                bearer(),
            ),
            Error::Unauthenticated => ApiError::Unauthorized(
                problem(
                    S::UNAUTHORIZED,
                    C::Unauthenticated,
                    "a valid access token is required",
                ),
                bearer(),
            ),
            Error::TokenExpired => ApiError::Unauthorized(
                problem(
                    S::UNAUTHORIZED,
                    C::TokenExpired,
                    "the access token has expired",
                ),
                "Bearer error=\"invalid_token\", error_description=\"expired\"".into(),
            ),
            Error::InvalidCredentials => {
                // Every failed password check ends here, whichever flow made it.
                crate::platform::metrics::login_failed();
                ApiError::Unauthorized(
                    problem(
                        S::UNAUTHORIZED,
                        C::InvalidCredentials,
                        "invalid email or password",
                    ),
                    bearer(),
                )
            }
            Error::Forbidden { permission } => {
                let mut body = Problem::new(
                    S::FORBIDDEN,
                    C::Forbidden,
                    if permission == PLATFORM_ADMIN {
                        "this requires a platform admin".to_string()
                    } else {
                        format!("this requires the permission {permission}")
                    },
                );
                body.permission = Some(MissingGrant::new(permission));
                ApiError::Forbidden(Json(body))
            }
            Error::FeatureNotInPlan { feature } => {
                let mut body = Problem::new(
                    S::FORBIDDEN,
                    C::FeatureNotInPlan,
                    format!("the tenant's plan does not include {feature}"),
                );
                body.feature = Some(FeatureCode::new(feature));
                ApiError::Forbidden(Json(body))
            }
            Error::LimitExceeded {
                limit,
                max,
                current,
            } => {
                let mut body = Problem::new(
                    S::FORBIDDEN,
                    C::LimitExceeded,
                    format!("the tenant's plan allows {max} {limit}, and it has {current}"),
                );
                body.limit = Some(LimitCode::new(limit));
                body.max = Some(max);
                body.current = Some(current);
                ApiError::Forbidden(Json(body))
            }
            Error::PaymentRequired => ApiError::PaymentRequired(problem(
                S::PAYMENT_REQUIRED,
                C::PaymentRequired,
                "the subscription is unpaid: pay its open invoice to continue",
            )),
            Error::StoreAccessDenied => ApiError::Forbidden(problem(
                S::FORBIDDEN,
                C::StoreAccessDenied,
                "the store named by X-Store-ID is not accessible",
            )),
            Error::TenantSuspended => ApiError::Forbidden(problem(
                S::FORBIDDEN,
                C::TenantSuspended,
                "the tenant or the membership is suspended",
            )),
            Error::NotFound => ApiError::NotFound(problem(
                S::NOT_FOUND,
                C::NotFound,
                "no such resource in this tenant",
            )),
            Error::Validation(fields) => {
                let mut body = Problem::new(
                    S::UNPROCESSABLE_ENTITY,
                    C::ValidationFailed,
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
                ApiError::Conflict(problem(S::CONFLICT, C::Conflict, &detail))
            }
            Error::Constraint { kind, name } => {
                // Unnamed by the code that wrote: say what kind of thing happened, not
                // which part of the schema said so (logged for the operator).
                tracing::info!(constraint = %name, ?kind, "constraint violation not mapped by its writer");
                match kind {
                    ConstraintKind::Unique => {
                        ApiError::Conflict(problem(S::CONFLICT, C::Conflict, "it already exists"))
                    }
                    ConstraintKind::ForeignKey => ApiError::Conflict(problem(
                        S::CONFLICT,
                        C::Conflict,
                        "a row this request refers to does not exist or is still referred to",
                    )),
                    ConstraintKind::Check => ApiError::BadRequest(problem(
                        S::BAD_REQUEST,
                        C::BadRequest,
                        "a value is outside what can be stored",
                    )),
                }
            }
            Error::RateLimited { retry_after_secs } => ApiError::TooManyRequests(
                problem(S::TOO_MANY_REQUESTS, C::RateLimited, "too many attempts"),
                retry_after_secs,
            ),
            Error::RegistrationClosed => ApiError::Forbidden(problem(
                S::FORBIDDEN,
                C::RegistrationDisabled,
                "registration is disabled on this server",
            )),
            Error::BootstrapClosed => ApiError::Conflict(problem(
                S::CONFLICT,
                C::BootstrapClosed,
                "bootstrap is closed once any user exists",
            )),
            Error::PayloadTooLarge => ApiError::PayloadTooLarge(problem(
                S::PAYLOAD_TOO_LARGE,
                C::PayloadTooLarge,
                "the request body is too large",
            )),
            Error::IdempotencyConflict => ApiError::Unprocessable(problem(
                S::UNPROCESSABLE_ENTITY,
                C::IdempotencyConflict,
                "this Idempotency-Key was used with another request body",
            )),
            Error::PaymentGateway { configured, detail } => {
                // The gateway's own words are logged; the client learns only which
                // side failed.
                tracing::warn!(%detail, configured, "payment gateway error");
                if configured {
                    ApiError::BadGateway(problem(
                        S::BAD_GATEWAY,
                        C::PaymentGatewayError,
                        "M-Pesa refused the payment request or could not be reached; nothing was charged, try again",
                    ))
                } else {
                    ApiError::Unavailable(problem(
                        S::SERVICE_UNAVAILABLE,
                        C::PaymentGatewayError,
                        "payments are not configured on this server",
                    ))
                }
            }
            Error::PaymentUnanswered => ApiError::BadGateway(problem(
                S::BAD_GATEWAY,
                C::PaymentGatewayError,
                "M-Pesa did not answer in time; its prompt may still reach the phone, and if it \
                 is paid the invoice is marked paid within minutes: check the invoice before \
                 trying again",
            )),
            Error::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                ApiError::Unavailable(problem(
                    S::SERVICE_UNAVAILABLE,
                    C::Unavailable,
                    "the service is temporarily unavailable; retry",
                ))
            }
            Error::Internal(error) => {
                tracing::error!(error = ?error, "internal error");
                ApiError::Internal(problem(
                    S::INTERNAL_SERVER_ERROR,
                    C::Internal,
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
        StatusCode::NOT_FOUND => ProblemCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ProblemCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ProblemCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ProblemCode::UnsupportedMediaType,
        StatusCode::UNAUTHORIZED => ProblemCode::Unauthenticated,
        StatusCode::FORBIDDEN => ProblemCode::Forbidden,
        StatusCode::UNPROCESSABLE_ENTITY => ProblemCode::ValidationFailed,
        StatusCode::TOO_MANY_REQUESTS => ProblemCode::RateLimited,
        StatusCode::SERVICE_UNAVAILABLE => ProblemCode::Unavailable,
        status if status.is_server_error() => ProblemCode::Internal,
        _ => ProblemCode::BadRequest,
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
            poem::http::header::WWW_AUTHENTICATE,
            poem::http::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

fn problem_json(problem: &Problem) -> serde_json::Value {
    poem_openapi::types::ToJSON::to_json(problem).unwrap_or_default()
}
