//! The reference feature module: products (tenant-scoped) and store inventory
//! (store-scoped). It shows how a module is written: each operation declares its
//! permission next to its route (`api`), its SQL carries no tenant or store filter
//! (`db`; the policies of `policies/products.sql`, `inventory.sql` and
//! `inventory_adjustments.sql` are the filter), and nothing else imports its SQL.

pub mod api;
mod db;

/// This module's operations, as the registry mounts them.
pub type Api = api::ProductsApi;

pub fn api(state: &super::AppState) -> Api {
    api::ProductsApi {
        db: state.db.clone(),
    }
}

pub const OPERATIONS: &[&[crate::platform::auth::access::Operation]] = &[api::OPERATIONS];

/// Creates a product in the context's tenant, as `POST /products` does (within the
/// plan's limit; 409 for a SKU it has already); its id.
pub async fn create(
    tx: &crate::platform::db::RequestTx,
    sku: &str,
    name: &str,
    price_cents: i64,
) -> Result<uuid::Uuid, crate::error::Error> {
    Ok(db::create(tx, sku, name, price_cents).await?.id)
}

/// Adjusts the stock of a product in the context's store, as `POST
/// /inventory/adjustments` does (recorded in the store's ledger); the new quantity.
pub async fn adjust_stock(
    tx: &crate::platform::db::RequestTx,
    product_id: uuid::Uuid,
    delta: i64,
    reason: &str,
) -> Result<i64, crate::error::Error> {
    Ok(db::adjust(tx, product_id, delta, reason).await?.quantity)
}
