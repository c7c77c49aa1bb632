//! Usage (docs/api.md, "Usage"): the counts of the plan's limits, api_requests metered
//! in memory and flushed, the history, and the 80% / 100% notices.

use chrono::{DateTime, Utc};
use rowguard::platform::db::Scope;
use serde_json::{Value, json};

use crate::helpers::{
    SmtpSink, TestApp, TestDb, assert_problem, spawn_app, spawn_app_on, spawn_app_with,
};

async fn free_plan_app() -> TestApp {
    spawn_app_with(|settings| settings.default_plan = "free".into()).await
}

async fn current(app: &TestApp, token: &str) -> Value {
    let response = app.usage_current(token).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// `code` → (value, limit) of a usage body's metrics.
fn metric(usage: &Value, code: &str) -> (i64, Value) {
    let found = usage["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {usage}"));
    (found["value"].as_i64().unwrap(), found["limit"].clone())
}

async fn api_requests(app: &TestApp, token: &str) -> i64 {
    metric(&current(app, token).await, "api_requests").0
}

/// `n` authenticated requests (`GET /me`), each answered 200.
async fn requests(app: &TestApp, token: &str, n: usize) {
    for _ in 0..n {
        assert_eq!(app.me_get(token).await.status(), 200);
    }
}

async fn create_products(app: &TestApp, token: &str, from: usize, to: usize) {
    for n in from..to {
        let body = json!({"sku": format!("SKU-{n}"), "name": "Widget", "price_cents": 100});
        let created = app.products_create(token, &body).await;
        assert_eq!(created.status(), 201, "{:?}", created.text().await);
    }
}

async fn invite(app: &TestApp, token: &str, email: &str) {
    let role_id = app.role_id(token, "Staff").await;
    let invited = app
        .invitations_create(token, &json!({"email": email, "role_id": role_id}))
        .await;
    assert_eq!(invited.status(), 201);
}

