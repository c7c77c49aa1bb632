//! The SQL of plans and subscriptions. No tenant filter: the policy of
//! `policies/subscriptions.sql` shows a request its own tenant's subscription only.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use crate::{error::Error, platform::db::RequestTx};

#[derive(Debug, Clone)]
pub struct PlanRow {
    pub code: String,
    pub name: String,
    pub price_minor: i64,
    pub currency: String,
    pub interval: String,
    pub trial_days: i32,
    /// Every feature, whether the plan has it.
    pub features: BTreeMap<String, bool>,
    /// Every limit kind; `None`: unlimited.
    pub limits: BTreeMap<String, Option<i64>>,
}

/// A plan with its features (every one, true or false) and its limits folded in.
macro_rules! plan_select {
    () => {
        "SELECT p.code, p.name, p.price_minor, p.currency, p.billing_interval, p.trial_days,
                (SELECT jsonb_object_agg(f.code, EXISTS (SELECT 1 FROM plan_features AS pf
                                                         WHERE pf.plan_code = p.code
                                                           AND pf.feature_code = f.code))
                 FROM features AS f) AS features,
                (SELECT jsonb_object_agg(l.limit_code, l.max)
                 FROM plan_limits AS l WHERE l.plan_code = p.code) AS limits
         FROM plans AS p"
    };
}

impl PlanRow {
    fn from_row(row: &Row) -> Result<PlanRow, Error> {
        let features: serde_json::Value = row.try_get("features")?;
        let limits: serde_json::Value = row.try_get("limits")?;
        Ok(PlanRow {
            code: row.try_get("code")?,
            name: row.try_get("name")?,
            price_minor: row.try_get("price_minor")?,
            currency: row.try_get("currency")?,
            interval: row.try_get("billing_interval")?,
            trial_days: row.try_get("trial_days")?,
            features: serde_json::from_value(features).map_err(unreadable)?,
            limits: serde_json::from_value(limits).map_err(unreadable)?,
        })
    }
}

/// A plan whose features or limits do not read as maps: the seed is broken, a bug.
fn unreadable(error: serde_json::Error) -> Error {
    Error::Internal(anyhow::anyhow!("a plan's features or limits: {error}"))
}

/// Every plan, cheapest first, and commits.
pub async fn list(tx: RequestTx) -> Result<Vec<PlanRow>, Error> {
    let statement = tx
        .prepare(concat!(plan_select!(), " ORDER BY p.position"))
        .await?;
    let rows = tx.query_and_commit(&statement, &[]).await?;
    rows.iter().map(PlanRow::from_row).collect()
}

pub async fn plan(tx: &RequestTx, code: &str) -> Result<PlanRow, Error> {
    let statement = tx
        .prepare(concat!(plan_select!(), " WHERE p.code = $1"))
        .await?;
    let row = tx
        .query_opt(&statement, &[&code])
        .await?
        .ok_or(Error::NotFound)?;
    PlanRow::from_row(&row)
}

pub async fn plan_exists(tx: &RequestTx, code: &str) -> Result<bool, Error> {
    let statement = tx
        .prepare("SELECT EXISTS (SELECT 1 FROM plans WHERE code = $1)")
        .await?;
    Ok(tx.query_one(&statement, &[&code]).await?.try_get(0)?)
}

#[derive(Debug, Clone)]
pub struct SubscriptionRow {
    pub plan_code: String,
    pub status: String,
    pub trial_end: Option<DateTime<Utc>>,
    pub trial_used: bool,
    pub anchor_at: DateTime<Utc>,
    pub current_period_start: DateTime<Utc>,
    pub current_period_end: DateTime<Utc>,
    pub cancel_at_period_end: bool,
    pub pending_plan_code: Option<String>,
}

/// The columns of [`SubscriptionRow`], in a literal the statements are built from at
/// compile time.
macro_rules! subscription_columns {
    () => {
        "plan_code, status, trial_end, trial_used, anchor_at, current_period_start, \
         current_period_end, cancel_at_period_end, pending_plan_code"
    };
}

impl SubscriptionRow {
    fn from_row(row: &Row) -> Result<SubscriptionRow, Error> {
        Ok(SubscriptionRow {
            plan_code: row.try_get("plan_code")?,
            status: row.try_get("status")?,
            trial_end: row.try_get("trial_end")?,
            trial_used: row.try_get("trial_used")?,
            anchor_at: row.try_get("anchor_at")?,
            current_period_start: row.try_get("current_period_start")?,
            current_period_end: row.try_get("current_period_end")?,
            cancel_at_period_end: row.try_get("cancel_at_period_end")?,
            pending_plan_code: row.try_get("pending_plan_code")?,
        })
    }
}

