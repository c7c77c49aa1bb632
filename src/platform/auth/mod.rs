//! Identity primitives that need no database: password hashing on a bounded blocking
//! pool, access tokens (JWT) and opaque tokens (refresh, reset).

pub mod access;
pub mod password;
pub mod tokens;

pub use password::PasswordHasher;
pub use tokens::{AccessClaims, OpaqueToken, TokenIssuer, TokenRejection};
