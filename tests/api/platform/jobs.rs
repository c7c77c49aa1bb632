//! The job queue (docs/design.md invariant 10): enqueued with the caller's transaction,
//! claimed by any number of workers without running a job twice, leases that outlive a
//! crashed worker, backoff then `dead`, schedules that fire once across processes, and
//! tenant jobs under their tenant's row-level security.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use chrono::{TimeDelta, Utc};
use futures_util::future::BoxFuture;
use rowguard::platform::{
    db::Scope,
    jobs::{
        self, Every, FnHandler, Handler, JobError, JobRun, Kind, NewJob, Queue, Registry,
        WorkerOptions, Workers, worker::Outcome,
    },
};
use serde_json::json;
use tokio_postgres::Client;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app};

/// Quick workers for tests: short polls, leases and backoff; no scheduler unless asked.
fn quick() -> WorkerOptions {
    WorkerOptions {
        poll_interval: Duration::from_millis(20),
        lease: Duration::from_secs(2),
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(200),
        schedule_tick: None,
        ..WorkerOptions::default()
    }
}

/// A table the test jobs write their effect to, one row per job (the primary key
/// makes a second effect of one job an error, not a silent duplicate).
async fn effects_table(superuser: &Client) {
    superuser
        .batch_execute(
            "CREATE TABLE job_effects (job_id bigint PRIMARY KEY, for_tenant uuid, seen bigint);
             GRANT SELECT, INSERT ON job_effects TO rowguard_api;",
        )
        .await
        .unwrap();
}

/// Records the job's effect in its own transaction: what the job's tenant sees of
/// products.
fn record_effect<'a>(run: JobRun<'a>) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        let seen = run
            .tx
            .query_one("SELECT count(*) FROM products", &[])
            .await?;
        let seen: i64 = seen.get(0);
        run.tx
            .execute(
                "INSERT INTO job_effects (job_id, for_tenant, seen) VALUES ($1, $2, $3)",
                &[&run.job.id, &run.job.tenant_id, &seen],
            )
            .await?;
        Ok(())
    })
}

fn effect_kind() -> Kind {
    Kind::new("test.effect", FnHandler(record_effect))
}

/// Enqueues `job`: for a tenant as a request of that tenant does (its kind allowed
/// to requests first: `app.request_job_kinds`), or as a platform job through the
/// machinery (no request may enqueue one).
async fn enqueue_in(app: &TestApp, tenant: Option<Uuid>, job: NewJob) -> Option<i64> {
    let Some(tenant) = tenant else {
        return app.queue().enqueue_platform(&job).await.unwrap();
    };
    allow_requests_to_enqueue(app, job.kind).await;
    let scope = Scope {
        tenant_id: Some(tenant),
        ..Scope::anonymous()
    };
    let (tx, _) = app.database.begin(&scope).await.unwrap();
    let id = jobs::enqueue(&tx, &job).await.unwrap();
    tx.commit().await.unwrap();
    id
}

/// What a module's migration does for a kind its requests enqueue.
async fn allow_requests_to_enqueue(app: &TestApp, kind: &str) {
    app.db
        .superuser()
        .await
        .execute(
            "INSERT INTO app.request_job_kinds (kind) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&kind],
        )
        .await
        .unwrap();
}

async fn a_tenant(app: &TestApp, email: &str) -> Uuid {
    Uuid::parse_str(&app.tenant(email, "Acme").await.id).unwrap()
}

async fn count(superuser: &Client, sql: &str) -> i64 {
    superuser.query_one(sql, &[]).await.unwrap().get(0)
}