/// Starts the context tenant's subscription on `plan_code`, its first period from
/// `now` (one interval of the plan); false when there is no such plan.
pub async fn start(tx: &RequestTx, plan_code: &str, now: DateTime<Utc>) -> Result<bool, Error> {
    let statement = tx
        .prepare(
            "INSERT INTO subscriptions (tenant_id, plan_code, anchor_at, current_period_start, current_period_end)
             SELECT app.current_tenant_id(), p.code, $2::timestamptz, $2::timestamptz,
                    $2::timestamptz + CASE p.billing_interval WHEN 'year' THEN interval '1 year' ELSE interval '1 month' END
             FROM plans AS p WHERE p.code = $1",
        )
        .await?;
    Ok(tx.execute(&statement, &[&plan_code, &now]).await? == 1)
}

/// Starts the context tenant's subscription on a plan its new Owner chose: its trial
/// when it has one (`trialing` until the trial ends, the trial used, the first paid
/// period anchored at the trial's end), otherwise active, which only a free plan can
/// be without a payment. `false`: no such plan, or a paid one without a trial.
pub async fn start_chosen(
    tx: &RequestTx,
    plan_code: &str,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    let statement = tx
        .prepare(
            "INSERT INTO subscriptions (tenant_id, plan_code, status, trial_end, trial_used,
                                        anchor_at, current_period_start, current_period_end)
             SELECT app.current_tenant_id(), p.code, t.status, t.trial_end, t.trial_end IS NOT NULL,
                    coalesce(t.trial_end, $2::timestamptz), $2::timestamptz,
                    coalesce(t.trial_end, $2::timestamptz
                        + CASE p.billing_interval WHEN 'year' THEN interval '1 year' ELSE interval '1 month' END)
             FROM plans AS p
             CROSS JOIN LATERAL (
                 SELECT CASE WHEN p.trial_days > 0 THEN 'trialing' ELSE 'active' END AS status,
                        CASE WHEN p.trial_days > 0
                             THEN $2::timestamptz + make_interval(days => p.trial_days) END AS trial_end
             ) AS t
             WHERE p.code = $1 AND (p.trial_days > 0 OR p.price_minor = 0)",
        )
        .await?;
    Ok(tx.execute(&statement, &[&plan_code, &now]).await? == 1)
}

/// Whether [`start_chosen`] can start `plan_code`.
pub async fn can_start(tx: &RequestTx, plan_code: &str) -> Result<bool, Error> {
    let statement = tx
        .prepare(
            "SELECT EXISTS (SELECT 1 FROM plans AS p
                            WHERE p.code = $1 AND (p.trial_days > 0 OR p.price_minor = 0))",
        )
        .await?;
    Ok(tx.query_one(&statement, &[&plan_code]).await?.try_get(0)?)
}

/// The context tenant's subscription.
pub async fn current(tx: &RequestTx) -> Result<SubscriptionRow, Error> {
    let statement = tx
        .prepare(concat!(
            "SELECT ",
            subscription_columns!(),
            " FROM subscriptions"
        ))
        .await?;
    let row = tx
        .query_opt(&statement, &[])
        .await?
        .ok_or(Error::NotFound)?;
    SubscriptionRow::from_row(&row)
}

/// The context tenant's subscription, locked until the transaction ends: every change
/// of it (a plan change, a renewal, a payment) takes this lock first, so they apply
/// one after the other and each sees the last one's result.
pub async fn lock(tx: &RequestTx) -> Result<SubscriptionRow, Error> {
    let statement = tx
        .prepare(concat!(
            "SELECT ",
            subscription_columns!(),
            " FROM subscriptions FOR UPDATE"
        ))
        .await?;
    let row = tx
        .query_opt(&statement, &[])
        .await?
        .ok_or(Error::NotFound)?;
    SubscriptionRow::from_row(&row)
}

/// Writes every column that moves (the caller holds the row's [`lock`]).
pub async fn save(tx: &RequestTx, row: &SubscriptionRow) -> Result<(), Error> {
    let statement = tx
        .prepare(
            "UPDATE subscriptions
             SET plan_code = $1, status = $2, trial_end = $3, trial_used = $4, anchor_at = $5,
                 current_period_start = $6, current_period_end = $7, cancel_at_period_end = $8,
                 pending_plan_code = $9, updated_at = now()",
        )
        .await?;
    let updated = tx
        .execute(
            &statement,
            &[
                &row.plan_code,
                &row.status,
                &row.trial_end,
                &row.trial_used,
                &row.anchor_at,
                &row.current_period_start,
                &row.current_period_end,
                &row.cancel_at_period_end,
                &row.pending_plan_code,
            ],
        )
        .await?;
    if updated == 1 {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}
