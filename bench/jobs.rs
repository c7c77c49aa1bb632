//! The job queue's benchmark (README, "Performance", "Job queue"), in process, on a
//! fresh database it creates and migrates:
//!
//! - **drain**: jobs drained per second by `Workers::start(1)` and `Workers::start(2)`
//!   (default options: concurrency 4 each), of no-op jobs (`bench.noop`, registered
//!   here) and of email jobs (`email.send` as the server runs it: the notifications
//!   module's handler, its mailer built from `Settings` with `ROWGUARD_SMTP_URL` at an
//!   SMTP sink this program serves). A backlog of `--jobs` (`--email-jobs`) jobs is
//!   inserted, then the workers start on pools the server would open; the rate is the
//!   backlog over the time from the start to the last job's `finished_at`.
//!   Configurations interleave, round after round; the median of each is printed.
//! - **enqueue**: a request-like write transaction (the opening statement of a
//!   request requiring `products.create`, an INSERT of a product, COMMIT) without and
//!   with `jobs::enqueue` of a `bench.noop` job (an email-sized payload), alternating one by one (ABBA):
//!   p50 and p90 of each, and the difference.
//!
//! ```text
//! cargo run --release --example jobs -- [--only drain|enqueue] [--jobs 1000,10000]
//!     [--email-jobs 1000] [--rounds 2] [--transactions 3000]
//! ```
//!
//! BENCH_DATABASE_URL names the PostgreSQL server (default: the local one, as root);
//! the database `rowguard_bench_jobs` is dropped and made again.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark fails by panicking, with the message"
)]

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use clap::Parser;
use futures_util::future::BoxFuture;
use rowguard::{
    app,
    config::Settings,
    modules::{AppState, identity::service::NewAccount, notifications},
    platform::{
        db::Scope,
        jobs::{
            self, FnHandler, JobError, JobRun, Kind, NewJob, Queue, Registry, WorkerOptions,
            Workers,
        },
    },
};
use serde_json::json;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};
use tokio_postgres::{Client, NoTls};

const DATABASE: &str = "rowguard_bench_jobs";
const SECRET: &str = "benchmark-secret-benchmark-secret-0123456789";

#[derive(Parser)]
struct Args {
    /// Only this part (default: both).
    #[arg(long, value_parser = ["drain", "enqueue"])]
    only: Option<String>,
    /// The backlogs no-op drains start from (a drain of each, per worker count, per
    /// round).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    jobs: Vec<i64>,
    /// The backlogs email drains start from (email drains are slower).
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    email_jobs: Vec<i64>,
    /// Drain rounds (each runs every configuration once, in turn).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Transactions of each kind in the enqueue part.
    #[arg(long, default_value_t = 3000)]
    transactions: usize,
}

fn database_url(name: &str) -> String {
    let admin = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into());
    let (scheme, rest) = admin.split_once("://").expect("a postgres:// URL");
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{authority}/{name}")
}

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connecting to PostgreSQL");
    tokio::spawn(connection);
    client
}

/// A minimal SMTP server that accepts every message (220, EHLO, MAIL, RCPT, DATA, `.`,
/// RSET, NOOP, QUIT), counting them.
async fn smtp_sink() -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
    let port = listener.local_addr().expect("an address").port();
    let received = Arc::new(AtomicU64::new(0));
    let count = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let count = count.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read);
                let mut line = String::new();
                let mut in_data = false;
                if write.write_all(b"220 sink ESMTP\r\n").await.is_err() {
                    return;
                }
                loop {
                    line.clear();
                    match lines.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let reply: &[u8] = if in_data {
                        if line.trim_end_matches(['\r', '\n']) == "." {
                            in_data = false;
                            count.fetch_add(1, Ordering::Relaxed);
                            b"250 queued\r\n"
                        } else {
                            continue;
                        }
                    } else {
                        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        match verb.as_str() {
                            "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                            "HELO" => b"250 sink\r\n",
                            "DATA" => {
                                in_data = true;
                                b"354 go ahead\r\n"
                            }
                            "QUIT" => {
                                let _ = write.write_all(b"221 bye\r\n").await;
                                return;
                            }
                            _ => b"250 ok\r\n",
                        }
                    };
                    if write.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, received)
}

fn settings(url: &str, smtp_port: u16, workers: usize) -> Settings {
    let mut settings = Settings::for_database(url);
    settings.jwt_secret = Some(SECRET.into());
    settings.smtp_url = Some(format!("smtp://127.0.0.1:{smtp_port}").as_str().into());
    settings.workers = workers;
    settings
}

/// The server's state for `settings` (as `rowguard serve` builds it), and its queue.
async fn server_state(settings: &Settings) -> (AppState, Queue) {
    let target = app::database_target(settings).await.expect("the database");
    let pools = target.open(settings).await.expect("the pools");
    let state = app::app_state(pools, settings).await.expect("the state");
    let queue = state.queue.clone();
    (state, queue)
}

