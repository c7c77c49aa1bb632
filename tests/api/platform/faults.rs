//! Faults the server survives: clients that go away, an exhausted pool, slow queries,
//! killed backends, a restarted PostgreSQL, a panicking handler.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI32, Ordering},
    },
    time::{Duration, Instant},
};

use poem::{EndpointExt, handler, test::TestClient, web::Data};
use rowguard::platform::{
    db::{
        Scope,
        embedded::{ClusterOptions, EmbeddedCluster},
    },
    http::edge_stack,
};
use tokio_postgres::Client;

use crate::helpers::{TestApp, TestDb, assert_problem, connect, spawn_app_with, test_settings};

/// Makes every read of products take `seconds` per row, from the database's side.
async fn slow_products(superuser: &Client, seconds: f64) {
    superuser
        .batch_execute(&format!(
            "CREATE POLICY slow ON products AS RESTRICTIVE FOR SELECT USING (pg_sleep({seconds}) IS NOT NULL)"
        ))
        .await
        .unwrap();
}

async fn idle_in_transaction(app: &TestApp) -> i64 {
    app.db
        .superuser()
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = 'rowguard'
               AND state LIKE 'idle in transaction%'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_client_that_disconnects_mid_request_leaves_no_open_transaction_or_held_connection() {
    let app = spawn_app_with(|settings| settings.pool_size = 2).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    app.product(&acme.token, "SLOW-1").await;
    slow_products(&app.db.superuser().await, 1.5).await;

    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let request = app
        .products_list(&acme.token)
        .into_reqwest()
        .build()
        .unwrap();
    let gone = impatient.execute(request).await;
    assert!(gone.is_err(), "the client gave up");

    // Whether the server cancels the request or lets it finish, within a few seconds
    // nothing is left open and every pooled connection is free again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = app.database.pool().status();
        if idle_in_transaction(&app).await == 0 && status.available == status.size {
            break;
        }
        assert!(Instant::now() < deadline, "still held: {status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.me_get(&acme.token).await.status(), 200);
}

#[tokio::test]
async fn an_exhausted_pool_answers_503_within_the_acquire_timeout() {
    let app = spawn_app_with(|settings| {
        settings.pool_size = 1;
        settings.pool_timeout_ms = 500;
    })
    .await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    app.product(&acme.token, "SLOW-1").await;
    slow_products(&app.db.superuser().await, 2.0).await;

    let slow = {
        let request = app.products_list(&acme.token).into_reqwest();
        tokio::spawn(async move { request.send().await.unwrap().status() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let response = app.me_get(&acme.token).await;
    let waited = started.elapsed();
    assert_problem(response, 503, "unavailable").await;
    assert!(
        waited < Duration::from_millis(1500),
        "answered after {waited:?}, not within the acquire timeout"
    );
    assert_eq!(
        slow.await.unwrap(),
        200,
        "the request holding the connection still succeeds"
    );
    assert_eq!(app.me_get(&acme.token).await.status(), 200);
}

#[tokio::test]
async fn a_query_over_the_statement_timeout_answers_503_and_the_next_request_succeeds() {
    let app = spawn_app_with(|settings| settings.statement_timeout_ms = 300).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    app.product(&acme.token, "SLOW-1").await;
    slow_products(&app.db.superuser().await, 2.0).await;
    let started = Instant::now();
    assert_problem(app.products_list(&acme.token).await, 503, "unavailable").await;
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert_eq!(app.me_get(&acme.token).await.status(), 200);
    assert_eq!(idle_in_transaction(&app).await, 0);
}

/// Requests until one succeeds; every failure on the way must be a 503.
async fn recovers(app: &TestApp, token: &str, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    let mut failures = 0;
    loop {
        let response = app.me_get(token).await;
        if response.status() == 200 {
            return failures;
        }
        assert_problem(response, 503, "unavailable").await;
        failures += 1;
        assert!(Instant::now() < deadline, "no success within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn killed_backends_fail_only_the_requests_on_them() {
    let app = spawn_app_with(|settings| settings.pool_size = 4).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    for _ in 0..8 {
        assert_eq!(app.me_get(&acme.token).await.status(), 200);
    }
    let killed: i64 = app
        .db
        .superuser()
        .await
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = 'rowguard'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 1, "the server had connections to kill");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let failures = recovers(&app, &acme.token, Duration::from_secs(10)).await;
    assert!(failures <= 4, "{failures} requests failed after the kill");
    for _ in 0..8 {
        assert_eq!(app.me_get(&acme.token).await.status(), 200);
    }
}

#[tokio::test]
async fn a_restarted_postgresql_is_used_again_within_seconds() {
    // A cluster of this test's own, since it gets stopped.
    let root = std::env::temp_dir().join(format!("rowguard-test-{}-restart", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = ClusterOptions {
        throwaway: true,
        port: Some(port),
        ..ClusterOptions::default()
    };
    let start = {
        let (root, options) = (root.clone(), options.clone());
        move || EmbeddedCluster::start(&root, &options).unwrap()
    };
    let cluster = tokio::task::spawn_blocking(start.clone()).await.unwrap();
    connect(&cluster.url("postgres"))
        .await
        .batch_execute("CREATE DATABASE rowguard")
        .await
        .unwrap();

    let mut settings = test_settings(&cluster.url("rowguard"));
    settings.pool_timeout_ms = 1000;
    let application = rowguard::app::Application::build(&settings).await.unwrap();
    let address = application.local_addr();
    let server = tokio::spawn(application.run_until(std::future::pending()));
    let app = TestApp::attach(address, TestDb::detached(cluster.url("rowguard")));
    let acme = app.tenant("owner@acme.example", "Acme").await;
    assert_eq!(app.me_get(&acme.token).await.status(), 200);

    tokio::task::spawn_blocking(move || cluster.stop())
        .await
        .unwrap();
    assert_problem(app.me_get(&acme.token).await, 503, "unavailable").await;

    let cluster = tokio::task::spawn_blocking(start).await.unwrap();
    recovers(&app, &acme.token, Duration::from_secs(15)).await;
    server.abort();
    tokio::task::spawn_blocking(move || cluster.stop())
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&root);
}

#[handler]
async fn panics_mid_transaction(
    db: Data<&rowguard::platform::db::Database>,
    backend: Data<&Arc<AtomicI32>>,
) -> String {
    let (tx, _) = db.begin(&Scope::anonymous()).await.unwrap();
    let pid: i32 = tx
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    backend.store(pid, Ordering::SeqCst);
    tx.batch_execute("CREATE TEMP TABLE left_behind (x int)")
        .await
        .unwrap();
    panic!("a bug in a handler");
}

#[tokio::test]
async fn a_panic_answers_500_with_a_request_id_and_its_connection_is_not_reused() {
    let test_db = TestDb::new().await;
    let db = test_db.database(1);
    let backend = Arc::new(AtomicI32::new(0));
    let endpoint = edge_stack(
        panics_mid_transaction
            .data(db.clone())
            .data(backend.clone()),
    );
    let response = TestClient::new(endpoint).get("/").send().await;
    response.assert_status(poem::http::StatusCode::INTERNAL_SERVER_ERROR);
    response.assert_header("content-type", "application/problem+json");
    let request_id = response
        .0
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let body = response.json().await;
    let body = body.value().object();
    body.get("code").assert_string("internal");
    body.get("request_id").assert_string(&request_id);

    // The pool's only connection was inside the panicking request's transaction.
    let (tx, _) = db.begin(&Scope::anonymous()).await.unwrap();
    let row = tx
        .query_one(
            "SELECT pg_backend_pid(), to_regclass('pg_temp.left_behind') IS NULL",
            &[],
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_ne!(
        row.get::<_, i32>(0),
        backend.load(Ordering::SeqCst),
        "the connection was reused"
    );
    assert!(row.get::<_, bool>(1), "the transaction's work is visible");
}
