//! `GET /api/v1/billing/invoices` and `GET /api/v1/billing/invoices/{id}`: the
//! tenant's invoices (another tenant's is a 404, by the policies).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, param::Path, param::Query};
use uuid::Uuid;

use super::db::{self, InvoiceRow, LineRow};
use crate::{
    error::Error,
    modules::Tag,
    platform::{
        auth::access::{Operation, authorize},
        db::Database,
        http::{
            common::{Limit, from_wire, page},
            json::{JsonBody, rfc3339, rfc3339_or_null},
            problem::ApiError,
            security::BearerAuth,
        },
    },
};

pub struct InvoicesApi {
    pub db: Database,
}

// What each operation requires (see `auth::access`): one line per route below.
const BILLING_INVOICES_LIST: Operation =
    Operation::permission("billing_invoices_list", "billing.view");
const BILLING_INVOICES_GET: Operation =
    Operation::permission("billing_invoices_get", "billing.view");

pub const OPERATIONS: &[Operation] = &[BILLING_INVOICES_LIST, BILLING_INVOICES_GET];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Waiting for its payment.
    Open,
    Paid,
    /// Never to be paid: replaced (another plan chosen) or dropped (moved to `free`).
    Void,
}

/// One thing an invoice charges for.
#[derive(Object, serde::Serialize)]
pub struct InvoiceLine {
    pub description: String,
    /// Minor units (KES cents) of the invoice's `currency`.
    pub amount_minor: i64,
    #[serde(serialize_with = "rfc3339")]
    pub period_start: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    pub period_end: DateTime<Utc>,
}

#[derive(Object, serde::Serialize)]
pub struct Invoice {
    pub id: Uuid,
    /// `INV-` and the tenant's gapless sequence: `INV-000001`.
    pub number: String,
    pub status: InvoiceStatus,
    /// ISO 4217.
    pub currency: String,
    /// Minor units (KES cents) of `currency`.
    pub total_minor: i64,
    /// The plan it pays for.
    pub plan_code: String,
    /// The period it pays for.
    #[serde(serialize_with = "rfc3339")]
    pub period_start: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    pub period_end: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    pub due_at: DateTime<Utc>,
    #[oai(nullable)]
    #[serde(serialize_with = "rfc3339_or_null")]
    pub paid_at: Option<DateTime<Utc>>,
    /// The receipt of the payment (an M-Pesa receipt number), once paid.
    #[oai(nullable)]
    pub payment_reference: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    pub lines: Vec<InvoiceLine>,
}

#[derive(Object, serde::Serialize)]
pub struct InvoiceList {
    pub items: Vec<Invoice>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(ApiResponse)]
pub enum InvoiceListResponse {
    #[oai(status = 200)]
    Ok(JsonBody<InvoiceList>),
}

#[derive(ApiResponse)]
pub enum InvoiceResponse {
    #[oai(status = 200)]
    Ok(JsonBody<Invoice>),
}

fn invoice(row: InvoiceRow, lines: Vec<LineRow>) -> Result<Invoice, Error> {
    Ok(Invoice {
        status: from_wire(&row.status)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("an invoice {}", row.status)))?,
        id: row.id,
        number: row.number,
        currency: row.currency,
        total_minor: row.total_minor,
        plan_code: row.plan_code,
        period_start: row.period_start,
        period_end: row.period_end,
        due_at: row.due_at,
        paid_at: row.paid_at,
        payment_reference: row.payment_reference,
        created_at: row.created_at,
        lines: lines
            .into_iter()
            .map(|line| InvoiceLine {
                description: line.description,
                amount_minor: line.amount_minor,
                period_start: line.period_start,
                period_end: line.period_end,
            })
            .collect(),
    })
}

/// Each invoice with its lines.
fn with_lines(rows: Vec<InvoiceRow>, lines: Vec<LineRow>) -> Result<Vec<Invoice>, Error> {
    let mut by_invoice: HashMap<Uuid, Vec<LineRow>> = HashMap::new();
    for line in lines {
        by_invoice.entry(line.invoice_id).or_default().push(line);
    }
    rows.into_iter()
        .map(|row| {
            let lines = by_invoice.remove(&row.id).unwrap_or_default();
            invoice(row, lines)
        })
        .collect()
}

#[OpenApi(prefix_path = "/api/v1/billing", tag = "Tag::Billing")]
impl InvoicesApi {
    /// The tenant's invoices, newest first.
    #[oai(
        path = "/invoices",
        method = "get",
        operation_id = "billing_invoices_list"
    )]
    async fn list(
        &self,
        auth: BearerAuth,
        limit: Query<Option<Limit>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<InvoiceListResponse, ApiError> {
        let page = page(limit.0, cursor.0)?;
        let (tx, _) = authorize(&self.db, &auth.0, &BILLING_INVOICES_LIST).await?;
        let read = async {
            let rows = db::list(&tx, &page).await?;
            let (rows, next_cursor) = page.finish(rows, |i| (i.created_at, i.id));
            let ids: Vec<Uuid> = rows.iter().map(|i| i.id).collect();
            let lines = db::lines(&tx, &ids).await?;
            Ok((rows, lines, next_cursor))
        }
        .await;
        let (rows, lines, next_cursor) = tx.finish(read).await?;
        Ok(InvoiceListResponse::Ok(JsonBody(InvoiceList {
            items: with_lines(rows, lines)?,
            next_cursor,
        })))
    }

    /// One invoice, with its lines.
    #[oai(
        path = "/invoices/:id",
        method = "get",
        operation_id = "billing_invoices_get"
    )]
    async fn get(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<InvoiceResponse, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, &BILLING_INVOICES_GET).await?;
        let read = async {
            let row = db::get(&tx, id.0).await?;
            let lines = db::lines(&tx, &[row.id]).await?;
            Ok((row, lines))
        }
        .await;
        let (row, lines) = tx.finish(read).await?;
        Ok(InvoiceResponse::Ok(JsonBody(invoice(row, lines)?)))
    }
}
