pub mod invitations;
pub mod tenants;
