pub mod invitations;
pub mod tenants;

pub use invitations::InvitationStatus;
pub use tenants::{Member, MemberStatus, Tenant, TenantStatus};
