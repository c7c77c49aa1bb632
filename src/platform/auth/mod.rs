//! Identity primitives that need no database: password hashing on a bounded blocking
//! pool, access tokens (JWT) and opaque tokens (refresh, reset).

pub mod access;
pub mod api_key;
pub mod catalog;
pub mod password;
pub mod tokens;

pub use password::PasswordHasher;
pub use tokens::{AccessClaims, OpaqueToken, TokenIssuer, TokenRejection};

/// Who is calling, as the bearer scheme found them: the verified token or the
/// well-formed API key, and the store the request names (`X-Store-ID`), not yet
/// checked (that is `access::authorize`).
#[derive(Debug, Clone)]
pub struct Caller {
    pub credential: Credential,
    pub store_id: Option<uuid::Uuid>,
}

/// What authenticated the request.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A person's access token: who and which tenant are in its verified claims.
    Token(AccessClaims),
    /// An API key: who and which tenant come from its row, found when the request's
    /// transaction opens.
    ApiKey(ApiKeyCaller),
}

/// A presented API key, with what is needed to count its request on the usage meter
/// once its tenant is known (the bearer scheme counts a token's at once).
#[derive(Clone)]
pub struct ApiKeyCaller {
    pub key: api_key::PresentedKey,
    pub meter: Option<crate::platform::metering::Meter>,
    /// Counted already: a request that opens more than one transaction (a store in
    /// the path) counts once.
    pub counted: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for ApiKeyCaller {
    /// The key's id only: its hash stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyCaller")
            .field("id", &self.key.id)
            .finish_non_exhaustive()
    }
}

impl ApiKeyCaller {
    /// Counts the request for `tenant`, the first time only.
    pub fn count(&self, tenant: uuid::Uuid) {
        if let Some(meter) = &self.meter
            && !self
                .counted
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            meter.count(tenant);
        }
    }
}

impl Caller {
    /// The caller's access token, for what only a person's session may do (`/auth/*`,
    /// `/me*`, `/api-keys*`): an API key is refused there, 401 `unauthenticated`
    /// (a key is not a credential these accept), never acting as a person.
    pub fn token(&self) -> Result<&AccessClaims, crate::error::Error> {
        match &self.credential {
            Credential::Token(claims) => Ok(claims),
            Credential::ApiKey(_) => Err(crate::error::Error::InvalidToken(API_KEY_REFUSED)),
        }
    }
}

/// The detail of a 401 for an API key where only a person's token is accepted.
pub const API_KEY_REFUSED: &str = "an API key is not accepted here: sign in as a person";