fn noop(_run: JobRun<'_>) -> BoxFuture<'_, Result<(), JobError>> {
    Box::pin(async { Ok(()) })
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum What {
    Noop,
    Email,
}

impl What {
    fn kind(self) -> &'static str {
        match self {
            What::Noop => "bench.noop",
            What::Email => "email.send",
        }
    }
}

/// One drain: `count` jobs of `what` inserted, then `workers` workers until every one
/// has succeeded. Jobs per second.
async fn drain(
    owner: &Client,
    url: &str,
    smtp: (u16, &AtomicU64),
    what: What,
    workers: usize,
    count: i64,
) -> f64 {
    owner
        .batch_execute("TRUNCATE jobs")
        .await
        .expect("truncating the queue");
    let payload = match what {
        What::Noop => "jsonb_build_object('n', g)",
        // A welcome email, as registration enqueues it.
        What::Email => {
            "jsonb_build_object('to', 'user' || g || '@bench.example', 'template', 'welcome', \
             'data', jsonb_build_object('full_name', 'User ' || g, 'tenant_name', 'Tenant'))"
        }
    };
    let batch = 5000;
    let mut from = 1;
    while from <= count {
        let to = (from + batch - 1).min(count);
        owner
            .execute(
                &format!(
                    "INSERT INTO jobs (kind, payload) SELECT $1, {payload} FROM generate_series($2::bigint, $3::bigint) g"
                ),
                &[&what.kind(), &from, &to],
            )
            .await
            .expect("enqueueing the backlog");
        from = to + 1;
    }
    owner
        .batch_execute("VACUUM ANALYZE jobs")
        .await
        .expect("analyze");
    let settings = settings(url, smtp.0, workers);
    let (state, queue) = server_state(&settings).await;
    let registry = match what {
        What::Noop => Registry::new([Kind::new("bench.noop", FnHandler(noop))]),
        What::Email => Registry::new(notifications::jobs(&state)),
    };
    let sent_before = smtp.1.load(Ordering::Relaxed);
    let started: DateTime<Utc> = Utc::now();
    let clock = Instant::now();
    let running = Workers::start(workers, queue, registry, WorkerOptions::default());
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let row = owner
            .query_one(
                "SELECT count(*) FILTER (WHERE state = 'succeeded'),
                        count(*) FILTER (WHERE state IN ('failed', 'dead')),
                        max(finished_at)
                 FROM jobs WHERE kind = $1",
                &[&what.kind()],
            )
            .await
            .expect("counting");
        let (succeeded, failed): (i64, i64) = (row.get(0), row.get(1));
        assert_eq!(failed, 0, "jobs failed");
        if succeeded == count {
            running.stop(Duration::from_secs(10)).await;
            let last: DateTime<Utc> = row.get(2);
            let seconds = (last - started).as_seconds_f64();
            if what == What::Email {
                let sent = smtp.1.load(Ordering::Relaxed) - sent_before;
                assert!(
                    sent >= u64::try_from(count).unwrap(),
                    "the sink received {sent} of {count} messages"
                );
            }
            return count as f64 / seconds;
        }
        assert!(
            clock.elapsed() < Duration::from_secs(600),
            "the drain did not finish in 10 minutes ({succeeded} of {count})"
        );
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}

/// The request-like transaction: opening statement (tenant, user, `products.create`),
/// INSERT of a product, then with `enqueue` a job of a kind requests may enqueue
/// (`bench.noop`, listed in `app.request_job_kinds` as a module's migration would, with
/// an email-sized payload), COMMIT. Its time in ms.
async fn write_transaction(state: &AppState, scope: &Scope, n: usize, enqueue: bool) -> f64 {
    let started = Instant::now();
    let (tx, access) = state.db.begin(scope).await.expect("begin");
    assert!(access.permission_granted, "the owner may create products");
    let insert = tx
        .prepare(
            "INSERT INTO products (tenant_id, sku, name, price_cents) VALUES (app.current_tenant_id(), $1, $2, $3)
             RETURNING id, sku, name, price_cents, created_at, updated_at",
        )
        .await
        .expect("prepare");
    let sku = format!("B-{n}-{}", u8::from(enqueue));
    tx.query_one(&insert, &[&sku, &"Benchmark product", &100i64])
        .await
        .expect("insert");
    if enqueue {
        let job = NewJob::new(
            "bench.noop",
            json!({"to": format!("member{n}@bench.example"), "template": "invitation_accepted",
                   "data": {"full_name": "Member", "tenant_name": "Tenant"}}),
        );
        jobs::enqueue(&tx, &job).await.expect("enqueue");
    }
    tx.commit().await.expect("commit");
    started.elapsed().as_secs_f64() * 1000.0
}

async fn enqueue_cost(owner: &Client, url: &str, smtp_port: u16, transactions: usize) {
    owner
        .batch_execute(
            "TRUNCATE jobs; INSERT INTO app.request_job_kinds (kind) VALUES ('bench.noop') ON CONFLICT DO NOTHING",
        )
        .await
        .expect("truncate");
    let settings = settings(url, smtp_port, 0);
    let (state, _queue) = server_state(&settings).await;
    let (user, tenant, _) = state
        .identity
        .bootstrap(NewAccount {
            email: "owner@bench.example",
            password: "benchmark passphrase 1",
            full_name: "Owner",
            tenant_name: "Bench",
            plan_code: None,
        })
        .await
        .expect("bootstrap");
    let scope = Scope::tenant(tenant.id, user.id).requiring("products.create");
    // Warm-up: the connection prepares its statements.
    for n in 0..200 {
        write_transaction(&state, &scope, 1_000_000 + n, n % 2 == 0).await;
    }
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for n in 0..transactions {
        // ABBA: neither kind always goes first.
        let order = if n % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for enqueue in order {
            let ms = write_transaction(&state, &scope, n, enqueue).await;
            if enqueue { &mut with } else { &mut without }.push(ms);
        }
    }
    without.sort_by(f64::total_cmp);
    with.sort_by(f64::total_cmp);
    println!(
        "\n## Enqueue cost inside a request-like write transaction ({transactions} of each, alternating, one client)\n"
    );
    println!("| transaction | p50 ms | p90 ms | p99 ms |");
    println!("| --- | --- | --- | --- |");
    for (name, times) in [
        (
            "begin (products.create) + INSERT product + COMMIT",
            &without,
        ),
        ("the same + jobs::enqueue(bench.noop)", &with),
    ] {
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} |",
            percentile(times, 0.5),
            percentile(times, 0.9),
            percentile(times, 0.99)
        );
    }
    println!(
        "| added by the enqueue | {:+.3} | {:+.3} | {:+.3} |",
        percentile(&with, 0.5) - percentile(&without, 0.5),
        percentile(&with, 0.9) - percentile(&without, 0.9),
        percentile(&with, 0.99) - percentile(&without, 0.99)
    );
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let admin = connect(&database_url("postgres")).await;
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
    app::migrate(&url.parse().expect("the URL"))
        .await
        .expect("migrating");
    let owner = connect(&url).await;
    let (smtp_port, received) = smtp_sink().await;

    if args.only.as_deref() != Some("enqueue") {
        let mut configurations = Vec::new();
        for (what, backlogs) in [(What::Noop, &args.jobs), (What::Email, &args.email_jobs)] {
            for &count in backlogs {
                for workers in [1, 2] {
                    configurations.push((what, count, workers));
                }
            }
        }
        let mut rates: BTreeMap<(What, i64, usize), Vec<f64>> = BTreeMap::new();
        for round in 0..args.rounds {
            // Reversed every other round, so drift does not favour one configuration.
            let mut order = configurations.clone();
            if round % 2 == 1 {
                order.reverse();
            }
            for (what, count, workers) in order {
                let rate = drain(&owner, &url, (smtp_port, &received), what, workers, count).await;
                eprintln!(
                    "round {} {} backlog {count} x{workers}: {rate:.0} jobs/s",
                    round + 1,
                    what.kind()
                );
                rates.entry((what, count, workers)).or_default().push(rate);
            }
        }
        println!(
            "\n## Drain rate ({} rounds, interleaved; median jobs/s; default WorkerOptions: concurrency 4 per worker)\n",
            args.rounds
        );
        println!(
            "| jobs | backlog | 1 worker | 2 workers | 2 / 1 | every round (1 worker; 2 workers) |"
        );
        println!("| --- | --- | --- | --- | --- | --- |");
        let list = |values: &[f64]| {
            values
                .iter()
                .map(|v| format!("{v:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (what, name, backlogs) in [
            (What::Noop, "no-op (bench.noop)", &args.jobs),
            (
                What::Email,
                "email.send into a local SMTP sink",
                &args.email_jobs,
            ),
        ] {
            for &count in backlogs {
                let one = &rates[&(what, count, 1)];
                let two = &rates[&(what, count, 2)];
                println!(
                    "| {name} | {count} | {:.0} | {:.0} | {:.2} | {}; {} |",
                    median(one),
                    median(two),
                    median(two) / median(one),
                    list(one),
                    list(two)
                );
            }
        }
    }

    if args.only.as_deref() != Some("drain") {
        enqueue_cost(&owner, &url, smtp_port, args.transactions).await;
    }
    drop(owner);
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .await
        .expect("dropping the database");
}
