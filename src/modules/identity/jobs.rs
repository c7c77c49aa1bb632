//! Identity's jobs: forgetting throttle attempts that no window counts any more.

use futures_util::future::BoxFuture;

use super::service::Identity;
use crate::{
    modules::AppState,
    platform::jobs::{Every, Handler, JobError, JobRun, Kind},
};

/// The attempts tables only grow between prunings; an hour's worth of attempts is
/// what the longest window (forgot-password, registration) counts anyway.
pub const PRUNE_ATTEMPTS: &str = "identity.prune_attempts";

pub fn jobs(state: &AppState) -> Vec<Kind> {
    vec![Kind::periodic(
        PRUNE_ATTEMPTS,
        Every::Hour,
        PruneAttempts {
            identity: state.identity.clone(),
        },
    )]
}

struct PruneAttempts {
    identity: Identity,
}

impl Handler for PruneAttempts {
    /// On the credential flows' pool, in batches of its own (the attempts are not the
    /// job's tenant's: it has none); a pruning cut short is finished by the next.
    fn run<'a>(&'a self, _run: JobRun<'a>) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let pruned = self.identity.prune_attempts().await?;
            if pruned > 0 {
                tracing::info!(pruned, "forgot old throttle attempts");
            }
            Ok(())
        })
    }
}
