//! The SQL of payments. No tenant filter: the policies of `policies/payments.sql` and
//! `payment_callbacks.sql` show a transaction its own tenant's rows only; the callback
//! finds the tenant first (`app.payment_tenant`) and settles in its context.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::{
    error::Error,
    platform::db::{RequestTx, page::Page},
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRow {
    pub id: Uuid,
    pub invoice_id: Uuid,
    pub request_hash: Vec<u8>,
    pub status: String,
    pub amount_minor: i64,
    pub currency: String,
    pub phone_number: String,
    pub checkout_request_id: String,
    pub customer_message: String,
    pub result_code: Option<i32>,
    pub result_desc: Option<String>,
    pub mpesa_receipt_number: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

macro_rules! payment_columns {
    () => {
        "id, invoice_id, request_hash, status, amount_minor, currency, phone_number, \
         checkout_request_id, customer_message, result_code, result_desc, \
         mpesa_receipt_number, created_at, completed_at"
    };
}

impl PaymentRow {
    fn from_row(row: &Row) -> Result<PaymentRow, Error> {
        Ok(PaymentRow {
            id: row.try_get("id")?,
            invoice_id: row.try_get("invoice_id")?,
            request_hash: row.try_get("request_hash")?,
            status: row.try_get("status")?,
            amount_minor: row.try_get("amount_minor")?,
            currency: row.try_get("currency")?,
            phone_number: row.try_get("phone_number")?,
            checkout_request_id: row.try_get("checkout_request_id")?,
            customer_message: row.try_get("customer_message")?,
            result_code: row.try_get("result_code")?,
            result_desc: row.try_get("result_desc")?,
            mpesa_receipt_number: row.try_get("mpesa_receipt_number")?,
            created_at: row.try_get("created_at")?,
            completed_at: row.try_get("completed_at")?,
        })
    }
}

fn rows(rows: &[Row]) -> Result<Vec<PaymentRow>, Error> {
    rows.iter().map(PaymentRow::from_row).collect()
}

/// The payment of an Idempotency-Key, if the tenant has one.
pub async fn by_key(tx: &RequestTx, key: &str) -> Result<Option<PaymentRow>, Error> {
    let statement = tx
        .prepare(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE idempotency_key = $1"
        ))
        .await?;
    tx.query_opt(&statement, &[&key])
        .await?
        .as_ref()
        .map(PaymentRow::from_row)
        .transpose()
}

/// Takes the tenant's lock on an Idempotency-Key until the transaction ends: two
/// requests with one key run one after the other, so the second finds the first's
/// payment instead of pushing again.
pub async fn lock_key(tx: &RequestTx, key: &str) -> Result<(), Error> {
    let statement = tx
        .prepare(
            "SELECT pg_advisory_xact_lock(hashtextextended(
                 'payments.idempotency:' || app.current_tenant_id()::text || ':' || $1, 0))",
        )
        .await?;
    tx.query_one(&statement, &[&key]).await?;
    Ok(())
}

/// Serialises the initiations of one invoice: of two requests for it with different
/// keys (a double submit, two tabs), the second sees the first's pending payment once
/// it commits, instead of pushing a second prompt to the payer's phone before the
/// one-pending-per-invoice index refuses its row.
pub async fn lock_invoice(tx: &RequestTx, invoice_id: Uuid) -> Result<(), Error> {
    let statement = tx
        .prepare(
            "SELECT pg_advisory_xact_lock(hashtextextended(
                 'payments.invoice:' || app.current_tenant_id()::text || ':' || $1::uuid::text, 0))",
        )
        .await?;
    tx.query_one(&statement, &[&invoice_id]).await?;
    Ok(())
}

pub struct NewPayment<'a> {
    pub invoice_id: Uuid,
    pub idempotency_key: &'a str,
    pub request_hash: &'a [u8],
    pub amount_minor: i64,
    pub currency: &'a str,
    pub phone_number: &'a str,
    pub merchant_request_id: &'a str,
    pub checkout_request_id: &'a str,
    pub customer_message: &'a str,
    pub created_at: DateTime<Utc>,
}

