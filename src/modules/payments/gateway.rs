//! The payment gateway as payments use it: start an STK push, ask about one. Daraja
//! ([`super::daraja::Daraja`]) is the one implementation; without configuration the
//! server has [`Unconfigured`], which refuses every call, so a server without M-Pesa
//! settings starts and answers `payment_gateway_error` instead of panicking.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

/// One STK push: a prompt on `phone` to pay `amount` whole shillings.
#[derive(Debug, Clone)]
pub struct StkPush {
    /// Whole shillings (Daraja takes no cents).
    pub amount: i64,
    /// `2547XXXXXXXX` or `2541XXXXXXXX` ([`super::phone::normalise`]).
    pub phone: String,
    /// What the payer's statement shows (at most 12 characters: Daraja's limit).
    pub account_reference: String,
    /// At most 13 characters.
    pub description: String,
    /// Where Daraja posts the result.
    pub callback_url: String,
    /// The instant the request's `Timestamp` and `Password` are made from.
    pub at: DateTime<Utc>,
}

/// Daraja accepted the push: the prompt is on its way to the phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushAccepted {
    pub merchant_request_id: String,
    /// `ws_CO_...`: what the callback and the query name the payment by.
    pub checkout_request_id: String,
    pub customer_message: String,
}

/// What an STK query says about a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryAnswer {
    /// "The transaction is being processed": no result yet.
    Processing,
    /// A result, with Daraja's code (0 success, 1032 cancelled, ...).
    Result { code: i64, description: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The server has no M-Pesa settings.
    #[error("M-Pesa is not configured (ROWGUARD_MPESA_* settings)")]
    NotConfigured,
    /// No connection: the request never reached Daraja.
    #[error("Daraja unreachable: {0}")]
    Unreachable(String),
    /// The request went out but no answer came back (a timeout after sending, a
    /// connection lost mid-answer): Daraja may have acted on it. For a push, the
    /// prompt may still reach the phone.
    #[error("Daraja did not answer: {0}")]
    Unanswered(String),
    /// Daraja answered with an error (`errorCode`, `errorMessage`, or a
    /// `ResponseCode` other than "0").
    #[error("Daraja refused: {code}: {message}")]
    Refused { code: String, message: String },
    /// An answer that is not what Daraja answers.
    #[error("Daraja answered unexpectedly: {0}")]
    Protocol(String),
}

impl From<GatewayError> for crate::error::Error {
    fn from(error: GatewayError) -> Self {
        crate::error::Error::PaymentGateway {
            configured: error != GatewayError::NotConfigured,
            detail: error.to_string(),
        }
    }
}

/// A payment gateway: Daraja, or a refusal when none is configured.
pub trait Gateway: Send + Sync + 'static {
    fn stk_push<'a>(
        &'a self,
        push: &'a StkPush,
    ) -> BoxFuture<'a, Result<PushAccepted, GatewayError>>;

    fn stk_query<'a>(
        &'a self,
        checkout_request_id: &'a str,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<QueryAnswer, GatewayError>>;
}

/// The gateway of a server without M-Pesa settings.
pub struct Unconfigured;

impl Gateway for Unconfigured {
    fn stk_push<'a>(&'a self, _: &'a StkPush) -> BoxFuture<'a, Result<PushAccepted, GatewayError>> {
        Box::pin(async { Err(GatewayError::NotConfigured) })
    }

    fn stk_query<'a>(
        &'a self,
        _: &'a str,
        _: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<QueryAnswer, GatewayError>> {
        Box::pin(async { Err(GatewayError::NotConfigured) })
    }
}
