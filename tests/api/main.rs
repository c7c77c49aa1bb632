//! One integration test binary on purpose: one harness, one throwaway cluster (when
//! no DATABASE_URL is given), one link step.

mod fixtures;
mod health;
mod helpers;
mod invariants;
mod isolation;
mod policies;
mod request_context;
