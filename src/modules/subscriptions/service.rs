//! The rules that move a subscription, each in the caller's transaction and each
//! taking the subscription's row lock first (so a plan change, a renewal and a payment
//! of one tenant apply one after the other):
//!
//! - [`change_plan`] (`PUT /subscriptions/current`): to a pricier paid plan from
//!   `free`, a trial if the plan has one and the tenant never had one; otherwise (and
//!   between paid plans) an invoice for the new plan's first period, due now, with the
//!   plan pending until it is paid. To a cheaper plan or `free`: pending, at the end
//!   of the period. To the plan it is on: any pending change or cancellation is
//!   withdrawn (with nothing pending, nothing changes).
//! - [`cancel`] (`DELETE /subscriptions/current`): to `free` at the end of the period.
//! - [`renew`] (the `billing.renewals` job): the status machine of `lifecycle`, applied
//!   until nothing is due as of "now".
//! - [`pay_invoice`] (`billing::record_payment`): what a paid invoice paid for.
//! - [`put_on_plan`] (the platform admin): a plan at once, no invoice.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{
    db::{self, PlanRow, SubscriptionRow},
    lifecycle::{self, NewInvoice, OpenInvoice, Period, Purpose, State, Status, Terms, Transition},
    period::{Interval, period_end},
};
use crate::{
    error::Error,
    modules::{billing, notifications, rbac, tenancy},
    platform::db::RequestTx,
};

/// The plan a cancelled subscription moves to.
pub const FREE_PLAN: &str = "free";

/// More transitions than a subscription can owe in one run (a free tenant idle for
/// decades advances a period per transition): past this the run stops, and the next
/// one goes on.
const MAX_TRANSITIONS: usize = 1000;

fn terms(plan: PlanRow) -> Result<Terms, Error> {
    Ok(Terms {
        interval: Interval::parse(&plan.interval).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!("a plan billed per {}", plan.interval))
        })?,
        code: plan.code,
        name: plan.name,
        price_minor: plan.price_minor,
        currency: plan.currency,
        trial_days: plan.trial_days,
    })
}

async fn plan_terms(tx: &RequestTx, code: &str) -> Result<Terms, Error> {
    terms(db::plan(tx, code).await?)
}

/// The plan a request names: 422 when there is no such plan.
async fn requested_plan(tx: &RequestTx, code: &str) -> Result<Terms, Error> {
    match db::plan(tx, code).await {
        Ok(plan) => terms(plan),
        Err(Error::NotFound) => Err(Error::invalid("plan_code", "there is no such plan")),
        Err(error) => Err(error),
    }
}

fn status(row: &SubscriptionRow) -> Result<Status, Error> {
    Status::parse(&row.status)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("a subscription {}", row.status)))
}

fn open(invoice: &billing::InvoiceRow) -> Result<OpenInvoice, Error> {
    Ok(OpenInvoice {
        id: invoice.id,
        purpose: Purpose::parse(&invoice.purpose).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!("an invoice for {}", invoice.purpose))
        })?,
        due_at: invoice.due_at,
    })
}

/// The machine's view of the locked subscription.
async fn state(tx: &RequestTx, row: &SubscriptionRow) -> Result<State, Error> {
    let pending = match &row.pending_plan_code {
        Some(code) => Some(plan_terms(tx, code).await?),
        None => None,
    };
    let open_invoice = match billing::open_invoice(tx).await? {
        Some(invoice) => Some(open(&invoice)?),
        None => None,
    };
    Ok(State {
        status: status(row)?,
        plan: plan_terms(tx, &row.plan_code).await?,
        pending,
        cancel_at_period_end: row.cancel_at_period_end,
        anchor: row.anchor_at,
        period_start: row.current_period_start,
        period_end: row.current_period_end,
        open_invoice,
    })
}

fn first_period(start: DateTime<Utc>, interval: Interval) -> Result<Period, Error> {
    let end = period_end(start, interval, 1)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("a period from {start} ends past 9999")))?;
    Ok(Period { start, end })
}

/// Voids the open invoice of a plan change, if one is open: the change it was for is
/// replaced or withdrawn.
async fn drop_plan_change(tx: &RequestTx, state: &State, now: DateTime<Utc>) -> Result<(), Error> {
    if let Some(invoice) = &state.open_invoice
        && invoice.purpose == Purpose::PlanChange
    {
        billing::void(tx, invoice.id, now).await?;
    }
    Ok(())
}

