//! `usage.aggregate`: hourly, a sweep that fans out one `usage.aggregate_tenant` job
//! per active tenant; each, in its tenant's context, records the period's counts (the
//! history) and tells the tenant's Owners, in the app and by email, when a limit
//! reaches 80% and 100%: once per period and threshold, however often it runs
//! (`usage_thresholds` holds the notices sent).
//!
//! Hourly rather than every minute: the history needs no finer grain, the row limits
//! are enforced when rows are created (this only informs), and a sweep per minute
//! would be a job per tenant per minute for notices that can wait an hour. The
//! api_requests figure the API shows is the flushed one (seconds behind), not this.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde_json::json;
use uuid::Uuid;

use super::db::{self, Metric, Usage};
use crate::{
    error::Error,
    modules::{AppState, notifications, rbac, tenancy},
    platform::jobs::{Every, FnHandler, JobError, JobRun, Kind},
};

pub const AGGREGATE: &str = "usage.aggregate";
pub const AGGREGATE_TENANT: &str = "usage.aggregate_tenant";

/// The notification kind (emailed: `notifications::EMAILED_KINDS`).
pub const THRESHOLD_REACHED: &str = "usage.threshold_reached";

/// The thresholds that are told, in percent of a limit.
pub const THRESHOLDS: [i16; 2] = [80, 100];

pub fn jobs(_state: &AppState) -> Vec<Kind> {
    vec![
        Kind::periodic(AGGREGATE, Every::Hour, FnHandler(sweep)),
        Kind::new(AGGREGATE_TENANT, FnHandler(aggregate)),
    ]
}

fn sweep(run: JobRun<'_>) -> BoxFuture<'_, Result<(), JobError>> {
    Box::pin(async move {
        if run.job.tenant_id.is_some() {
            return Err(JobError::Permanent(format!(
                "{AGGREGATE} is a sweep over every tenant, not a tenant's job"
            )));
        }
        // Keyed by the sweep's instant: a sweep retried after a failure enqueues no
        // tenant twice while the first ones are live.
        let key = format!("{AGGREGATE_TENANT}@{}", run.now.to_rfc3339());
        let enqueued = run
            .queue
            .enqueue_for_active_tenants(AGGREGATE_TENANT, &json!({ "now": run.now }), &key, None)
            .await?;
        tracing::debug!(enqueued, now = %run.now, "usage aggregation fanned out");
        Ok(())
    })
}

fn aggregate(run: JobRun<'_>) -> BoxFuture<'_, Result<(), JobError>> {
    Box::pin(async move {
        let Some(tenant_id) = run.job.tenant_id else {
            return Err(JobError::Permanent(format!(
                "{AGGREGATE_TENANT} runs for one tenant"
            )));
        };
        let usage = match db::current(run.tx, run.now).await {
            Ok(usage) => usage,
            // No subscription: nothing to measure against (a tenant being deleted).
            Err(Error::NotFound) => return Ok(()),
            Err(error) => return Err(error.into()),
        };
        db::record(run.tx, &usage, run.now).await?;
        let reached = thresholds_reached(&usage.metrics);
        if reached.is_empty() {
            return Ok(());
        }
        let owners = rbac::service::active_owners(run.tx).await?;
        let tenant = tenancy::tenant(run.tx, tenant_id).await?;
        for (metric, threshold) in reached {
            if db::mark_threshold(run.tx, usage.period_start, metric, threshold, run.now).await? {
                tell_owners(run.tx, &owners, &tenant.name, &usage, metric, threshold).await?;
            }
        }
        Ok(())
    })
}

/// Each limit's thresholds reached, lowest first: a limit at 100% has reached 80%
/// too, and each notice goes out once. Unlimited limits, and nothing used, reach none.
pub fn thresholds_reached(metrics: &[Metric]) -> Vec<(&Metric, i16)> {
    metrics
        .iter()
        .filter_map(|metric| Some((metric, metric.max?)))
        .filter(|(metric, max)| metric.value > 0 && *max > 0)
        .flat_map(|(metric, max)| {
            THRESHOLDS
                .iter()
                // In i128: a count times 100 cannot overflow.
                .filter(move |threshold| {
                    i128::from(metric.value) * 100 >= i128::from(max) * i128::from(**threshold)
                })
                .map(move |threshold| (metric, *threshold))
        })
        .collect()
}

/// How a limit is named in a sentence.
fn limit_name(code: &str) -> &str {
    match code {
        "api_requests" => "API requests",
        other => other,
    }
}

/// An instant as emails write it (as `app.email_time` does): `2026-12-01 14:00 UTC`.
fn email_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

async fn tell_owners(
    tx: &crate::platform::db::RequestTx,
    owners: &[Uuid],
    tenant_name: &str,
    usage: &Usage,
    metric: &Metric,
    threshold: i16,
) -> Result<(), Error> {
    let name = limit_name(metric.code);
    let max = metric.max.unwrap_or_default();
    let title = format!("{tenant_name} has used {threshold}% of its {name} limit");
    let body = format!(
        "{} of {max} {name} this period, which ends {}.",
        metric.value,
        email_time(usage.period_end)
    );
    // What a client needs (the limit, the period) and what the email says
    // (`period_ends`: the end as a sentence writes it).
    let data = json!({
        "limit": metric.code,
        "limit_name": name,
        "threshold": threshold,
        "value": metric.value,
        "max": max,
        "period_start": usage.period_start,
        "period_end": usage.period_end,
        "period_ends": email_time(usage.period_end),
        "tenant_name": tenant_name,
    });
    for owner in owners {
        notifications::notify(tx, *owner, THRESHOLD_REACHED, &title, &body, &data).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(code: &'static str, value: i64, max: Option<i64>) -> Metric {
        Metric { code, value, max }
    }

    fn reached(value: i64, max: Option<i64>) -> Vec<i16> {
        let metrics = [metric("products", value, max)];
        thresholds_reached(&metrics)
            .into_iter()
            .map(|(_, threshold)| threshold)
            .collect()
    }

    #[test]
    fn a_limit_reaches_80_percent_at_four_fifths_and_not_before() {
        assert_eq!(reached(79, Some(100)), Vec::<i16>::new());
        assert_eq!(reached(80, Some(100)), [80]);
        assert_eq!(reached(99, Some(100)), [80]);
    }

    #[test]
    fn a_limit_at_or_over_its_maximum_has_reached_both_thresholds() {
        assert_eq!(reached(100, Some(100)), [80, 100]);
        assert_eq!(reached(3, Some(3)), [80, 100]);
        assert_eq!(reached(5, Some(3)), [80, 100]);
        // 2 of 3 is 66%.
        assert_eq!(reached(2, Some(3)), Vec::<i16>::new());
    }

    #[test]
    fn an_unlimited_limit_or_nothing_used_reaches_no_threshold() {
        assert_eq!(reached(1_000_000, None), Vec::<i16>::new());
        assert_eq!(reached(0, Some(0)), Vec::<i16>::new());
        assert_eq!(reached(0, Some(10)), Vec::<i16>::new());
    }

    #[test]
    fn counts_near_the_largest_integer_do_not_overflow() {
        assert_eq!(reached(i64::MAX, Some(i64::MAX)), [80, 100]);
    }

    #[test]
    fn an_email_time_is_written_in_utc_to_the_minute() {
        let at: DateTime<Utc> = "2026-12-01T14:05:59Z".parse().unwrap();
        assert_eq!(email_time(at), "2026-12-01 14:05 UTC");
    }
}
