//! The workers: claim due jobs, run each in its own transaction, complete or fail it;
//! keep their leases alive while they run; fire the periodic kinds; stop gracefully.
//!
//! A set of workers ([`Workers::start`]) is `count` claim loops, each running up to
//! `concurrency` jobs at once, plus one heartbeat (extending the leases of every job
//! in flight) and one scheduler. Stopping stops claiming, lets the jobs in flight
//! finish within a grace period, then gives back the rest (their transactions roll
//! back): nothing is lost, and nothing waits for a lease to run out.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;
use serde_json::json;
use tokio::{sync::watch, task::JoinSet};
use uuid::Uuid;

use super::{Job, JobError, JobRun, Queue, Registry};
use crate::{error::Error, platform::db::Scope};

/// How a set of workers behaves. [`WorkerOptions::default`] is what the server runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Names this process's workers in `locked_by` (`host:pid` by default).
    pub name: String,
    /// Jobs one worker runs at once (each holds a connection while it runs).
    pub concurrency: usize,
    /// How long an idle worker waits before it looks for due jobs again.
    pub poll_interval: Duration,
    /// A claim's lease: another worker may take the job over once it runs out without
    /// a heartbeat (its worker died or stalled).
    pub lease: Duration,
    /// Backoff after a failed attempt n: between half and all of
    /// `min(cap, base * 2^(n-1))`, drawn at random, so jobs that failed together
    /// (an SMTP server down) do not all come back at once.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// How often the scheduler looks for a period to fire; `None`: no scheduler.
    pub schedule_tick: Option<Duration>,
    /// Only these kinds (`None`: every kind).
    pub kinds: Option<Vec<String>>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            name: default_name(),
            concurrency: 4,
            poll_interval: Duration::from_millis(250),
            lease: Duration::from_secs(60),
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(3600),
            schedule_tick: Some(Duration::from_secs(5)),
            kinds: None,
        }
    }
}

fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "rowguard".into());
    format!("{host}:{}", std::process::id())
}

impl WorkerOptions {
    /// The wait before attempt `attempt + 1`, given a draw `unit` in [0, 1).
    pub fn backoff(&self, attempt: i32, unit: f64) -> Duration {
        let exponent = u32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let full = self
            .backoff_base
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.backoff_cap);
        full.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
    }
}

/// The leases of the jobs this set is running: what the heartbeat extends and what
/// stopping gives back.
#[derive(Default, Clone)]
struct Held(Arc<Mutex<HashSet<Uuid>>>);

impl Held {
    fn insert(&self, lease: Uuid) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(lease);
    }
    fn remove(&self, lease: &Uuid) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(lease);
    }
    fn all(&self) -> Vec<Uuid> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }
}

/// A running set of workers; [`Workers::stop`] ends it.
pub struct Workers {
    stop: watch::Sender<bool>,
    loops: JoinSet<()>,
    helpers: JoinSet<()>,
    held: Held,
    queue: Queue,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// Failed; the job's new state (`failed`, to be retried, or `dead`).
    Failed(String),
    /// Another worker holds the job now (this one stalled past its lease): this
    /// attempt's work was rolled back.
    LeaseLost,
}

impl Workers {
    /// Starts `count` workers on `queue` running the kinds of `registry` (and its
    /// scheduler, when `options.schedule_tick` is set).
    pub fn start(
        count: usize,
        queue: Queue,
        registry: Registry,
        options: WorkerOptions,
    ) -> Workers {
        let (stop, stopped) = watch::channel(false);
        let held = Held::default();
        let options = Arc::new(options);
        let mut loops = JoinSet::new();
        for index in 0..count {
            let worker = format!("{}#{index}", options.name);
            loops.spawn(claim_loop(
                worker,
                queue.clone(),
                registry.clone(),
                options.clone(),
                held.clone(),
                stopped.clone(),
            ));
        }
        let mut helpers = JoinSet::new();
        if count > 0 {
            helpers.spawn(heartbeat(
                queue.clone(),
                options.clone(),
                held.clone(),
                stopped.clone(),
            ));
        }
        if let Some(tick) = options.schedule_tick {
            helpers.spawn(scheduler(queue.clone(), registry, tick, stopped));
        }
        Workers {
            stop,
            loops,
            helpers,
            held,
            queue,
        }
    }