pub async fn insert(tx: &RequestTx, payment: &NewPayment<'_>) -> Result<PaymentRow, Error> {
    let statement = tx
        .prepare(concat!(
            "INSERT INTO payments (tenant_id, invoice_id, idempotency_key, request_hash, amount_minor,
                                   currency, phone_number, merchant_request_id, checkout_request_id,
                                   customer_message, created_at)
             VALUES (app.current_tenant_id(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             RETURNING ",
            payment_columns!()
        ))
        .await?;
    let row = tx
        .query_one(
            &statement,
            &[
                &payment.invoice_id,
                &payment.idempotency_key,
                &payment.request_hash,
                &payment.amount_minor,
                &payment.currency,
                &payment.phone_number,
                &payment.merchant_request_id,
                &payment.checkout_request_id,
                &payment.customer_message,
                &payment.created_at,
            ],
        )
        .await?;
    PaymentRow::from_row(&row)
}

/// Whether the invoice has a payment waiting for the payer.
pub async fn pending_for_invoice(tx: &RequestTx, invoice_id: Uuid) -> Result<bool, Error> {
    let statement = tx
        .prepare(
            "SELECT EXISTS (SELECT 1 FROM payments WHERE invoice_id = $1 AND status = 'pending')",
        )
        .await?;
    Ok(tx.query_one(&statement, &[&invoice_id]).await?.try_get(0)?)
}

/// `GET /payments/{id}`: the read written with the COMMIT (two round trips in all).
pub async fn read(tx: RequestTx, id: Uuid) -> Result<PaymentRow, Error> {
    let statement = tx
        .prepare(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE id = $1"
        ))
        .await?;
    tx.query_opt_and_commit(&statement, &[&id])
        .await?
        .as_ref()
        .map(PaymentRow::from_row)
        .transpose()?
        .ok_or(Error::NotFound)
}

/// The payment a callback or a query names, locked until the transaction ends: two
/// callbacks about it settle one after the other, and the second sees the first's.
pub async fn lock_by_checkout(
    tx: &RequestTx,
    checkout_request_id: &str,
) -> Result<Option<PaymentRow>, Error> {
    let statement = tx
        .prepare(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE checkout_request_id = $1 FOR UPDATE"
        ))
        .await?;
    tx.query_opt(&statement, &[&checkout_request_id])
        .await?
        .as_ref()
        .map(PaymentRow::from_row)
        .transpose()
}

/// The outcome of a pending payment; `None` when it was settled already.
pub struct Outcome<'a> {
    pub status: &'a str,
    pub result_code: i32,
    pub result_desc: &'a str,
    pub receipt: Option<&'a str>,
    pub at: DateTime<Utc>,
}

pub async fn settle(
    tx: &RequestTx,
    id: Uuid,
    outcome: &Outcome<'_>,
) -> Result<Option<PaymentRow>, Error> {
    let statement = tx
        .prepare(concat!(
            "UPDATE payments SET status = $2, result_code = $3, result_desc = $4,
                                 mpesa_receipt_number = $5, completed_at = $6
             WHERE id = $1 AND status = 'pending'
             RETURNING ",
            payment_columns!()
        ))
        .await?;
    tx.query_opt(
        &statement,
        &[
            &id,
            &outcome.status,
            &outcome.result_code,
            &outcome.result_desc,
            &outcome.receipt,
            &outcome.at,
        ],
    )
    .await?
    .as_ref()
    .map(PaymentRow::from_row)
    .transpose()
}

pub async fn insert_callback(
    tx: &RequestTx,
    payment_id: Uuid,
    payload: &str,
    source: &str,
    applied: bool,
) -> Result<(), Error> {
    let statement = tx
        .prepare(
            "INSERT INTO payment_callbacks (tenant_id, payment_id, payload, source, applied)
             VALUES (app.current_tenant_id(), $1, $2, $3, $4)",
        )
        .await?;
    tx.execute(&statement, &[&payment_id, &payload, &source, &applied])
        .await?;
    Ok(())
}

/// The tenant of the payment `checkout_request_id` names (`app.payment_tenant`).
pub async fn tenant_of(tx: &RequestTx, checkout_request_id: &str) -> Result<Option<Uuid>, Error> {
    let statement = tx.prepare("SELECT app.payment_tenant($1)").await?;
    Ok(tx
        .query_one(&statement, &[&checkout_request_id])
        .await?
        .try_get(0)?)
}

pub async fn record_unknown(
    tx: &RequestTx,
    checkout_request_id: Option<&str>,
    payload: &str,
    source: &str,
) -> Result<(), Error> {
    let statement = tx
        .prepare("SELECT app.record_unknown_payment_callback($1, $2, $3)")
        .await?;
    tx.query_one(&statement, &[&checkout_request_id, &payload, &source])
        .await?;
    Ok(())
}

/// The tenant's payments pending since before `before`, oldest first, locked (a
/// callback arriving meanwhile waits, then finds it settled or not).
pub async fn stale_pending(
    tx: &RequestTx,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<PaymentRow>, Error> {
    let statement = tx
        .prepare(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE status = 'pending' AND created_at < $1
              ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED"
        ))
        .await?;
    rows(&tx.query(&statement, &[&before, &limit]).await?)
}