async fn state_of(superuser: &Client, id: i64) -> (String, i32) {
    let row = superuser
        .query_one("SELECT state, attempts FROM jobs WHERE id = $1", &[&id])
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// Waits until `sql` counts `expected`, or fails after a while.
async fn eventually(superuser: &Client, sql: &str, expected: i64) {
    for _ in 0..500 {
        if count(superuser, sql).await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "{sql} never counted {expected} (now {})",
        count(superuser, sql).await
    );
}

#[tokio::test]
async fn a_job_enqueued_in_a_rolled_back_transaction_does_not_exist() {
    let app = spawn_app().await;
    let superuser = app.db.superuser().await;
    let acme = a_tenant(&app, "owner@acme.example").await;
    // Committed: it is there.
    let kept = enqueue_in(
        &app,
        Some(acme),
        NewJob::new("test.effect", json!({"n": 1})),
    )
    .await;
    assert!(kept.is_some());

    let scope = Scope {
        tenant_id: Some(acme),
        ..Scope::anonymous()
    };
    let (tx, _) = app.database.begin(&scope).await.unwrap();
    let rolled_back = jobs::enqueue(&tx, &NewJob::new("test.effect", json!({"n": 2})))
        .await
        .unwrap();
    assert!(rolled_back.is_some(), "enqueued inside the transaction");
    tx.rollback().await;

    assert_eq!(
        count(
            &superuser,
            "SELECT count(*) FROM jobs WHERE kind = 'test.effect'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &superuser,
            "SELECT count(*) FROM jobs WHERE payload->>'n' = '2'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_unique_key_enqueues_a_live_job_once_per_tenant() {
    let app = spawn_app().await;
    let acme = Uuid::parse_str(&app.tenant("owner@acme.example", "Acme").await.id).unwrap();
    let globex = Uuid::parse_str(&app.tenant("owner@globex.example", "Globex").await.id).unwrap();
    let job = || NewJob::new("test.effect", json!({})).unique("renew:2026-12");
    assert!(enqueue_in(&app, Some(acme), job()).await.is_some());
    assert!(
        enqueue_in(&app, Some(acme), job()).await.is_none(),
        "the same key again in Acme"
    );
    // Another tenant's key is its own: Acme's cannot hold Globex's job back.
    assert!(enqueue_in(&app, Some(globex), job()).await.is_some());
}

#[tokio::test]
async fn a_failing_job_backs_off_and_ends_dead_after_its_last_attempt() {
    let app = spawn_app().await;
    let superuser = app.db.superuser().await;
    fn fail(_run: JobRun<'_>) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(async { Err(JobError::Retry("the far end is down".into())) })
    }
    let registry = Registry::new([Kind::new("test.fail", FnHandler(fail))]);
    let id = enqueue_in(&app, None, NewJob::new("test.fail", json!({})).attempts(3))
        .await
        .unwrap();
    let options = WorkerOptions {
        backoff_base: Duration::from_secs(60),
        backoff_cap: Duration::from_secs(3600),
        ..quick()
    };
    let queue = app.queue();
    let mut now = Utc::now();
    let mut waits = Vec::new();
    for attempt in 1..=3 {
        let claimed = queue
            .claim("tester", None, 10, options.lease, now)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1, "attempt {attempt} is due");
        let outcome = jobs::worker::run_job(
            queue,
            &registry,
            claimed.into_iter().next().unwrap(),
            &options,
        )
        .await;
        let (state, attempts) = state_of(&superuser, id).await;
        assert_eq!(attempts, attempt);
        if attempt < 3 {
            assert_eq!(outcome, Outcome::Failed("failed".into()));
            assert_eq!(state, "failed");
            let run_at: chrono::DateTime<Utc> = superuser
                .query_one("SELECT run_at FROM jobs WHERE id = $1", &[&id])
                .await
                .unwrap()
                .get(0);
            // Not due before its backoff is over.
            assert!(
                queue
                    .claim("tester", None, 10, options.lease, now)
                    .await
                    .unwrap()
                    .is_empty()
            );
            waits.push(run_at - Utc::now());
            now = run_at + TimeDelta::milliseconds(1);
        } else {
            assert_eq!(outcome, Outcome::Failed("dead".into()));
            assert_eq!(state, "dead");
        }
    }
    // 60 s then 120 s, each between half and all of it (jitter).
    assert!(
        waits[0] >= TimeDelta::seconds(29) && waits[0] <= TimeDelta::seconds(60),
        "{waits:?}"
    );
    assert!(
        waits[1] >= TimeDelta::seconds(59) && waits[1] <= TimeDelta::seconds(120),
        "{waits:?}"
    );
    let error: String = superuser
        .query_one("SELECT last_error FROM jobs WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(error, "the far end is down");
    // Dead is final: no worker claims it again, however late.
    let later = now + TimeDelta::days(30);
    assert!(
        queue
            .claim("tester", None, 10, options.lease, later)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn two_sets_of_workers_run_each_of_many_jobs_exactly_once() {
    let app = spawn_app().await;
    let superuser = app.db.superuser().await;
    effects_table(&superuser).await;
    for n in 0..300 {
        enqueue_in(&app, None, NewJob::new("test.effect", json!({"n": n}))).await;
    }
    /// Records the effect, and counts the jobs its set of workers ran.
    struct Counted(Arc<AtomicUsize>);
    impl Handler for Counted {
        fn run<'a>(&'a self, run: JobRun<'a>) -> BoxFuture<'a, Result<(), JobError>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            record_effect(run)
        }
    }
    let (ran_first, ran_second) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let first = Workers::start(
        2,
        app.another_queue().await,
        Registry::new([Kind::new("test.effect", Counted(ran_first.clone()))]),
        quick(),
    );
    let second = Workers::start(
        2,
        app.another_queue().await,
        Registry::new([Kind::new("test.effect", Counted(ran_second.clone()))]),
        quick(),
    );
    eventually(
        &superuser,
        "SELECT count(*) FROM jobs WHERE state = 'succeeded'",
        300,
    )
    .await;
    first.stop(Duration::from_secs(5)).await;
    second.stop(Duration::from_secs(5)).await;

    assert_eq!(
        count(&superuser, "SELECT count(*) FROM job_effects").await,
        300
    );
    // Every job was attempted once: no worker ever ran one another held.
    assert_eq!(
        count(&superuser, "SELECT sum(attempts) FROM jobs").await,
        300
    );
    // Both sets took part, together exactly once per job.
    let (first, second) = (
        ran_first.load(Ordering::SeqCst),
        ran_second.load(Ordering::SeqCst),
    );
    assert!(
        first > 0 && second > 0,
        "one set ran everything: {first} and {second}"
    );
    assert_eq!(first + second, 300);
}

/// Hangs on its first attempt (a worker that stalls or dies mid-job), records its
/// effect on the next.
fn hang_on_first_attempt<'a>(run: JobRun<'a>) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        if run.job.attempt == 1 {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        record_effect(run).await
    })
}

#[tokio::test]
async fn a_job_of_a_worker_killed_mid_job_is_taken_over_once_its_lease_runs_out() {
    let app = spawn_app().await;
    let superuser = app.db.superuser().await;
    effects_table(&superuser).await;
    let id = enqueue_in(&app, None, NewJob::new("test.hang", json!({})))
        .await
        .unwrap();
    let registry = Registry::new([Kind::new("test.hang", FnHandler(hang_on_first_attempt))]);
    let options = WorkerOptions {
        lease: Duration::from_secs(1),
        ..quick()
    };
    let doomed = Workers::start(
        1,
        app.another_queue().await,
        registry.clone(),
        options.clone(),
    );
    eventually(
        &superuser,
        "SELECT count(*) FROM jobs WHERE state = 'running'",
        1,
    )
    .await;
    // Killed: its tasks end where they are, with no release and no heartbeat; its
    // transaction dies with its connection.
    drop(doomed);
    assert_eq!(state_of(&superuser, id).await, ("running".into(), 1));

    let survivor = Workers::start(1, app.another_queue().await, registry, options);
    eventually(
        &superuser,
        "SELECT count(*) FROM jobs WHERE state = 'succeeded'",
        1,
    )
    .await;
    survivor.stop(Duration::from_secs(5)).await;
    assert_eq!(state_of(&superuser, id).await, ("succeeded".into(), 2));
    assert_eq!(
        count(&superuser, "SELECT count(*) FROM job_effects").await,
        1
    );
}

#[tokio::test]
async fn a_worker_that_lost_its_lease_has_its_work_rolled_back() {
    let app = spawn_app().await;
    let superuser = app.db.superuser().await;
    effects_table(&superuser).await;
    let id = enqueue_in(&app, None, NewJob::new("test.slow", json!({})))
        .await
        .unwrap();
    fn stall_on_first_attempt(run: JobRun<'_>) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(async move {
            if run.job.attempt == 1 {
                // Stalls past its lease, with no heartbeat to extend it.
                tokio::time::sleep(Duration::from_millis(2500)).await;
            }
            record_effect(run).await
        })
    }
    let slow = Registry::new([Kind::new("test.slow", FnHandler(stall_on_first_attempt))]);
    let options = WorkerOptions {
        lease: Duration::from_secs(1),
        ..quick()
    };
    let queue = app.queue().clone();
    let stalled = queue
        .claim("stalled", None, 1, options.lease, Utc::now())
        .await
        .unwrap();
    let first = {
        let (queue, slow, options) = (queue.clone(), slow.clone(), options.clone());
        let job = stalled.into_iter().next().unwrap();
        tokio::spawn(async move { jobs::worker::run_job(&queue, &slow, job, &options).await })
    };
    // Its lease runs out; another worker takes the job over and finishes it.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let taken = queue
        .claim("rescuer", None, 1, options.lease, Utc::now())
        .await
        .unwrap();
    assert_eq!(taken.len(), 1, "the expired lease is taken over");
    let rescued =
        jobs::worker::run_job(&queue, &slow, taken.into_iter().next().unwrap(), &options).await;
    assert_eq!(rescued, Outcome::Succeeded);

    // The stalled attempt wakes up, writes its effect, and is refused at completion.
    assert_eq!(first.await.unwrap(), Outcome::LeaseLost);
    assert_eq!(
        count(&superuser, "SELECT count(*) FROM job_effects").await,
        1
    );
    assert_eq!(state_of(&superuser, id).await, ("succeeded".into(), 2));
}

