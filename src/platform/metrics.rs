//! The server's metrics, in the Prometheus text format (`GET /metrics` on the address
//! of `ROWGUARD_METRICS_BIND`, never on the API's; README, "Metrics and traces").
//!
//! Each server has a registry of its own (no global one: the tests run many servers
//! in one process, and each reads its own counts). What requests do is counted by the
//! edge (`platform::http::edge`) as they finish, labelled by operationId, never by raw
//! path, so a scan of random URLs adds no series. What is a level rather than an event
//! (the pools, the hashing queue, the job queue) is read when scraped: nothing runs
//! between scrapes, and a scrape costs one indexed count of the job queue.
//!
//! Without `ROWGUARD_METRICS_BIND` the server keeps none: [`Metrics::off`] records
//! nothing, and the edge skips it.

use std::sync::Arc;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::{
    error::Error,
    platform::{auth::PasswordHasher, db::Database, jobs::Queue},
};

/// The label of a request that reached no operation (an unknown path, `/docs`,
/// `/openapi.json`): a bounded set, whatever the paths asked for.
pub const NO_OPERATION: &str = "none";

/// Latency buckets, in seconds: a list answers in about a millisecond, a login in
/// tens (a password hash), a slow database in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The server's metrics, or none (`Metrics::off`). Cheap to clone.
#[derive(Clone, Default)]
pub struct Metrics(Option<Arc<Recorded>>);

struct Recorded {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    throttled: IntCounterVec,
    login_failures: IntCounter,
    pool_size: IntGaugeVec,
    pool_max_size: IntGaugeVec,
    pool_available: IntGaugeVec,
    pool_waiting: IntGaugeVec,
    hash_queued: IntGaugeVec,
    hash_running: IntGaugeVec,
    jobs: IntGaugeVec,
}

