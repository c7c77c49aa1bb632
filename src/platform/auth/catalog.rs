//! The permission catalog as the code knows it. The catalog is code-defined: the
//! migrations seed the `permissions` table with exactly these codes (a test compares
//! the two), and every operation's declared permission is one of them. The API
//! documents permission codes as this closed set.

use crate::platform::http::text::{Text, TextKind};

/// Every permission code, `resource.action`.
pub const PERMISSION_CODES: &[&str] = &[
    "audit.view",
    "inventory.adjust",
    "inventory.view",
    "products.create",
    "products.delete",
    "products.edit",
    "products.view",
    "roles.assign",
    "roles.create",
    "roles.delete",
    "roles.edit",
    "roles.view",
    "stores.assign_users",
    "stores.create",
    "stores.delete",
    "stores.edit",
    "stores.view",
    "tenants.edit",
    "tenants.view",
    "users.edit",
    "users.invite",
    "users.remove",
    "users.view",
];

/// The schema of a permission code: a string of [`PERMISSION_CODES`].
pub struct Catalog;
impl TextKind for Catalog {
    const ENUM: &'static [&'static str] = PERMISSION_CODES;
}

/// A permission code. In a request, an unknown code is the service's 422 (it checks
/// the codes against the database's catalog), not a parse failure.
pub type PermissionCode = Text<Catalog>;
