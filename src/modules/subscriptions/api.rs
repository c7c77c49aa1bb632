//! `GET /api/v1/plans`: the plan catalog, public (a pricing page needs no account).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::{db, service};
use crate::{
    error::Error,
    modules::Tag,
    platform::{
        auth::access::{Operation, authorize},
        db::{Database, RequestTx, Scope},
        http::{
            common::from_wire,
            json::{JsonBody, rfc3339, rfc3339_or_null},
            problem::ApiError,
            security::BearerAuth,
            text::{Bounded, Text},
        },
    },
};

pub struct PlansApi {
    pub db: Database,
}

pub struct SubscriptionsApi {
    pub db: Database,
}

// What each operation requires (see `auth::access`): one line per route below.
const PLANS_LIST: Operation = Operation::public("plans_list");
const SUBSCRIPTIONS_CURRENT: Operation =
    Operation::permission("subscriptions_current", "subscriptions.view");
// 409: a move to a pricier plan while the current plan's invoice is open.
const SUBSCRIPTIONS_CHANGE: Operation =
    Operation::permission("subscriptions_change", "subscriptions.manage").returning(&[409]);
const SUBSCRIPTIONS_CANCEL: Operation =
    Operation::permission("subscriptions_cancel", "subscriptions.manage").returning(&[409]);

pub const OPERATIONS: &[Operation] = &[
    PLANS_LIST,
    SUBSCRIPTIONS_CURRENT,
    SUBSCRIPTIONS_CHANGE,
    SUBSCRIPTIONS_CANCEL,
];

/// Where a subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// On a plan's trial, until `trial_end`.
    Trialing,
    Active,
    /// An invoice is open past its due time; everything works during the grace period.
    PastDue,
    /// The grace period is over: gated operations answer 402 `payment_required`.
    Unpaid,
    Canceled,
}

/// The tenant's subscription, with its plan as `GET /plans` lists it.
#[derive(Object, serde::Serialize)]
pub struct Subscription {
    pub plan_code: String,
    pub status: SubscriptionStatus,
    #[oai(nullable)]
    #[serde(serialize_with = "rfc3339_or_null")]
    pub trial_end: Option<DateTime<Utc>>,
    #[serde(serialize_with = "rfc3339")]
    pub current_period_start: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    pub current_period_end: DateTime<Utc>,
    /// Canceled, effective when the current period ends.
    pub cancel_at_period_end: bool,
    /// The plan it moves to: when its first invoice is paid (an upgrade) or when the
    /// period ends (a downgrade).
    #[oai(nullable)]
    pub pending_plan_code: Option<String>,
    pub plan: Plan,
}

#[derive(ApiResponse)]
pub enum SubscriptionResponse {
    #[oai(status = 200)]
    Ok(JsonBody<Subscription>),
}

/// The plan to move to.
#[derive(Object)]
#[oai(example)]
pub struct ChangePlanRequest {
    /// A plan of `GET /plans` (422 for any other).
    pub plan_code: Text<Bounded<1, 64>>,
}

impl poem_openapi::types::Example for ChangePlanRequest {
    fn example() -> Self {
        ChangePlanRequest {
            plan_code: "starter".into(),
        }
    }
}

/// The context tenant's subscription as the API shows it.
pub async fn subscription(tx: &RequestTx) -> Result<Subscription, Error> {
    let subscription = db::current(tx).await?;
    let on = db::plan(tx, &subscription.plan_code).await?;
    Ok(Subscription {
        status: from_wire(&subscription.status).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!("a subscription {}", subscription.status))
        })?,
        plan_code: subscription.plan_code,
        trial_end: subscription.trial_end,
        current_period_start: subscription.current_period_start,
        current_period_end: subscription.current_period_end,
        cancel_at_period_end: subscription.cancel_at_period_end,
        pending_plan_code: subscription.pending_plan_code,
        plan: plan(on)?,
    })
}

fn plan(plan: db::PlanRow) -> Result<Plan, Error> {
    Ok(Plan {
        interval: from_wire(&plan.interval).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!("a plan billed per {}", plan.interval))
        })?,
        code: plan.code,
        name: plan.name,
        price_minor: plan.price_minor,
        currency: plan.currency,
        trial_days: plan.trial_days,
        features: PlanFeatures {
            inventory: feature(&plan.features, "inventory")?,
            audit_log: feature(&plan.features, "audit_log")?,
            api_keys: feature(&plan.features, "api_keys")?,
        },
        limits: PlanLimits {
            stores: limit(&plan.limits, "stores")?,
            members: limit(&plan.limits, "members")?,
            products: limit(&plan.limits, "products")?,
            api_requests: limit(&plan.limits, "api_requests")?,
        },
    })
}

