//! Where a request is authenticated: the bearer scheme of the OpenAPI document. Its
//! checker verifies the access token's signature, algorithm, issuer, audience and
//! expiry, with no database work; whether the membership still holds is checked when
//! the request's transaction opens (`auth::access::authorize`).

use poem::Request;
use poem_openapi::{SecurityScheme, auth::Bearer};

use super::problem::ApiError;
use crate::{
    error::Error,
    platform::auth::{AccessClaims, TokenIssuer, TokenRejection},
};

/// `Authorization: Bearer <access token>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "verify_bearer")]
pub struct BearerAuth(pub AccessClaims);

async fn verify_bearer(request: &Request, bearer: Bearer) -> poem::Result<AccessClaims> {
    let tokens = request
        .data::<std::sync::Arc<TokenIssuer>>()
        .expect("the token issuer is attached to every route");
    tokens.verify(&bearer.token).map_err(|rejection| {
        let error = match rejection {
            TokenRejection::Expired => Error::TokenExpired,
            TokenRejection::Invalid => Error::Unauthenticated,
        };
        poem::Error::from(ApiError::from(error))
    })
}
