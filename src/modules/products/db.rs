//! The reference feature module's SQL: products (tenant-scoped) and inventory
//! (store-scoped). Note what is absent: no `WHERE tenant_id = ...`, no
//! `AND store_id = ...`. The policies of policies/products.sql, inventory.sql and
//! inventory_adjustments.sql filter every statement by the request's context; a new
//! module is written the same way.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::Error;
use crate::platform::db::{RequestTx, page::Page};

#[derive(Debug, Clone)]
pub struct ProductRow {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub price_cents: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ProductRow {
    fn from_row(row: &Row) -> Result<ProductRow, Error> {
        Ok(ProductRow {
            id: row.try_get("id")?,
            sku: row.try_get("sku")?,
            name: row.try_get("name")?,
            price_cents: row.try_get("price_cents")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

fn sku_taken() -> Error {
    Error::Conflict("a product with that sku exists".into())
}

pub async fn list(tx: RequestTx, page: &Page) -> Result<Vec<ProductRow>, Error> {
    let statement = tx
        .prepare(
            "SELECT id, sku, name, price_cents, created_at, updated_at FROM products
             WHERE (created_at, id) > ($1, $2)
             ORDER BY created_at, id LIMIT $3",
        )
        .await?;
    let (after_time, after_id) = page.after();
    tx.query_and_commit(&statement, &[&after_time, &after_id, &page.fetch()])
        .await?
        .iter()
        .map(ProductRow::from_row)
        .collect()
}

const PRODUCT_BY_ID: &str =
    "SELECT id, sku, name, price_cents, created_at, updated_at FROM products WHERE id = $1";

pub async fn get(tx: &RequestTx, id: Uuid) -> Result<ProductRow, Error> {
    let statement = tx.prepare(PRODUCT_BY_ID).await?;
    ProductRow::from_row(
        &tx.query_opt(&statement, &[&id])
            .await?
            .ok_or(Error::NotFound)?,
    )
}

/// `GET /products/{id}`: the read written with the COMMIT (two round trips in all).
pub async fn read(tx: RequestTx, id: Uuid) -> Result<ProductRow, Error> {
    let statement = tx.prepare(PRODUCT_BY_ID).await?;
    ProductRow::from_row(
        &tx.query_opt_and_commit(&statement, &[&id])
            .await?
            .ok_or(Error::NotFound)?,
    )
}

pub async fn create(
    tx: &RequestTx,
    sku: &str,
    name: &str,
    price_cents: i64,
) -> Result<ProductRow, Error> {
    // tenant_id comes from the context: the policy's WITH CHECK admits no other.
    let statement = tx
        .prepare(
            // Within the plan's limit, checked and serialised in this statement
            // (sql/V14).
            "INSERT INTO products (tenant_id, sku, name, price_cents)
             SELECT app.current_tenant_id(), $1::text, $2::text, $3::bigint
             WHERE app.within_plan_limit('products')
             RETURNING id, sku, name, price_cents, created_at, updated_at",
        )
        .await?;
    let row = tx
        .query_one(&statement, &[&sku, &name, &price_cents])
        .await
        .map_err(|error| error.on_constraint("products_tenant_id_sku_key", sku_taken))?;
    ProductRow::from_row(&row)
}

pub async fn update(
    tx: &RequestTx,
    id: Uuid,
    sku: Option<&str>,
    name: Option<&str>,
    price_cents: Option<i64>,
) -> Result<ProductRow, Error> {
    let statement = tx
        .prepare(
            "UPDATE products SET sku = coalesce($2, sku), name = coalesce($3, name),
                    price_cents = coalesce($4, price_cents), updated_at = now()
             WHERE id = $1
             RETURNING id, sku, name, price_cents, created_at, updated_at",
        )
        .await?;
    let row = tx
        .query_opt(&statement, &[&id, &sku, &name, &price_cents])
        .await
        .map_err(|error| error.on_constraint("products_tenant_id_sku_key", sku_taken))?
        .ok_or(Error::NotFound)?;
    ProductRow::from_row(&row)
}

pub async fn delete(tx: &RequestTx, id: Uuid) -> Result<(), Error> {
    let statement = tx.prepare("DELETE FROM products WHERE id = $1").await?;
    match tx.execute(&statement, &[&id]).await? {
        0 => Err(Error::NotFound),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone)]
pub struct StockRow {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub updated_at: DateTime<Utc>,
}

/// The context store's stock, by product id: the order of inventory's primary key, so
/// a page is a range scan of the store's own rows whatever the size of the catalog.
pub async fn inventory(tx: RequestTx, page: &Page) -> Result<Vec<StockRow>, Error> {
    let statement = tx
        .prepare(
            "SELECT i.product_id, p.sku, p.name, i.quantity, i.updated_at
             FROM inventory i JOIN products p ON p.tenant_id = i.tenant_id AND p.id = i.product_id
             WHERE i.product_id > $1
             ORDER BY i.product_id LIMIT $2",
        )
        .await?;
    let (_, after_product) = page.after();
    tx.query_and_commit(&statement, &[&after_product, &page.fetch()])
        .await?
        .iter()
        .map(|row| {
            Ok(StockRow {
                product_id: row.try_get("product_id")?,
                sku: row.try_get("sku")?,
                name: row.try_get("name")?,
                quantity: row.try_get("quantity")?,
                updated_at: row.try_get("updated_at")?,
            })
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct AdjustmentRow {
    pub id: Uuid,
    pub product_id: Uuid,
    pub delta: i64,
    pub reason: String,
    pub quantity: i64,
    pub created_at: DateTime<Utc>,
}

/// Records an adjustment in the context store's ledger and applies it to the stock.
/// `Conflict` when the stock would go below zero.
pub async fn adjust(
    tx: &RequestTx,
    product_id: Uuid,
    delta: i64,
    reason: &str,
) -> Result<AdjustmentRow, Error> {
    let below_zero = || Error::Conflict("the stock would go below zero".into());
    // Stock in: create the row or add to it. Stock out: only from a row that has it
    // (a proposed row with a negative quantity fails its CHECK before ON CONFLICT).
    let statement = if delta > 0 {
        tx.prepare(
            "INSERT INTO inventory (tenant_id, store_id, product_id, quantity)
             VALUES (app.current_tenant_id(), app.current_store_id(), $1, $2)
             ON CONFLICT (tenant_id, store_id, product_id)
             DO UPDATE SET quantity = inventory.quantity + EXCLUDED.quantity, updated_at = now()
             RETURNING quantity",
        )
        .await?
    } else {
        tx.prepare(
            "UPDATE inventory SET quantity = quantity + $2, updated_at = now()
             WHERE product_id = $1
             RETURNING quantity",
        )
        .await?
    };
    let row = tx
        .query_opt(&statement, &[&product_id, &delta])
        .await
        .map_err(|error| error.on_constraint("inventory_quantity_not_negative", below_zero))?;
    let quantity: i64 = row.ok_or_else(below_zero)?.try_get(0)?;
    let ledger = tx
        .prepare(
            "INSERT INTO inventory_adjustments (tenant_id, store_id, product_id, delta, reason, actor_user_id)
             VALUES (app.current_tenant_id(), app.current_store_id(), $1, $2, $3, app.current_user_id())
             RETURNING id, product_id, delta, reason, created_at",
        )
        .await?;
    let row = tx
        .query_one(&ledger, &[&product_id, &delta, &reason])
        .await?;
    Ok(AdjustmentRow {
        id: row.try_get("id")?,
        product_id: row.try_get("product_id")?,
        delta: row.try_get("delta")?,
        reason: row.try_get("reason")?,
        quantity,
        created_at: row.try_get("created_at")?,
    })
}
