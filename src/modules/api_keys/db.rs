//! The SQL of API keys. No tenant filter: the policy of policies/api_keys.sql is the
//! filter, and the runtime role cannot read `secret_hash` (a column grant), so no
//! statement here names it but the insert.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::Error;
use crate::platform::db::{RequestTx, page::Page};

#[derive(Debug, Clone)]
pub struct KeyRow {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub permissions: Vec<String>,
    pub created_by: Uuid,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, name, prefix, permissions, created_by, expires_at, revoked_at, last_used_at, created_at";

impl KeyRow {
    fn from_row(row: &Row) -> Result<KeyRow, Error> {
        Ok(KeyRow {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            prefix: row.try_get("prefix")?,
            permissions: row.try_get("permissions")?,
            created_by: row.try_get("created_by")?,
            expires_at: row.try_get("expires_at")?,
            revoked_at: row.try_get("revoked_at")?,
            last_used_at: row.try_get("last_used_at")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

pub struct NewKeyRow<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub prefix: &'a str,
    pub hash: &'a [u8],
    pub permissions: &'a [String],
    pub expires_at: DateTime<Utc>,
}

/// Inserts a key of the context's tenant, created by the context's user.
pub async fn insert(tx: &RequestTx, key: &NewKeyRow<'_>) -> Result<KeyRow, Error> {
    let statement = tx
        .prepare(&format!(
            "INSERT INTO api_keys (tenant_id, id, created_by, name, prefix, secret_hash, permissions, expires_at)
             VALUES (app.current_tenant_id(), $1, app.current_user_id(), $2, $3, $4, $5, $6)
             RETURNING {COLUMNS}"
        ))
        .await?;
    KeyRow::from_row(
        &tx.query_one(
            &statement,
            &[
                &key.id,
                &key.name,
                &key.prefix,
                &key.hash,
                &key.permissions,
                &key.expires_at,
            ],
        )
        .await?,
    )
}

/// The tenant's keys, revoked ones included (the list says which), oldest first.
pub async fn list(tx: RequestTx, page: &Page) -> Result<Vec<KeyRow>, Error> {
    let statement = tx
        .prepare(&format!(
            "SELECT {COLUMNS} FROM api_keys WHERE (created_at, id) > ($1, $2)
             ORDER BY created_at, id LIMIT $3"
        ))
        .await?;
    let (after_time, after_id) = page.after();
    tx.query_and_commit(&statement, &[&after_time, &after_id, &page.fetch()])
        .await?
        .iter()
        .map(KeyRow::from_row)
        .collect()
}

/// Revokes a key (a revoked one stays revoked at its first time); 404 if the tenant
/// has no such key.
pub async fn revoke(tx: &RequestTx, id: Uuid) -> Result<KeyRow, Error> {
    let statement = tx
        .prepare(&format!(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
             RETURNING {COLUMNS}"
        ))
        .await?;
    KeyRow::from_row(
        &tx.query_opt(&statement, &[&id])
            .await?
            .ok_or(Error::NotFound)?,
    )
}