    /// Stops claiming; waits up to `grace` for the jobs in flight, then abandons the
    /// rest (their transactions roll back) and gives their jobs back to the queue.
    pub async fn stop(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        let finished = tokio::time::timeout(grace, async {
            while self.loops.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            self.loops.abort_all();
            while self.loops.join_next().await.is_some() {}
        }
        self.helpers.abort_all();
        while self.helpers.join_next().await.is_some() {}
        let unfinished = self.held.all();
        if !unfinished.is_empty() {
            match self.queue.release(&unfinished).await {
                Ok(released) => tracing::info!(released, "gave unfinished jobs back to the queue"),
                Err(error) => tracing::warn!(
                    %error,
                    "giving unfinished jobs back failed; they are taken over when their leases run out"
                ),
            }
        }
    }

    /// `rowguard jobs run <kind> --at <now>`: enqueues a job of `kind` as of `now` (a
    /// platform job whose payload carries `now`, keyed by the kind and the period `now`
    /// is in, so that two runs at once enqueue one), then drains the queue in this
    /// process: the job, whatever it fans out, and whatever else is due. The job's id
    /// (`None` when it was already queued) and how many jobs ran; `None` for a kind
    /// `registry` does not have.
    pub async fn run_as_of(
        queue: &Queue,
        registry: &Registry,
        kind: &str,
        now: DateTime<Utc>,
        options: &WorkerOptions,
    ) -> Result<Option<(Option<i64>, u64)>, Error> {
        let Some(known) = registry.get(kind) else {
            return Ok(None);
        };
        let instant = known.every.map_or(now, |every| every.period_of(now));
        let job = super::NewJob::new(known.name, json!({ "now": now }))
            .unique(format!("{kind}@run:{}", instant.to_rfc3339()));
        let id = queue.enqueue_platform(&job).await?;
        let ran = Workers::drain(queue, registry, options).await?;
        Ok(Some((id, ran)))
    }

    /// Runs due jobs (of `options.kinds`) until none is due or running, then returns:
    /// `rowguard jobs run`, after enqueueing its job.
    pub async fn drain(
        queue: &Queue,
        registry: &Registry,
        options: &WorkerOptions,
    ) -> Result<u64, Error> {
        let mut ran = 0;
        let worker = format!("{}#drain", options.name);
        loop {
            let jobs = queue
                .claim(
                    &worker,
                    options.kinds.as_deref(),
                    options.concurrency.max(1),
                    options.lease,
                    Utc::now(),
                )
                .await?;
            if jobs.is_empty() {
                if !queue.due(options.kinds.as_deref(), Utc::now()).await? {
                    return Ok(ran);
                }
                // Running elsewhere, or a retry coming up: wait for it.
                tokio::time::sleep(options.poll_interval).await;
                continue;
            }
            let runs = jobs
                .into_iter()
                .map(|job| run_job(queue, registry, job, options));
            for outcome in futures_util::future::join_all(runs).await {
                ran += 1;
                if let Outcome::Failed(state) = outcome {
                    tracing::warn!(state, "a job failed");
                }
            }
        }
    }
}

async fn claim_loop(
    worker: String,
    queue: Queue,
    registry: Registry,
    options: Arc<WorkerOptions>,
    held: Held,
    mut stopped: watch::Receiver<bool>,
) {
    let concurrency = options.concurrency.max(1);
    let mut running = JoinSet::new();
    loop {
        let stopping = *stopped.borrow();
        // Claim when at least half the slots are free (or none runs): a claim costs
        // as much as a no-op job, so claiming one job per finished one would spend
        // half the worker's round trips on claims.
        let free = concurrency - running.len().min(concurrency);
        if !stopping && free > 0 && (running.is_empty() || 2 * free >= concurrency) {
            match queue
                .claim(
                    &worker,
                    options.kinds.as_deref(),
                    free,
                    options.lease,
                    Utc::now(),
                )
                .await
            {
                Ok(jobs) => {
                    for job in jobs {
                        held.insert(job.lease);
                        let (queue, registry, options, held) = (
                            queue.clone(),
                            registry.clone(),
                            options.clone(),
                            held.clone(),
                        );
                        running.spawn(async move {
                            let lease = job.lease;
                            let outcome = run_job(&queue, &registry, job, &options).await;
                            held.remove(&lease);
                            outcome
                        });
                    }
                }
                Err(error) => tracing::warn!(%error, worker, "claiming jobs failed"),
            }
        }
        if stopping && running.is_empty() {
            return;
        }
        tokio::select! {
            Some(done) = running.join_next(), if !running.is_empty() => {
                if let Err(error) = done {
                    tracing::error!(%error, worker, "a job's task ended abnormally");
                }
            }
            () = tokio::time::sleep(options.poll_interval), if !stopping && running.len() < concurrency => {}
            _ = stopped.changed(), if !stopping => {}
        }
    }
}

/// One attempt of `job`, recorded: completed with its work, or failed (retried later
/// or dead).
pub async fn run_job(
    queue: &Queue,
    registry: &Registry,
    job: Job,
    options: &WorkerOptions,
) -> Outcome {
    let started = Utc::now();
    let now = job
        .payload
        .get("now")
        .and_then(|value| value.as_str())
        .and_then(|text| text.parse::<DateTime<Utc>>().ok())
        .unwrap_or(started);
    let attempted = match registry.get(&job.kind) {
        None => Err(Attempt::Failed(JobError::Permanent(format!(
            "no handler for the kind {}",
            job.kind
        )))),
        Some(kind) => {
            // A panicking handler is a failed attempt, not a dead worker.
            let handler = kind.handler.clone();
            let (queue, job) = (queue.clone(), job.clone());
            // Its own task, aborted with the caller: a worker abandoned at the end of
            // the grace period takes its attempts with it (their transactions roll back).
            let mut task = AbortOnDrop(tokio::spawn(async move {
                attempt(&queue, handler.as_ref(), &job, now).await
            }));
            (&mut task.0).await.unwrap_or_else(|error| {
                Err(Attempt::Failed(JobError::Retry(format!(
                    "the handler panicked: {error}"
                ))))
            })
        }
    };
    match attempted {
        Ok(()) => {
            tracing::debug!(
                job = job.id,
                kind = job.kind,
                attempt = job.attempt,
                "job succeeded"
            );
            Outcome::Succeeded
        }
        Err(Attempt::LeaseLost) => {
            tracing::warn!(
                job = job.id,
                kind = job.kind,
                "lost the job's lease: its work was rolled back"
            );
            Outcome::LeaseLost
        }
        Err(Attempt::Failed(error)) => {
            let permanent = matches!(error, JobError::Permanent(_));
            let wait = options.backoff(job.attempt, rand::rng().random::<f64>());
            let retry_at = started + TimeDelta::from_std(wait).unwrap_or(TimeDelta::hours(1));
            let reason = error.to_string();
            match queue.fail(&job, &reason, retry_at, permanent).await {
                Ok(Some(state)) => {
                    if state == "dead" {
                        tracing::error!(
                            job = job.id,
                            kind = job.kind,
                            attempt = job.attempt,
                            error = reason,
                            "job is dead"
                        );
                    } else {
                        tracing::warn!(job = job.id, kind = job.kind, attempt = job.attempt, error = reason, %retry_at, "job failed; retried later");
                    }
                    Outcome::Failed(state)
                }
                Ok(None) => Outcome::LeaseLost,
                Err(error) => {
                    // Its lease runs out, and another attempt takes it over.
                    tracing::warn!(job = job.id, %error, "recording a failed attempt failed");
                    Outcome::Failed("running".into())
                }
            }
        }
    }
}

enum Attempt {
    Failed(JobError),
    LeaseLost,
}

/// A task that ends when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The job's transaction: its tenant's context, the handler's work, then the
/// completion presenting the lease, committed in the same round trip. A lost lease
/// makes the completion raise, so the COMMIT rolls the work back.
async fn attempt(
    queue: &Queue,
    handler: &dyn super::Handler,
    job: &Job,
    now: DateTime<Utc>,
) -> Result<(), Attempt> {
    let scope = Scope {
        tenant_id: job.tenant_id,
        ..Scope::anonymous()
    };
    let tx = queue
        .work()
        .begin_context(&scope)
        .await
        .map_err(|error| Attempt::Failed(error.into()))?;
    let ran = handler
        .run(JobRun {
            job,
            tx: &tx,
            now,
            queue,
        })
        .await;
    if let Err(error) = ran {
        tx.rollback().await;
        return Err(Attempt::Failed(error));
    }
    let complete = match tx.prepare("SELECT app.complete_job($1, $2)").await {
        Ok(statement) => statement,
        Err(error) => {
            tx.rollback().await;
            return Err(Attempt::Failed(error.into()));
        }
    };
    match tx.query_and_commit(&complete, &[&job.id, &job.lease]).await {
        Ok(_) => Ok(()),
        Err(error) if is_lease_lost(&error) => Err(Attempt::LeaseLost),
        Err(error) => Err(Attempt::Failed(error.into())),
    }
}

/// `app.complete_job`'s refusal (SQLSTATE RGJ01).
fn is_lease_lost(error: &Error) -> bool {
    match error {
        Error::Internal(error) => error
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::as_db_error)
            .is_some_and(|db| db.code().code() == "RGJ01"),
        _ => false,
    }
}

