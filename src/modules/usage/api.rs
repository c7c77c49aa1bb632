//! `/api/v1/usage/*`: the tenant's usage of its plan's limits, now and in past
//! periods.

use chrono::{DateTime, Utc};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, param::Query};

use super::db::{self, METRICS};
use crate::{
    error::Error,
    modules::Tag,
    platform::{
        auth::access::{Operation, authorize},
        db::Database,
        http::{
            common::{Limit, from_wire, page},
            json::{JsonBody, rfc3339},
            problem::ApiError,
            security::BearerAuth,
        },
    },
};

pub struct UsageApi {
    pub db: Database,
}

// What each operation requires (see `auth::access`): one line per route below.
const USAGE_CURRENT: Operation = Operation::permission("usage_current", "usage.view");
const USAGE_HISTORY: Operation = Operation::permission("usage_history", "usage.view");

pub const OPERATIONS: &[Operation] = &[USAGE_CURRENT, USAGE_HISTORY];

/// A limit of the plan, as usage counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename = "UsageMetricCode", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum MetricCode {
    /// Stores of the tenant.
    Stores,
    /// Active members plus pending invitations.
    Members,
    /// Products of the tenant.
    Products,
    /// Authenticated API requests this period (metered: counted, never refused; may
    /// lag by a few seconds).
    ApiRequests,
}

/// One limit: what is used of it and the plan's maximum.
#[derive(Object, serde::Serialize)]
#[oai(rename = "UsageMetric")]
pub struct Metric {
    pub code: MetricCode,
    pub value: i64,
    /// The plan's maximum; `null`: unlimited (or, in the history, not recorded).
    #[oai(nullable)]
    pub limit: Option<i64>,
}

fn metric(code: &str, value: i64, limit: Option<i64>) -> Result<Metric, Error> {
    Ok(Metric {
        code: from_wire(code)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("no usage metric {code}")))?,
        value,
        limit,
    })
}

/// A period of the subscription and the usage in it.
#[derive(Object, serde::Serialize)]
pub struct UsagePeriod {
    #[serde(serialize_with = "rfc3339")]
    pub period_start: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    pub period_end: DateTime<Utc>,
    pub metrics: Vec<Metric>,
}

#[derive(ApiResponse)]
pub enum UsageCurrentResponse {
    #[oai(status = 200)]
    Ok(JsonBody<UsagePeriod>),
}

#[derive(Object, serde::Serialize)]
pub struct UsageHistory {
    pub items: Vec<UsagePeriod>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(ApiResponse)]
pub enum UsageHistoryResponse {
    #[oai(status = 200)]
    Ok(JsonBody<UsageHistory>),
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Usage")]
impl UsageApi {
    /// The current period of the subscription and what the tenant uses of each
    /// limit: stores, members and products counted now, api_requests as recorded
    /// (a few seconds behind).
    #[oai(
        path = "/usage/current",
        method = "get",
        operation_id = "usage_current"
    )]
    async fn current(&self, auth: BearerAuth) -> Result<UsageCurrentResponse, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, &USAGE_CURRENT).await?;
        let usage = db::current_and_commit(tx, Utc::now()).await?;
        let metrics = usage
            .metrics
            .iter()
            .map(|m| metric(m.code, m.value, m.max))
            .collect::<Result<_, Error>>()?;
        Ok(UsageCurrentResponse::Ok(JsonBody(UsagePeriod {
            period_start: usage.period_start,
            period_end: usage.period_end,
            metrics,
        })))
    }

    /// The past periods, newest first, with what was used in each: api_requests
    /// counted to the end of the period, the other limits as last recorded in it
    /// (hourly), each with the plan's maximum then.
    #[oai(
        path = "/usage/history",
        method = "get",
        operation_id = "usage_history"
    )]
    async fn history(
        &self,
        auth: BearerAuth,
        limit: Query<Option<Limit>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<UsageHistoryResponse, ApiError> {
        let page = page(limit.0, cursor.0)?;
        let (tx, _) = authorize(&self.db, &auth.0, &USAGE_HISTORY).await?;
        let rows = db::history(tx, &page).await?;
        let (rows, next_cursor) = page.finish(rows, |p| (p.period_start, p.id));
        let items = rows
            .into_iter()
            .map(|period| {
                let metrics = METRICS
                    .iter()
                    .filter_map(|code| {
                        let recorded = period.recorded.get(*code);
                        if *code == "api_requests" {
                            // The flushes' figure: it counts to the end of the period,
                            // past the last aggregation.
                            Some(metric(
                                code,
                                period.api_requests,
                                recorded.and_then(|r| r.max),
                            ))
                        } else {
                            recorded.map(|r| metric(code, r.value, r.max))
                        }
                    })
                    .collect::<Result<_, Error>>()?;
                Ok(UsagePeriod {
                    period_start: period.period_start,
                    period_end: period.period_end,
                    metrics,
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(UsageHistoryResponse::Ok(JsonBody(UsageHistory {
            items,
            next_cursor,
        })))
    }
}