#[tokio::test]
async fn the_current_usage_shows_each_count_of_the_period_with_the_plans_limit() {
    let app = free_plan_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    app.store(&acme.token, "Main Street").await;
    create_products(&app, &acme.token, 0, 2).await;
    // Members are the active ones (the Owner) plus pending invitations.
    invite(&app, &acme.token, "pending@acme.example").await;

    let usage = current(&app, &acme.token).await;
    assert_eq!(metric(&usage, "stores"), (1, json!(1)));
    assert_eq!(metric(&usage, "members"), (2, json!(3)));
    assert_eq!(metric(&usage, "products"), (2, json!(100)));
    assert_eq!(metric(&usage, "api_requests").1, json!(10000));
    let codes: Vec<&str> = usage["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["stores", "members", "products", "api_requests"]);
    // The period is the subscription's.
    let subscription: Value = app
        .subscriptions_current(&acme.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        usage["period_start"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        subscription["current_period_start"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap()
    );
    assert_eq!(
        usage["period_end"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        subscription["current_period_end"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap()
    );
}

#[tokio::test]
async fn an_unlimited_plan_shows_null_limits() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let usage = current(&app, &acme.token).await;
    for code in ["stores", "members", "products", "api_requests"] {
        assert_eq!(metric(&usage, code).1, Value::Null, "{code} on business");
    }
    assert_eq!(metric(&usage, "members").0, 1);
}

#[tokio::test]
async fn api_requests_are_counted_once_the_meter_flushes() {
    let app = free_plan_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    requests(&app, &acme.token, 7).await;
    // Counted in memory: nothing reached the database yet (this read is the 8th).
    assert_eq!(api_requests(&app, &acme.token).await, 0);
    assert_eq!(app.flush_usage().await, 8);
    assert_eq!(api_requests(&app, &acme.token).await, 8);
    // A flush with nothing new adds nothing; the 9th read is counted next time.
    assert_eq!(app.flush_usage().await, 1);
    assert_eq!(app.flush_usage().await, 0);
    assert_eq!(api_requests(&app, &acme.token).await, 9);
}

#[tokio::test]
async fn a_request_refused_by_its_permission_is_still_an_authenticated_request() {
    let app = free_plan_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (_, staff) = app
        .member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    app.flush_usage().await;
    let before = api_requests(&app, &acme.token).await;
    assert_problem(app.usage_current(&staff).await, 403, "forbidden").await;
    // A request without a valid token is not the tenant's.
    let unauthenticated = app.usage_current("not-a-token").await;
    assert_eq!(unauthenticated.status(), 401);
    app.flush_usage().await;
    // The Owner's read above, and Staff's refused one.
    assert_eq!(api_requests(&app, &acme.token).await, before + 2);
}

#[tokio::test]
async fn two_servers_on_one_database_counting_at_once_sum_exactly_after_both_flush() {
    let first = free_plan_app().await;
    let second = spawn_app_on(TestDb::detached(first.db.url.clone()), |settings| {
        settings.default_plan = "free".into();
    })
    .await;
    let acme = first.tenant("owner@acme.example", "Acme").await;
    // Requests on both servers at once, while both flush now and then: every count
    // is added exactly once, whichever flush carries it.
    let load = |app: &TestApp, n: usize| {
        let token = acme.token.clone();
        let client = app.http.clone();
        let url = app.url("/api/v1/me");
        async move {
            for _ in 0..n {
                let response = client.get(&url).bearer_auth(&token).send().await.unwrap();
                assert_eq!(response.status(), 200);
            }
        }
    };
    let flushes = |app: &TestApp| {
        let meter = app.meter.clone().unwrap();
        async move {
            for _ in 0..10 {
                meter.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    tokio::join!(
        load(&first, 150),
        load(&first, 150),
        load(&second, 100),
        load(&second, 100),
        load(&second, 100),
        flushes(&first),
        flushes(&second),
    );
    first.flush_usage().await;
    second.flush_usage().await;
    assert_eq!(api_requests(&first, &acme.token).await, 600);
    assert_eq!(api_requests(&second, &acme.token).await, 600);
}

#[tokio::test]
async fn stopping_a_server_flushes_what_it_counted() {
    let db = TestDb::new().await;
    let app = spawn_app_on(TestDb::detached(db.url.clone()), |settings| {
        settings.default_plan = "free".into();
    })
    .await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    requests(&app, &acme.token, 4).await;
    app.stop().await.unwrap();
    let recorded: i64 = db
        .superuser()
        .await
        .query_one(
            "SELECT api_requests FROM usage_periods WHERE tenant_id = $1::text::uuid",
            &[&acme.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, 4);
}

#[tokio::test]
async fn a_tenant_sees_its_own_usage_and_none_of_another_tenants() {
    let app = free_plan_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let globex = app.tenant("owner@globex.example", "Globex").await;
    app.store(&globex.token, "Globex HQ").await;
    create_products(&app, &globex.token, 0, 3).await;
    requests(&app, &acme.token, 2).await;
    requests(&app, &globex.token, 5).await;
    app.flush_usage().await;

    let acme_usage = current(&app, &acme.token).await;
    assert_eq!(metric(&acme_usage, "api_requests").0, 2);
    assert_eq!(metric(&acme_usage, "stores").0, 0);
    assert_eq!(metric(&acme_usage, "products").0, 0);
    let globex_usage = current(&app, &globex.token).await;
    // Its store, three products, five reads.
    assert_eq!(metric(&globex_usage, "api_requests").0, 1 + 3 + 5);
    assert_eq!(metric(&globex_usage, "stores").0, 1);
    assert_eq!(metric(&globex_usage, "products").0, 3);
}

#[tokio::test]
async fn staff_are_refused_the_usage_with_403_naming_usage_view() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    // The Owner reads both.
    assert_eq!(app.usage_current(&acme.token).await.status(), 200);
    assert_eq!(app.usage_history(&acme.token).await.status(), 200);
    let (_, staff) = app
        .member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    for refused in [
        app.usage_current(&staff).await,
        app.usage_history(&staff).await,
    ] {
        let body = assert_problem(refused, 403, "forbidden").await;
        assert_eq!(body["permission"], "usage.view");
    }
}

#[tokio::test]
async fn a_bad_page_of_the_history_is_a_bad_request() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    assert_eq!(app.usage_history(&acme.token).limit(1).await.status(), 200);
    for bad in [
        app.usage_history(&acme.token).limit(0).await,
        app.usage_history(&acme.token).limit(101).await,
        app.usage_history(&acme.token).cursor("not a cursor").await,
        app.usage_history(&acme.token).query("limit", "many").await,
    ] {
        assert_eq!(bad.status(), 400);
        let body: Value = bad.json().await.unwrap();
        assert!(body["code"].is_string(), "{body}");
    }
}

/// The notifications of `kind` of the member, as (limit, threshold), oldest first.
async fn usage_notices(app: &TestApp, token: &str) -> Vec<(String, i64)> {
    let list: Value = app.notifications_list(token).await.json().await.unwrap();
    let mut notices: Vec<(String, i64)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "usage.threshold_reached")
        .map(|n| {
            (
                n["data"]["limit"].as_str().unwrap().to_string(),
                n["data"]["threshold"].as_i64().unwrap(),
            )
        })
        .collect();
    notices.reverse();
    notices
}

/// The usage emails queued (and delivered, to the log) for `to`.
async fn usage_emails(app: &TestApp, to: &str) -> Vec<String> {
    app.db
        .superuser()
        .await
        .query(
            "SELECT payload->'data'->>'limit_name' || ' ' || (payload->'data'->>'threshold')
             FROM jobs
             WHERE kind = 'email.send' AND payload->>'template' = 'usage_threshold'
               AND payload->>'to' = $1
             ORDER BY id",
            &[&to],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test]
async fn the_80_and_100_percent_notices_reach_the_owners_once_per_period_even_when_the_aggregation_runs_twice()
 {
    let app = free_plan_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    // A second Owner; members are now 2 of 3 (66%: no notice).
    let (_, co_owner) = app
        .member(&acme.token, "co-owner@acme.example", "Owner", None)
        .await;
    let (_, staff) = app
        .member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    // Staff makes three members of three: both thresholds of members at once.
    create_products(&app, &acme.token, 0, 80).await;
    let now = Utc::now();
    app.jobs_run("usage.aggregate", now).await;
    let expected = [
        ("members".to_string(), 80),
        ("members".to_string(), 100),
        ("products".to_string(), 80),
    ];
    for token in [&acme.token, &co_owner] {
        let mut notices = usage_notices(&app, token).await;
        notices.sort();
        assert_eq!(notices, expected);
    }
    assert!(
        usage_notices(&app, &staff).await.is_empty(),
        "the notices are the Owners'"
    );
    assert_eq!(
        usage_emails(&app, "owner@acme.example").await,
        ["members 80", "members 100", "products 80"]
    );

    // Again, as of the same instant and an hour later: nothing new.
    app.jobs_run("usage.aggregate", now).await;
    app.jobs_run("usage.aggregate", now + chrono::TimeDelta::hours(1))
        .await;
    assert_eq!(usage_notices(&app, &acme.token).await.len(), 3);
    assert_eq!(usage_emails(&app, "co-owner@acme.example").await.len(), 3);

    // The products reach their limit: its 100% notice alone, once.
    create_products(&app, &acme.token, 80, 100).await;
    app.jobs_run("usage.aggregate", now + chrono::TimeDelta::hours(2))
        .await;
    app.jobs_run("usage.aggregate", now + chrono::TimeDelta::hours(2))
        .await;
    let notices = usage_notices(&app, &acme.token).await;
    assert_eq!(notices.len(), 4, "{notices:?}");
    assert_eq!(notices[3], ("products".to_string(), 100));
    let list: Value = app
        .notifications_list(&acme.token)
        .await
        .json()
        .await
        .unwrap();
    let newest = &list["items"][0];
    assert_eq!(newest["title"], "Acme has used 100% of its products limit");
    assert_eq!(newest["data"]["value"], 100);
    assert_eq!(newest["data"]["max"], 100);
    assert_eq!(
        usage_emails(&app, "owner@acme.example").await,
        ["members 80", "members 100", "products 80", "products 100"]
    );
}

#[tokio::test]
async fn a_new_period_tells_its_thresholds_again() {
    let app = free_plan_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    app.store(&acme.token, "Main Street").await;
    let now = Utc::now();
    app.jobs_run("usage.aggregate", now).await;
    assert_eq!(usage_notices(&app, &acme.token).await.len(), 2);
    next_period(&app, &acme.id).await;
    app.jobs_run("usage.aggregate", now).await;
    let notices = usage_notices(&app, &acme.token).await;
    assert_eq!(
        notices,
        [
            ("stores".to_string(), 80),
            ("stores".to_string(), 100),
            ("stores".to_string(), 80),
            ("stores".to_string(), 100),
        ]
    );
}

/// What renewal does to the period (the billing module's job): the next one starts
/// where the current one ends.
async fn next_period(app: &TestApp, tenant: &str) {
    app.db
        .superuser()
        .await
        .execute(
            "UPDATE subscriptions
             SET current_period_start = current_period_end,
                 current_period_end = current_period_end + interval '1 month'
             WHERE tenant_id = $1::text::uuid",
            &[&tenant],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn the_history_lists_past_periods_newest_first_with_what_was_used_in_each() {
    let app = free_plan_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let now = Utc::now();
    // First period: a store, two reads.
    app.store(&acme.token, "Main Street").await;
    requests(&app, &acme.token, 2).await;
    app.flush_usage().await;
    app.jobs_run("usage.aggregate", now).await;
    next_period(&app, &acme.id).await;
    // Second period: five reads, flushed after the last aggregation (still counted).
    app.jobs_run("usage.aggregate", now).await;
    requests(&app, &acme.token, 5).await;
    app.flush_usage().await;
    next_period(&app, &acme.id).await;

    // The current (third) period is not history.
    let history: Value = app.usage_history(&acme.token).await.json().await.unwrap();
    let items = history["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{history}");
    assert_eq!(history["next_cursor"], Value::Null);
    let starts: Vec<DateTime<Utc>> = items
        .iter()
        .map(|p| p["period_start"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(starts[0] > starts[1], "newest first: {starts:?}");
    assert_eq!(items[0]["period_start"], items[1]["period_end"]);
    assert_eq!(metric(&items[0], "api_requests"), (5, json!(10000)));
    assert_eq!(metric(&items[0], "stores"), (1, json!(1)));
    assert_eq!(metric(&items[1], "api_requests"), (3, json!(10000)));
    assert_eq!(metric(&items[1], "members"), (1, json!(3)));

    // One period a page.
    let first: Value = app
        .usage_history(&acme.token)
        .limit(1)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["items"][0]["period_start"], items[0]["period_start"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = app
        .usage_history(&acme.token)
        .limit(1)
        .cursor(cursor)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["items"][0]["period_start"], items[1]["period_start"]);
    assert_eq!(second["next_cursor"], Value::Null);

    // Another tenant has no history.
    let globex = app.tenant("owner@globex.example", "Globex").await;
    let theirs: Value = app.usage_history(&globex.token).await.json().await.unwrap();
    assert_eq!(theirs["items"], json!([]));
}

#[tokio::test]
async fn a_request_can_neither_write_a_count_nor_open_another_tenants_period() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let globex = app.tenant("owner@globex.example", "Globex").await;
    let scope = Scope::tenant(acme.id.parse().unwrap(), acme.owner_id.parse().unwrap());
    let attempt = |sql: String| {
        let app = &app;
        let scope = scope.clone();
        async move {
            let (tx, _) = app.database.begin(&scope).await.unwrap();
            let result = tx.batch_execute(&sql).await;
            tx.rollback().await;
            result.map_err(|error| format!("{error:?}"))
        }
    };
    // Its own period, the columns it may write: allowed.
    attempt(format!(
        "INSERT INTO usage_periods (tenant_id, period_start, period_end)
         VALUES ('{}', '2030-01-01', '2030-02-01')",
        acme.id
    ))
    .await
    .unwrap();
    let refused = attempt(format!(
        "INSERT INTO usage_periods (tenant_id, period_start, period_end)
         VALUES ('{}', '2030-01-01', '2030-02-01')",
        globex.id
    ))
    .await
    .unwrap_err();
    assert!(refused.contains("row-level security"), "{refused}");
    for sql in [
        format!(
            "INSERT INTO usage_periods (tenant_id, period_start, period_end, api_requests)
             VALUES ('{}', '2030-01-01', '2030-02-01', 1000000)",
            acme.id
        ),
        "UPDATE usage_periods SET api_requests = 0".to_string(),
        format!(
            "SELECT app.record_api_requests(ARRAY['{}'::uuid], ARRAY[1000000::bigint])",
            acme.id
        ),
    ] {
        let refused = attempt(sql.clone()).await.unwrap_err();
        assert!(refused.contains("permission denied"), "{sql}: {refused}");
    }
}

#[tokio::test]
async fn the_usage_emails_name_the_tenant_the_limit_and_the_console() {
    let sink = SmtpSink::start().await;
    let url = sink.url().to_string();
    let app = spawn_app_with(move |settings| {
        settings.default_plan = "free".into();
        settings.smtp_url = Some(url.as_str().into());
        settings.public_url = Some("https://console.example".into());
        settings.workers = 1;
    })
    .await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    app.store(&acme.token, "Main Street").await;
    // This server's own workers run the aggregation and deliver its emails.
    app.queue()
        .enqueue_platform(&rowguard::platform::jobs::NewJob::new(
            "usage.aggregate",
            json!({ "now": Utc::now() }),
        ))
        .await
        .unwrap();
    let mail = sink
        .wait_for_link(
            "owner@acme.example",
            "reached 100% of its plan's stores limit",
            std::time::Duration::from_secs(20),
        )
        .await;
    assert!(mail.subject.contains("Acme"), "{}", mail.subject);
    assert!(mail.text.contains("1 of 1"), "{}", mail.text);
    assert!(mail.text.contains("https://console.example/console"));
}
