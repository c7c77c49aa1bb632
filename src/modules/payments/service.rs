//! The rules of payments: starting one (idempotent per key, one push per key even
//! when two requests race), and settling one from what Daraja reports, by callback or
//! by query (the first terminal result wins; a success must be the amount asked, and
//! pays the invoice in the same transaction).

use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    db::{self, NewPayment, Outcome, PaymentRow},
    gateway::{Gateway, GatewayError, StkPush},
};
use crate::{
    error::Error,
    modules::{billing, notifications, rbac, tenancy},
    platform::db::RequestTx,
};

/// What a request to pay asks: the idempotency key's request hash is made of it.
pub struct Initiate<'a> {
    pub invoice_id: Uuid,
    /// Normalised (`2547…`/`2541…`).
    pub phone: &'a str,
    pub idempotency_key: &'a str,
}

fn request_hash(request: &Initiate<'_>) -> Vec<u8> {
    Sha256::digest(format!("{}|{}", request.invoice_id, request.phone).as_bytes()).to_vec()
}

/// How long after a push Daraja did not answer its prompt may still be paid: a
/// success callback within it is matched to the push, and the invoice takes no other
/// push meanwhile (the payer could otherwise pay twice). STK prompts expire on the
/// phone after about a minute; callbacks come within seconds of the PIN.
pub const UNANSWERED_PUSH_WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// What an initiation did.
#[derive(Debug)]
pub enum Initiated {
    /// Daraja accepted the push (or the key's payment, replayed).
    Payment(Box<PaymentRow>),
    /// The push went out and no answer came back: recorded as an unanswered push (to
    /// commit), and the caller answers 502 ([`Error::PaymentUnanswered`]).
    Unanswered,
}

/// Starts the payment of an open invoice, or answers the payment the key already
/// made. The push happens inside the transaction, under the key's lock: a concurrent
/// request with the key waits and then replays; if Daraja refuses or is unreachable,
/// the transaction rolls back and nothing is left pending. If the push went out but
/// Daraja never answered, the push is recorded (the prompt may still reach the phone,
/// and its callback is matched to it) and nothing is pending either.
pub async fn initiate(
    tx: &RequestTx,
    gateway: &dyn Gateway,
    callback_url: &str,
    request: &Initiate<'_>,
    now: DateTime<Utc>,
) -> Result<Initiated, Error> {
    let hash = request_hash(request);
    db::lock_key(tx, request.idempotency_key).await?;
    if let Some(existing) = db::by_key(tx, request.idempotency_key).await? {
        return if existing.request_hash == hash {
            Ok(Initiated::Payment(Box::new(existing)))
        } else {
            Err(Error::IdempotencyConflict)
        };
    }
    db::lock_invoice(tx, request.invoice_id).await?;
    let invoice = billing::invoice(tx, request.invoice_id).await?;
    if let Some((pushed_at, key_hash)) = db::recent_unanswered(
        tx,
        invoice.id,
        request.idempotency_key,
        now - UNANSWERED_PUSH_WINDOW,
    )
    .await?
    {
        if key_hash.is_some_and(|key_hash| key_hash != hash) {
            return Err(Error::IdempotencyConflict);
        }
        return Err(Error::Conflict(format!(
            "Daraja did not answer the last push for this invoice; its prompt may still reach \
             the phone and be paid: try again after {}",
            (pushed_at + UNANSWERED_PUSH_WINDOW).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )));
    }
    if invoice.status != "open" {
        return Err(Error::Conflict(format!(
            "the invoice is {}",
            invoice.status
        )));
    }
    if db::pending_for_invoice(tx, invoice.id).await? {
        return Err(Error::Conflict(
            "a payment of this invoice is waiting for the payer; it settles within minutes".into(),
        ));
    }
    // Daraja takes whole shillings; every plan is priced in them.
    if invoice.total_minor <= 0 || invoice.total_minor % 100 != 0 {
        return Err(Error::Conflict(
            "the invoice's total cannot be paid by M-Pesa (whole shillings only)".into(),
        ));
    }
    let pushed = gateway
        .stk_push(&StkPush {
            amount: invoice.total_minor / 100,
            phone: request.phone.to_string(),
            account_reference: invoice.number.clone(),
            description: "Subscription".into(),
            callback_url: callback_url.to_string(),
            at: now,
        })
        .await;
    let accepted = match pushed {
        Ok(accepted) => accepted,
        Err(GatewayError::Unanswered(reason)) => {
            db::insert_unanswered(
                tx,
                &db::UnansweredPush {
                    invoice_id: invoice.id,
                    idempotency_key: request.idempotency_key,
                    request_hash: &hash,
                    amount_minor: invoice.total_minor,
                    currency: &invoice.currency,
                    phone_number: request.phone,
                    pushed_at: now,
                },
            )
            .await?;
            tracing::warn!(invoice = %invoice.id, %reason, "Daraja did not answer an STK push");
            return Ok(Initiated::Unanswered);
        }
        Err(error) => return Err(error.into()),
    };
    let inserted = db::insert(
        tx,
        &NewPayment {
            invoice_id: invoice.id,
            idempotency_key: request.idempotency_key,
            request_hash: &hash,
            amount_minor: invoice.total_minor,
            currency: &invoice.currency,
            phone_number: request.phone,
            merchant_request_id: &accepted.merchant_request_id,
            checkout_request_id: &accepted.checkout_request_id,
            customer_message: &accepted.customer_message,
            created_at: now,
        },
    )
    .await;
    if inserted.is_err() {
        // The prompt is on the phone but the row is not stored: the operator must
        // know which push it was (its callback will be recorded as unknown).
        tracing::error!(
            checkout_request_id = %accepted.checkout_request_id,
            invoice = %invoice.id,
            "an accepted STK push could not be recorded"
        );
    }
    inserted.map(|row| Initiated::Payment(Box::new(row)))
}

