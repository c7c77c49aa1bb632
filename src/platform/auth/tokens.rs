//! Access tokens: HS256 JWTs, short-lived, verified without database work, with the
//! algorithm pinned (a token claiming `alg: none` or any other algorithm is refused)
//! and `iss`, `aud` and `exp` validated. Opaque tokens (refresh, password reset): 256
//! random bits, handed out once, stored only as their SHA-256.

use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The claims of an access token (docs/api.md), plus `sid`: the session (refresh-token
/// family) it was issued with, so that "sign out my other sessions" can spare it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user.
    pub sub: Uuid,
    /// The tenant the token acts in.
    pub tid: Uuid,
    pub sid: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    pub jti: Uuid,
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is invalid")]
    Invalid,
}

#[derive(Clone)]
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

impl TokenIssuer {
    pub fn new(
        secret: &[u8],
        issuer: &str,
        audience: &str,
        access_ttl: Duration,
        refresh_ttl: Duration,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        TokenIssuer {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            access_ttl,
            refresh_ttl,
        }
    }

    /// An access token for `user` acting in `tenant`, in session `session`.
    pub fn issue(&self, user: Uuid, tenant: Uuid, session: Uuid) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: user,
            tid: tenant,
            sid: session,
            iat: now,
            exp: now + self.access_ttl.as_secs() as i64,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: Uuid::new_v4(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenRejection> {
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => TokenRejection::Expired,
                _ => TokenRejection::Invalid,
            })
    }
}

/// A random opaque token and the hash under which it is stored.
pub struct OpaqueToken {
    pub token: String,
    pub hash: Vec<u8>,
}

impl OpaqueToken {
    pub fn generate() -> OpaqueToken {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let hash = Self::hash_of(&token);
        OpaqueToken { token, hash }
    }

    pub fn hash_of(token: &str) -> Vec<u8> {
        Sha256::digest(token.as_bytes()).to_vec()
    }

    /// Whether `token` has the shape of one of ours (43 base64url characters), so a
    /// malformed token is refused before any database work.
    pub fn looks_valid(token: &str) -> bool {
        token.len() == 43
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(secret: &[u8]) -> TokenIssuer {
        TokenIssuer::new(
            secret,
            "rowguard",
            "rowguard-api",
            Duration::from_secs(900),
            Duration::from_secs(3600),
        )
    }

    #[test]
    fn an_issued_token_verifies_with_its_claims() {
        let tokens = issuer(b"0123456789abcdef0123456789abcdef");
        let (user, tenant, session) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let claims = tokens
            .verify(&tokens.issue(user, tenant, session).unwrap())
            .unwrap();
        assert_eq!(
            (claims.sub, claims.tid, claims.sid),
            (user, tenant, session)
        );
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn a_token_signed_with_another_key_is_invalid() {
        let token = issuer(b"another key another key another key")
            .issue(Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4())
            .unwrap();
        assert_eq!(
            issuer(b"0123456789abcdef0123456789abcdef").verify(&token),
            Err(TokenRejection::Invalid)
        );
    }

    #[test]
    fn opaque_tokens_are_random_and_hash_stably() {
        let (a, b) = (OpaqueToken::generate(), OpaqueToken::generate());
        assert_ne!(a.token, b.token);
        assert!(OpaqueToken::looks_valid(&a.token));
        assert_eq!(OpaqueToken::hash_of(&a.token), a.hash);
    }
}
