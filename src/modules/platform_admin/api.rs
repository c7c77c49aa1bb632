//! `/api/v1/platform/jobs`: the queue as a platform admin sees it (payloads without
//! their secrets), and retrying a failed or dead job.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use poem_openapi::{
    ApiResponse, Enum, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::{
    error::Error,
    modules::Tag,
    platform::{
        auth::access::{Operation, authorize},
        db::{Database, RequestTx, enum_column, page::Page},
        http::{common::Limit, problem::ApiError, security::BearerAuth},
    },
};

pub struct PlatformJobsApi {
    pub db: Database,
}

// What each operation requires (see `auth::access`): one line per route below.
const PLATFORM_JOBS_LIST: Operation = Operation::platform_admin("platform_jobs_list");
const PLATFORM_JOBS_RETRY: Operation = Operation::platform_admin("platform_jobs_retry");

pub const OPERATIONS: &[Operation] = &[PLATFORM_JOBS_LIST, PLATFORM_JOBS_RETRY];

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its time (`run_at`) or for a worker.
    Queued,
    /// Held by a worker under a lease (`locked_by`, `locked_until`).
    Running,
    /// Its last attempt failed; retried at `run_at`.
    Failed,
    Succeeded,
    /// Failed its last attempt, or failed in a way retrying cannot fix.
    Dead,
}

impl JobState {
    fn wire(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Failed => "failed",
            JobState::Succeeded => "succeeded",
            JobState::Dead => "dead",
        }
    }
}

#[derive(Object)]
pub struct Job {
    pub id: i64,
    /// The tenant it acts for; `null` for a platform job.
    #[oai(nullable)]
    pub tenant_id: Option<Uuid>,
    /// `module.action`, e.g. `email.send`.
    pub kind: String,
    pub state: JobState,
    /// What the job acts on, without its secret (a token an email carries).
    pub payload: serde_json::Value,
    /// When it may run next.
    pub run_at: DateTime<Utc>,
    pub attempts: i32,
    pub max_attempts: i32,
    #[oai(nullable)]
    pub unique_key: Option<String>,
    /// The worker holding it (`host:pid#n`), while running.
    #[oai(nullable)]
    pub locked_by: Option<String>,
    #[oai(nullable)]
    pub locked_until: Option<DateTime<Utc>>,
    #[oai(nullable)]
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    #[oai(nullable)]
    pub finished_at: Option<DateTime<Utc>>,
}

impl Job {
    fn from_row(row: &Row) -> Result<Job, Error> {
        Ok(Job {
            id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            kind: row.try_get("kind")?,
            state: enum_column(row, "state")?,
            payload: row.try_get("payload")?,
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

#[derive(Object)]
pub struct JobList {
    pub items: Vec<Job>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(ApiResponse)]
pub enum JobListResponse {
    #[oai(status = 200)]
    Ok(Json<JobList>),
}

#[derive(ApiResponse)]
pub enum JobResponse {
    /// Queued again, due now (with one more attempt if it had used them all).
    #[oai(status = 200)]
    Ok(Json<Job>),
}

/// Jobs newest first: the cursor names the last id seen.
fn encode_cursor(id: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.to_string())
}

fn decode_cursor(cursor: &str) -> Result<i64, Error> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|text| text.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| Error::BadRequest("the cursor is not valid".into()))
}

async fn jobs_page(
    tx: &RequestTx,
    state: Option<&str>,
    before: Option<i64>,
    fetch: i64,
) -> Result<Vec<Job>, Error> {
    let statement = tx
        .prepare("SELECT * FROM app.platform_jobs_page($1, $2, $3)")
        .await?;
    let fetch = i32::try_from(fetch).unwrap_or(i32::MAX);
    let rows = tx.query(&statement, &[&state, &before, &fetch]).await?;
    rows.iter().map(Job::from_row).collect()
}

#[OpenApi(prefix_path = "/api/v1/platform", tag = "Tag::Platform")]
impl PlatformJobsApi {
    /// The job queue, newest first: every job, or those in one state (`failed` and
    /// `dead` are the ones to look at).
    #[oai(path = "/jobs", method = "get", operation_id = "platform_jobs_list")]
    async fn list(
        &self,
        auth: BearerAuth,
        /// Only jobs in this state.
        state: Query<Option<JobState>>,
        limit: Query<Option<Limit>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<JobListResponse, ApiError> {
        let page = Page::parse(limit.0.map(|limit| limit.0), None)?;
        let before = cursor
            .0
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(decode_cursor)
            .transpose()?;
        let (tx, _) = authorize(&self.db, &auth.0, &PLATFORM_JOBS_LIST).await?;
        let state = state.0.map(JobState::wire);
        let jobs = jobs_page(&tx, state, before, page.fetch()).await;
        let mut jobs = tx.finish(jobs).await?;
        let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
        let next_cursor = if jobs.len() > limit {
            jobs.truncate(limit);
            jobs.last().map(|job| encode_cursor(job.id))
        } else {
            None
        };
        Ok(JobListResponse::Ok(Json(JobList {
            items: jobs,
            next_cursor,
        })))
    }

    /// Run a failed or dead job again, now. 404 for a job that is not failed or dead.
    #[oai(
        path = "/jobs/:id/retry",
        method = "post",
        operation_id = "platform_jobs_retry"
    )]
    async fn retry(&self, auth: BearerAuth, id: Path<i64>) -> Result<JobResponse, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, &PLATFORM_JOBS_RETRY).await?;
        let retried = async {
            let statement = tx.prepare("SELECT app.platform_retry_job($1)").await?;
            if tx.query(&statement, &[&id.0]).await?.is_empty() {
                return Err(Error::NotFound);
            }
            // The job itself: the first of the page that starts at it.
            let mut jobs = jobs_page(&tx, None, id.0.checked_add(1), 1).await?;
            jobs.pop().ok_or(Error::NotFound)
        }
        .await;
        let job = tx.finish(retried).await?;
        Ok(JobResponse::Ok(Json(job)))
    }
}