/// The history: newest first, a page.
pub async fn list(tx: &RequestTx, page: &Page) -> Result<Vec<PaymentRow>, Error> {
    let statement = tx
        .prepare(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments
              WHERE (created_at, id) < ($1, $2)
              ORDER BY created_at DESC, id DESC LIMIT $3"
        ))
        .await?;
    let (before_time, before_id) = page.before();
    rows(
        &tx.query(&statement, &[&before_time, &before_id, &page.fetch()])
            .await?,
    )
}

/// A push Daraja got but never answered (`payment_unanswered_pushes`).
pub struct UnansweredPush<'a> {
    pub invoice_id: Uuid,
    pub idempotency_key: &'a str,
    pub request_hash: &'a [u8],
    pub amount_minor: i64,
    pub currency: &'a str,
    pub phone_number: &'a str,
    pub pushed_at: DateTime<Utc>,
}

pub async fn insert_unanswered(tx: &RequestTx, push: &UnansweredPush<'_>) -> Result<(), Error> {
    let statement = tx
        .prepare(
            "INSERT INTO payment_unanswered_pushes (tenant_id, invoice_id, idempotency_key,
                 request_hash, amount_minor, currency, phone_number, pushed_at)
             VALUES (app.current_tenant_id(), $1, $2, $3, $4, $5, $6, $7)",
        )
        .await?;
    tx.execute(
        &statement,
        &[
            &push.invoice_id,
            &push.idempotency_key,
            &push.request_hash,
            &push.amount_minor,
            &push.currency,
            &push.phone_number,
            &push.pushed_at,
        ],
    )
    .await?;
    Ok(())
}

/// The latest unanswered, unmatched push of the invoice since `since`: its instant, and
/// whether it was made with `key` and with which request hash.
pub async fn recent_unanswered(
    tx: &RequestTx,
    invoice_id: Uuid,
    key: &str,
    since: DateTime<Utc>,
) -> Result<Option<(DateTime<Utc>, Option<Vec<u8>>)>, Error> {
    let statement = tx
        .prepare(
            "SELECT pushed_at, CASE WHEN idempotency_key = $2 THEN request_hash END
             FROM payment_unanswered_pushes
             WHERE invoice_id = $1 AND pushed_at >= $3 AND payment_id IS NULL
             ORDER BY pushed_at DESC LIMIT 1",
        )
        .await?;
    tx.query_opt(&statement, &[&invoice_id, &key, &since])
        .await?
        .map(|row| Ok::<_, Error>((row.try_get(0)?, row.try_get(1)?)))
        .transpose()
}

/// The one unanswered push, of any tenant, a success callback of `amount_minor` from
/// `phone` since `since` can be (`app.unanswered_push_for`): its tenant and id.
pub async fn unanswered_push_for(
    tx: &RequestTx,
    amount_minor: i64,
    phone: &str,
    since: DateTime<Utc>,
) -> Result<Option<(Uuid, Uuid)>, Error> {
    let statement = tx
        .prepare("SELECT tenant_id, id FROM app.unanswered_push_for($1, $2, $3)")
        .await?;
    tx.query_opt(&statement, &[&amount_minor, &phone, &since])
        .await?
        .map(|row| Ok::<_, Error>((row.try_get(0)?, row.try_get(1)?)))
        .transpose()
}

/// Turns the unanswered push `id` (still unmatched; locked meanwhile) into a pending
/// payment named by the callback's CheckoutRequestID: `None` when it was matched
/// already. The payment keeps the push's key, hash, amount, phone and instant.
pub async fn payment_from_unanswered(
    tx: &RequestTx,
    id: Uuid,
    merchant_request_id: &str,
    checkout_request_id: &str,
) -> Result<Option<PaymentRow>, Error> {
    let statement = tx
        .prepare(concat!(
            "WITH push AS (
                 SELECT * FROM payment_unanswered_pushes
                 WHERE id = $1 AND payment_id IS NULL FOR UPDATE
             ), paid AS (
                 INSERT INTO payments (tenant_id, invoice_id, idempotency_key, request_hash,
                                       amount_minor, currency, phone_number, merchant_request_id,
                                       checkout_request_id, customer_message, created_at)
                 SELECT tenant_id, invoice_id, idempotency_key, request_hash, amount_minor,
                        currency, phone_number, $2, $3, '', pushed_at
                 FROM push
                 RETURNING *
             ), matched AS (
                 UPDATE payment_unanswered_pushes AS u SET payment_id = paid.id
                 FROM paid WHERE u.id = $1
             )
             SELECT ",
            payment_columns!(),
            " FROM paid"
        ))
        .await?;
    tx.query_opt(
        &statement,
        &[&id, &merchant_request_id, &checkout_request_id],
    )
    .await?
    .as_ref()
    .map(PaymentRow::from_row)
    .transpose()
}
