//! The SQL of the audit trail: appending an event, listing them newest first.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{Action, Target};
use crate::error::Error;
use crate::platform::{
    db::{RequestTx, enum_column, page::Page},
    http::common::wire_name,
};

/// What an event records about a change.
pub struct Event {
    pub action: Action,
    pub target_type: Target,
    pub target_id: Option<Uuid>,
    pub store_id: Option<Uuid>,
    /// A before/after summary.
    pub details: Value,
}

/// Appends an event for the context's tenant and user.
pub async fn insert(tx: &RequestTx, event: &Event) -> Result<(), Error> {
    let statement = tx
        .prepare(
            "INSERT INTO audit_events (tenant_id, actor_user_id, action, target_type, target_id, store_id, details)
             VALUES (app.current_tenant_id(), app.current_user_id(), $1, $2, $3, $4, $5)",
        )
        .await?;
    tx.execute(
        &statement,
        &[
            &wire_name(&event.action),
            &wire_name(&event.target_type),
            &event.target_id,
            &event.store_id,
            &event.details,
        ],
    )
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: Uuid,
    pub actor_user_id: Option<Uuid>,
    pub action: Action,
    pub target_type: Target,
    pub target_id: Option<Uuid>,
    pub store_id: Option<Uuid>,
    pub details: Value,
    pub created_at: DateTime<Utc>,
}

/// Newest first.
pub async fn list(tx: RequestTx, page: &Page) -> Result<Vec<EventRow>, Error> {
    let statement = tx
        .prepare(
            "SELECT id, actor_user_id, action, target_type, target_id, store_id, details, created_at
             FROM audit_events
             WHERE (created_at, id) < ($1, $2)
             ORDER BY created_at DESC, id DESC
             LIMIT $3",
        )
        .await?;
    let (after_time, after_id) = page.before();
    tx.query_and_commit(&statement, &[&after_time, &after_id, &page.fetch()])
        .await?
        .iter()
        .map(|row| {
            Ok(EventRow {
                id: row.try_get("id")?,
                actor_user_id: row.try_get("actor_user_id")?,
                action: enum_column(row, "action")?,
                target_type: enum_column(row, "target_type")?,
                target_id: row.try_get("target_id")?,
                store_id: row.try_get("store_id")?,
                details: row.try_get("details")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
}
