//! Plans and subscriptions. The plan catalog: the plans, their features and their
//! limits, code-defined and seeded by `sql/V12__plans.sql`, listed publicly at
//! `GET /api/v1/plans`. Every tenant's one subscription (`sql/V13__subscriptions.sql`),
//! started with the tenant ([`start`]), read at `GET /api/v1/subscriptions/current`,
//! changed by `PUT` and `DELETE` on it (`service`), and moved through its periods by
//! the status machine (`lifecycle`, `period`), which the `billing.renewals` job and
//! payments apply. The feature gate and the limits read them.

pub mod api;
mod db;
pub mod lifecycle;
pub mod period;
pub mod service;

use chrono::{DateTime, Utc};

use crate::{
    error::Error,
    platform::db::{Database, RequestTx, Scope},
};

/// Starts the subscription of the tenant of `tx`'s context (created in the same
/// transaction) on `plan_code`: active, no trial, its first period from `now`.
pub async fn start(tx: &RequestTx, plan_code: &str, now: DateTime<Utc>) -> Result<(), Error> {
    if db::start(tx, plan_code, now).await? {
        Ok(())
    } else {
        Err(Error::Internal(anyhow::anyhow!(
            "there is no plan {plan_code}"
        )))
    }
}

/// Starts the subscription of the tenant of `tx`'s context on the plan its Owner chose
/// at onboarding: with the plan's trial when it has one, else active (a free plan).
pub async fn start_chosen(
    tx: &RequestTx,
    plan_code: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    if db::start_chosen(tx, plan_code, now).await? {
        Ok(())
    } else {
        Err(Error::Internal(anyhow::anyhow!(
            "the plan {plan_code} cannot start without a payment"
        )))
    }
}

/// Whether onboarding can start a tenant on `plan_code` ([`start_chosen`]): a plan
/// with a trial, or a free one. Asked before any work is done for the registration.
pub async fn can_start(db: &Database, plan_code: &str) -> Result<bool, Error> {
    let (tx, _) = db.begin(&Scope::anonymous()).await?;
    let startable = db::can_start(&tx, plan_code).await;
    tx.finish(startable).await
}

/// The subscription of the tenant of `tx`'s context, as `GET /subscriptions/current`
/// shows it.
pub async fn current(tx: &RequestTx) -> Result<api::Subscription, Error> {
    api::subscription(tx).await
}

/// Whether `plan_code` is a plan: start-up refuses a `ROWGUARD_DEFAULT_PLAN` that is not.
pub async fn plan_exists(db: &Database, plan_code: &str) -> Result<bool, Error> {
    let (tx, _) = db.begin(&Scope::anonymous()).await?;
    let exists = db::plan_exists(&tx, plan_code).await;
    tx.finish(exists).await
}

/// This module's operations, as the registry mounts them.
pub type Api = (api::PlansApi, api::SubscriptionsApi);

pub fn api(state: &super::AppState) -> Api {
    (
        api::PlansApi {
            db: state.db.clone(),
        },
        api::SubscriptionsApi {
            db: state.db.clone(),
        },
    )
}

pub const OPERATIONS: &[&[crate::platform::auth::access::Operation]] = &[api::OPERATIONS];
