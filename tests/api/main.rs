//! One integration test binary on purpose: one harness, one throwaway cluster (when
//! no DATABASE_URL is given), one link step.

mod auth;
mod fixtures;
mod health;
mod helpers;
mod invariants;
mod isolation;
mod me;
mod policies;
mod request_context;
mod tokens;
