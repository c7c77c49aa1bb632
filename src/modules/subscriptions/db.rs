//! The SQL of plans: one statement for the catalog, features and limits folded into
//! each plan's row.

use std::collections::BTreeMap;

use crate::{error::Error, platform::db::RequestTx};

#[derive(Debug, Clone)]
pub struct PlanRow {
    pub code: String,
    pub name: String,
    pub price_minor: i64,
    pub currency: String,
    pub interval: String,
    pub trial_days: i32,
    /// Every feature, whether the plan has it.
    pub features: BTreeMap<String, bool>,
    /// Every limit kind; `None`: unlimited.
    pub limits: BTreeMap<String, Option<i64>>,
}

/// Every plan, cheapest first, and commits.
pub async fn list(tx: RequestTx) -> Result<Vec<PlanRow>, Error> {
    let statement = tx
        .prepare(
            "SELECT p.code, p.name, p.price_minor, p.currency, p.billing_interval, p.trial_days,
                    (SELECT jsonb_object_agg(f.code, EXISTS (SELECT 1 FROM plan_features AS pf
                                                             WHERE pf.plan_code = p.code
                                                               AND pf.feature_code = f.code))
                     FROM features AS f) AS features,
                    (SELECT jsonb_object_agg(l.limit_code, l.max)
                     FROM plan_limits AS l WHERE l.plan_code = p.code) AS limits
             FROM plans AS p ORDER BY p.position",
        )
        .await?;
    let rows = tx.query_and_commit(&statement, &[]).await?;
    rows.iter()
        .map(|row| {
            let features: serde_json::Value = row.try_get("features")?;
            let limits: serde_json::Value = row.try_get("limits")?;
            Ok(PlanRow {
                code: row.try_get("code")?,
                name: row.try_get("name")?,
                price_minor: row.try_get("price_minor")?,
                currency: row.try_get("currency")?,
                interval: row.try_get("billing_interval")?,
                trial_days: row.try_get("trial_days")?,
                features: serde_json::from_value(features).map_err(unreadable)?,
                limits: serde_json::from_value(limits).map_err(unreadable)?,
            })
        })
        .collect()
}

/// A plan whose features or limits do not read as maps: the seed is broken, a bug.
fn unreadable(error: serde_json::Error) -> Error {
    Error::Internal(anyhow::anyhow!("a plan's features or limits: {error}"))
}
