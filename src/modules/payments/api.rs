//! `POST /api/v1/payments/mpesa/initiate`, `GET /api/v1/payments/{id}` and `GET
//! /api/v1/billing/history`; the callback is [`super::callback_endpoint`] (a plain
//! route: it answers 200 whatever the body, which a typed body would not).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem_openapi::{
    ApiResponse, Enum, Object, OpenApi,
    param::{Header, Path, Query},
};
use uuid::Uuid;

use super::{
    db::{self, PaymentRow},
    gateway::Gateway,
    phone,
    service::{self, Initiate, Initiated},
};
use crate::{
    error::{Error, FieldError},
    modules::Tag,
    platform::{
        auth::access::{Operation, authorize},
        db::Database,
        http::{
            common::{Limit, from_wire, page},
            json::{JsonBody, rfc3339, rfc3339_or_null},
            problem::ApiError,
            security::BearerAuth,
            text::{Bounded, Text},
        },
    },
};

pub struct PaymentsApi {
    pub db: Database,
    pub gateway: Arc<dyn Gateway>,
    /// Where Daraja posts results: `{public URL}/api/v1/payments/callbacks/{token}`.
    pub callback_url: String,
}

// What each operation requires (see `auth::access`): one line per route below.
// 409: the invoice is not open (or a payment of it is pending); 502: Daraja.
const PAYMENTS_MPESA_INITIATE: Operation =
    Operation::permission("payments_mpesa_initiate", "billing.pay").returning(&[409, 502]);
const PAYMENTS_GET: Operation = Operation::permission("payments_get", "billing.view");
const BILLING_HISTORY: Operation = Operation::permission("billing_history", "billing.view");

pub const OPERATIONS: &[Operation] = &[PAYMENTS_MPESA_INITIATE, PAYMENTS_GET, BILLING_HISTORY];

/// The longest `Idempotency-Key` (API.md).
const MAX_KEY_LENGTH: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// The prompt is on the phone; no result yet.
    Pending,
    Succeeded,
    /// Refused (insufficient funds, a wrong PIN, another amount than asked, ...).
    Failed,
    /// The payer cancelled the prompt (1032).
    Cancelled,
    /// The phone could not be reached, or never answered (1037).
    Timeout,
}

#[derive(Object)]
pub struct InitiateRequest {
    pub invoice_id: Uuid,
    /// `07XXXXXXXX`, `01XXXXXXXX`, `+2547…` or `2547…`.
    pub phone_number: Text<Bounded<1, 32>>,
}

#[derive(Object, serde::Serialize)]
pub struct Payment {
    pub id: Uuid,
    pub invoice_id: Uuid,
    pub status: PaymentStatus,
    /// Minor units (KES cents) of `currency`.
    pub amount_minor: i64,
    pub currency: String,
    /// Normalised: `2547XXXXXXXX` or `2541XXXXXXXX`.
    pub phone_number: String,
    /// Daraja's id of the push (`ws_CO_…`).
    pub checkout_request_id: String,
    /// What Daraja said when it accepted the push.
    pub customer_message: String,
    /// Daraja's result code (0 success, 1032 cancelled, 1037 timeout, ...).
    #[oai(nullable)]
    pub result_code: Option<i32>,
    #[oai(nullable)]
    pub result_desc: Option<String>,
    #[oai(nullable)]
    pub mpesa_receipt_number: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    #[oai(nullable)]
    #[serde(serialize_with = "rfc3339_or_null")]
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Object, serde::Serialize)]
pub struct PaymentList {
    pub items: Vec<Payment>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(ApiResponse)]
pub enum InitiateResponse {
    /// The prompt is on its way to the phone (or, for a key used before, the payment
    /// it made, sent again).
    #[oai(status = 202)]
    Accepted(JsonBody<Payment>),
}

#[derive(ApiResponse)]
pub enum PaymentResponse {
    #[oai(status = 200)]
    Ok(JsonBody<Payment>),
}

#[derive(ApiResponse)]
pub enum PaymentListResponse {
    #[oai(status = 200)]
    Ok(JsonBody<PaymentList>),
}

