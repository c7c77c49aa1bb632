//! The SQL of invoices. No tenant filter: the policies of `policies/invoices.sql`,
//! `invoice_lines.sql` and `invoice_counters.sql` show a transaction (a request, or
//! the renewal job in its tenant's context) its own tenant's rows only.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::{
    error::Error,
    platform::db::{RequestTx, page::Page},
};

#[derive(Debug, Clone)]
pub struct InvoiceRow {
    pub id: Uuid,
    pub number: String,
    pub status: String,
    pub purpose: String,
    pub plan_code: String,
    pub currency: String,
    pub total_minor: i64,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub payment_reference: Option<String>,
    pub created_at: DateTime<Utc>,
}

macro_rules! invoice_columns {
    () => {
        "id, number, status, purpose, plan_code, currency, total_minor, period_start, \
         period_end, due_at, paid_at, payment_reference, created_at"
    };
}

impl InvoiceRow {
    fn from_row(row: &Row) -> Result<InvoiceRow, Error> {
        Ok(InvoiceRow {
            id: row.try_get("id")?,
            number: row.try_get("number")?,
            status: row.try_get("status")?,
            purpose: row.try_get("purpose")?,
            plan_code: row.try_get("plan_code")?,
            currency: row.try_get("currency")?,
            total_minor: row.try_get("total_minor")?,
            period_start: row.try_get("period_start")?,
            period_end: row.try_get("period_end")?,
            due_at: row.try_get("due_at")?,
            paid_at: row.try_get("paid_at")?,
            payment_reference: row.try_get("payment_reference")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct LineRow {
    pub invoice_id: Uuid,
    pub description: String,
    pub amount_minor: i64,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
}

/// The context tenant's next invoice number. The counter row stays locked until the
/// transaction ends: a concurrent issue waits for it, and a rollback gives the number
/// back (no gap).
pub async fn next_number(tx: &RequestTx) -> Result<i64, Error> {
    let statement = tx
        .prepare(
            "INSERT INTO invoice_counters AS c (tenant_id, last_number)
             VALUES (app.current_tenant_id(), 1)
             ON CONFLICT (tenant_id) DO UPDATE SET last_number = c.last_number + 1
             RETURNING last_number",
        )
        .await?;
    Ok(tx.query_one(&statement, &[]).await?.try_get(0)?)
}

/// What an invoice to insert says.
pub struct NewInvoiceRow<'a> {
    pub seq: i64,
    pub purpose: &'a str,
    pub plan_code: &'a str,
    pub currency: &'a str,
    pub total_minor: i64,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

pub async fn insert(tx: &RequestTx, invoice: &NewInvoiceRow<'_>) -> Result<InvoiceRow, Error> {
    let statement = tx
        .prepare(concat!(
            "INSERT INTO invoices (tenant_id, seq, number, purpose, plan_code, currency,
                                   total_minor, period_start, period_end, due_at, created_at)
             VALUES (app.current_tenant_id(), $1::bigint,
                     'INV-' || lpad($1::bigint::text, greatest(6, length($1::bigint::text)), '0'),
                     $2, $3, $4, $5, $6, $7, $8, $9)
             RETURNING ",
            invoice_columns!()
        ))
        .await?;
    let row = tx
        .query_one(
            &statement,
            &[
                &invoice.seq,
                &invoice.purpose,
                &invoice.plan_code,
                &invoice.currency,
                &invoice.total_minor,
                &invoice.period_start,
                &invoice.period_end,
                &invoice.due_at,
                &invoice.created_at,
            ],
        )
        .await?;
    InvoiceRow::from_row(&row)
}

pub async fn insert_line(
    tx: &RequestTx,
    invoice_id: Uuid,
    position: i32,
    description: &str,
    amount_minor: i64,
    period: (DateTime<Utc>, DateTime<Utc>),
) -> Result<(), Error> {
    let statement = tx
        .prepare(
            "INSERT INTO invoice_lines (tenant_id, invoice_id, position, description, amount_minor,
                                        period_start, period_end)
             VALUES (app.current_tenant_id(), $1, $2, $3, $4, $5, $6)",
        )
        .await?;
    tx.execute(
        &statement,
        &[
            &invoice_id,
            &position,
            &description,
            &amount_minor,
            &period.0,
            &period.1,
        ],
    )
    .await?;
    Ok(())
}

/// The tenant's open invoice, if any (there is at most one: `invoices_one_open_idx`).
pub async fn open_invoice(tx: &RequestTx) -> Result<Option<InvoiceRow>, Error> {
    let statement = tx
        .prepare(concat!(
            "SELECT ",
            invoice_columns!(),
            " FROM invoices WHERE status = 'open'"
        ))
        .await?;
    tx.query_opt(&statement, &[])
        .await?
        .as_ref()
        .map(InvoiceRow::from_row)
        .transpose()
}

/// Voids an open invoice; false when it is not open.
pub async fn void(tx: &RequestTx, id: Uuid, at: DateTime<Utc>) -> Result<bool, Error> {
    let statement = tx
        .prepare(
            "UPDATE invoices SET status = 'void', voided_at = $2 WHERE id = $1 AND status = 'open'",
        )
        .await?;
    Ok(tx.execute(&statement, &[&id, &at]).await? == 1)
}

/// Marks an open invoice paid with `reference`; `None` when it is not open (paid
/// already, void, or no such invoice).
pub async fn mark_paid(
    tx: &RequestTx,
    id: Uuid,
    reference: &str,
    paid_at: DateTime<Utc>,
) -> Result<Option<InvoiceRow>, Error> {
    let statement = tx
        .prepare(concat!(
            "UPDATE invoices SET status = 'paid', paid_at = $3, payment_reference = $2
             WHERE id = $1 AND status = 'open'
             RETURNING ",
            invoice_columns!()
        ))
        .await?;
    tx.query_opt(&statement, &[&id, &reference, &paid_at])
        .await?
        .as_ref()
        .map(InvoiceRow::from_row)
        .transpose()
}

pub async fn get(tx: &RequestTx, id: Uuid) -> Result<InvoiceRow, Error> {
    let statement = tx
        .prepare(concat!(
            "SELECT ",
            invoice_columns!(),
            " FROM invoices WHERE id = $1"
        ))
        .await?;
    let row = tx
        .query_opt(&statement, &[&id])
        .await?
        .ok_or(Error::NotFound)?;
    InvoiceRow::from_row(&row)
}

/// The tenant's invoices, newest first.
pub async fn list(tx: &RequestTx, page: &Page) -> Result<Vec<InvoiceRow>, Error> {
    let statement = tx
        .prepare(concat!(
            "SELECT ",
            invoice_columns!(),
            " FROM invoices WHERE (created_at, id) < ($1, $2)
             ORDER BY created_at DESC, id DESC LIMIT $3"
        ))
        .await?;
    let (before_time, before_id) = page.before();
    tx.query(&statement, &[&before_time, &before_id, &page.fetch()])
        .await?
        .iter()
        .map(InvoiceRow::from_row)
        .collect()
}

/// The lines of these invoices, in their order.
pub async fn lines(tx: &RequestTx, invoice_ids: &[Uuid]) -> Result<Vec<LineRow>, Error> {
    if invoice_ids.is_empty() {
        return Ok(Vec::new());
    }
    let statement = tx
        .prepare(
            "SELECT invoice_id, description, amount_minor, period_start, period_end
             FROM invoice_lines WHERE invoice_id = ANY ($1)
             ORDER BY invoice_id, position",
        )
        .await?;
    tx.query(&statement, &[&invoice_ids])
        .await?
        .iter()
        .map(|row| {
            Ok(LineRow {
                invoice_id: row.try_get("invoice_id")?,
                description: row.try_get("description")?,
                amount_minor: row.try_get("amount_minor")?,
                period_start: row.try_get("period_start")?,
                period_end: row.try_get("period_end")?,
            })
        })
        .collect()
}
