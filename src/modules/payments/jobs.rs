//! Reconciliation: `payments.reconcile` (every minute, and `rowguard jobs run
//! payments.reconcile --at T`) fans out one `payments.reconcile_tenant` job per tenant
//! with a payment pending for over two minutes, as of the sweep's "now". Each asks
//! Daraja about them (the STK query) in its tenant's context: "still processing"
//! leaves a payment pending, a result settles it as a callback would (a lost callback
//! is recovered so), and a payment settled meanwhile is left alone.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::future::BoxFuture;
use serde_json::json;

use super::{
    db,
    gateway::{Gateway, GatewayError, QueryAnswer},
    service,
};
use crate::{
    modules::AppState,
    platform::db::Scope,
    platform::jobs::{Every, FnHandler, Handler, JobError, JobRun, Kind},
};

pub const RECONCILE: &str = "payments.reconcile";
pub const RECONCILE_TENANT: &str = "payments.reconcile_tenant";

/// How long a payment waits for its callback before it is asked about: Daraja's
/// prompt times out after about a minute, and its callback follows.
pub const PENDING_BEFORE_QUERY: TimeDelta = TimeDelta::minutes(2);

/// At most this many queries per tenant per run (the next minute takes the rest).
const QUERIES_PER_RUN: i64 = 20;

pub fn jobs(state: &AppState) -> Vec<Kind> {
    vec![
        Kind::periodic(RECONCILE, Every::Minute, FnHandler(sweep)),
        Kind::new(
            RECONCILE_TENANT,
            Reconcile {
                gateway: state.payments.gateway.clone(),
            },
        ),
    ]
}

fn sweep(run: JobRun<'_>) -> BoxFuture<'_, Result<(), JobError>> {
    Box::pin(async move {
        let before = run.now - PENDING_BEFORE_QUERY;
        // On the queue's machinery (the function is its, like the other fan-outs):
        // the sweep's own transaction is a platform job's, which sees no payments.
        let machinery = run
            .queue
            .machinery()
            .begin_context(&Scope::anonymous())
            .await?;
        let statement = match machinery
            .prepare("SELECT app.enqueue_payment_reconciliations($1, $2, $3, $4)")
            .await
        {
            Ok(statement) => statement,
            Err(error) => {
                machinery.rollback().await;
                return Err(error.into());
            }
        };
        let payload = json!({ "now": run.now });
        let key = format!("{RECONCILE_TENANT}@{}", run.now.to_rfc3339());
        let rows = machinery
            .query_and_commit(&statement, &[&RECONCILE_TENANT, &payload, &key, &before])
            .await?;
        let enqueued: i32 = match rows.first() {
            Some(row) => row.try_get(0).map_err(crate::error::Error::from)?,
            None => 0,
        };
        if enqueued > 0 {
            tracing::info!(enqueued, now = %run.now, "payment reconciliations fanned out");
        }
        Ok(())
    })
}

struct Reconcile {
    gateway: Arc<dyn Gateway>,
}

impl Handler for Reconcile {
    fn run<'a>(&'a self, run: JobRun<'a>) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            if run.job.tenant_id.is_none() {
                return Err(JobError::Permanent(
                    "a reconciliation runs in a tenant's context".into(),
                ));
            }
            reconcile(run.tx, self.gateway.as_ref(), run.now).await
        })
    }
}

async fn reconcile(
    tx: &crate::platform::db::RequestTx,
    gateway: &dyn Gateway,
    now: DateTime<Utc>,
) -> Result<(), JobError> {
    let pending = db::stale_pending(tx, now - PENDING_BEFORE_QUERY, QUERIES_PER_RUN).await?;
    for payment in pending {
        // Daraja checks the Timestamp against its clock: the real time, whatever
        // instant the job runs as of.
        let answer = match gateway
            .stk_query(&payment.checkout_request_id, Utc::now())
            .await
        {
            Ok(answer) => answer,
            Err(GatewayError::NotConfigured) => {
                return Err(JobError::Permanent("M-Pesa is not configured".into()));
            }
            Err(error) => {
                // One payment's trouble does not hold up the others; it is asked
                // again next minute.
                tracing::warn!(payment = %payment.id, %error, "an STK query failed");
                continue;
            }
        };
        let QueryAnswer::Result { code, description } = answer else {
            continue;
        };
        let settled = service::settle(
            tx,
            &payment,
            &service::Reported {
                code,
                description: &description,
                // The query is our own authenticated call about this push: what it
                // reports as paid is the amount asked.
                amount_minor: Some(payment.amount_minor),
                receipt: None,
            },
            now,
        )
        .await?;
        if settled {
            tracing::info!(payment = %payment.id, code, "a pending payment settled by an STK query");
        }
    }
    Ok(())
}
