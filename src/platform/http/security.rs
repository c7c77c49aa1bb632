//! Where a request is authenticated: the bearer scheme of the OpenAPI document. Its
//! checker verifies the access token's signature, algorithm, issuer, audience and
//! expiry, with no database work, and reads the store the request names
//! (`X-Store-ID`), so that every operation taking a bearer token has it checked when
//! the request's transaction opens (`platform::auth::access::authorize`), together with
//! whether the membership still holds. A verified token counts one request of its
//! tenant on the process's meter (`platform::metering`), in memory.
//!
//! An API key (`rgk_…`, `platform::auth::api_key`) is accepted by the same scheme: its
//! format and checksum are checked here, offline; whether it is live, and the tenant
//! and user it acts as, when the transaction opens (its request is counted then).

use poem::Request;
use poem_openapi::{SecurityScheme, auth::Bearer};
use uuid::Uuid;

use super::problem::ApiError;
use crate::{
    error::Error,
    platform::{
        auth::{
            AccessClaims, ApiKeyCaller, Caller, Credential, TokenIssuer, TokenRejection, api_key,
        },
        metering::Meter,
    },
};

/// The store-context header (docs/api.md, "Conventions").
pub const STORE_HEADER: &str = "X-Store-ID";

/// `Authorization: Bearer <access token or API key>`, with the store of `X-Store-ID`.
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
    if api_key::is_api_key(&bearer.token) {
        let key = api_key::parse(&bearer.token).ok_or_else(|| refuse(Error::Unauthenticated))?;
        let credential = Credential::ApiKey(ApiKeyCaller {
            key,
            meter: request.data::<Meter>().cloned(),
            counted: Default::default(),
        });
        return Ok(Caller {
            credential,
            store_id: store_header(request).map_err(refuse)?,
        });
    }
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
    crate::telemetry::record_principal(Some(claims.tid), Some(claims.sub));
    Ok(Caller {
        credential: Credential::Token(claims),
        store_id: store_header(request).map_err(refuse)?,
    })
}

/// The store of `X-Store-ID`, if the request names one.
fn store_header(request: &Request) -> Result<Option<Uuid>, Error> {
    match request.header(STORE_HEADER) {
        None => Ok(None),
        Some(value) => Uuid::parse_str(value.trim())
            .map(Some)
            .map_err(|_| Error::BadRequest(format!("{STORE_HEADER} must be a store id (a UUID)"))),
    }
}
