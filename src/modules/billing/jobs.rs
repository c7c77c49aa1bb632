//! Renewals: `billing.renewals` (hourly, and `rowguard jobs run billing.renewals --at
//! T` to rehearse the future) is a sweep: it fans out one `billing.renew` job per
//! active tenant, as of the sweep's "now", in one privileged query. Each runs in its
//! tenant's context under row-level security, like a request, and applies every
//! transition of the subscription due by then (`subscriptions::service::renew`).
//!
//! Running it twice as of one instant issues nothing the second time: the per-tenant
//! jobs are keyed by the instant while they are live, and a renewal that already
//! happened leaves nothing due (the status machine is a function of the rows, and an
//! invoiced period cannot be invoiced again: `invoices_period_idx`).

use chrono::TimeDelta;
use futures_util::future::BoxFuture;
use serde_json::json;

use crate::{
    modules::{AppState, subscriptions},
    platform::jobs::{Every, FnHandler, Handler, JobError, JobRun, Kind},
};

pub const RENEWALS: &str = "billing.renewals";
pub const RENEW: &str = "billing.renew";

pub fn jobs(state: &AppState) -> Vec<Kind> {
    vec![
        Kind::periodic(RENEWALS, Every::Hour, FnHandler(sweep)),
        Kind::new(
            RENEW,
            Renew {
                grace: state.billing_grace,
            },
        ),
    ]
}

fn sweep(run: JobRun<'_>) -> BoxFuture<'_, Result<(), JobError>> {
    Box::pin(async move {
        // Due at once, whatever "now" the sweep runs as of: the instant travels in
        // the payload, and the job must run now to rehearse it.
        let enqueued = run
            .queue
            .enqueue_for_active_tenants(
                RENEW,
                &json!({ "now": run.now }),
                &format!("{RENEW}@{}", run.now.to_rfc3339()),
                None,
            )
            .await?;
        tracing::info!(enqueued, now = %run.now, "renewals fanned out");
        Ok(())
    })
}

struct Renew {
    grace: TimeDelta,
}

impl Handler for Renew {
    fn run<'a>(&'a self, run: JobRun<'a>) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            if run.job.tenant_id.is_none() {
                return Err(JobError::Permanent(
                    "a renewal runs in a tenant's context".into(),
                ));
            }
            let applied = subscriptions::service::renew(run.tx, run.now, self.grace).await?;
            if applied > 0 {
                tracing::info!(
                    tenant = ?run.job.tenant_id,
                    applied,
                    now = %run.now,
                    "subscription renewed"
                );
            }
            Ok(())
        })
    }
}