/// `PUT /subscriptions/current`: see the module's documentation.
pub async fn change_plan(tx: &RequestTx, plan_code: &str, now: DateTime<Utc>) -> Result<(), Error> {
    let target = requested_plan(tx, plan_code).await?;
    let mut row = db::lock(tx).await?;
    let state = state(tx, &row).await?;
    if state.status == Status::Canceled {
        return Err(Error::Conflict("the subscription is canceled".into()));
    }
    if target.code == row.plan_code {
        if row.pending_plan_code.is_none() && !row.cancel_at_period_end {
            return Ok(());
        }
        drop_plan_change(tx, &state, now).await?;
        row.pending_plan_code = None;
        row.cancel_at_period_end = false;
        return db::save(tx, &row).await;
    }
    if row.pending_plan_code.as_deref() == Some(target.code.as_str()) {
        return Ok(());
    }
    let upgrade = !target.is_free() && target.yearly_price() > state.plan.yearly_price();
    if !upgrade {
        drop_plan_change(tx, &state, now).await?;
        row.pending_plan_code = Some(target.code);
        row.cancel_at_period_end = false;
        return db::save(tx, &row).await;
    }
    if state
        .open_invoice
        .as_ref()
        .is_some_and(|invoice| invoice.purpose == Purpose::Renewal)
    {
        return Err(Error::Conflict(
            "an invoice of the current plan is open: pay it before moving to a pricier plan".into(),
        ));
    }
    drop_plan_change(tx, &state, now).await?;
    row.cancel_at_period_end = false;
    if state.plan.is_free() && target.trial_days > 0 && !row.trial_used {
        let trial_end = now + TimeDelta::days(i64::from(target.trial_days));
        row.plan_code = target.code;
        row.status = Status::Trialing.as_str().into();
        row.trial_end = Some(trial_end);
        row.trial_used = true;
        // The paid periods start when the trial ends.
        row.anchor_at = trial_end;
        row.current_period_start = now;
        row.current_period_end = trial_end;
        row.pending_plan_code = None;
        return db::save(tx, &row).await;
    }
    let period = first_period(now, target.interval)?;
    billing::issue(
        tx,
        &NewInvoice {
            purpose: Purpose::PlanChange,
            plan: target.clone(),
            period,
            due_at: now,
        },
        now,
    )
    .await?;
    row.pending_plan_code = Some(target.code);
    db::save(tx, &row).await
}

/// `DELETE /subscriptions/current`: to `free` at the end of the period; a pending
/// change is withdrawn (an unpaid upgrade's invoice voided).
pub async fn cancel(tx: &RequestTx, now: DateTime<Utc>) -> Result<(), Error> {
    let mut row = db::lock(tx).await?;
    let state = state(tx, &row).await?;
    if state.status == Status::Canceled {
        return Err(Error::Conflict("the subscription is canceled".into()));
    }
    if row.cancel_at_period_end && row.pending_plan_code.is_none() {
        return Ok(());
    }
    drop_plan_change(tx, &state, now).await?;
    row.pending_plan_code = None;
    row.cancel_at_period_end = true;
    db::save(tx, &row).await
}

/// The platform admin's `PUT /platform/tenants/{id}/subscription`: `plan_code` at
/// once, active, a period from `now`, nothing pending, no invoice; an open invoice is
/// voided (what it was for no longer applies). Whether the tenant had its trial
/// stays as it was.
pub async fn put_on_plan(tx: &RequestTx, plan_code: &str, now: DateTime<Utc>) -> Result<(), Error> {
    // An unknown tenant (no subscription in its context) is a 404 before the plan.
    let mut row = db::lock(tx).await?;
    let target = requested_plan(tx, plan_code).await?;
    if let Some(invoice) = billing::open_invoice(tx).await? {
        billing::void(tx, invoice.id, now).await?;
    }
    let period = first_period(now, target.interval)?;
    row.plan_code = target.code;
    row.status = Status::Active.as_str().into();
    row.trial_end = None;
    row.anchor_at = now;
    row.current_period_start = period.start;
    row.current_period_end = period.end;
    row.cancel_at_period_end = false;
    row.pending_plan_code = None;
    db::save(tx, &row).await
}

/// Applies every transition of the context tenant's subscription due as of `now`
/// (`lifecycle::next`, with `grace` before `unpaid`); how many.
pub async fn renew(tx: &RequestTx, now: DateTime<Utc>, grace: TimeDelta) -> Result<usize, Error> {
    let free = plan_terms(tx, FREE_PLAN).await?;
    let mut row = db::lock(tx).await?;
    let mut applied = 0;
    while applied < MAX_TRANSITIONS {
        let state = state(tx, &row).await?;
        let Some(transition) = lifecycle::next(&state, &free, now, grace) else {
            break;
        };
        apply(tx, &mut row, transition, now, grace).await?;
        db::save(tx, &row).await?;
        applied += 1;
    }
    Ok(applied)
}

