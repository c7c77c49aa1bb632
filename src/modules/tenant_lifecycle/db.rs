//! The SQL of a tenant's creation by a signed-in person and of its deletion. They run
//! in the caller's transaction and never commit.

use chrono::{DateTime, Utc};

use crate::{error::Error, platform::db::RequestTx};

/// How many tenants the context's user has created (locking their row, so two
/// concurrent creations take turns: `app.tenants_created_by_current_user`).
pub async fn tenants_created_by_current_user(tx: &RequestTx) -> Result<i64, Error> {
    let statement = tx
        .prepare("SELECT app.tenants_created_by_current_user() AS created")
        .await?;
    Ok(tx.query_one(&statement, &[]).await?.try_get("created")?)
}

/// Marks the context's tenant deleted, ends its sessions and revokes its keys; when
/// it was deleted (`None`: it already was).
pub async fn delete_current_tenant(tx: &RequestTx) -> Result<Option<DateTime<Utc>>, Error> {
    let statement = tx
        .prepare("SELECT app.delete_current_tenant() AS deleted_at")
        .await?;
    Ok(tx.query_one(&statement, &[]).await?.try_get("deleted_at")?)
}
