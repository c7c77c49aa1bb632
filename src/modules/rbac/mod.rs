//! Role-based access control: the permission catalog (code-defined, seeded by
//! migrations), a tenant's roles and their permissions, and role assignments
//! (tenant-wide or in one store). The rules (nobody grants what they do not hold; the
//! system role Owner is not edited; a tenant keeps an active Owner) live in `service`;
//! the opening statement (`platform/db/begin_request.sql`) reads the same tables to
//! decide what a request may do.

pub mod access;
pub mod api;
mod db;
pub mod service;

pub use db::{AssignmentRow, RoleRow};

/// This module's operations, as the registry mounts them.
pub type Api = (api::RbacApi, access::AccessApi);

pub fn api(state: &super::AppState) -> Api {
    (
        api::RbacApi {
            db: state.db.clone(),
        },
        access::AccessApi {
            db: state.db.clone(),
        },
    )
}

pub const OPERATIONS: &[&[crate::platform::auth::access::Operation]] =
    &[api::OPERATIONS, access::OPERATIONS];
