//! Billing: invoices (`sql/V15__billing.sql`), numbered `INV-000001`, ... per tenant
//! without a gap, listed and read at `/api/v1/billing/invoices` (`api`), and the
//! `billing.renewals` job (`jobs`), which moves every tenant's subscription through
//! its periods as of the job's "now" (the rules are the subscriptions module's:
//! `subscriptions::lifecycle`).
//!
//! What other modules use: [`issue`] and [`void`] (the subscription's plan changes and
//! renewals), [`open_invoice`], and [`record_payment`], which the payment flows call
//! when money arrives.

pub mod api;
mod db;
mod jobs;

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

pub use db::InvoiceRow;
pub use jobs::{RENEW, RENEWALS, jobs};

use crate::{
    error::Error,
    modules::{
        notifications, rbac,
        subscriptions::{self, lifecycle::NewInvoice},
        tenancy,
    },
    platform::db::RequestTx,
};

/// Issues `invoice` in the context's tenant as of `now` (its `created_at`), with the
/// next number and one line, and tells the tenant's Owners (in-app and by email), in
/// the caller's transaction.
pub async fn issue(
    tx: &RequestTx,
    invoice: &NewInvoice,
    now: DateTime<Utc>,
) -> Result<InvoiceRow, Error> {
    let seq = db::next_number(tx).await?;
    let row = db::insert(
        tx,
        &db::NewInvoiceRow {
            seq,
            purpose: invoice.purpose.as_str(),
            plan_code: &invoice.plan.code,
            currency: &invoice.plan.currency,
            total_minor: invoice.plan.price_minor,
            period_start: invoice.period.start,
            period_end: invoice.period.end,
            due_at: invoice.due_at,
            created_at: now,
        },
    )
    .await?;
    let description = format!(
        "{} plan, {} to {}",
        invoice.plan.name,
        day(invoice.period.start),
        day(invoice.period.end)
    );
    db::insert_line(
        tx,
        row.id,
        1,
        &description,
        invoice.plan.price_minor,
        (invoice.period.start, invoice.period.end),
    )
    .await?;
    let tenant = tenancy::current_tenant(tx).await?;
    let amount = amount(row.total_minor, &row.currency);
    let data = json!({
        "invoice_id": row.id,
        "number": row.number,
        "total_minor": row.total_minor,
        "currency": row.currency,
        "amount": amount,
        "plan_code": invoice.plan.code,
        "plan_name": invoice.plan.name,
        "period_start": day(row.period_start),
        "period_end": day(row.period_end),
        "due_at": email_time(row.due_at),
        "tenant_name": tenant.name,
    });
    for owner in rbac::service::active_owners(tx).await? {
        notifications::notify(
            tx,
            owner,
            "invoice.issued",
            &format!("Invoice {} issued", row.number),
            &format!(
                "{amount} for the {} plan, due {}.",
                invoice.plan.name,
                email_time(row.due_at)
            ),
            &data,
        )
        .await?;
    }
    Ok(row)
}

/// The context tenant's open invoice, if any (at most one is open at a time).
pub async fn open_invoice(tx: &RequestTx) -> Result<Option<InvoiceRow>, Error> {
    db::open_invoice(tx).await
}

/// Voids an open invoice as of `now`; false when it was not open.
pub async fn void(tx: &RequestTx, id: Uuid, now: DateTime<Utc>) -> Result<bool, Error> {
    db::void(tx, id, now).await
}

/// Marks an open invoice paid; `None` when it is not open. For the subscription's
/// payment rule only (`subscriptions::service::pay_invoice`), which holds the
/// subscription's lock: callers use [`record_payment`].
pub(crate) async fn mark_paid(
    tx: &RequestTx,
    id: Uuid,
    reference: &str,
    paid_at: DateTime<Utc>,
) -> Result<Option<InvoiceRow>, Error> {
    db::mark_paid(tx, id, reference, paid_at).await
}

pub(crate) async fn invoice(tx: &RequestTx, id: Uuid) -> Result<InvoiceRow, Error> {
    db::get(tx, id).await
}

/// What recording a payment did.
#[derive(Debug, Clone)]
pub enum Payment {
    /// The invoice is paid now, and what it paid for applies.
    Applied(InvoiceRow),
    /// It was paid already: nothing changed.
    AlreadyPaid(InvoiceRow),
    /// It is void (replaced, or the tenant moved to free): nothing changed; the money
    /// is the operator's to refund.
    Void(InvoiceRow),
}

/// Records the payment of invoice `invoice_id` of the context's tenant, received at
/// `paid_at` with the receipt `reference` (an M-Pesa receipt number): the invoice is
/// marked paid and what it paid for applies (the subscription moves to the invoice's
/// plan and period, a pending plan it paid for applies, `past_due` or `unpaid` is
/// `active` again), all in the caller's transaction. Paying an invoice again changes
/// nothing ([`Payment::AlreadyPaid`]). 404 for an invoice the tenant does not have.
pub async fn record_payment(
    tx: &RequestTx,
    invoice_id: Uuid,
    reference: &str,
    paid_at: DateTime<Utc>,
) -> Result<Payment, Error> {
    subscriptions::service::pay_invoice(tx, invoice_id, reference, paid_at).await
}

/// `KES 2,500.00`: minor units as an email or a notification shows them (every
/// currency billed so far has two decimals).
pub fn amount(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let minor = minor.unsigned_abs();
    let whole = (minor / 100).to_string();
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{currency} {sign}{grouped}.{:02}", minor % 100)
}

/// An instant as emails write it: `2027-01-31 14:00 UTC` (as `app.email_time`).
pub fn email_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn day(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// This module's operations, as the registry mounts them.
pub type Api = api::InvoicesApi;

pub fn api(state: &super::AppState) -> Api {
    api::InvoicesApi {
        db: state.db.clone(),
    }
}

pub const OPERATIONS: &[&[crate::platform::auth::access::Operation]] = &[api::OPERATIONS];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_currency_thousands_and_two_decimals() {
        assert_eq!(amount(250_000, "KES"), "KES 2,500.00");
        assert_eq!(amount(1_000_000, "KES"), "KES 10,000.00");
        assert_eq!(amount(0, "KES"), "KES 0.00");
        assert_eq!(amount(5, "KES"), "KES 0.05");
        assert_eq!(amount(123_456_789, "KES"), "KES 1,234,567.89");
        assert_eq!(amount(-150, "KES"), "KES -1.50");
    }
}
