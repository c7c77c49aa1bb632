//! The job queue (docs/design.md invariant 10): work after the response, in a
//! PostgreSQL table (`sql/V10__jobs.sql`), with a tenant.
//!
//! - **Enqueue** with [`enqueue`], in the transaction of the change that causes the
//!   job: a rolled-back request leaves no job. The job belongs to the transaction's
//!   tenant context (none: a platform job).
//! - **Claim**: workers ([`worker::Workers`], in `rowguard serve` or `rowguard
//!   worker`, any number of processes) take due jobs with `FOR UPDATE SKIP LOCKED`
//!   under a lease ([`queue::Queue`]), extended while they run; a job whose worker
//!   died is taken over once its lease runs out.
//! - **Run**: each job in a transaction of its own, with its tenant's context under
//!   row-level security like a request ([`JobRun::tx`]); its completion is the last
//!   statement of that transaction, and presents the lease, so the work commits only
//!   if the lease still held. A failure is retried with exponential backoff and
//!   jitter, then the job is `dead`, visible to the platform admin.
//! - **Periodic** kinds ([`Every`]) are fired once per period across all processes;
//!   a sweep over tenants fans out one job per tenant in one privileged query
//!   ([`queue::Queue::enqueue_for_active_tenants`]).
//!
//! Modules register their kinds ([`Kind`]) in `modules::jobs`; this layer knows none.

pub mod queue;
pub mod worker;

use std::{collections::HashMap, fmt, sync::Arc};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use futures_util::future::BoxFuture;
use serde_json::Value;
use uuid::Uuid;

use crate::{error::Error, platform::db::RequestTx};

pub use queue::Queue;
pub use worker::{WorkerOptions, Workers};

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: &'static str,
    pub payload: Value,
    /// While a job with this key is live (queued, running, failed) in the same tenant,
    /// enqueueing another is a no-op.
    pub unique_key: Option<String>,
    /// Not before then (default: now).
    pub run_at: Option<DateTime<Utc>>,
    /// Attempts before it is dead (default 10).
    pub max_attempts: Option<i32>,
}

impl NewJob {
    pub fn new(kind: &'static str, payload: Value) -> NewJob {
        NewJob {
            kind,
            payload,
            unique_key: None,
            run_at: None,
            max_attempts: None,
        }
    }

    pub fn unique(mut self, key: impl Into<String>) -> NewJob {
        self.unique_key = Some(key.into());
        self
    }

    pub fn at(mut self, run_at: DateTime<Utc>) -> NewJob {
        self.run_at = Some(run_at);
        self
    }

    pub fn attempts(mut self, max_attempts: i32) -> NewJob {
        self.max_attempts = Some(max_attempts);
        self
    }
}

/// Enqueues `job` in `tx`, for the tenant of its context. Returns the job's id, or
/// `None` when a live job has the same unique key.
pub async fn enqueue(tx: &RequestTx, job: &NewJob) -> Result<Option<i64>, Error> {
    let statement = tx
        .prepare("SELECT app.enqueue_job($1, $2, $3, $4, $5)")
        .await?;
    let row = tx
        .query_one(
            &statement,
            &[
                &job.kind,
                &job.payload,
                &job.unique_key,
                &job.run_at,
                &job.max_attempts,
            ],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// A claimed job, as its handler sees it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub tenant_id: Option<Uuid>,
    pub kind: String,
    pub payload: Value,
    /// This attempt's number, from 1.
    pub attempt: i32,
    pub max_attempts: i32,
    /// The claim's key: completing or failing the job presents it.
    pub(crate) lease: Uuid,
}

/// What a handler gets: its job, the job's transaction, and the instant it takes as
/// "now" (invariant 12: the payload's `now` when it has one, so `rowguard jobs run
/// --at` rehearses the future; else when the attempt started).
pub struct JobRun<'a> {
    pub job: &'a Job,
    /// Runs as `rowguard_api` with the job's tenant as its context (none for a
    /// platform job). The runner completes the job in it, then commits; a handler
    /// neither commits nor rolls it back.
    pub tx: &'a RequestTx,
    pub now: DateTime<Utc>,
    /// The queue's machinery, for sweeps that fan out (outside `tx`: keyed jobs make
    /// a sweep run twice enqueue once).
    pub queue: &'a Queue,
}

