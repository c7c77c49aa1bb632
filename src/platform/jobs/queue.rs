//! The queue's machinery: claiming, heartbeats, failures, releases, schedules, sweeps
//! and the operators' view, each a `SECURITY DEFINER` function of `sql/V10__jobs.sql`
//! called as `rowguard_auth` (payloads carry secrets: no request session can read
//! them). The work of a job runs elsewhere: in its own transaction as `rowguard_api`
//! (`worker.rs`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::{
    Row,
    types::{FromSql, ToSql},
};
use uuid::Uuid;

use super::{Job, NewJob};
use crate::{
    error::Error,
    platform::db::{Database, RuntimeRole, Scope},
};

/// The two pools a worker uses: the machinery's (`rowguard_auth`) and the one its
/// jobs' transactions run in (`rowguard_api`).
#[derive(Clone)]
pub struct Queue {
    machinery: Database,
    work: Database,
}

/// A job as operators see it (`rowguard jobs list`, `GET /platform/jobs`): its
/// payload without its secret.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub id: i64,
    pub tenant_id: Option<Uuid>,
    pub kind: String,
    pub payload: Value,
    pub state: String,
    pub run_at: DateTime<Utc>,
    pub attempts: i32,
    pub max_attempts: i32,
    pub unique_key: Option<String>,
    pub locked_by: Option<String>,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl JobRow {
    pub fn from_row(row: &Row) -> Result<JobRow, Error> {
        Ok(JobRow {
            id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            kind: row.try_get("kind")?,
            payload: row.try_get("payload")?,
            state: row.try_get("state")?,
            run_at: row.try_get("run_at")?,
            attempts: row.try_get("attempts")?,
            max_attempts: row.try_get("max_attempts")?,
            unique_key: row.try_get("unique_key")?,
            locked_by: row.try_get("locked_by")?,
            locked_until: row.try_get("locked_until")?,
            last_error: row.try_get("last_error")?,
            created_at: row.try_get("created_at")?,
            finished_at: row.try_get("finished_at")?,
        })
    }
}

fn whole_seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX)
}

impl Queue {
    /// `machinery` must run as `rowguard_auth`, `work` as `rowguard_api`.
    pub fn new(machinery: Database, work: Database) -> Result<Queue, Error> {
        if machinery.runtime_role() != RuntimeRole::Auth || work.runtime_role() != RuntimeRole::Api
        {
            return Err(Error::Internal(anyhow::anyhow!(
                "the queue's machinery runs as rowguard_auth and its jobs as rowguard_api"
            )));
        }
        Ok(Queue { machinery, work })
    }

    /// The pool jobs' transactions run in.
    pub fn work(&self) -> &Database {
        &self.work
    }

    /// The machinery's pool (`rowguard_auth`): the usage meter's flushes share it.
    pub fn machinery(&self) -> &Database {
        &self.machinery
    }

    /// One statement of the machinery, in a transaction of its own (two round trips:
    /// the role, then the statement with its COMMIT).
    async fn call(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, Error> {
        let tx = self.machinery.begin_context(&Scope::anonymous()).await?;
        let statement = match tx.prepare(sql).await {
            Ok(statement) => statement,
            Err(error) => {
                tx.rollback().await;
                return Err(error);
            }
        };
        tx.query_and_commit(&statement, params).await
    }

    /// The one value a function of the machinery answers (`SELECT app.f(...)`: one
    /// row, whether or not the function found anything).
    async fn value<T>(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<T, Error>
    where
        T: for<'a> FromSql<'a>,
    {
        let rows = self.call(sql, params).await?;
        let row = rows
            .first()
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("{sql} answered no row")))?;
        Ok(row.try_get(0)?)
    }

    /// How many jobs are in each state but `succeeded` (`queued`, `running`,
    /// `failed`, `dead`), for `/metrics`: one indexed count per state.
    pub async fn counts(&self) -> Result<Vec<(String, i64)>, Error> {
        let rows = self
            .call("SELECT state, jobs FROM app.job_counts()", &[])
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    /// Claims up to `limit` due jobs (of `kinds`, or any) for `worker`, each leased
    /// until `now + lease`.
    pub async fn claim(
        &self,
        worker: &str,
        kinds: Option<&[String]>,
        limit: usize,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<Job>, Error> {
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let rows = self
            .call(
                "SELECT id, tenant_id, kind, payload, attempts, max_attempts, lease
                 FROM app.claim_jobs($1, $2, $3, $4, $5)",
                &[&worker, &kinds, &limit, &whole_seconds(lease), &now],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Job {
                    id: row.try_get("id")?,
                    tenant_id: row.try_get("tenant_id")?,
                    kind: row.try_get("kind")?,
                    payload: row.try_get("payload")?,
                    attempt: row.try_get("attempts")?,
                    max_attempts: row.try_get("max_attempts")?,
                    lease: row.try_get("lease")?,
                })
            })
            .collect()
    }