/// Extends the leases of the jobs in flight, a few times per lease.
async fn heartbeat(
    queue: Queue,
    options: Arc<WorkerOptions>,
    held: Held,
    mut stopped: watch::Receiver<bool>,
) {
    let every = (options.lease / 3).max(Duration::from_millis(100));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stopped.changed() => {}
        }
        let leases = held.all();
        if let Err(error) = queue.extend(&leases, options.lease).await {
            tracing::warn!(%error, "extending job leases failed");
        }
        // Keep extending while stopping: the jobs in flight are still running.
    }
}

/// Fires each periodic kind's current period (once across all processes: the first
/// scheduler to move its schedule forward enqueues the job).
async fn scheduler(
    queue: Queue,
    registry: Registry,
    tick: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let periodic: Vec<_> = registry.periodic().collect();
    if periodic.is_empty() {
        return;
    }
    loop {
        if *stopped.borrow() {
            return;
        }
        let now = Utc::now();
        for (kind, every) in &periodic {
            let period = every.period_of(now);
            match queue.fire(kind, period, &json!({ "now": period })).await {
                Ok(Some(job)) => tracing::debug!(kind, job, %period, "fired a periodic job"),
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, kind, "firing a periodic job failed"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            _ = stopped.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_per_attempt_up_to_its_cap_with_jitter_below_it() {
        let options = WorkerOptions {
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(60),
            ..WorkerOptions::default()
        };
        assert_eq!(options.backoff(1, 0.999_999).as_secs(), 1);
        assert_eq!(options.backoff(1, 0.0), Duration::from_secs(1));
        assert_eq!(options.backoff(3, 0.0), Duration::from_secs(4));
        assert!(options.backoff(3, 0.99) <= Duration::from_secs(8));
        assert_eq!(options.backoff(30, 0.0), Duration::from_secs(30));
        assert!(options.backoff(30, 0.99) <= Duration::from_secs(60));
    }
}
