pub mod invitations;
pub mod tenants;

pub use tenants::{Member, Tenant};