async fn apply(
    tx: &RequestTx,
    row: &mut SubscriptionRow,
    transition: Transition,
    now: DateTime<Utc>,
    grace: TimeDelta,
) -> Result<(), Error> {
    match transition {
        Transition::MoveToFree {
            plan,
            anchor,
            period,
            void,
        } => {
            if let Some(invoice) = void {
                billing::void(tx, invoice, now).await?;
            }
            row.plan_code = plan.code;
            row.status = Status::Active.as_str().into();
            row.trial_end = None;
            row.anchor_at = anchor;
            row.current_period_start = period.start;
            row.current_period_end = period.end;
            row.cancel_at_period_end = false;
            row.pending_plan_code = None;
        }
        Transition::AdvanceFree { period } => {
            row.current_period_start = period.start;
            row.current_period_end = period.end;
        }
        Transition::Renew {
            invoice,
            anchor,
            void,
        } => {
            if let Some(invoice) = void {
                billing::void(tx, invoice, now).await?;
            }
            billing::issue(tx, &invoice, now).await?;
            // The plan of the next period applies now (a pending downgrade); the period
            // itself advances when its invoice is paid.
            row.plan_code = invoice.plan.code;
            row.pending_plan_code = None;
            row.status = Status::Active.as_str().into();
            row.trial_end = None;
            row.anchor_at = anchor;
        }
        Transition::PastDue { invoice } => {
            row.status = Status::PastDue.as_str().into();
            notify_past_due(tx, invoice, grace).await?;
        }
        Transition::Unpaid { .. } => {
            row.status = Status::Unpaid.as_str().into();
        }
    }
    Ok(())
}

async fn notify_past_due(tx: &RequestTx, invoice_id: Uuid, grace: TimeDelta) -> Result<(), Error> {
    let invoice = billing::invoice(tx, invoice_id).await?;
    let tenant = tenancy::current_tenant(tx).await?;
    let amount = billing::amount(invoice.total_minor, &invoice.currency);
    let grace_ends_at = billing::email_time(invoice.due_at + grace);
    let data = json!({
        "invoice_id": invoice.id,
        "number": invoice.number,
        "total_minor": invoice.total_minor,
        "currency": invoice.currency,
        "amount": amount,
        "due_at": billing::email_time(invoice.due_at),
        "grace_ends_at": grace_ends_at,
        "tenant_name": tenant.name,
    });
    for owner in rbac::service::active_owners(tx).await? {
        notifications::notify(
            tx,
            owner,
            "subscription.past_due",
            "Your subscription is past due",
            &format!(
                "Invoice {} ({amount}) is not paid. Everything keeps working until {grace_ends_at}.",
                invoice.number
            ),
            &data,
        )
        .await?;
    }
    Ok(())
}

/// `billing::record_payment`: marks the invoice paid and applies what it paid for.
pub async fn pay_invoice(
    tx: &RequestTx,
    invoice_id: Uuid,
    reference: &str,
    paid_at: DateTime<Utc>,
) -> Result<billing::Payment, Error> {
    let reference = reference.trim();
    if reference.is_empty() {
        return Err(Error::invalid("reference", "a payment has a receipt"));
    }
    // The subscription's lock first, as every change of it takes it: a renewal
    // running meanwhile sees the payment, or the payment sees the renewal.
    let mut row = db::lock(tx).await?;
    let Some(invoice) = billing::mark_paid(tx, invoice_id, reference, paid_at).await? else {
        let invoice = billing::invoice(tx, invoice_id).await?;
        return Ok(match invoice.status.as_str() {
            "paid" => billing::Payment::AlreadyPaid(invoice),
            _ => billing::Payment::Void(invoice),
        });
    };
    let purpose = Purpose::parse(&invoice.purpose)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("an invoice for {}", invoice.purpose)))?;
    if purpose == Purpose::PlanChange {
        // A new plan from the start of its first period: a grid of its own.
        row.anchor_at = invoice.period_start;
    }
    if row.pending_plan_code.as_deref() == Some(invoice.plan_code.as_str()) {
        row.pending_plan_code = None;
    }
    row.plan_code = invoice.plan_code.clone();
    row.status = Status::Active.as_str().into();
    row.trial_end = None;
    row.current_period_start = invoice.period_start;
    row.current_period_end = invoice.period_end;
    db::save(tx, &row).await?;
    Ok(billing::Payment::Applied(invoice))
}
