//! The usage meter's benchmark (README, "Performance", "Usage metering"), in process:
//!
//! - **count**: `Meter::count` from many tasks at once on a multi-threaded runtime
//!   (one worker thread per core), every task incrementing in a loop: the cost a
//!   request pays, under the worst contention (no request does anything else). For
//!   one busy tenant and for 1,000 tenants; against the obvious alternative, one
//!   `Mutex<HashMap>` shared by every thread. Increments per second and ns each.
//! - **flush** (unless `--only count`): one flush (`app.record_api_requests`, one
//!   statement) of 1, 100 and 10,000 tenants' counts, on a fresh database it creates
//!   and migrates (`rowguard_bench_metering`), through the machinery pool the server
//!   uses. Median of `--rounds`.
//!
//! ```text
//! cargo run --release --example metering -- [--only count|flush] [--increments 2000000] [--rounds 5]
//! ```
//!
//! BENCH_DATABASE_URL names the PostgreSQL server (default: the local one, as root).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark fails by panicking, with the message"
)]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use clap::Parser;
use rowguard::{
    app,
    platform::{
        db::{Database, PoolOptions, RuntimeRole, roles},
        metering::Meter,
    },
};
use tokio_postgres::NoTls;
use uuid::Uuid;

const DATABASE: &str = "rowguard_bench_metering";

#[derive(Parser)]
struct Args {
    #[arg(long, value_parser = ["count", "flush"])]
    only: Option<String>,
    /// Increments per configuration of the count part, split over its tasks.
    #[arg(long, default_value_t = 2_000_000)]
    increments: usize,
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

fn database_url(name: &str) -> String {
    let admin = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into());
    let (scheme, rest) = admin.split_once("://").expect("a postgres:// URL");
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{authority}/{name}")
}

/// What is measured: the meter, or one lock for every thread.
trait Counter: Clone + Send + Sync + 'static {
    fn count(&self, tenant: Uuid);
}

impl Counter for Meter {
    fn count(&self, tenant: Uuid) {
        Meter::count(self, tenant);
    }
}

#[derive(Clone, Default)]
struct GlobalMutex(Arc<Mutex<HashMap<Uuid, u64>>>);

impl Counter for GlobalMutex {
    fn count(&self, tenant: Uuid) {
        *self.0.lock().unwrap().entry(tenant).or_insert(0) += 1;
    }
}

/// Increments per second with `tasks` tasks sharing `total` increments over `tenants`.
async fn rate<C: Counter>(counter: &C, tasks: usize, total: usize, tenants: &[Uuid]) -> f64 {
    let per_task = total / tasks;
    let tenants: Arc<[Uuid]> = tenants.into();
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let (counter, tenants) = (counter.clone(), tenants.clone());
            tokio::spawn(async move {
                for n in 0..per_task {
                    counter.count(tenants[(task + n) % tenants.len()]);
                    // As between requests: let other tasks onto this thread now and then.
                    if n % 1024 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
    (per_task * tasks) as f64 / started.elapsed().as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// A meter that never flushes: its pool points nowhere and is never used.
fn offline_meter() -> Meter {
    let config = "postgres://nobody@127.0.0.1:1/none".parse().unwrap();
    Meter::new(Database::connect_with(config, RuntimeRole::Auth, &PoolOptions::default()).unwrap())
        .unwrap()
}

async fn count_part(args: &Args) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "count: {threads} runtime worker threads, {} increments per configuration",
        args.increments
    );
    println!(
        "{:<14} {:>7} {:>6} {:>14} {:>8}",
        "counter", "tenants", "tasks", "increments/s", "ns each"
    );
    for tenants in [1usize, 1000] {
        let ids: Vec<Uuid> = (0..tenants).map(|_| Uuid::new_v4()).collect();
        for tasks in [1usize, 8, 64] {
            for name in ["meter", "global mutex"] {
                let mut rates = Vec::new();
                for _ in 0..args.rounds {
                    let rate = match name {
                        "meter" => rate(&offline_meter(), tasks, args.increments, &ids).await,
                        _ => rate(&GlobalMutex::default(), tasks, args.increments, &ids).await,
                    };
                    rates.push(rate);
                }
                let rate = median(rates);
                println!(
                    "{name:<14} {tenants:>7} {tasks:>6} {:>14.0} {:>8.1}",
                    rate,
                    1e9 / rate
                );
            }
        }
    }
    println!("(ns each: wall time per increment, all threads together)");
}

async fn flush_part(args: &Args) {
    let (admin, connection) = tokio_postgres::connect(&database_url("postgres"), NoTls)
        .await
        .expect("connecting to PostgreSQL");
    tokio::spawn(connection);
    for statement in [
        format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"),
        format!("CREATE DATABASE {DATABASE}"),
    ] {
        admin
            .batch_execute(&statement)
            .await
            .expect("a fresh database");
    }
    let url = database_url(DATABASE);
    let owner_config: tokio_postgres::Config = url.parse().unwrap();
    app::migrate(&owner_config).await.expect("migrating");
    let (owner, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    owner
        .batch_execute(
            "INSERT INTO tenants (name) SELECT 'Tenant ' || n FROM generate_series(1, 10000) AS n;
             INSERT INTO subscriptions (tenant_id, plan_code, anchor_at, current_period_start, current_period_end)
             SELECT id, 'free', now(), now(), now() + interval '1 month' FROM tenants;",
        )
        .await
        .expect("10,000 tenants");
    let tenants: Vec<Uuid> = owner
        .query("SELECT id FROM tenants ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let (_, auth) = roles::development_logins(&owner_config).await.unwrap();
    let machinery =
        Database::connect_with(auth, RuntimeRole::Auth, &PoolOptions::default()).unwrap();
    let meter = Meter::new(machinery).unwrap();
    // Connected and prepared once, as a running server's pool is.
    meter.count(tenants[0]);
    meter.flush().await.unwrap();

    println!("flush: one statement for every tenant counted since the last");
    println!("{:>8} {:>10}", "tenants", "ms (p50)");
    for count in [1usize, 100, 10_000] {
        let mut times = Vec::new();
        for _ in 0..args.rounds {
            for tenant in &tenants[..count] {
                for _ in 0..10 {
                    meter.count(*tenant);
                }
            }
            let started = Instant::now();
            let recorded = meter.flush().await.unwrap();
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(recorded, 10 * count as u64);
        }
        println!("{count:>8} {:>10.2}", median(times));
    }
    let total: i64 = owner
        .query_one("SELECT sum(api_requests)::bigint FROM usage_periods", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        total,
        1 + 10 * (1 + 100 + 10_000) * args.rounds as i64,
        "every count recorded once"
    );
    drop(owner);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .await;
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if args.only.as_deref() != Some("flush") {
        count_part(&args).await;
    }
    if args.only.as_deref() != Some("count") {
        flush_part(&args).await;
    }
}