    /// Records a failed attempt: retried at `retry_at`, or dead (its last attempt, or
    /// `permanent`). The job's new state; `None` when the lease was lost meanwhile.
    pub async fn fail(
        &self,
        job: &Job,
        error: &str,
        retry_at: DateTime<Utc>,
        permanent: bool,
    ) -> Result<Option<String>, Error> {
        self.value(
            "SELECT app.fail_job($1, $2, $3, $4, $5)",
            &[&job.id, &job.lease, &error, &retry_at, &permanent],
        )
        .await
    }

    /// Extends the leases still held; returns those.
    pub async fn extend(&self, leases: &[Uuid], lease: Duration) -> Result<Vec<Uuid>, Error> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .call(
                "SELECT app.extend_job_leases($1, $2)",
                &[&leases, &whole_seconds(lease)],
            )
            .await?;
        rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
    }

    /// Gives back jobs not run to the end (a stopping worker's): queued again.
    pub async fn release(&self, leases: &[Uuid]) -> Result<i32, Error> {
        if leases.is_empty() {
            return Ok(0);
        }
        self.value("SELECT app.release_jobs($1)", &[&leases]).await
    }

    /// Fires `period` of the periodic `kind` unless some process did: the job's id when
    /// this call fired it.
    pub async fn fire(
        &self,
        kind: &str,
        period: DateTime<Utc>,
        payload: &Value,
    ) -> Result<Option<i64>, Error> {
        self.value(
            "SELECT app.fire_schedule($1, $2, $3)",
            &[&kind, &period, payload],
        )
        .await
    }

    /// Runs a failed or dead job again now; false when there is no such job.
    pub async fn retry(&self, id: i64) -> Result<bool, Error> {
        let rows = self.call("SELECT app.retry_job($1)", &[&id]).await?;
        Ok(!rows.is_empty())
    }

    /// Enqueues a platform job (no tenant): `rowguard jobs run`, and what no request
    /// may enqueue. Its id, or `None` when a live job has its unique key.
    pub async fn enqueue_platform(&self, job: &NewJob) -> Result<Option<i64>, Error> {
        self.value(
            "SELECT app.enqueue_platform_job($1, $2, $3, $4, $5)",
            &[
                &job.kind,
                &job.payload,
                &job.unique_key,
                &job.run_at,
                &job.max_attempts,
            ],
        )
        .await
    }

    /// A sweep's fan-out: one `kind` job per active tenant, found in one query, each
    /// keyed `unique_key` within its tenant. How many were enqueued.
    pub async fn enqueue_for_active_tenants(
        &self,
        kind: &str,
        payload: &Value,
        unique_key: &str,
        run_at: Option<DateTime<Utc>>,
    ) -> Result<i32, Error> {
        self.value(
            "SELECT app.enqueue_for_active_tenants($1, $2, $3, $4)",
            &[&kind, payload, &unique_key, &run_at],
        )
        .await
    }

    /// Jobs newest first, in `state` if given, before the id `before` (keyset).
    pub async fn page(
        &self,
        state: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<JobRow>, Error> {
        let limit = i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
        let rows = self
            .call(
                "SELECT * FROM app.jobs_page($1, $2, $3)",
                &[&state, &before, &limit],
            )
            .await?;
        rows.iter().map(JobRow::from_row).collect()
    }

    /// Whether any job (of `kinds`, or any) is due by `now`, or running.
    pub async fn due(&self, kinds: Option<&[String]>, now: DateTime<Utc>) -> Result<bool, Error> {
        self.value("SELECT app.jobs_due($1, $2)", &[&kinds, &now])
            .await
    }

    /// Makes the `kind` jobs that wait for a retry due at `now`; how many.
    pub async fn expedite(&self, kind: &str, now: DateTime<Utc>) -> Result<i32, Error> {
        self.value("SELECT app.expedite_jobs($1, $2)", &[&kind, &now])
            .await
    }

    /// Forgets up to `batch` finished jobs (succeeded a day before `now`, dead a month
    /// before); how many.
    pub async fn prune(&self, now: DateTime<Utc>, batch: i32) -> Result<i32, Error> {
        self.value("SELECT app.prune_jobs($1, $2)", &[&now, &batch])
            .await
    }
}