/// A result Daraja reported about a push.
#[derive(Debug, Clone)]
pub struct Reported<'a> {
    pub code: i64,
    pub description: &'a str,
    /// From a callback: the `Amount` paid, in minor units (`None`: absent or unreadable).
    /// From a query, which carries no amount: the amount asked (Daraja's own answer
    /// over an authenticated call).
    pub amount_minor: Option<i64>,
    /// The M-Pesa receipt; a query carries none.
    pub receipt: Option<&'a str>,
}

/// Settles `payment` (locked by the caller) by what Daraja reported, as of `now`;
/// whether it changed anything. A payment settled already stays as it is: the first
/// terminal result wins, and a later failure never undoes a recorded success.
pub async fn settle(
    tx: &RequestTx,
    payment: &PaymentRow,
    reported: &Reported<'_>,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    if payment.status != "pending" {
        if payment.status == "succeeded" && reported.code != 0 {
            tracing::warn!(
                payment = %payment.id,
                code = reported.code,
                "Daraja reported a failure of a payment recorded as a success; kept as a success"
            );
        }
        return Ok(false);
    }
    let code = i32::try_from(reported.code).unwrap_or(i32::MAX);
    let mismatch;
    let (status, description) = match reported.code {
        0 if reported.amount_minor == Some(payment.amount_minor) => {
            ("succeeded", reported.description)
        }
        0 => {
            // Money moved, but not what was asked: never a success, and the operator's
            // to sort out (a refund, or a manual credit).
            tracing::warn!(
                payment = %payment.id,
                asked = payment.amount_minor,
                paid = ?reported.amount_minor,
                "an M-Pesa payment of another amount than asked"
            );
            mismatch = format!(
                "the amount paid ({}) is not the amount asked ({})",
                reported
                    .amount_minor
                    .map_or("unknown".into(), |paid| billing::amount(
                        paid,
                        &payment.currency
                    )),
                billing::amount(payment.amount_minor, &payment.currency)
            );
            ("failed", mismatch.as_str())
        }
        1032 => ("cancelled", reported.description),
        1037 => ("timeout", reported.description),
        _ => ("failed", reported.description),
    };
    // The invoice's reference: the receipt, or from a query (which has none) Daraja's
    // id of the push.
    let reference = reported.receipt.unwrap_or(&payment.checkout_request_id);
    let Some(settled) = db::settle(
        tx,
        payment.id,
        &Outcome {
            status,
            result_code: code,
            result_desc: description,
            receipt: reported.receipt.filter(|_| status == "succeeded"),
            at: now,
        },
    )
    .await?
    else {
        return Ok(false);
    };
    let invoice = billing::invoice(tx, settled.invoice_id).await?;
    if status == "succeeded" {
        match billing::record_payment(tx, settled.invoice_id, reference, now).await? {
            billing::Payment::Applied(_) => {}
            other => tracing::warn!(
                payment = %settled.id,
                invoice = ?other,
                "a payment arrived for an invoice that is no longer open: the operator's to refund"
            ),
        }
    }
    notify(tx, &settled, &invoice, reference).await?;
    Ok(true)
}

/// "Payment received" or "payment failed", to the tenant's Owners (in-app and email).
async fn notify(
    tx: &RequestTx,
    payment: &PaymentRow,
    invoice: &billing::InvoiceRow,
    reference: &str,
) -> Result<(), Error> {
    let tenant = tenancy::current_tenant(tx).await?;
    let amount = billing::amount(payment.amount_minor, &payment.currency);
    let reason = payment.result_desc.clone().unwrap_or_default();
    let (kind, title, body, data) = if payment.status == "succeeded" {
        (
            "payment.received",
            format!("Payment of {amount} received"),
            format!(
                "Invoice {} is paid (M-Pesa receipt {reference}).",
                invoice.number
            ),
            json!({
                "payment_id": payment.id,
                "invoice_id": invoice.id,
                "number": invoice.number,
                "amount": amount,
                "receipt": reference,
                "tenant_name": tenant.name,
            }),
        )
    } else {
        (
            "payment.failed",
            format!("Payment of {amount} did not go through"),
            format!("Invoice {} is still open: {reason}.", invoice.number),
            json!({
                "payment_id": payment.id,
                "invoice_id": invoice.id,
                "number": invoice.number,
                "amount": amount,
                "status": payment.status,
                "reason": reason,
                "tenant_name": tenant.name,
            }),
        )
    };
    for owner in rbac::service::active_owners(tx).await? {
        notifications::notify(tx, owner, kind, &title, &body, &data).await?;
    }
    Ok(())
}
