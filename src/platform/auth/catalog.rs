//! The permission catalog as the code knows it. The catalog is code-defined: the
//! migrations seed the `permissions` table with exactly these codes (a test compares
//! the two), and every operation's declared permission is one of them. The API
//! documents permission codes as this closed set.

use crate::platform::http::text::{PublicKind, Text, TextKind};

/// Every permission code (`resource.action`), and what a 403 `forbidden` may name as
/// missing: one of them, or being a platform admin (`platform_admin`, the operator
/// routes). One list, so the two cannot drift apart.
macro_rules! permission_codes {
    ($($code:literal),* $(,)?) => {
        pub const PERMISSION_CODES: &[&str] = &[$($code),*];
        pub const MISSING_GRANTS: &[&str] = &[$($code,)* "platform_admin"];
    };
}

permission_codes!(
    "api_keys.manage",
    "api_keys.view",
    "audit.view",
    "billing.pay",
    "billing.view",
    "inventory.adjust",
    "inventory.view",
    "notifications.manage",
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
    "subscriptions.manage",
    "subscriptions.view",
    "tenants.delete",
    "tenants.edit",
    "tenants.export",
    "tenants.view",
    "usage.view",
    "users.edit",
    "users.invite",
    "users.remove",
    "users.view",
);

/// The schema of a permission code: a string of [`PERMISSION_CODES`].
pub struct Catalog;
impl TextKind for Catalog {
    const ENUM: &'static [&'static str] = PERMISSION_CODES;
}
impl PublicKind for Catalog {}

/// A permission code. In a request, an unknown code is the service's 422 (it checks
/// the codes against the database's catalog), not a parse failure.
pub type PermissionCode = Text<Catalog>;

/// The schema of what a `forbidden` problem names as missing: a permission code of
/// [`PERMISSION_CODES`], or `platform_admin`.
pub struct MissingGrantKind;
impl TextKind for MissingGrantKind {
    const ENUM: &'static [&'static str] = MISSING_GRANTS;
}
impl PublicKind for MissingGrantKind {}

pub type MissingGrant = Text<MissingGrantKind>;

/// Every feature a plan may have (seeded by `sql/V12__plans.sql`; a test compares the
/// two): what an operation may declare (`Operation::feature`) and what a
/// `feature_not_in_plan` problem names.
pub const FEATURE_CODES: &[&str] = &["api_keys", "audit_log", "inventory"];

/// Every limit a plan bounds (seeded by `sql/V12__plans.sql`): what an operation may
/// declare it creates (`Operation::limited_by`, all but the metered `api_requests`)
/// and what a `limit_exceeded` problem names.
pub const LIMIT_CODES: &[&str] = &["api_requests", "members", "products", "stores"];

pub struct FeatureKind;
impl TextKind for FeatureKind {
    const ENUM: &'static [&'static str] = FEATURE_CODES;
}
impl PublicKind for FeatureKind {}

/// A feature code of [`FEATURE_CODES`].
pub type FeatureCode = Text<FeatureKind>;

pub struct LimitKind;
impl TextKind for LimitKind {
    const ENUM: &'static [&'static str] = LIMIT_CODES;
}
impl PublicKind for LimitKind {}

/// A limit code of [`LIMIT_CODES`].
pub type LimitCode = Text<LimitKind>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::auth::access::PLATFORM_ADMIN;

    #[test]
    fn a_refusal_names_a_permission_code_or_the_platform_admin() {
        assert_eq!(MISSING_GRANTS.len(), PERMISSION_CODES.len() + 1);
        assert!(
            PERMISSION_CODES
                .iter()
                .all(|code| MISSING_GRANTS.contains(code))
        );
        assert_eq!(MISSING_GRANTS.last(), Some(&PLATFORM_ADMIN));
    }
}
