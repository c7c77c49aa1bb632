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