/// What a scrape reads the levels of.
#[derive(Clone)]
pub struct Sources {
    /// Each pool by the name its gauges carry (`api`, `auth`, `jobs`, `queue`).
    pub pools: Vec<(&'static str, Database)>,
    pub hasher: PasswordHasher,
    pub queue: Queue,
}

tokio::task_local! {
    /// The metrics of the server whose request runs on this task (set by the edge),
    /// so that what only a flow knows (a failed password check) is counted without
    /// passing the metrics down every call.
    static CURRENT: Metrics;
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    IntCounterVec::new(Opts::new(name, help), labels)
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntGaugeVec> {
    IntGaugeVec::new(Opts::new(name, help), labels)
}

impl Metrics {
    /// Keeps nothing: every method does nothing.
    pub fn off() -> Metrics {
        Metrics(None)
    }

    /// A registry of its own with every metric of the server.
    pub fn new() -> anyhow::Result<Metrics> {
        let recorded = Recorded {
            registry: Registry::new(),
            requests: counter_vec(
                "rowguard_http_requests_total",
                "HTTP requests answered, by operationId and status",
                &["operation", "status"],
            )?,
            latency: HistogramVec::new(
                HistogramOpts::new(
                    "rowguard_http_request_duration_seconds",
                    "Time from a request's arrival to its response, by operationId",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["operation"],
            )?,
            throttled: counter_vec(
                "rowguard_throttled_requests_total",
                "Requests refused with 429 rate_limited, by operationId",
                &["operation"],
            )?,
            login_failures: IntCounter::new(
                "rowguard_login_failures_total",
                "Failed password checks (401 invalid_credentials): logins, password \
                 changes, invitations accepted by an existing account",
            )?,
            pool_size: gauge_vec(
                "rowguard_db_pool_connections",
                "Connections the pool holds now, in use or idle",
                &["pool"],
            )?,
            pool_max_size: gauge_vec(
                "rowguard_db_pool_max_connections",
                "Connections the pool may hold",
                &["pool"],
            )?,
            pool_available: gauge_vec(
                "rowguard_db_pool_available",
                "Idle connections of the pool, ready for the next request",
                &["pool"],
            )?,
            pool_waiting: gauge_vec(
                "rowguard_db_pool_waiting",
                "Callers waiting for a connection of the pool",
                &["pool"],
            )?,
            hash_queued: gauge_vec(
                "rowguard_password_hash_queued",
                "Password hashes and verifications waiting for a hashing thread, by admission class",
                &["class"],
            )?,
            hash_running: gauge_vec(
                "rowguard_password_hash_running",
                "Password hashes and verifications on a hashing thread now, by admission class",
                &["class"],
            )?,
            jobs: gauge_vec(
                "rowguard_jobs",
                "Jobs of the queue by state (succeeded jobs are not counted)",
                &["state"],
            )?,
        };
        let r = &recorded;
        for collector in [
            Box::new(r.requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(r.latency.clone()),
            Box::new(r.throttled.clone()),
            Box::new(r.login_failures.clone()),
            Box::new(r.pool_size.clone()),
            Box::new(r.pool_max_size.clone()),
            Box::new(r.pool_available.clone()),
            Box::new(r.pool_waiting.clone()),
            Box::new(r.hash_queued.clone()),
            Box::new(r.hash_running.clone()),
            Box::new(r.jobs.clone()),
        ] {
            recorded.registry.register(collector)?;
        }
        Ok(Metrics(Some(Arc::new(recorded))))
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// One answered request of `operation` (an operationId, or [`NO_OPERATION`]).
    pub fn request(&self, operation: &str, status: u16, seconds: f64) {
        let Some(recorded) = &self.0 else {
            return;
        };
        let digits = itoa_status(status);
        let status = std::str::from_utf8(&digits).unwrap_or("0");
        recorded
            .requests
            .with_label_values(&[operation, status])
            .inc();
        recorded
            .latency
            .with_label_values(&[operation])
            .observe(seconds);
        if status == "429" {
            recorded.throttled.with_label_values(&[operation]).inc();
        }
    }

    /// Runs `future` (a request) with these metrics as the task's, for
    /// [`login_failed`].
    pub async fn scope<F: Future>(&self, future: F) -> F::Output {
        CURRENT.scope(self.clone(), future).await
    }

    /// The levels now, then every metric in the text format.
    pub async fn render(&self, sources: &Sources) -> Result<String, Error> {
        let Some(recorded) = &self.0 else {
            return Ok(String::new());
        };
        for (name, db) in &sources.pools {
            let status = db.pool().status();
            let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            recorded
                .pool_size
                .with_label_values(&[*name])
                .set(count(status.size));
            recorded
                .pool_max_size
                .with_label_values(&[*name])
                .set(count(status.max_size));
            recorded
                .pool_available
                .with_label_values(&[*name])
                .set(count(status.available));
            recorded
                .pool_waiting
                .with_label_values(&[*name])
                .set(count(status.waiting));
        }
        let load = sources.hasher.load();
        for (class, queued, running) in [
            (
                "authenticated",
                load.authenticated_queued,
                load.authenticated_running,
            ),
            (
                "unauthenticated",
                load.unauthenticated_queued,
                load.unauthenticated_running,
            ),
        ] {
            let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            recorded
                .hash_queued
                .with_label_values(&[class])
                .set(count(queued));
            recorded
                .hash_running
                .with_label_values(&[class])
                .set(count(running));
        }
        // A database that does not answer leaves the job gauges as last read; the
        // rest of the scrape still answers (a scrape is how an outage is seen).
        match sources.queue.counts().await {
            Ok(counts) => {
                for (state, jobs) in counts {
                    recorded.jobs.with_label_values(&[&state]).set(jobs);
                }
            }
            Err(error) => tracing::warn!(%error, "reading the job queue's depth for /metrics"),
        }
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&recorded.registry.gather(), &mut text)
            .map_err(|error| Error::Internal(anyhow::anyhow!("encoding the metrics: {error}")))?;
        String::from_utf8(text)
            .map_err(|error| Error::Internal(anyhow::anyhow!("the metrics are not UTF-8: {error}")))
    }
}

/// The metrics listener's routes: `GET /metrics`, the levels read at each scrape.
/// A scrape that fails to encode answers 500; a database that does not answer only
/// leaves the job gauges as they were.
pub fn endpoint(metrics: Metrics, sources: Sources) -> impl poem::Endpoint {
    use poem::{EndpointExt, IntoResponse, Response, http::StatusCode};
    let scrape = poem::endpoint::make(move |_| {
        let (metrics, sources) = (metrics.clone(), sources.clone());
        async move {
            match metrics.render(&sources).await {
                Ok(text) => Response::builder().content_type(content_type()).body(text),
                Err(error) => {
                    tracing::error!(%error, "rendering /metrics");
                    StatusCode::INTERNAL_SERVER_ERROR.into_response()
                }
            }
        }
    });
    poem::Route::new()
        .at("/metrics", poem::get(scrape))
        .map_to_response()
}

/// A status code's three digits, without allocating (the edge labels every request).
fn itoa_status(status: u16) -> [u8; 3] {
    let status = status.min(999);
    [
        b'0' + (status / 100) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ]
}

/// A password check failed in the request on this task (`invalid_credentials`):
/// counted on its server's metrics, if it keeps any.
pub fn login_failed() {
    let _ = CURRENT.try_with(|metrics| {
        if let Some(recorded) = &metrics.0 {
            recorded.login_failures.inc();
        }
    });
}

/// The content type of [`Metrics::render`]'s text (format 0.0.4).
pub fn content_type() -> String {
    TextEncoder::new().format_type().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_code_is_written_as_its_three_digits() {
        assert_eq!(&itoa_status(200), b"200");
        assert_eq!(&itoa_status(429), b"429");
        assert_eq!(&itoa_status(503), b"503");
    }

    #[test]
    fn metrics_that_are_off_record_nothing_and_do_not_fail() {
        let metrics = Metrics::off();
        metrics.request("stores_list", 200, 0.001);
        assert!(!metrics.is_on());
    }
}
