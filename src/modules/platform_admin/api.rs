//! `/api/v1/platform/jobs`: the queue as a platform admin sees it (payloads without
//! their secrets), and retrying a failed or dead job. The request's transaction only
//! checks the caller; the queue is read through its machinery (`rowguard_auth`),
//! which no request session can reach.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use poem_openapi::{
    ApiResponse, Enum, Object, OpenApi,
    param::{Path, Query},
};
use uuid::Uuid;

use crate::{
    error::Error,
    modules::{
        Tag,
        subscriptions::{
            self,
            api::{ChangePlanRequest, Subscription},
        },
        tenancy::api::TenantStatus,
    },
    platform::{
        auth::access::{Operation, authorize},
        db::{Database, Scope, page::Page},
        http::{
            common::{Limit, from_wire, page, wire_name},
            json::{JsonBody, rfc3339, rfc3339_or_null},
            problem::ApiError,
            security::BearerAuth,
        },
        jobs::{Queue, queue::JobRow},
    },
};

pub struct PlatformJobsApi {
    pub db: Database,
    /// The queue's machinery: read only once the request's own transaction said the
    /// caller is a platform admin.
    pub queue: Queue,
}

// What each operation requires (see `auth::access`): one line per route below.
const PLATFORM_JOBS_LIST: Operation = Operation::platform_admin("platform_jobs_list");
const PLATFORM_JOBS_RETRY: Operation = Operation::platform_admin("platform_jobs_retry");
const PLATFORM_TENANTS_SET_SUBSCRIPTION: Operation =
    Operation::platform_admin("platform_tenants_set_subscription");
const PLATFORM_TENANTS_LIST: Operation = Operation::platform_admin("platform_tenants_list");
/// 409: suspending the caller's own tenant (it would lock the caller out).
const PLATFORM_TENANTS_UPDATE: Operation =
    Operation::platform_admin("platform_tenants_update").returning(&[409]);

pub const OPERATIONS: &[Operation] = &[
    PLATFORM_JOBS_LIST,
    PLATFORM_JOBS_RETRY,
    PLATFORM_TENANTS_SET_SUBSCRIPTION,
    PLATFORM_TENANTS_LIST,
    PLATFORM_TENANTS_UPDATE,
];

pub struct PlatformTenantsApi {
    pub db: Database,
}

#[derive(ApiResponse)]
pub enum SubscriptionSet {
    /// The tenant's subscription, on the plan now.
    #[oai(status = 200)]
    Ok(JsonBody<Subscription>),
}

/// A tenant as the platform sees it: its summary, none of its data.
#[derive(Object, serde::Serialize)]
pub struct PlatformTenant {
    pub id: Uuid,
    pub name: String,
    pub status: TenantStatus,
    #[oai(nullable)]
    pub plan_code: Option<String>,
    /// `trialing`, `active`, `past_due`, `unpaid` or `canceled`.
    #[oai(nullable)]
    pub subscription_status: Option<String>,
    /// Active members.
    pub members: i64,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

#[derive(Object, serde::Serialize)]
pub struct PlatformTenantList {
    pub items: Vec<PlatformTenant>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Object)]
pub struct UpdateTenantStatusRequest {
    /// `suspended`: the tenant's members are refused (403 `tenant_suspended`) from
    /// their next request; `active` lets them back.
    pub status: SettableTenantStatus,
}

/// What the platform may set a tenant to: a tenant is `deleted` only by itself
/// (`DELETE /tenants/current`), and a deleted tenant stays deleted (404 here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "snake_case")]
pub enum SettableTenantStatus {
    Active,
    Suspended,
}

#[derive(ApiResponse)]
pub enum PlatformTenantListResponse {
    #[oai(status = 200)]
    Ok(JsonBody<PlatformTenantList>),
}

#[derive(ApiResponse)]
pub enum PlatformTenantResponse {
    /// The tenant, with its new status.
    #[oai(status = 200)]
    Ok(JsonBody<PlatformTenant>),
}