#[tokio::test]
async fn a_periodic_kind_fires_once_per_period_with_three_processes_scheduling_it() {
    let app = spawn_app().await;
    let superuser = app.db.superuser().await;
    let ran = Arc::new(AtomicUsize::new(0));
    struct Tick(Arc<AtomicUsize>);
    impl Handler for Tick {
        fn run<'a>(&'a self, _run: JobRun<'a>) -> BoxFuture<'a, Result<(), JobError>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(()) })
        }
    }
    let registry = Registry::new([Kind::periodic(
        "test.tick",
        Every::Minute,
        Tick(ran.clone()),
    )]);
    let options = WorkerOptions {
        schedule_tick: Some(Duration::from_millis(25)),
        ..quick()
    };
    let mut processes = Vec::new();
    for _ in 0..3 {
        processes.push(Workers::start(
            1,
            app.another_queue().await,
            registry.clone(),
            options.clone(),
        ));
    }
    // Each scheduler ticks about 40 times a second, all racing for the period.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for process in processes {
        process.stop(Duration::from_secs(5)).await;
    }
    let periods = count(
        &superuser,
        "SELECT count(DISTINCT unique_key) FROM jobs WHERE kind = 'test.tick'",
    )
    .await;
    let fired = count(
        &superuser,
        "SELECT count(*) FROM jobs WHERE kind = 'test.tick'",
    )
    .await;
    // One period, or two if the test straddled a minute: one job each, run once each.
    assert!((1..=2).contains(&periods), "{periods} periods");
    assert_eq!(fired, periods, "a period fired more than once");
    assert_eq!(ran.load(Ordering::SeqCst), usize::try_from(fired).unwrap());
}

