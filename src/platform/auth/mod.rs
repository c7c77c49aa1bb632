//! Identity primitives that need no database: password hashing on a bounded blocking
//! pool, access tokens (JWT) and opaque tokens (refresh, reset).

pub mod access;
pub mod catalog;
pub mod password;
pub mod tokens;

pub use password::PasswordHasher;
pub use tokens::{AccessClaims, OpaqueToken, TokenIssuer, TokenRejection};

/// Who is calling, as the bearer scheme found them: the verified token, and the store
/// the request names (`X-Store-ID`), not yet checked (that is `access::authorize`).
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: AccessClaims,
    pub store_id: Option<uuid::Uuid>,
}
