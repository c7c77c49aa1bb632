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

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed request (bad JSON, a missing required header).
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthenticated,
    #[error("access token expired")]
    TokenExpired,
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("permission {permission} required")]
    Forbidden { permission: String },
    #[error("store not accessible")]
    StoreAccessDenied,
    #[error("tenant or membership suspended")]
    TenantSuspended,
    /// Missing, or belonging to another tenant: the two are indistinguishable.
    #[error("not found")]
    NotFound,
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("rate limited, retry after {retry_after_secs}s")]
    RateLimited { retry_after_secs: u64 },
    #[error("registration is disabled")]
    RegistrationClosed,
    #[error("bootstrap closed")]
    BootstrapClosed,
    #[error("payload too large")]
    PayloadTooLarge,
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
            if *code == SqlState::UNIQUE_VIOLATION {
                return Error::Conflict(match db.constraint() {
                    Some(constraint) => format!("violates {constraint}"),
                    None => "already exists".into(),
                });
            }
            // A row referenced by the request went away under it (deleted by a
            // concurrent request between the check and the write).
            if *code == SqlState::FOREIGN_KEY_VIOLATION {
                return Error::Conflict("a row this request refers to no longer exists".into());
            }
            // Lost a race with another transaction: the client may retry.
            if *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
            {
                return Error::Unavailable(db.message().to_string());
            }
            // Values PostgreSQL cannot store (a NUL character, a number out of range,
            // text too long for its column): the client's input, not a bug.
            if matches!(
                code.code(),
                "22021" | "22P05" | "22001" | "22003" | "22007" | "22008" | "22P02"
            ) {
                return Error::BadRequest(format!("a value cannot be stored: {}", db.message()));
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
    /// Replaces a unique violation of the named constraint (as mapped by
    /// `From<tokio_postgres::Error>`) with a more precise error.
    pub fn on_constraint(self, constraint: &str, replacement: impl FnOnce() -> Error) -> Error {
        match &self {
            Error::Conflict(detail) if detail == &format!("violates {constraint}") => replacement(),
            _ => self,
        }
    }
}