fn platform_tenant(row: &tokio_postgres::Row) -> Result<PlatformTenant, Error> {
    let status: String = row.try_get("status")?;
    Ok(PlatformTenant {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        status: from_wire(&status)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("a tenant in the status {status:?}")))?,
        plan_code: row.try_get("plan_code")?,
        subscription_status: row.try_get("subscription_status")?,
        members: row.try_get("members")?,
        created_at: row.try_get("created_at")?,
    })
}

const TENANTS_PAGE: &str =
    "SELECT id, name, status, plan_code, subscription_status, members, created_at
     FROM app.platform_tenants_page($1, $2, $3)";

#[OpenApi(prefix_path = "/api/v1/platform", tag = "Tag::Platform")]
impl PlatformTenantsApi {
    /// Every tenant, oldest first: its name, status, plan and member count (no
    /// tenant's data: read through a definer function that answers platform admins
    /// only).
    #[oai(
        path = "/tenants",
        method = "get",
        operation_id = "platform_tenants_list"
    )]
    async fn list(
        &self,
        auth: BearerAuth,
        limit: Query<Option<Limit>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<PlatformTenantListResponse, ApiError> {
        let page = page(limit.0, cursor.0)?;
        let (tx, _) = authorize(&self.db, &auth.0, &PLATFORM_TENANTS_LIST).await?;
        let statement = tx.prepare(TENANTS_PAGE).await;
        let rows = match statement {
            Ok(statement) => {
                let (after_time, after_id) = page.after();
                let limit = i32::try_from(page.fetch()).unwrap_or(i32::MAX);
                tx.query_and_commit(&statement, &[&after_time, &after_id, &limit])
                    .await?
            }
            Err(error) => {
                tx.rollback().await;
                return Err(error.into());
            }
        };
        let tenants = rows
            .iter()
            .map(platform_tenant)
            .collect::<Result<Vec<_>, _>>()?;
        let (items, next_cursor) = page.finish(tenants, |t| (t.created_at, t.id));
        Ok(PlatformTenantListResponse::Ok(JsonBody(
            PlatformTenantList { items, next_cursor },
        )))
    }

    /// Suspend or reactivate a tenant, at once: a suspended tenant's members are
    /// refused (403 `tenant_suspended`) from their next request. 404 for an unknown
    /// tenant; 409 for suspending the caller's own tenant.
    #[oai(
        path = "/tenants/:id",
        method = "patch",
        operation_id = "platform_tenants_update"
    )]
    async fn update(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: JsonBody<UpdateTenantStatusRequest>,
    ) -> Result<PlatformTenantResponse, ApiError> {
        let (tx, access) = authorize(&self.db, &auth.0, &PLATFORM_TENANTS_UPDATE).await?;
        let updated = async {
            if body.status == SettableTenantStatus::Suspended && access.tenant()? == id.0 {
                return Err(Error::Conflict(
                    "a platform admin cannot suspend their own tenant".into(),
                ));
            }
            let set = tx
                .prepare("SELECT app.platform_set_tenant_status($1, $2)")
                .await?;
            let found: bool = tx
                .query_one(&set, &[&id.0, &wire_name(&body.status)])
                .await?
                .try_get(0)?;
            if !found {
                return Err(Error::NotFound);
            }
            tenant_summary(&tx, id.0).await
        }
        .await;
        Ok(PlatformTenantResponse::Ok(JsonBody(
            tx.finish(updated).await?,
        )))
    }
    /// Put a tenant on a plan at once: active, a new period from now, nothing pending,
    /// no invoice (an open one is voided). 404 for an unknown tenant, 422 for an
    /// unknown plan.
    #[oai(
        path = "/tenants/:id/subscription",
        method = "put",
        operation_id = "platform_tenants_set_subscription"
    )]
    async fn set_subscription(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: JsonBody<ChangePlanRequest>,
    ) -> Result<SubscriptionSet, ApiError> {
        platform_admin(&self.db, &auth, &PLATFORM_TENANTS_SET_SUBSCRIPTION).await?;
        // Only now, for a platform admin: a transaction in that tenant's context, under
        // row-level security like the tenant's own requests (another tenant's rows stay
        // out of reach even here).
        let scope = Scope {
            tenant_id: Some(id.0),
            ..Scope::anonymous()
        };
        let tx = self.db.begin_context(&scope).await?;
        let set = async {
            subscriptions::service::put_on_plan(&tx, &body.plan_code, Utc::now()).await?;
            subscriptions::api::subscription(&tx).await
        }
        .await;
        Ok(SubscriptionSet::Ok(JsonBody(tx.finish(set).await?)))
    }
}

