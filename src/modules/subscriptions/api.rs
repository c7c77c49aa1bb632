//! `GET /api/v1/plans`: the plan catalog, public (a pricing page needs no account).

use std::collections::BTreeMap;

use poem_openapi::{ApiResponse, Enum, Object, OpenApi, payload::Json};

use super::db;
use crate::{
    error::Error,
    modules::Tag,
    platform::{
        auth::access::Operation,
        db::{Database, Scope},
        http::{common::from_wire, problem::ApiError},
    },
};

pub struct PlansApi {
    pub db: Database,
}

// What each operation requires (see `auth::access`): one line per route below.
const PLANS_LIST: Operation = Operation::public("plans_list");

pub const OPERATIONS: &[Operation] = &[PLANS_LIST];

/// How often a plan is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum Interval {
    Month,
    Year,
}

#[derive(Object)]
pub struct Plan {
    /// `free`, `starter`, `business`.
    pub code: String,
    pub name: String,
    /// The price per interval, in minor units (KES cents) of `currency`.
    pub price_minor: i64,
    /// ISO 4217.
    pub currency: String,
    pub interval: Interval,
    /// Days of trial when a tenant first moves to this plan (0: none).
    pub trial_days: i32,
    /// Every feature (`inventory`, `audit_log`, `api_keys`), whether the plan has it.
    pub features: BTreeMap<String, bool>,
    /// Every limit (`stores`, `members`, `products`, `api_requests` per period):
    /// its maximum, `null` for unlimited.
    pub limits: BTreeMap<String, Option<i64>>,
}

#[derive(Object)]
pub struct PlanList {
    pub items: Vec<Plan>,
}

#[derive(ApiResponse)]
pub enum PlanListResponse {
    #[oai(status = 200)]
    Ok(Json<PlanList>),
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Subscriptions")]
impl PlansApi {
    /// Every plan, cheapest first, with its features and limits.
    #[oai(path = "/plans", method = "get", operation_id = "plans_list")]
    async fn list(&self) -> Result<PlanListResponse, ApiError> {
        let (tx, _) = self.db.begin(&Scope::anonymous()).await?;
        let plans = db::list(tx).await?;
        let items = plans
            .into_iter()
            .map(|plan| {
                Ok(Plan {
                    interval: from_wire(&plan.interval).ok_or_else(|| {
                        Error::Internal(anyhow::anyhow!("a plan billed per {}", plan.interval))
                    })?,
                    code: plan.code,
                    name: plan.name,
                    price_minor: plan.price_minor,
                    currency: plan.currency,
                    trial_days: plan.trial_days,
                    features: plan.features,
                    limits: plan.limits,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(PlanListResponse::Ok(Json(PlanList { items })))
    }
}
