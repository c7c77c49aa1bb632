//! Where a request is authenticated: the bearer scheme of the OpenAPI document. Its
//! checker verifies the access token's signature, algorithm, issuer, audience and
//! expiry, with no database work, and reads the store the request names
//! (`X-Store-ID`), so that every operation taking a bearer token has it checked when
//! the request's transaction opens (`platform::auth::access::authorize`), together with
//! whether the membership still holds. A verified token counts one request of its
//! tenant on the process's meter (`platform::metering`), in memory.

use poem::Request;
use poem_openapi::{SecurityScheme, auth::Bearer};
use uuid::Uuid;

use super::problem::ApiError;
use crate::{
    error::Error,
    platform::{
        auth::{AccessClaims, Caller, TokenIssuer, TokenRejection},
        metering::Meter,
    },
};

/// The store-context header (docs/api.md, "Conventions").
pub const STORE_HEADER: &str = "X-Store-ID";

/// `Authorization: Bearer <access token>`, with the store of `X-Store-ID`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "verify_bearer")]
pub struct BearerAuth(pub Caller);

async fn verify_bearer(request: &Request, bearer: Bearer) -> poem::Result<Caller> {
    let refuse = |error: Error| poem::Error::from(ApiError::from(error));
    let Some(tokens) = request.data::<std::sync::Arc<TokenIssuer>>() else {
        return Err(refuse(Error::Internal(anyhow::anyhow!(
            "the token issuer is not attached to the route"
        ))));
    };
    let claims: AccessClaims = tokens.verify(&bearer.token).map_err(|rejection| {
        refuse(match rejection {
            TokenRejection::Expired => Error::TokenExpired,
            TokenRejection::Invalid => Error::Unauthenticated,
        })
    })?;
    // Counted once authenticated, whatever the operation answers next (a 403 is an
    // authenticated request too). Without a meter (an embedder's routes), nothing is
    // counted: metering informs, it never refuses.
    if let Some(meter) = request.data::<Meter>() {
        meter.count(claims.tid);
    }
    let store_id = match request.header(STORE_HEADER) {
        None => None,
        Some(value) => Some(Uuid::parse_str(value.trim()).map_err(|_| {
            refuse(Error::BadRequest(format!(
                "{STORE_HEADER} must be a store id (a UUID)"
            )))
        })?),
    };
    Ok(Caller { claims, store_id })
}