/// One tenant's summary, through the definer function of the platform's summaries.
async fn tenant_summary(
    tx: &crate::platform::db::RequestTx,
    id: Uuid,
) -> Result<PlatformTenant, Error> {
    let statement = tx
        .prepare(
            "SELECT id, name, status, plan_code, subscription_status, members, created_at
             FROM app.platform_tenant($1)",
        )
        .await?;
    platform_tenant(
        &tx.query_opt(&statement, &[&id])
            .await?
            .ok_or(Error::NotFound)?,
    )
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
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

#[derive(Object, serde::Serialize)]
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
    #[serde(serialize_with = "rfc3339")]
    pub run_at: DateTime<Utc>,
    pub attempts: i32,
    pub max_attempts: i32,
    #[oai(nullable)]
    pub unique_key: Option<String>,
    /// The worker holding it (`host:pid#n`), while running.
    #[oai(nullable)]
    pub locked_by: Option<String>,
    #[oai(nullable)]
    #[serde(serialize_with = "rfc3339_or_null")]
    pub locked_until: Option<DateTime<Utc>>,
    #[oai(nullable)]
    pub last_error: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    #[oai(nullable)]
    #[serde(serialize_with = "rfc3339_or_null")]
    pub finished_at: Option<DateTime<Utc>>,
}

impl Job {
    fn from_row(row: JobRow) -> Result<Job, Error> {
        Ok(Job {
            id: row.id,
            tenant_id: row.tenant_id,
            state: from_wire(&row.state).ok_or_else(|| {
                Error::Internal(anyhow::anyhow!("a job in the state {:?}", row.state))
            })?,
            kind: row.kind,
            payload: row.payload,
            run_at: row.run_at,
            attempts: row.attempts,
            max_attempts: row.max_attempts,
            unique_key: row.unique_key,
            locked_by: row.locked_by,
            locked_until: row.locked_until,
            last_error: row.last_error,
            created_at: row.created_at,
            finished_at: row.finished_at,
        })
    }
}

#[derive(Object, serde::Serialize)]
pub struct JobList {
    pub items: Vec<Job>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(ApiResponse)]
pub enum JobListResponse {
    #[oai(status = 200)]
    Ok(JsonBody<JobList>),
}

#[derive(ApiResponse)]
pub enum JobResponse {
    /// Queued again, due now (with one more attempt if it had used them all).
    #[oai(status = 200)]
    Ok(JsonBody<Job>),
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

/// Opens and ends the caller's request transaction: a platform admin (session,
/// membership and `is_platform_admin` checked), or the refusal.
async fn platform_admin(
    db: &Database,
    auth: &BearerAuth,
    operation: &Operation,
) -> Result<(), Error> {
    let (tx, _) = authorize(db, &auth.0, operation).await?;
    tx.commit().await
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
        platform_admin(&self.db, &auth, &PLATFORM_JOBS_LIST).await?;
        let state = state.0.map(JobState::wire);
        let mut jobs = self
            .queue
            .page(state, before, page.fetch())
            .await?
            .into_iter()
            .map(Job::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
        let next_cursor = if jobs.len() > limit {
            jobs.truncate(limit);
            jobs.last().map(|job| encode_cursor(job.id))
        } else {
            None
        };
        Ok(JobListResponse::Ok(JsonBody(JobList {
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
        platform_admin(&self.db, &auth, &PLATFORM_JOBS_RETRY).await?;
        if !self.queue.retry(id.0).await? {
            return Err(Error::NotFound.into());
        }
        // The job itself: the first of the page that starts at it.
        let job = self
            .queue
            .page(None, id.0.checked_add(1), 1)
            .await?
            .pop()
            .ok_or(Error::NotFound)?;
        let job = Job::from_row(job)?;
        Ok(JobResponse::Ok(JsonBody(job)))
    }
}
