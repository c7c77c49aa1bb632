//! Metering `api_requests` (docs/api.md, "Usage"): every authenticated request is
//! counted for its tenant in this process's memory, where the bearer token is
//! verified (`http::security`), and the counts are added to the database every few
//! seconds by one statement for all tenants (`app.record_api_requests`, on the
//! machinery's pool). A request pays for an uncontended lock and a hash-map
//! increment, never a round trip; the figure lags by one flush interval.
//!
//! The counters are sharded by thread: each runtime worker thread increments its own
//! shard, so requests of one busy tenant on every core do not fight over one lock
//! or one cache line (`bench/metering.rs` measures it). A flush drains every shard
//! into the flush's pending counts and sends those; a failed flush keeps them for the
//! next (nothing is lost), and stopping flushes once more.
//!
//! The one case that counts twice: the database commits a flush but the answer is lost
//! (the connection drops after COMMIT); the counts are then sent again. Metering
//! never blocks a request, so a rare over-count is preferred to a lost one.

use std::{
    cell::Cell,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{sync::watch, task::JoinHandle};
use uuid::Uuid;

use crate::{
    error::Error,
    platform::db::{Database, RuntimeRole, Scope},
};

/// FxHash (rustc-hash): tenant ids are random (v4), made by the server and read from
/// a token it signed, never chosen by a client, so SipHash's resistance to chosen keys
/// buys nothing here at several times the increment's cost.
type Counts = rustc_hash::FxHashMap<Uuid, u64>;

/// One shard, alone on its cache lines (two shards sharing one would make their
/// threads' increments contend after all).
#[repr(align(128))]
#[derive(Default)]
struct Shard(Mutex<Counts>);

impl Shard {
    fn take(&self) -> Counts {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard number, given out in turn on its first request.
    static THREAD_SHARD: Cell<Option<usize>> = const { Cell::new(None) };
}

fn thread_shard() -> usize {
    THREAD_SHARD.with(|shard| match shard.get() {
        Some(index) => index,
        None => {
            let index = NEXT_SHARD.fetch_add(1, Ordering::Relaxed);
            shard.set(Some(index));
            index
        }
    })
}

/// The meter of one process: cheap to clone (one `Arc`), attached to the routes as
/// request data.
#[derive(Clone)]
pub struct Meter {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Box<[Shard]>,
    /// Counts taken from the shards and not yet recorded; held across the flush's
    /// round trip, so flushes run one at a time.
    pending: tokio::sync::Mutex<Counts>,
    /// The queue's machinery (`rowguard_auth`), which may call the flush function.
    machinery: Database,
}

impl Meter {
    /// A meter flushing through `machinery`, which must run as `rowguard_auth`.
    pub fn new(machinery: Database) -> Result<Meter, Error> {
        if machinery.runtime_role() != RuntimeRole::Auth {
            return Err(Error::Internal(anyhow::anyhow!(
                "the meter flushes on the machinery's pool (rowguard_auth)"
            )));
        }
        // A power of two at least twice the threads, so that threads given out in turn
        // rarely share a shard even when a runtime starts more threads than cores.
        let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
        let shards = (2 * threads).next_power_of_two().max(8);
        Ok(Meter {
            inner: Arc::new(Inner {
                shards: (0..shards).map(|_| Shard::default()).collect(),
                pending: tokio::sync::Mutex::new(Counts::default()),
                machinery,
            }),
        })
    }

    /// Counts one request of `tenant`.
    pub fn count(&self, tenant: Uuid) {
        let shards = &self.inner.shards;
        let shard = &shards[thread_shard() & (shards.len() - 1)];
        let mut counts = shard.0.lock().unwrap_or_else(PoisonError::into_inner);
        *counts.entry(tenant).or_insert(0) += 1;
    }

    /// Requests counted and not yet recorded (waits for a flush in flight).
    pub async fn unrecorded(&self) -> u64 {
        let pending = self.inner.pending.lock().await;
        let in_shards: u64 = self
            .inner
            .shards
            .iter()
            .map(|shard| {
                shard
                    .0
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .values()
                    .sum::<u64>()
            })
            .sum();
        in_shards + pending.values().sum::<u64>()
    }

    /// Adds every count so far to the tenants' current periods, in one statement;
    /// returns how many requests it recorded. On failure the counts stay pending,
    /// and the next flush sends them with the new ones.
    pub async fn flush(&self) -> Result<u64, Error> {
        let mut pending = self.inner.pending.lock().await;
        for shard in self.inner.shards.iter() {
            for (tenant, count) in shard.take() {
                *pending.entry(tenant).or_insert(0) += count;
            }
        }
        if pending.is_empty() {
            return Ok(0);
        }
        let (tenants, counts): (Vec<Uuid>, Vec<i64>) = pending
            .iter()
            .map(|(tenant, count)| (*tenant, i64::try_from(*count).unwrap_or(i64::MAX)))
            .unzip();
        self.record(&tenants, &counts).await?;
        let recorded = pending.values().sum();
        pending.clear();
        Ok(recorded)
    }

    async fn record(&self, tenants: &[Uuid], counts: &[i64]) -> Result<(), Error> {
        let tx = self
            .inner
            .machinery
            .begin_context(&Scope::anonymous())
            .await?;
        let statement = match tx.prepare("SELECT app.record_api_requests($1, $2)").await {
            Ok(statement) => statement,
            Err(error) => {
                tx.rollback().await;
                return Err(error);
            }
        };
        tx.query_and_commit(&statement, &[&tenants, &counts])
            .await?;
        Ok(())
    }

    /// Flushes every `every` until [`Flusher::stop`], which flushes once more.
    pub fn start_flushing(&self, every: Duration) -> Flusher {
        let (stop, mut stopped) = watch::channel(false);
        let meter = self.clone();
        let every = every.max(Duration::from_millis(100));
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    _ = stopped.changed() => return,
                }
                if let Err(error) = meter.flush().await {
                    tracing::warn!(%error, "recording api_requests failed; kept for the next flush");
                }
            }
        });
        Flusher {
            meter: self.clone(),
            stop,
            task,
        }
    }
}

