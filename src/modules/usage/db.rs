//! The SQL of usage. No tenant filter here: every table read is tenant-scoped, so the
//! policies count the context's tenant's rows only.
//!
//! The counts of stores, members and products are the limit check's own definitions
//! (`app.plan_limit_usage`, sql/V14), read in the one statement: what usage shows is
//! what `limit_exceeded` counts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::{
    error::Error,
    platform::db::{RequestTx, page::Page},
};

/// The limit kinds, in the order the API lists them.
pub const METRICS: [&str; 4] = ["stores", "members", "products", "api_requests"];

/// One limit's count in a period, and the limit (`None`: unlimited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metric {
    pub code: &'static str,
    pub value: i64,
    pub max: Option<i64>,
}

/// The tenant's current period and what it uses of each limit.
#[derive(Debug, Clone)]
pub struct Usage {
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub metrics: Vec<Metric>,
}

/// The counts are the limits' own (`app.plan_limit_usage`, sql/V14: members are the
/// active memberships plus the invitations still pending at `$1`), so usage shows what
/// `limit_exceeded` counts; api_requests are what the servers' flushes recorded for
/// this period so far.
const CURRENT: &str = "
    SELECT s.current_period_start, s.current_period_end,
           app.plan_limit_usage(s.tenant_id, 'stores', $1) AS stores,
           app.plan_limit_usage(s.tenant_id, 'members', $1) AS members,
           app.plan_limit_usage(s.tenant_id, 'products', $1) AS products,
           coalesce((SELECT u.api_requests FROM usage_periods AS u
                     WHERE u.period_start = s.current_period_start), 0) AS api_requests,
           (SELECT jsonb_object_agg(l.limit_code, l.max) FROM plan_limits AS l
            WHERE l.plan_code = s.plan_code) AS limits
    FROM subscriptions AS s";

fn usage(row: &Row) -> Result<Usage, Error> {
    let limits: serde_json::Value = row.try_get("limits")?;
    let limits: BTreeMap<String, Option<i64>> = serde_json::from_value(limits)
        .map_err(|error| Error::Internal(anyhow::anyhow!("a plan's limits: {error}")))?;
    let metrics = METRICS
        .iter()
        .map(|code| {
            let max = limits
                .get(*code)
                .copied()
                .ok_or_else(|| Error::Internal(anyhow::anyhow!("the plan has no {code} limit")))?;
            Ok(Metric {
                code,
                value: row.try_get(*code)?,
                max,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Usage {
        period_start: row.try_get("current_period_start")?,
        period_end: row.try_get("current_period_end")?,
        metrics,
    })
}

/// The context tenant's usage as of `now`, then commits (a request's last statement).
pub async fn current_and_commit(tx: RequestTx, now: DateTime<Utc>) -> Result<Usage, Error> {
    let statement = tx.prepare(CURRENT).await?;
    let rows = tx.query_and_commit(&statement, &[&now]).await?;
    usage(rows.first().ok_or(Error::NotFound)?)
}

/// The context tenant's usage as of `now`.
pub async fn current(tx: &RequestTx, now: DateTime<Utc>) -> Result<Usage, Error> {
    let statement = tx.prepare(CURRENT).await?;
    usage(
        &tx.query_opt(&statement, &[&now])
            .await?
            .ok_or(Error::NotFound)?,
    )
}

/// Records `usage` as the period's history (its period row opened if no flush did).
pub async fn record(tx: &RequestTx, usage: &Usage, now: DateTime<Utc>) -> Result<(), Error> {
    let open = tx
        .prepare(
            "INSERT INTO usage_periods (tenant_id, period_start, period_end)
             VALUES (app.current_tenant_id(), $1, $2)
             ON CONFLICT (tenant_id, period_start) DO NOTHING",
        )
        .await?;
    tx.execute(&open, &[&usage.period_start, &usage.period_end])
        .await?;
    let codes: Vec<&str> = usage.metrics.iter().map(|m| m.code).collect();
    let values: Vec<i64> = usage.metrics.iter().map(|m| m.value).collect();
    let maxes: Vec<Option<i64>> = usage.metrics.iter().map(|m| m.max).collect();
    let record = tx
        .prepare(
            "INSERT INTO usage_metrics (tenant_id, period_start, code, value, max, recorded_at)
             SELECT app.current_tenant_id(), $1, m.code, m.value, m.max, $5
             FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS m (code, value, max)
             ON CONFLICT (tenant_id, period_start, code) DO UPDATE
                 SET value = excluded.value, max = excluded.max, recorded_at = excluded.recorded_at",
        )
        .await?;
    tx.execute(
        &record,
        &[&usage.period_start, &codes, &values, &maxes, &now],
    )
    .await?;
    Ok(())
}

/// Records that the notice of `threshold`% of `metric` in the period went out; false
/// when it had already (this one must not go out again). Two aggregations at once
/// wait for each other here, and the second finds the first's row.
pub async fn mark_threshold(
    tx: &RequestTx,
    period_start: DateTime<Utc>,
    metric: &Metric,
    threshold: i16,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    let Some(max) = metric.max else {
        return Ok(false);
    };
    let statement = tx
        .prepare(
            "INSERT INTO usage_thresholds (tenant_id, period_start, code, threshold, value, max, sent_at)
             VALUES (app.current_tenant_id(), $1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant_id, period_start, code, threshold) DO NOTHING",
        )
        .await?;
    let inserted = tx
        .execute(
            &statement,
            &[
                &period_start,
                &metric.code,
                &threshold,
                &metric.value,
                &max,
                &now,
            ],
        )
        .await?;
    Ok(inserted == 1)
}

/// A past period: its api_requests (flushed) and the counts the aggregation last
/// recorded in it (`code` → (value, max)).
#[derive(Debug, Clone)]
pub struct PeriodRow {
    pub id: Uuid,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub api_requests: i64,
    pub recorded: BTreeMap<String, Recorded>,
}

#[derive(Debug, Clone, Copy, serde::Deserialize)]
pub struct Recorded {
    pub value: i64,
    pub max: Option<i64>,
}

/// The periods before the subscription's current one, newest first, then commits.
pub async fn history(tx: RequestTx, page: &Page) -> Result<Vec<PeriodRow>, Error> {
    let statement = tx
        .prepare(
            "SELECT p.id, p.period_start, p.period_end, p.api_requests,
                    coalesce((SELECT jsonb_object_agg(m.code, jsonb_build_object('value', m.value, 'max', m.max))
                              FROM usage_metrics AS m WHERE m.period_start = p.period_start), '{}') AS recorded
             FROM usage_periods AS p
             WHERE p.period_start < (SELECT s.current_period_start FROM subscriptions AS s)
               AND (p.period_start, p.id) < ($1, $2)
             ORDER BY p.period_start DESC, p.id DESC
             LIMIT $3",
        )
        .await?;
    let (before_time, before_id) = page.before();
    tx.query_and_commit(&statement, &[&before_time, &before_id, &page.fetch()])
        .await?
        .iter()
        .map(|row| {
            let recorded: serde_json::Value = row.try_get("recorded")?;
            Ok(PeriodRow {
                id: row.try_get("id")?,
                period_start: row.try_get("period_start")?,
                period_end: row.try_get("period_end")?,
                api_requests: row.try_get("api_requests")?,
                recorded: serde_json::from_value(recorded).map_err(|error| {
                    Error::Internal(anyhow::anyhow!("a period's recorded metrics: {error}"))
                })?,
            })
        })
        .collect()
}