fn payment(row: PaymentRow) -> Result<Payment, Error> {
    Ok(Payment {
        status: from_wire(&row.status)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("a payment {}", row.status)))?,
        id: row.id,
        invoice_id: row.invoice_id,
        amount_minor: row.amount_minor,
        currency: row.currency,
        phone_number: row.phone_number,
        checkout_request_id: row.checkout_request_id,
        customer_message: row.customer_message,
        result_code: row.result_code,
        result_desc: row.result_desc,
        mpesa_receipt_number: row.mpesa_receipt_number,
        created_at: row.created_at,
        completed_at: row.completed_at,
    })
}

#[OpenApi(tag = "Tag::Payments")]
impl PaymentsApi {
    /// Pay an open invoice by M-Pesa: an STK push prompts the phone for the PIN; the
    /// result arrives by Daraja's callback (`GET /payments/{id}` shows it). The
    /// `Idempotency-Key` makes a retry safe: the same key answers the same payment
    /// and sends nothing; with another body, 422 `idempotency_conflict`.
    #[oai(
        path = "/api/v1/payments/mpesa/initiate",
        method = "post",
        operation_id = "payments_mpesa_initiate"
    )]
    async fn initiate(
        &self,
        auth: BearerAuth,
        /// Required, at most 255 characters: one key per intended payment.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: JsonBody<InitiateRequest>,
    ) -> Result<InitiateResponse, ApiError> {
        let key = match idempotency_key.0.as_deref().map(str::trim) {
            None | Some("") => {
                return Err(
                    Error::BadRequest("the Idempotency-Key header is required".into()).into(),
                );
            }
            Some(key) if key.chars().count() > MAX_KEY_LENGTH => {
                return Err(Error::BadRequest(format!(
                    "the Idempotency-Key header is at most {MAX_KEY_LENGTH} characters"
                ))
                .into());
            }
            Some(key) => key.to_string(),
        };
        let phone = phone::normalise(&body.phone_number).ok_or_else(|| {
            Error::Validation(vec![FieldError::new(
                "phone_number",
                "a Kenyan mobile number: 07XXXXXXXX, 01XXXXXXXX, +2547XXXXXXXX or 2547XXXXXXXX",
            )])
        })?;
        let (tx, _) = authorize(&self.db, &auth.0, &PAYMENTS_MPESA_INITIATE).await?;
        let started = service::initiate(
            &tx,
            self.gateway.as_ref(),
            &self.callback_url,
            &Initiate {
                invoice_id: body.invoice_id,
                phone: &phone,
                idempotency_key: &key,
            },
            Utc::now(),
        )
        .await;
        match tx.finish(started).await? {
            Initiated::Payment(row) => Ok(InitiateResponse::Accepted(JsonBody(payment(*row)?))),
            Initiated::Unanswered => Err(Error::PaymentUnanswered.into()),
        }
    }

    /// One payment attempt, with its result once Daraja reported it.
    #[oai(
        path = "/api/v1/payments/:id",
        method = "get",
        operation_id = "payments_get"
    )]
    async fn get(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<PaymentResponse, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, &PAYMENTS_GET).await?;
        let row = db::read(tx, id.0).await?;
        Ok(PaymentResponse::Ok(JsonBody(payment(row)?)))
    }

    /// The tenant's payment attempts, newest first.
    #[oai(
        path = "/api/v1/billing/history",
        method = "get",
        operation_id = "billing_history"
    )]
    async fn history(
        &self,
        auth: BearerAuth,
        limit: Query<Option<Limit>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<PaymentListResponse, ApiError> {
        let page = page(limit.0, cursor.0)?;
        let (tx, _) = authorize(&self.db, &auth.0, &BILLING_HISTORY).await?;
        let read = db::list(&tx, &page).await;
        let rows = tx.finish(read).await?;
        let (rows, next_cursor) = page.finish(rows, |p| (p.created_at, p.id));
        Ok(PaymentListResponse::Ok(JsonBody(PaymentList {
            items: rows.into_iter().map(payment).collect::<Result<_, _>>()?,
            next_cursor,
        })))
    }
}