/// The periodic flush of a serving process.
pub struct Flusher {
    meter: Meter,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Flusher {
    /// Stops the periodic flush (waiting for one in flight) and flushes what is left,
    /// within `timeout`.
    pub async fn stop(self, timeout: Duration) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        match tokio::time::timeout(timeout, self.meter.flush()).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::error!(%error, "the last flush of api_requests failed: these counts are lost")
            }
            Err(_) => {
                tracing::error!("the last flush of api_requests timed out: these counts are lost")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::db::PoolOptions;

    /// A meter whose database refuses every connection (nothing listens on port 1).
    fn meter_without_a_database() -> Meter {
        let options = PoolOptions {
            max_size: 1,
            acquire_timeout: Duration::from_secs(2),
            ..PoolOptions::default()
        };
        let config = "postgres://nobody@127.0.0.1:1/none".parse().unwrap();
        Meter::new(Database::connect_with(config, RuntimeRole::Auth, &options).unwrap()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn counts_from_many_threads_add_up_exactly() {
        let meter = meter_without_a_database();
        let (acme, globex) = (Uuid::new_v4(), Uuid::new_v4());
        let tasks: Vec<_> = (0..16)
            .map(|n| {
                let meter = meter.clone();
                tokio::spawn(async move {
                    for _ in 0..1000 {
                        meter.count(if n % 4 == 0 { globex } else { acme });
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(meter.unrecorded().await, 16_000);
    }

    #[tokio::test]
    async fn a_failed_flush_keeps_its_counts_for_the_next() {
        let meter = meter_without_a_database();
        let tenant = Uuid::new_v4();
        for _ in 0..3 {
            meter.count(tenant);
        }
        assert!(meter.flush().await.is_err());
        meter.count(tenant);
        assert!(meter.flush().await.is_err());
        assert_eq!(meter.unrecorded().await, 4, "nothing lost");
    }

    #[test]
    fn the_meter_refuses_a_pool_that_is_not_the_machinery() {
        let config = "postgres://nobody@127.0.0.1:1/none".parse().unwrap();
        let api =
            Database::connect_with(config, RuntimeRole::Api, &PoolOptions::default()).unwrap();
        assert!(Meter::new(api).is_err());
    }
}