/// A feature or limit the code knows and the seed lacks is a bug of the migrations.
fn seeded<T: Copy>(map: &BTreeMap<String, T>, code: &str) -> Result<T, Error> {
    map.get(code)
        .copied()
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("the plans have no {code}")))
}

fn feature(features: &BTreeMap<String, bool>, code: &str) -> Result<bool, Error> {
    seeded(features, code)
}

fn limit(limits: &BTreeMap<String, Option<i64>>, code: &str) -> Result<Option<i64>, Error> {
    seeded(limits, code)
}

/// How often a plan is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Month,
    Year,
}

/// A plan: its price, trial, features and limits.
#[derive(Object, serde::Serialize)]
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
    // No doc comments on these three: poem-openapi would wrap the reference in an
    // `allOf` to carry it, and openapi-python-client then names an inline model
    // `PlanFeatures` after the property, colliding with the schema of that name. The
    // schemas carry the descriptions.
    pub features: PlanFeatures,
    pub limits: PlanLimits,
}

/// Whether the plan has each feature (code-defined: each is checked by the operations
/// that declare it).
#[derive(Object, serde::Serialize)]
pub struct PlanFeatures {
    /// Store inventory and its adjustments (`/inventory*`).
    pub inventory: bool,
    /// The audit trail (`GET /audit-events`).
    pub audit_log: bool,
    /// API keys (`/api-keys*`).
    pub api_keys: bool,
}

/// What a plan bounds: each limit's maximum; `null`: unlimited.
#[derive(Object, serde::Serialize)]
pub struct PlanLimits {
    /// Stores of the tenant.
    #[oai(nullable)]
    pub stores: Option<i64>,
    /// Active members plus pending invitations.
    #[oai(nullable)]
    pub members: Option<i64>,
    /// Products of the tenant.
    #[oai(nullable)]
    pub products: Option<i64>,
    /// API requests per billing period (metered: counted, never refused).
    #[oai(nullable)]
    pub api_requests: Option<i64>,
}

#[derive(Object, serde::Serialize)]
pub struct PlanList {
    pub items: Vec<Plan>,
}

#[derive(ApiResponse)]
pub enum PlanListResponse {
    #[oai(status = 200)]
    Ok(JsonBody<PlanList>),
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
            .map(plan)
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(PlanListResponse::Ok(JsonBody(PlanList { items })))
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Subscriptions")]
impl SubscriptionsApi {
    /// The tenant's subscription: its plan, status and current period.
    #[oai(
        path = "/subscriptions/current",
        method = "get",
        operation_id = "subscriptions_current"
    )]
    async fn current(&self, auth: BearerAuth) -> Result<SubscriptionResponse, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, &SUBSCRIPTIONS_CURRENT).await?;
        let read = subscription(&tx).await;
        Ok(SubscriptionResponse::Ok(JsonBody(tx.finish(read).await?)))
    }

    /// Move to another plan. To a paid plan from `free`: a trial when the plan has
    /// one and the tenant never had a trial (`trialing` at once); otherwise (and from a
    /// paid plan to a pricier one) an invoice for the new plan's first period is
    /// issued, due now, the plan is `pending_plan_code`, and it applies when that
    /// invoice is paid. To a cheaper plan or `free`: at the end of the current period
    /// (`pending_plan_code`). To the plan it is on: nothing changes, except that a
    /// pending change or a cancellation is withdrawn. 409 while an invoice of the
    /// current plan is open and the plan asked for is pricier.
    #[oai(
        path = "/subscriptions/current",
        method = "put",
        operation_id = "subscriptions_change"
    )]
    async fn change(
        &self,
        auth: BearerAuth,
        body: JsonBody<ChangePlanRequest>,
    ) -> Result<SubscriptionResponse, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, &SUBSCRIPTIONS_CHANGE).await?;
        let changed = async {
            service::change_plan(&tx, &body.plan_code, Utc::now()).await?;
            subscription(&tx).await
        }
        .await;
        Ok(SubscriptionResponse::Ok(JsonBody(
            tx.finish(changed).await?,
        )))
    }

    /// Cancel: `cancel_at_period_end` is true, and at the end of the current period
    /// the tenant moves to `free` (a pending plan change is withdrawn). Choosing a
    /// plan with `PUT` withdraws the cancellation.
    #[oai(
        path = "/subscriptions/current",
        method = "delete",
        operation_id = "subscriptions_cancel"
    )]
    async fn cancel(&self, auth: BearerAuth) -> Result<SubscriptionResponse, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, &SUBSCRIPTIONS_CANCEL).await?;
        let canceled = async {
            service::cancel(&tx, Utc::now()).await?;
            subscription(&tx).await
        }
        .await;
        Ok(SubscriptionResponse::Ok(JsonBody(
            tx.finish(canceled).await?,
        )))
    }
}
