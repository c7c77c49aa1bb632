//! `tenants.purge` (daily, and `rowguard jobs run tenants.purge --at T` to rehearse
//! the future): erases every tenant deleted `ROWGUARD_TENANT_PURGE_DAYS` or more
//! before the job's "now", one tenant per transaction (`app.purge_deleted_tenant`,
//! sql/V19__tenant_lifecycle.sql), on the machinery's role.
//!
//! Not a fan-out of per-tenant jobs like the other sweeps: a job of the tenant would
//! be erased with it (the queue's rows cascade from their tenant), and there is no
//! tenant context to run in once the tenant row is gone. Each erasure commits on its
//! own, so a sweep that fails half-way has lost nothing (the next one goes on) and
//! running it twice erases nothing more.

use chrono::TimeDelta;
use futures_util::future::BoxFuture;
use uuid::Uuid;

use crate::{
    error::Error,
    modules::AppState,
    platform::{
        db::{Database, Scope},
        jobs::{Every, Handler, JobError, JobRun, Kind},
    },
};

pub const PURGE: &str = "tenants.purge";

pub fn jobs(state: &AppState) -> Vec<Kind> {
    vec![Kind::periodic(
        PURGE,
        Every::Day,
        Purge {
            after: state.tenant_purge_after,
            machinery: state.queue.machinery().clone(),
        },
    )]
}

struct Purge {
    after: TimeDelta,
    machinery: Database,
}

impl Handler for Purge {
    fn run<'a>(&'a self, run: JobRun<'a>) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let deleted_before = run.now - self.after;
            let mut purged = 0_u64;
            while let Some(tenant) = purge_one(&self.machinery, deleted_before).await? {
                purged += 1;
                tracing::info!(%tenant, %deleted_before, "deleted tenant purged");
            }
            if purged > 0 {
                tracing::info!(purged, now = %run.now, "tenants purged");
            }
            Ok(())
        })
    }
}

/// Erases one tenant deleted at or before `deleted_before`, in a transaction of its
/// own; its id, or `None` when none is due.
async fn purge_one(
    machinery: &Database,
    deleted_before: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Uuid>, Error> {
    let tx = machinery.begin_context(&Scope::anonymous()).await?;
    let purged = async {
        let statement = tx
            .prepare("SELECT app.purge_deleted_tenant($1) AS tenant_id")
            .await?;
        let tenant: Option<Uuid> = tx
            .query_one(&statement, &[&deleted_before])
            .await?
            .try_get("tenant_id")?;
        Ok(tenant)
    }
    .await;
    tx.finish(purged).await
}
