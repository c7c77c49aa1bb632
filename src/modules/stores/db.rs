//! The SQL of stores: a tenant's branches and the members linked to them. No query
//! here filters by tenant: row-level security does (policies/stores.sql,
//! store_users.sql). Functions run in the caller's request transaction and never
//! commit.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::{
    error::Error,
    modules::tenancy::MemberRow,
    platform::db::{RequestTx, enum_column, page::Page},
};

pub use super::api::StoreStatus;

#[derive(Debug, Clone)]
pub struct StoreRow {
    pub id: Uuid,
    pub name: String,
    pub code: Option<String>,
    pub address: Option<String>,
    pub status: StoreStatus,
    pub created_at: DateTime<Utc>,
}

impl StoreRow {
    fn from_row(row: &Row) -> Result<StoreRow, Error> {
        Ok(StoreRow {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            code: row.try_get("code")?,
            address: row.try_get("address")?,
            status: enum_column(row, "status")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// Whether the context's user may see store `s`: every store of the tenant with a
/// tenant-wide role, otherwise those they are linked to or hold a role in (a macro, so
/// that the statements using it stay literals).
macro_rules! store_visible {
    () => {
        " AND (EXISTS (SELECT 1 FROM user_roles ur
                       WHERE ur.user_id = app.current_user_id() AND ur.store_id IS NULL)
               OR EXISTS (SELECT 1 FROM user_roles ur
                          WHERE ur.user_id = app.current_user_id() AND ur.store_id = s.id)
               OR EXISTS (SELECT 1 FROM store_users su
                          WHERE su.user_id = app.current_user_id() AND su.store_id = s.id)) "
    };
}

/// The stores the context's user may see (see `store_visible!`).
pub async fn list_visible_stores(tx: RequestTx, page: &Page) -> Result<Vec<StoreRow>, Error> {
    let statement = tx
        .prepare(concat!(
            "SELECT s.id, s.name, s.code, s.address, s.status, s.created_at
             FROM stores s
             WHERE (s.created_at, s.id) > ($1, $2)",
            store_visible!(),
            "ORDER BY s.created_at, s.id LIMIT $3"
        ))
        .await?;
    let (after_time, after_id) = page.after();
    tx.query_and_commit(&statement, &[&after_time, &after_id, &page.fetch()])
        .await?
        .iter()
        .map(StoreRow::from_row)
        .collect()
}

/// One store, if the context's user may see it (see [`list_visible_stores`]).
/// `GET /stores/{id}`: the read written with the COMMIT (two round trips in all).
pub async fn read_visible_store(tx: RequestTx, id: Uuid) -> Result<StoreRow, Error> {
    let statement = tx
        .prepare(concat!(
            "SELECT s.id, s.name, s.code, s.address, s.status, s.created_at
             FROM stores s
             WHERE s.id = $1",
            store_visible!()
        ))
        .await?;
    StoreRow::from_row(
        &tx.query_opt_and_commit(&statement, &[&id])
            .await?
            .ok_or(Error::NotFound)?,
    )
}

/// Locks a store's row until the transaction ends: an assignment or a link to the
/// store (which takes a key-share lock on it) waits, so what a deletion checked is
/// what it removes. `NotFound` when the tenant has no such store.
pub async fn lock_store(tx: &RequestTx, id: Uuid) -> Result<(), Error> {
    let statement = tx
        .prepare("SELECT id FROM stores WHERE id = $1 FOR UPDATE")
        .await?;
    match tx.query_opt(&statement, &[&id]).await? {
        Some(_) => Ok(()),
        None => Err(Error::NotFound),
    }
}

/// Whether the tenant has a store of that id.
pub async fn exists(tx: &RequestTx, id: Uuid) -> Result<bool, Error> {
    let statement = tx
        .prepare("SELECT EXISTS (SELECT 1 FROM stores WHERE id = $1)")
        .await?;
    Ok(tx.query_one(&statement, &[&id]).await?.try_get(0)?)
}

pub async fn store(tx: &RequestTx, id: Uuid) -> Result<StoreRow, Error> {
    let statement = tx
        .prepare("SELECT id, name, code, address, status, created_at FROM stores WHERE id = $1")
        .await?;
    StoreRow::from_row(
        &tx.query_opt(&statement, &[&id])
            .await?
            .ok_or(Error::NotFound)?,
    )
}

fn code_taken() -> Error {
    Error::Conflict("another store of this tenant has that code".into())
}

pub async fn create_store(
    tx: &RequestTx,
    name: &str,
    code: Option<&str>,
    address: Option<&str>,
) -> Result<StoreRow, Error> {
    let statement = tx
        .prepare(
            // Within the plan's limit, checked and serialised in this statement
            // (sql/V14).
            "INSERT INTO stores (tenant_id, name, code, address)
             SELECT app.current_tenant_id(), $1::text, $2::text, $3::text
             WHERE app.within_plan_limit('stores')
             RETURNING id, name, code, address, status, created_at",
        )
        .await?;
    let row = tx
        .query_one(&statement, &[&name, &code, &address])
        .await
        .map_err(|error| error.on_constraint("stores_tenant_id_code_key", code_taken))?;
    StoreRow::from_row(&row)
}

/// `None` fields are left as they are.
pub async fn update_store(
    tx: &RequestTx,
    id: Uuid,
    name: Option<&str>,
    code: Option<&str>,
    address: Option<&str>,
    status: Option<&str>,
) -> Result<StoreRow, Error> {
    let statement = tx
        .prepare(
            "UPDATE stores SET name = coalesce($2, name), code = coalesce($3, code),
                    address = coalesce($4, address), status = coalesce($5, status), updated_at = now()
             WHERE id = $1
             RETURNING id, name, code, address, status, created_at",
        )
        .await?;
    let row = tx
        .query_opt(&statement, &[&id, &name, &code, &address, &status])
        .await
        .map_err(|error| error.on_constraint("stores_tenant_id_code_key", code_taken))?
        .ok_or(Error::NotFound)?;
    StoreRow::from_row(&row)
}

pub async fn delete_store(tx: &RequestTx, id: Uuid) -> Result<StoreRow, Error> {
    let statement = tx
        .prepare("DELETE FROM stores WHERE id = $1 RETURNING id, name, code, address, status, created_at")
        .await?;
    StoreRow::from_row(
        &tx.query_opt(&statement, &[&id])
            .await?
            .ok_or(Error::NotFound)?,
    )
}

pub async fn store_members(tx: &RequestTx, store_id: Uuid) -> Result<Vec<MemberRow>, Error> {
    let statement = tx
        .prepare(
            "SELECT tu.user_id, u.email, u.full_name, tu.status, su.created_at AS joined_at
             FROM store_users su
             JOIN tenant_users tu ON tu.tenant_id = su.tenant_id AND tu.user_id = su.user_id
             JOIN users u ON u.id = su.user_id
             WHERE su.store_id = $1
             ORDER BY su.created_at, su.user_id",
        )
        .await?;
    tx.query(&statement, &[&store_id])
        .await?
        .iter()
        .map(MemberRow::from_row)
        .collect()
}

/// Links a member to a store; true when the link is new.
pub async fn link_store_user(tx: &RequestTx, store_id: Uuid, user_id: Uuid) -> Result<bool, Error> {
    let statement = tx
        .prepare(
            "INSERT INTO store_users (tenant_id, store_id, user_id) VALUES (app.current_tenant_id(), $1, $2)
             ON CONFLICT DO NOTHING",
        )
        .await?;
    Ok(tx.execute(&statement, &[&store_id, &user_id]).await? == 1)
}

pub async fn unlink_store_user(tx: &RequestTx, store_id: Uuid, user_id: Uuid) -> Result<(), Error> {
    let statement = tx
        .prepare("DELETE FROM store_users WHERE store_id = $1 AND user_id = $2")
        .await?;
    match tx.execute(&statement, &[&store_id, &user_id]).await? {
        0 => Err(Error::NotFound),
        _ => Ok(()),
    }
}