#[tokio::test]
async fn a_tenant_job_sees_only_its_tenants_rows_and_a_platform_job_none() {
    let app = spawn_app().await;
    let superuser = app.db.superuser().await;
    effects_table(&superuser).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let globex = app.tenant("owner@globex.example", "Globex").await;
    for (tenant, products) in [(&acme, 3), (&globex, 1)] {
        for n in 0..products {
            let body = json!({"sku": format!("SKU-{n}"), "name": "Widget", "price_cents": 100});
            assert_eq!(
                app.products_create(&tenant.token, &body).await.status(),
                201
            );
        }
    }
    let acme_id = Uuid::parse_str(&acme.id).unwrap();
    let globex_id = Uuid::parse_str(&globex.id).unwrap();
    enqueue_in(&app, Some(acme_id), NewJob::new("test.effect", json!({}))).await;
    enqueue_in(&app, Some(globex_id), NewJob::new("test.effect", json!({}))).await;
    enqueue_in(&app, None, NewJob::new("test.effect", json!({}))).await;

    // Only these: registering queued verification emails too.
    let options = WorkerOptions {
        kinds: Some(vec!["test.effect".into()]),
        ..quick()
    };
    let ran = Workers::drain(app.queue(), &Registry::new([effect_kind()]), &options)
        .await
        .unwrap();
    assert_eq!(ran, 3);
    let seen = |tenant: Option<Uuid>| {
        let superuser = &superuser;
        async move {
            superuser
                .query_one(
                    "SELECT seen FROM job_effects WHERE for_tenant IS NOT DISTINCT FROM $1",
                    &[&tenant],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    assert_eq!(seen(Some(acme_id)).await, 3);
    assert_eq!(seen(Some(globex_id)).await, 1);
    assert_eq!(seen(None).await, 0);
}

#[tokio::test]
async fn a_sweep_fans_out_one_job_per_active_tenant_and_once_when_run_twice() {
    let app = spawn_app().await;
    let superuser = app.db.superuser().await;
    app.tenant("owner@acme.example", "Acme").await;
    app.tenant("owner@globex.example", "Globex").await;
    let initech = app.tenant("owner@initech.example", "Initech").await;
    superuser
        .execute(
            "UPDATE tenants SET status = 'suspended' WHERE id = $1::text::uuid",
            &[&initech.id],
        )
        .await
        .unwrap();
    let queue: &Queue = app.queue();
    let fanned = queue
        .enqueue_for_active_tenants("test.effect", &json!({}), "sweep@2026-12-01", None)
        .await
        .unwrap();
    assert_eq!(fanned, 2);
    let again = queue
        .enqueue_for_active_tenants("test.effect", &json!({}), "sweep@2026-12-01", None)
        .await
        .unwrap();
    assert_eq!(again, 0);
    assert_eq!(
        count(
            &superuser,
            "SELECT count(DISTINCT tenant_id) FROM jobs WHERE kind = 'test.effect'"
        )
        .await,
        2
    );
}

#[tokio::test]
async fn stopping_lets_the_job_in_flight_finish() {
    let app = spawn_app().await;
    let superuser = app.db.superuser().await;
    effects_table(&superuser).await;
    let id = enqueue_in(&app, None, NewJob::new("test.pause", json!({})))
        .await
        .unwrap();
    fn pause(run: JobRun<'_>) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            record_effect(run).await
        })
    }
    let registry = Registry::new([Kind::new("test.pause", FnHandler(pause))]);
    let workers = Workers::start(1, app.another_queue().await, registry, quick());
    eventually(
        &superuser,
        "SELECT count(*) FROM jobs WHERE state = 'running'",
        1,
    )
    .await;
    workers.stop(Duration::from_secs(10)).await;
    assert_eq!(state_of(&superuser, id).await, ("succeeded".into(), 1));
}

#[tokio::test]
async fn a_job_still_running_when_the_grace_period_ends_goes_back_to_the_queue() {
    let app = spawn_app().await;
    let superuser = app.db.superuser().await;
    effects_table(&superuser).await;
    let id = enqueue_in(&app, None, NewJob::new("test.hang", json!({})))
        .await
        .unwrap();
    let registry = Registry::new([Kind::new("test.hang", FnHandler(hang_on_first_attempt))]);
    let workers = Workers::start(1, app.another_queue().await, registry, quick());
    eventually(
        &superuser,
        "SELECT count(*) FROM jobs WHERE state = 'running'",
        1,
    )
    .await;
    workers.stop(Duration::from_millis(200)).await;
    // Given back at once, as if never attempted: no lease to wait out.
    assert_eq!(state_of(&superuser, id).await, ("queued".into(), 0));
    assert_eq!(
        count(&superuser, "SELECT count(*) FROM job_effects").await,
        0
    );
}

#[tokio::test]
async fn the_request_role_can_neither_read_the_queue_nor_claim_from_it() {
    let app = spawn_app().await;
    let acme = a_tenant(&app, "owner@acme.example").await;
    enqueue_in(
        &app,
        Some(acme),
        NewJob::new("test.effect", json!({"secret": "a-reset-token"})),
    )
    .await;
    // The machinery can.
    let claimed = app
        .queue()
        .claim(
            "tester",
            Some(&["test.effect".to_string()]),
            1,
            Duration::from_secs(5),
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(claimed[0].payload["secret"], "a-reset-token");

    let (tx, _) = app.database.begin(&Scope::anonymous()).await.unwrap();
    let read = tx.batch_execute("SELECT * FROM jobs").await;
    assert!(read.is_err(), "the request role read the queue");
    tx.rollback().await;
    let (tx, _) = app.database.begin(&Scope::anonymous()).await.unwrap();
    let claim = tx
        .batch_execute(
            "SELECT * FROM app.claim_jobs('thief', NULL, 10, 60, now() + interval '1 day')",
        )
        .await;
    assert!(claim.is_err(), "the request role claimed jobs");
    tx.rollback().await;
    let (tx, _) = app.database.begin(&Scope::anonymous()).await.unwrap();
    let page = tx
        .batch_execute("SELECT * FROM app.jobs_page(NULL, NULL, 10)")
        .await;
    assert!(page.is_err(), "the request role read the queue's page");
    tx.rollback().await;
}

/// Runs `sql` in a request transaction of `tenant` (as the request role, what SQL
/// injected into a request could do) and returns its error, if any.
async fn as_a_request_of(app: &TestApp, tenant: Option<Uuid>, sql: &str) -> Option<String> {
    let scope = Scope {
        tenant_id: tenant,
        ..Scope::anonymous()
    };
    let (tx, _) = app.database.begin(&scope).await.unwrap();
    let result = tx.batch_execute(sql).await;
    tx.rollback().await;
    result.err().map(|error| format!("{error:?}"))
}

#[tokio::test]
async fn a_request_enqueues_only_its_tenants_jobs_of_the_kinds_requests_may_enqueue() {
    let app = spawn_app().await;
    let acme = a_tenant(&app, "owner@acme.example").await;
    allow_requests_to_enqueue(&app, "test.effect").await;
    let enqueue =
        |kind: &str| format!("SELECT app.enqueue_job('{kind}', '{{}}', NULL, NULL, NULL)");
    // Legitimate: its tenant, a kind listed for requests.
    assert_eq!(
        as_a_request_of(&app, Some(acme), &enqueue("test.effect")).await,
        None
    );
    // Not a platform job (no tenant context: the schedulers' and sweeps' ground)...
    let platform = as_a_request_of(&app, None, &enqueue("test.effect")).await;
    assert!(platform.unwrap().contains("tenant only"));
    // ...nor an email of its choosing, nor a periodic kind.
    for kind in [
        "email.send",
        "notifications.deliver",
        "identity.prune_attempts",
    ] {
        let refused = as_a_request_of(&app, Some(acme), &enqueue(kind)).await;
        assert!(refused.unwrap().contains("may not enqueue"), "{kind}");
    }
}

#[tokio::test]
async fn a_request_cannot_make_a_job_jump_the_queue_or_take_the_machinerys_keys() {
    let app = spawn_app().await;
    let superuser = app.db.superuser().await;
    let acme = a_tenant(&app, "owner@acme.example").await;
    allow_requests_to_enqueue(&app, "test.effect").await;
    enqueue_in(
        &app,
        Some(acme),
        NewJob::new("test.effect", json!({}))
            .unique("sweep@2030-01-01")
            .at("1970-01-01T00:00:00Z".parse().unwrap())
            .attempts(1000),
    )
    .await
    .unwrap();
    let row = superuser
        .query_one(
            "SELECT run_at >= created_at, max_attempts, unique_key FROM jobs
             WHERE kind = 'test.effect'",
            &[],
        )
        .await
        .unwrap();
    let (not_before_now, attempts, key): (bool, i32, String) = (row.get(0), row.get(1), row.get(2));
    assert!(not_before_now, "a request's job runs no earlier than now");
    assert_eq!(attempts, 25);
    assert_eq!(key, "request:sweep@2030-01-01");
    // So the sweep's own key in that tenant is still free.
    let fanned = app
        .queue()
        .enqueue_for_active_tenants("test.effect", &json!({}), "sweep@2030-01-01", None)
        .await
        .unwrap();
    assert_eq!(fanned, 1);
    // And a payload is an object.
    let scalar = as_a_request_of(
        &app,
        Some(acme),
        "SELECT app.enqueue_job('test.effect', '\"text\"', NULL, NULL, NULL)",
    )
    .await;
    assert!(scalar.is_some(), "a scalar payload was accepted");
}

#[tokio::test]
async fn finished_jobs_are_forgotten_after_a_day_and_dead_ones_after_a_month() {
    let app = spawn_app().await;
    let superuser = app.db.superuser().await;
    for (state, age) in [
        ("succeeded", "2 days"),
        ("succeeded", "1 hour"),
        ("dead", "31 days"),
        ("dead", "2 days"),
        ("failed", "60 days"),
        ("queued", "60 days"),
    ] {
        superuser
            .execute(
                "INSERT INTO jobs (kind, state, finished_at, payload)
                 VALUES ('test.effect', $1, now() - $2::text::interval, jsonb_build_object('age', $2::text))",
                &[&state, &age],
            )
            .await
            .unwrap();
    }
    let pruned = app.queue().prune(Utc::now(), 1000).await.unwrap();
    assert_eq!(pruned, 2);
    let left: Vec<(String, String)> = superuser
        .query(
            "SELECT state, payload->>'age' FROM jobs WHERE kind = 'test.effect' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let expected = [
        ("succeeded", "1 hour"),
        ("dead", "2 days"),
        ("failed", "60 days"),
        ("queued", "60 days"),
    ];
    assert_eq!(
        left,
        expected
            .map(|(s, a)| (s.to_string(), a.to_string()))
            .to_vec()
    );
}

#[tokio::test]
async fn an_attempt_abandoned_at_the_end_of_the_grace_period_does_nothing_more() {
    let app = spawn_app().await;
    let superuser = app.db.superuser().await;
    enqueue_in(&app, None, NewJob::new("test.outside", json!({})))
        .await
        .unwrap();
    /// An effect outside the database (an email sent, say), a second into the job.
    struct Outside(Arc<AtomicUsize>);
    impl Handler for Outside {
        fn run<'a>(&'a self, _run: JobRun<'a>) -> BoxFuture<'a, Result<(), JobError>> {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                self.0.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
        }
    }
    let done = Arc::new(AtomicUsize::new(0));
    let registry = Registry::new([Kind::new("test.outside", Outside(done.clone()))]);
    let workers = Workers::start(1, app.another_queue().await, registry, quick());
    eventually(
        &superuser,
        "SELECT count(*) FROM jobs WHERE state = 'running'",
        1,
    )
    .await;
    workers.stop(Duration::from_millis(100)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        done.load(Ordering::SeqCst),
        0,
        "the abandoned attempt went on"
    );
    eventually(
        &superuser,
        "SELECT count(*) FROM jobs WHERE state = 'queued'",
        1,
    )
    .await;
}
