//! The domain error: what went wrong, in terms a client can act on. Services and the
//! database layer return it; `api::problem` turns it into `application/problem+json`
//! at the HTTP edge. Internal details (SQL text, driver messages) are logged there and
//! never shown.

use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

/// One invalid field of a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Which kind of constraint refused a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    Unique,
    ForeignKey,
    Check,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed request (bad JSON, a missing required header).
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthenticated,
    /// A token other than the access token (refresh, reset, invitation) is unknown,
    /// expired or used up: 401 `unauthenticated`, saying which.
    #[error("{0}")]
    InvalidToken(&'static str),
    #[error("access token expired")]
    TokenExpired,
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("permission {permission} required")]
    Forbidden { permission: String },
    #[error("store not accessible")]
    StoreAccessDenied,
    /// The tenant's plan does not have the feature the operation declares.
    #[error("the plan does not include {feature}")]
    FeatureNotInPlan { feature: String },
    /// Creating one more would exceed the plan's limit (`app.within_plan_limit`).
    #[error("the plan allows {max} {limit}, the tenant has {current}")]
    LimitExceeded {
        limit: String,
        max: i64,
        current: i64,
    },
    /// The subscription is unpaid: operations gated by the plan wait for payment.
    #[error("payment required")]
    PaymentRequired,
    #[error("tenant or membership suspended")]
    TenantSuspended,
    /// Missing, or belonging to another tenant: the two are indistinguishable.
    #[error("not found")]
    NotFound,
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("conflict: {0}")]
    Conflict(String),
    /// A constraint of the schema refused the write. What it means is for the code
    /// that wrote to say, by the constraint's name ([`Error::on_constraint`]); left
    /// unnamed, it is a generic 409 (unique, foreign key) or 400 (check) that shows
    /// nothing of the schema.
    #[error("{kind:?} constraint {name} violated")]
    Constraint { kind: ConstraintKind, name: String },
    #[error("rate limited, retry after {retry_after_secs}s")]
    RateLimited { retry_after_secs: u64 },
    #[error("registration is disabled")]
    RegistrationClosed,
    #[error("bootstrap closed")]
    BootstrapClosed,
    #[error("payload too large")]
    PayloadTooLarge,
    /// An `Idempotency-Key` used before with another request body.
    #[error("the idempotency key was used with another request")]
    IdempotencyConflict,
    /// The payment gateway refused the request or could not be reached (502), or
    /// payments are not configured on this server (503): `payment_gateway_error`.
    #[error("payment gateway: {detail}")]
    PaymentGateway { configured: bool, detail: String },
    /// A request went to the payment gateway and no answer came back: it may have
    /// acted (502 `payment_gateway_error`, telling the client to look before retrying).
    #[error("the payment gateway did not answer")]
    PaymentUnanswered,
    /// The database is down, overloaded or too slow; the client may retry.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure: logged in full, shown as a bare 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<tokio_postgres::Error> for Error {
    fn from(error: tokio_postgres::Error) -> Self {
        if let Some(db) = error.as_db_error() {
            let code = db.code();
            // A constraint by name, so that the code that wrote can say what it means
            // (`on_constraint`); PostgreSQL's message text never reaches a client.
            let kind = match code.code() {
                "23505" => Some(ConstraintKind::Unique),
                "23503" => Some(ConstraintKind::ForeignKey),
                "23514" => Some(ConstraintKind::Check),
                _ => None,
            };
            if let Some(kind) = kind {
                return match db.constraint() {
                    Some(name) => Error::Constraint {
                        kind,
                        name: name.to_string(),
                    },
                    // No name to map it by (a violation raised by hand in a function):
                    // still the client's conflict or input, never a 500.
                    None if kind == ConstraintKind::Check => {
                        Error::BadRequest("a value is outside what can be stored".into())
                    }
                    None => Error::Conflict("it conflicts with the tenant's data".into()),
                };
            }
            // A plan limit or an unpaid subscription (sql/V14): a limit's figures
            // travel as JSON in DETAIL, by design of the function that raises it.
            if code.code() == "RGP02" {
                return Error::PaymentRequired;
            }
            // A session refused to a user no longer active (sql/V24): disabled while
            // signing in or refreshing.
            if code.code() == "RGS01" {
                return Error::Unauthenticated;
            }
            if code.code() == "RGL01"
                && let Some(exceeded) = db.detail().and_then(limit_exceeded)
            {
                return exceeded;
            }
            // Lost a race with another transaction: the client may retry.
            if *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
            {
                return Error::Unavailable(db.message().to_string());
            }
            // Values PostgreSQL cannot store: the client's input, not a bug. Said in our
            // words; the server's message would show the schema.
            let unstorable = match code.code() {
                "22021" | "22P05" => Some("a text contains a character that cannot be stored"),
                "22001" => Some("a value is longer than can be stored"),
                "22003" => Some("a number is too large or too small to be stored"),
                "22007" | "22008" => {
                    Some("a date or time is invalid or too far in the past or future")
                }
                "22P02" => Some("a value is not in a valid format"),
                _ => None,
            };
            if let Some(detail) = unstorable {
                tracing::debug!(
                    sqlstate = code.code(),
                    message = db.message(),
                    "unstorable value"
                );
                return Error::BadRequest(detail.into());
            }
            // statement_timeout and cancellations: the database was too slow.
            if *code == SqlState::QUERY_CANCELED
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::TOO_MANY_CONNECTIONS
                || code.code().starts_with("08")
            {
                return Error::Unavailable(db.message().to_string());
            }
            return Error::Internal(anyhow::Error::new(error));
        }
        let io_failure =
            std::error::Error::source(&error).is_some_and(|source| source.is::<std::io::Error>());
        if error.is_closed() || io_failure {
            // No server answer at all: the connection broke.
            return Error::Unavailable(error.to_string());
        }
        Error::Internal(anyhow::Error::new(error))
    }
}

/// The DETAIL of an RGL01: `{"limit": "stores", "max": 1, "current": 1}`.
fn limit_exceeded(detail: &str) -> Option<Error> {
    #[derive(serde::Deserialize)]
    struct Detail {
        limit: String,
        max: i64,
        current: i64,
    }
    let detail: Detail = serde_json::from_str(detail).ok()?;
    Some(Error::LimitExceeded {
        limit: detail.limit,
        max: detail.max,
        current: detail.current,
    })
}

impl From<PoolError> for Error {
    fn from(error: PoolError) -> Self {
        match error {
            PoolError::Backend(error) => error.into(),
            PoolError::Timeout(_) => {
                Error::Unavailable("no database connection available in time".into())
            }
            other => Error::Unavailable(other.to_string()),
        }
    }
}

impl Error {
    /// The SQLSTATE of the database error behind an internal error, if any: for logs
    /// and for tests that try an attack and must see *why* it failed.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Error::Internal(error) => error
                .downcast_ref::<tokio_postgres::Error>()
                .and_then(|error| error.code())
                .map(|code| code.code()),
            _ => None,
        }
    }
}

impl Error {
    /// A 422 `validation_failed` for one field.
    pub fn invalid(field: &str, message: &str) -> Error {
        Error::Validation(vec![FieldError::new(field, message)])
    }

    /// Replaces a violation of the named constraint with what it means to the client
    /// (`on_constraint("stores_tenant_id_code_key", code_taken)`). The name is
    /// PostgreSQL's own (`db_error.constraint()`), never parsed out of a message.
    pub fn on_constraint(self, constraint: &str, replacement: impl FnOnce() -> Error) -> Error {
        match &self {
            Error::Constraint { name, .. } if name == constraint => replacement(),
            _ => self,
        }
    }
}
