//! `GET /metrics` (src/platform/metrics.rs): served on `ROWGUARD_METRICS_BIND` only,
//! in the Prometheus text format (read here by a parser of it), requests counted by
//! operationId and status, failures and throttling counted, levels read at scrape.

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const REQUESTS: &str = "rowguard_http_requests_total";
const LATENCY: &str = "rowguard_http_request_duration_seconds";

async fn app_with_metrics() -> TestApp {
    spawn_app_with(|settings| settings.metrics_bind = Some("127.0.0.1:0".parse().unwrap())).await
}

#[tokio::test]
async fn a_request_is_counted_under_its_operation_id_and_status_with_its_latency() {
    let app = app_with_metrics().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let before = app.scrape().await;
    assert_eq!(app.stores_list(&acme.token).await.status(), 200);
    let after = app.scrape().await;
    let listed = [("operation", "stores_list"), ("status", "200")];
    assert_eq!(
        after.count(REQUESTS, &listed) - before.count(REQUESTS, &listed),
        1.0
    );
    let timed = [("operation", "stores_list")];
    assert_eq!(
        after.observations(LATENCY, &timed) - before.observations(LATENCY, &timed),
        1.0
    );
}

#[tokio::test]
async fn requests_are_labelled_by_operation_id_never_by_their_path() {
    let app = app_with_metrics().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let missing = Uuid::new_v4();
    assert_eq!(app.stores_get(&acme.token, missing).await.status(), 404);
    let unknown = app
        .http
        .get(app.url(&format!("/no/such/path/{missing}")))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let scraped = app.scrape().await;
    assert_eq!(
        scraped.count(REQUESTS, &[("operation", "stores_get"), ("status", "404")]),
        1.0
    );
    assert!(scraped.count(REQUESTS, &[("operation", "none"), ("status", "404")]) >= 1.0);
    let operations = scraped.label_values(REQUESTS, "operation");
    assert!(
        operations
            .iter()
            .all(|operation| !operation.contains(&missing.to_string()) && !operation.contains('/')),
        "a path became a label: {operations:?}"
    );
}

#[tokio::test]
async fn failed_password_checks_are_counted_as_login_failures_and_a_success_is_not() {
    let app = app_with_metrics().await;
    app.register("ada@example.com", "Analytical Engines").await;
    assert_eq!(
        app.scrape()
            .await
            .count("rowguard_login_failures_total", &[]),
        0.0
    );
    for _ in 0..2 {
        let refused = app.login("ada@example.com", "not the passphrase").await;
        assert_eq!(refused.status(), 401);
    }
    app.login_ok("ada@example.com").await;
    let scraped = app.scrape().await;
    assert_eq!(scraped.count("rowguard_login_failures_total", &[]), 2.0);
    assert_eq!(
        scraped.count(REQUESTS, &[("operation", "auth_login"), ("status", "200")]),
        1.0
    );
}

#[tokio::test]
async fn a_throttled_request_is_counted_as_throttled() {
    let app = spawn_app_with(|settings| {
        settings.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
        settings.login_max_failures_per_email = 2;
    })
    .await;
    app.register("ada@example.com", "Analytical Engines").await;
    let statuses = {
        let mut statuses = Vec::new();
        for _ in 0..3 {
            statuses.push(
                app.login("ada@example.com", "not the passphrase")
                    .await
                    .status(),
            );
        }
        statuses
    };
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let scraped = app.scrape().await;
    assert_eq!(
        scraped.count(
            "rowguard_throttled_requests_total",
            &[("operation", "auth_login")]
        ),
        1.0
    );
    assert_eq!(
        scraped.count(REQUESTS, &[("operation", "auth_login"), ("status", "429")]),
        1.0
    );
    // The throttled attempt was never checked: it is no failed password check.
    assert_eq!(scraped.count("rowguard_login_failures_total", &[]), 2.0);
}

#[tokio::test]
async fn every_pool_and_the_hashing_queue_are_gauged_when_scraped() {
    let app = app_with_metrics().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    assert_eq!(app.stores_list(&acme.token).await.status(), 200);
    let scraped = app.scrape().await;
    for pool in ["api", "auth", "jobs", "queue"] {
        for gauge in [
            "rowguard_db_pool_connections",
            "rowguard_db_pool_max_connections",
            "rowguard_db_pool_available",
            "rowguard_db_pool_waiting",
        ] {
            assert!(
                scraped.value(gauge, &[("pool", pool)]).is_some(),
                "no {gauge} for the {pool} pool"
            );
        }
    }
    // The test harness's ROWGUARD_POOL_SIZE, and the request pool served the list.
    assert_eq!(
        scraped.value("rowguard_db_pool_max_connections", &[("pool", "api")]),
        Some(4.0)
    );
    assert!(scraped.count("rowguard_db_pool_connections", &[("pool", "api")]) >= 1.0);
    for class in ["authenticated", "unauthenticated"] {
        // Idle now: nothing waits for a hashing thread, nothing runs on one.
        assert_eq!(
            scraped.value("rowguard_password_hash_queued", &[("class", class)]),
            Some(0.0)
        );
        assert_eq!(
            scraped.value("rowguard_password_hash_running", &[("class", class)]),
            Some(0.0)
        );
    }
}

#[tokio::test]
async fn the_job_queue_depth_by_state_is_what_the_queue_holds() {
    let app = app_with_metrics().await;
    app.register("ada@example.com", "Analytical Engines").await;
    // No workers run in tests: the reset email stays queued.
    app.auth_forgot_password(&json!({"email": "ada@example.com"}))
        .await;
    let db = app.db.superuser().await;
    let queued: i64 = db
        .query_one("SELECT count(*) FROM jobs WHERE state = 'queued'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(queued >= 1);
    let scraped = app.scrape().await;
    assert_eq!(
        scraped.value("rowguard_jobs", &[("state", "queued")]),
        Some(queued as f64)
    );
    for state in ["running", "failed", "dead"] {
        assert_eq!(
            scraped.value("rowguard_jobs", &[("state", state)]),
            Some(0.0)
        );
    }
}

#[tokio::test]
async fn metrics_are_never_served_on_the_api_address() {
    let app = app_with_metrics().await;
    // Served where the operator put them...
    app.scrape().await;
    // ...and not where the public reaches.
    let public = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404);
}

#[tokio::test]
async fn without_a_metrics_address_no_metrics_listener_is_opened() {
    let app = spawn_app().await;
    assert!(app.metrics_address.is_none());
    let public = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404);
}