/// Why an attempt failed.
#[derive(Debug)]
pub enum JobError {
    /// Worth trying again later (a server down, a timeout, a database error).
    Retry(String),
    /// Will fail the same way every time (a refused address, a payload that does not
    /// parse): the job is dead at once.
    Permanent(String),
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Retry(why) => write!(f, "{why}"),
            JobError::Permanent(why) => write!(f, "permanent: {why}"),
        }
    }
}

impl From<Error> for JobError {
    fn from(error: Error) -> Self {
        JobError::Retry(error.to_string())
    }
}

/// What a job kind does.
pub trait Handler: Send + Sync + 'static {
    fn run<'a>(&'a self, run: JobRun<'a>) -> BoxFuture<'a, Result<(), JobError>>;
}

/// How often a periodic kind is fired: once per period, the period starting at a
/// whole minute, hour or day (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    Minute,
    Hour,
    Day,
}

impl Every {
    /// The start of the period `now` is in.
    pub fn period_of(self, now: DateTime<Utc>) -> DateTime<Utc> {
        let step = match self {
            Every::Minute => TimeDelta::minutes(1),
            Every::Hour => TimeDelta::hours(1),
            Every::Day => TimeDelta::days(1),
        };
        now.duration_trunc(step).unwrap_or(now)
    }
}

/// A kind of job: its name (`module.action`), its handler, and its period if it is
/// periodic (fired by the schedulers with no tenant; a sweep fans out from there).
#[derive(Clone)]
pub struct Kind {
    pub name: &'static str,
    pub every: Option<Every>,
    pub handler: Arc<dyn Handler>,
}

impl Kind {
    pub fn new(name: &'static str, handler: impl Handler) -> Kind {
        Kind {
            name,
            every: None,
            handler: Arc::new(handler),
        }
    }

    pub fn periodic(name: &'static str, every: Every, handler: impl Handler) -> Kind {
        Kind {
            name,
            every: Some(every),
            handler: Arc::new(handler),
        }
    }
}

/// The kinds a worker can run, by name.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: Arc<HashMap<&'static str, Kind>>,
}

impl Registry {
    pub fn new(kinds: impl IntoIterator<Item = Kind>) -> Registry {
        Registry {
            kinds: Arc::new(kinds.into_iter().map(|kind| (kind.name, kind)).collect()),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Kind> {
        self.kinds.get(name)
    }

    pub fn periodic(&self) -> impl Iterator<Item = (&'static str, Every)> + '_ {
        self.kinds
            .values()
            .filter_map(|kind| kind.every.map(|every| (kind.name, every)))
    }

    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.kinds.keys().copied().collect();
        names.sort_unstable();
        names
    }
}

/// The queue's own kinds, which `modules::jobs` registers with the modules': `jobs.prune`
/// (hourly), which forgets finished jobs so the table holds what is live or recent.
pub fn kinds() -> Vec<Kind> {
    vec![Kind::periodic(PRUNE, Every::Hour, FnHandler(prune))]
}

pub const PRUNE: &str = "jobs.prune";

/// Finished jobs forgotten per statement.
const PRUNE_BATCH: i32 = 10_000;

fn prune(run: JobRun<'_>) -> BoxFuture<'_, Result<(), JobError>> {
    Box::pin(async move {
        let mut total = 0;
        loop {
            let pruned = run.queue.prune(run.now, PRUNE_BATCH).await?;
            total += pruned;
            if pruned < PRUNE_BATCH {
                break;
            }
        }
        if total > 0 {
            tracing::info!(pruned = total, "forgot finished jobs");
        }
        Ok(())
    })
}

/// A handler from an async function of the run: `handler(|run| Box::pin(async move
/// { ... }))`, for kinds that need no state of their own.
pub struct FnHandler<F>(pub F);

impl<F> Handler for FnHandler<F>
where
    F: for<'a> Fn(JobRun<'a>) -> BoxFuture<'a, Result<(), JobError>> + Send + Sync + 'static,
{
    fn run<'a>(&'a self, run: JobRun<'a>) -> BoxFuture<'a, Result<(), JobError>> {
        (self.0)(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_starts_at_the_whole_unit() {
        let now: DateTime<Utc> = "2026-12-01T10:37:12.5Z".parse().unwrap();
        assert_eq!(
            Every::Minute.period_of(now).to_rfc3339(),
            "2026-12-01T10:37:00+00:00"
        );
        assert_eq!(
            Every::Hour.period_of(now).to_rfc3339(),
            "2026-12-01T10:00:00+00:00"
        );
        assert_eq!(
            Every::Day.period_of(now).to_rfc3339(),
            "2026-12-01T00:00:00+00:00"
        );
    }
}
