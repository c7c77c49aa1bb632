//! The SQL of notifications. No tenant or recipient filter here: the policies of
//! policies/notifications.sql show a request only the notifications of its tenant
//! addressed to its user.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::Error;
use crate::platform::db::{RequestTx, page::Page};

#[derive(Debug, Clone)]
pub struct NotificationRow {
    pub id: Uuid,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub data: Value,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl NotificationRow {
    fn from_row(row: &Row) -> Result<NotificationRow, Error> {
        Ok(NotificationRow {
            id: row.try_get("id")?,
            kind: row.try_get("kind")?,
            title: row.try_get("title")?,
            body: row.try_get("body")?,
            data: row.try_get("data")?,
            read_at: row.try_get("read_at")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

pub async fn insert(
    tx: &RequestTx,
    user_id: Uuid,
    kind: &str,
    title: &str,
    body: &str,
    data: &Value,
) -> Result<Uuid, Error> {
    // The id is chosen here rather than returned: a row for another member is invisible to
    // the writer, and the SELECT policy would refuse to return it.
    let id = Uuid::new_v4();
    let statement = tx
        .prepare(
            "INSERT INTO notifications (tenant_id, id, user_id, kind, title, body, data)
             VALUES (app.current_tenant_id(), $1, $2, $3, $4, $5, $6)",
        )
        .await?;
    tx.execute(&statement, &[&id, &user_id, &kind, &title, &body, data])
        .await?;
    Ok(id)
}

/// The caller's notifications (all, or only the unread ones), newest first.
pub async fn list(
    tx: RequestTx,
    page: &Page,
    unread_only: bool,
) -> Result<Vec<NotificationRow>, Error> {
    // Two statements rather than `$4 OR read_at IS NULL`: each has a plan on its own
    // index (the unread one on the partial index).
    let sql = if unread_only {
        "SELECT id, kind, title, body, data, read_at, created_at FROM notifications
         WHERE read_at IS NULL AND (created_at, id) < ($1, $2)
         ORDER BY created_at DESC, id DESC LIMIT $3"
    } else {
        "SELECT id, kind, title, body, data, read_at, created_at FROM notifications
         WHERE (created_at, id) < ($1, $2)
         ORDER BY created_at DESC, id DESC LIMIT $3"
    };
    let statement = tx.prepare(sql).await?;
    let (before_time, before_id) = page.before();
    tx.query_and_commit(&statement, &[&before_time, &before_id, &page.fetch()])
        .await?
        .iter()
        .map(NotificationRow::from_row)
        .collect()
}

/// Marks one of the caller's notifications read; reading it again keeps the first
/// time (and two racing reads agree on it: the second sees the first's row).
pub async fn mark_read(tx: &RequestTx, id: Uuid) -> Result<NotificationRow, Error> {
    let statement = tx
        .prepare(
            "UPDATE notifications SET read_at = coalesce(read_at, now())
             WHERE id = $1
             RETURNING id, kind, title, body, data, read_at, created_at",
        )
        .await?;
    NotificationRow::from_row(
        &tx.query_opt(&statement, &[&id])
            .await?
            .ok_or(Error::NotFound)?,
    )
}

pub async fn mark_all_read(tx: &RequestTx) -> Result<(), Error> {
    let statement = tx
        .prepare("UPDATE notifications SET read_at = now() WHERE read_at IS NULL")
        .await?;
    tx.execute(&statement, &[]).await?;
    Ok(())
}

pub async fn unread_count(tx: RequestTx) -> Result<i64, Error> {
    let statement = tx
        .prepare("SELECT count(*) FROM notifications WHERE read_at IS NULL")
        .await?;
    let rows = tx.query_and_commit(&statement, &[]).await?;
    let row = rows
        .first()
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("count(*) returned no row")))?;
    Ok(row.try_get(0)?)
}

/// Enqueues the email `template` to the member `user_id` of the context's tenant, in
/// the caller's transaction (`app.send_member_email`: the address is the member's own,
/// the template one of the notification emails; nothing for a member who is not
/// active). The one function both runtime roles may call: requests and jobs run as
/// `rowguard_api`, which cannot enqueue an email of its choosing.
pub async fn email_member(
    tx: &RequestTx,
    user_id: Uuid,
    template: &str,
    data: &Value,
) -> Result<(), Error> {
    // Not app.enqueue_notification: the request role may not send an email of its
    // choosing (V10), and a job's transaction runs as that role.
    let statement = tx
        .prepare("SELECT app.send_member_email($1, $2, $3)")
        .await?;
    tx.query_one(&statement, &[&user_id, &template, data])
        .await?;
    Ok(())
}
