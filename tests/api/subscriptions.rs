//! Plans (docs/api.md, "Plans, features and the gate"): the code-defined catalog.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_plans_are_listed_to_anyone_cheapest_first_with_every_feature_and_limit() {
    let app = spawn_app().await;
    let response = app.plans_list().await;
    assert_eq!(response.status(), 200);
    let plans: Value = response.json().await.unwrap();
    let items = plans["items"].as_array().unwrap();
    let codes: Vec<&str> = items.iter().map(|p| p["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["free", "starter", "business"]);
    assert_eq!(
        items[0],
        json!({
            "code": "free", "name": "Free", "price_minor": 0, "currency": "KES",
            "interval": "month", "trial_days": 0,
            "features": {"api_keys": false, "audit_log": false, "inventory": false},
            "limits": {"api_requests": 10000, "members": 3, "products": 100, "stores": 1},
        })
    );
    assert_eq!(items[1]["price_minor"], 250000);
    assert_eq!(items[1]["trial_days"], 14);
    assert_eq!(
        items[1]["features"],
        json!({"api_keys": false, "audit_log": false, "inventory": true})
    );
    assert_eq!(
        items[1]["limits"],
        json!({"api_requests": 100000, "members": 10, "products": 1000, "stores": 3})
    );
    assert_eq!(items[2]["price_minor"], 1000000);
    assert_eq!(
        items[2]["features"],
        json!({"api_keys": true, "audit_log": true, "inventory": true})
    );
    // Unlimited is null.
    assert_eq!(
        items[2]["limits"],
        json!({"api_requests": null, "members": null, "products": null, "stores": null})
    );
}

#[tokio::test]
async fn a_new_tenant_is_subscribed_to_the_default_plan_active_without_a_trial() {
    let app =
        crate::helpers::spawn_app_with(|settings| settings.default_plan = "free".into()).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let response = app.subscriptions_current(&acme.token).await;
    assert_eq!(response.status(), 200);
    let subscription: Value = response.json().await.unwrap();
    assert_eq!(subscription["plan_code"], "free");
    assert_eq!(subscription["status"], "active");
    assert_eq!(subscription["trial_end"], Value::Null);
    assert_eq!(subscription["cancel_at_period_end"], false);
    assert_eq!(subscription["pending_plan_code"], Value::Null);
    assert_eq!(subscription["plan"]["limits"]["stores"], 1);
    let start: chrono::DateTime<chrono::Utc> = subscription["current_period_start"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let end: chrono::DateTime<chrono::Utc> = subscription["current_period_end"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (28..=31).contains(&(end - start).num_days()),
        "a month: {start} to {end}"
    );
}

#[tokio::test]
async fn the_default_plan_is_a_setting_and_start_up_refuses_one_that_does_not_exist() {
    let app =
        crate::helpers::spawn_app_with(|settings| settings.default_plan = "starter".into()).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let subscription: Value = app
        .subscriptions_current(&acme.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(subscription["plan_code"], "starter");

    let mut settings = crate::helpers::test_settings(&app.db.url);
    settings.default_plan = "platinum".into();
    let refused = rowguard::app::Application::build(&settings)
        .await
        .err()
        .expect("refused");
    assert!(
        format!("{refused:#}").contains("ROWGUARD_DEFAULT_PLAN=platinum"),
        "{refused:#}"
    );
}

#[tokio::test]
async fn a_tenant_sees_its_own_subscription_and_a_member_without_the_permission_none() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let globex = app.tenant("owner@globex.example", "Globex").await;
    // Each tenant's own.
    let acme_plan: Value = app
        .subscriptions_current(&acme.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(acme_plan["plan_code"], "business");
    app.db
        .superuser()
        .await
        .execute(
            "UPDATE subscriptions SET plan_code = 'starter' WHERE tenant_id = $1::text::uuid",
            &[&globex.id],
        )
        .await
        .unwrap();
    let globex_plan: Value = app
        .subscriptions_current(&globex.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(globex_plan["plan_code"], "starter");
    let acme_again: Value = app
        .subscriptions_current(&acme.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        acme_again["plan_code"], "business",
        "Globex's change is not Acme's"
    );
    // Staff hold no subscriptions.view.
    let (_, staff) = app
        .member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    let refused = app.subscriptions_current(&staff).await;
    let body = crate::helpers::assert_problem(refused, 403, "forbidden").await;
    assert_eq!(body["permission"], "subscriptions.view");
}

// Changing plans (docs/api.md, "Subscriptions"): PUT and DELETE /subscriptions/current.

use chrono::{DateTime, TimeDelta, Utc};

use crate::helpers::{TestApp, assert_problem, spawn_app_with, text};

fn time(value: &Value, field: &str) -> DateTime<Utc> {
    text(value, field).parse().unwrap()
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339()
}

async fn free_app() -> TestApp {
    spawn_app_with(|settings| settings.default_plan = "free".into()).await
}

#[tokio::test]
async fn the_upgrade_from_free_to_starter_starts_a_trial_once_and_a_second_time_issues_an_invoice()
{
    let app = free_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let before = Utc::now();
    let trial = app.change_plan(&acme.token, "starter").await;
    assert_eq!(trial["plan_code"], "starter");
    assert_eq!(trial["status"], "trialing");
    assert_eq!(trial["pending_plan_code"], Value::Null);
    assert_eq!(trial["plan"]["code"], "starter");
    let trial_end = time(&trial, "trial_end");
    let days = (trial_end - before).num_hours();
    assert!((14 * 24 - 1..=14 * 24).contains(&days), "{trial_end}");
    assert_eq!(time(&trial, "current_period_end"), trial_end);
    assert!(
        app.invoices(&acme.token).await.is_empty(),
        "a trial is free"
    );

    // Back to free at the trial's end, then starter again: no second trial.
    let downgrade = app.change_plan(&acme.token, "free").await;
    assert_eq!(downgrade["plan_code"], "starter");
    assert_eq!(downgrade["pending_plan_code"], "free");
    app.run_job("billing.renewals", &rfc3339(trial_end)).await;
    let on_free = app.subscription(&acme.token).await;
    assert_eq!(on_free["plan_code"], "free");
    assert_eq!(on_free["status"], "active");
    assert_eq!(on_free["trial_end"], Value::Null);
    assert!(app.invoices(&acme.token).await.is_empty());

    let again = app.change_plan(&acme.token, "starter").await;
    assert_eq!(again["status"], "active");
    assert_eq!(again["plan_code"], "free", "not until the invoice is paid");
    assert_eq!(again["pending_plan_code"], "starter");
    let invoices = app.invoices(&acme.token).await;
    assert_eq!(invoices.len(), 1);
    assert_eq!(invoices[0]["status"], "open");
    assert_eq!(invoices[0]["plan_code"], "starter");
}

#[tokio::test]
async fn an_upgrade_without_a_trial_issues_an_open_invoice_due_now_and_applies_the_plan_only_when_it_is_paid()
 {
    let app = free_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    app.trial_already_used(&acme.id).await;
    let before = Utc::now();
    let pending = app.change_plan(&acme.token, "starter").await;
    let after = Utc::now();
    assert_eq!(pending["plan_code"], "free");
    assert_eq!(pending["status"], "active");
    assert_eq!(pending["pending_plan_code"], "starter");
    assert_eq!(pending["trial_end"], Value::Null);

    let invoices = app.invoices(&acme.token).await;
    assert_eq!(invoices.len(), 1, "{invoices:?}");
    let invoice = &invoices[0];
    assert_eq!(invoice["number"], "INV-000001");
    assert_eq!(invoice["status"], "open");
    assert_eq!(invoice["currency"], "KES");
    assert_eq!(invoice["total_minor"], 250000);
    assert_eq!(invoice["paid_at"], Value::Null);
    let due = time(invoice, "due_at");
    assert!(before <= due && due <= after, "due now: {due}");
    assert_eq!(time(invoice, "period_start"), due);
    let lines = invoice["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["amount_minor"], 250000);
    assert_eq!(lines[0]["period_start"], invoice["period_start"]);
    assert_eq!(lines[0]["period_end"], invoice["period_end"]);

    // Unpaid, nothing else moves: the renewal run an hour later leaves it pending
    // and the tenant active on free.
    app.run_job("billing.renewals", &rfc3339(due + TimeDelta::hours(1)))
        .await;
    let waiting = app.subscription(&acme.token).await;
    assert_eq!(waiting["plan_code"], "free");
    assert_eq!(waiting["status"], "active");

    let paid_at = rfc3339(due + TimeDelta::hours(2));
    let id = text(invoice, "id");
    assert!(matches!(
        app.pay(&acme.id, &id, "RKT0000001", &paid_at).await,
        rowguard::modules::billing::Payment::Applied(_)
    ));
    let upgraded = app.subscription(&acme.token).await;
    assert_eq!(upgraded["plan_code"], "starter");
    assert_eq!(upgraded["status"], "active");
    assert_eq!(upgraded["pending_plan_code"], Value::Null);
    assert_eq!(upgraded["current_period_start"], invoice["period_start"]);
    assert_eq!(upgraded["current_period_end"], invoice["period_end"]);
    let paid: Value = app
        .billing_invoices_get(&acme.token, &id)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["payment_reference"], "RKT0000001");
    assert_eq!(
        time(&paid, "paid_at"),
        paid_at.parse::<DateTime<Utc>>().unwrap()
    );
}

#[tokio::test]
async fn a_downgrade_applies_at_period_end() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let pending = app.change_plan(&acme.token, "starter").await;
    assert_eq!(pending["plan_code"], "business");
    assert_eq!(pending["pending_plan_code"], "starter");
    assert!(app.invoices(&acme.token).await.is_empty());
    let end = time(&pending, "current_period_end");

    app.run_job("billing.renewals", &rfc3339(end - TimeDelta::hours(1)))
        .await;
    let still = app.subscription(&acme.token).await;
    assert_eq!(still["plan_code"], "business", "not before the period ends");
    assert_eq!(still["pending_plan_code"], "starter");

    app.run_job("billing.renewals", &rfc3339(end)).await;
    let downgraded = app.subscription(&acme.token).await;
    assert_eq!(downgraded["plan_code"], "starter");
    assert_eq!(downgraded["pending_plan_code"], Value::Null);
    let invoices = app.invoices(&acme.token).await;
    assert_eq!(invoices.len(), 1);
    assert_eq!(invoices[0]["plan_code"], "starter");
    assert_eq!(invoices[0]["total_minor"], 250000);
    assert_eq!(time(&invoices[0], "period_start"), end);
}

#[tokio::test]
async fn cancel_moves_to_free_at_period_end() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let response = app.subscriptions_cancel(&acme.token).await;
    assert_eq!(response.status(), 200);
    let canceling: Value = response.json().await.unwrap();
    assert_eq!(canceling["cancel_at_period_end"], true);
    assert_eq!(canceling["plan_code"], "business", "until the period ends");
    assert_eq!(canceling["status"], "active");
    let end = time(&canceling, "current_period_end");

    app.run_job("billing.renewals", &rfc3339(end + TimeDelta::minutes(5)))
        .await;
    let on_free = app.subscription(&acme.token).await;
    assert_eq!(on_free["plan_code"], "free");
    assert_eq!(on_free["status"], "active");
    assert_eq!(on_free["cancel_at_period_end"], false);
    assert_eq!(time(&on_free, "current_period_start"), end);
    assert!(app.invoices(&acme.token).await.is_empty(), "nothing to pay");
}

#[tokio::test]
async fn choosing_the_plan_it_is_on_changes_nothing_or_withdraws_a_cancellation() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let before = app.subscription(&acme.token).await;
    let same = app.change_plan(&acme.token, "business").await;
    assert_eq!(same, before, "nothing changes");

    app.subscriptions_cancel(&acme.token).await;
    let resumed = app.change_plan(&acme.token, "business").await;
    assert_eq!(resumed["cancel_at_period_end"], false);
    assert_eq!(resumed, before);
}

#[tokio::test]
async fn an_unknown_plan_or_a_bad_body_is_refused_with_a_stable_code() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let before = app.subscription(&acme.token).await;
    let unknown = app
        .subscriptions_change(&acme.token, &json!({"plan_code": "platinum"}))
        .await;
    let body = assert_problem(unknown, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "plan_code");
    for bad in [
        json!({}),
        json!({"plan_code": 5}),
        json!({"plan_code": ""}),
        json!([]),
    ] {
        let response = app.subscriptions_change(&acme.token, &bad).await;
        let status = response.status().as_u16();
        assert!(status == 400 || status == 422, "{bad}: {status}");
        assert_problem(
            response,
            status,
            if status == 422 {
                "validation_failed"
            } else {
                "bad_request"
            },
        )
        .await;
    }
    let garbage = app
        .request(reqwest::Method::PUT, "/api/v1/subscriptions/current")
        .bearer(&acme.token)
        .header("Content-Type", "application/json")
        .body("{not json")
        .await;
    assert_eq!(garbage.status(), 400);
    assert_eq!(app.subscription(&acme.token).await, before);
}

#[tokio::test]
async fn staff_may_neither_change_nor_cancel_the_subscription() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (_, staff) = app
        .member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    // The Owner may.
    app.change_plan(&acme.token, "starter").await;
    let before = app.subscription(&acme.token).await;
    let change = app
        .subscriptions_change(&staff, &json!({"plan_code": "free"}))
        .await;
    let body = assert_problem(change, 403, "forbidden").await;
    assert_eq!(body["permission"], "subscriptions.manage");
    let cancel = app.subscriptions_cancel(&staff).await;
    let body = assert_problem(cancel, 403, "forbidden").await;
    assert_eq!(body["permission"], "subscriptions.manage");
    assert_eq!(app.subscription(&acme.token).await, before);
}
