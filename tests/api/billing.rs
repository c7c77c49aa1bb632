//! Billing (docs/api.md, "Subscriptions" and "Billing"): renewals driven as
//! `rowguard jobs run billing.renewals --at T` drives them, invoices and their
//! numbering, payments (`billing::record_payment`, the payment flows' entry), and who
//! may see what.

use chrono::{DateTime, TimeDelta, Utc};
use rowguard::modules::billing::Payment;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_problem, spawn_app, spawn_app_with, text};

fn time(value: &Value, field: &str) -> DateTime<Utc> {
    text(value, field).parse().unwrap()
}

fn at(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339()
}

async fn free_app(grace_days: u32) -> TestApp {
    spawn_app_with(|settings| {
        settings.default_plan = "free".into();
        settings.billing_grace_days = grace_days;
    })
    .await
}

/// The notification kinds the member of `token` got, newest first.
async fn notified(app: &TestApp, token: &str) -> Vec<String> {
    let body: Value = app.notifications_list(token).await.json().await.unwrap();
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| text(n, "kind"))
        .collect()
}

/// Emails of `template` to `to`, queued or sent.
async fn emails(app: &TestApp, to: &str, template: &str) -> Vec<Value> {
    app.db
        .superuser()
        .await
        .query(
            "SELECT payload FROM jobs WHERE kind = 'email.send'
             AND payload->>'to' = $1 AND payload->>'template' = $2 ORDER BY id",
            &[&to, &template],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test]
async fn a_trial_ends_in_an_invoice_then_past_due_then_unpaid_and_payment_makes_it_active() {
    let app = free_app(7).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let store = app.store(&acme.token, "Main").await;
    let trial = app.change_plan(&acme.token, "starter").await;
    let end = time(&trial, "trial_end");
    // The trial's plan gates as the plan: starter has inventory.
    let inventory = || app.inventory_list(&acme.token).in_store(&store);
    assert_eq!(inventory().await.status(), 200);

    // Before the trial ends, nothing.
    app.run_job("billing.renewals", &at(end - TimeDelta::hours(1)))
        .await;
    assert_eq!(app.subscription(&acme.token).await["status"], "trialing");
    assert!(app.invoices(&acme.token).await.is_empty());

    // The trial's end: the first invoice, due at once, and the Owner is told.
    app.run_job("billing.renewals", &at(end)).await;
    let ended = app.subscription(&acme.token).await;
    assert_eq!(ended["status"], "active");
    assert_eq!(ended["plan_code"], "starter");
    assert_eq!(ended["trial_end"], Value::Null);
    let invoices = app.invoices(&acme.token).await;
    assert_eq!(invoices.len(), 1);
    let invoice = &invoices[0];
    assert_eq!(invoice["number"], "INV-000001");
    assert_eq!(invoice["status"], "open");
    assert_eq!(invoice["total_minor"], 250000);
    assert_eq!(time(invoice, "period_start"), end);
    assert_eq!(time(invoice, "due_at"), end);
    let period_end = time(invoice, "period_end");
    assert!((28..=31).contains(&(period_end - end).num_days()));
    assert_eq!(notified(&app, &acme.token).await, ["invoice.issued"]);
    let issued = emails(&app, "owner@acme.example", "invoice_issued").await;
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0]["data"]["number"], "INV-000001");
    assert_eq!(issued[0]["data"]["amount"], "KES 2,500.00");

    // Past its due time: past_due, told once, everything else as it was.
    app.run_job("billing.renewals", &at(end + TimeDelta::hours(1)))
        .await;
    assert_eq!(app.subscription(&acme.token).await["status"], "past_due");
    assert_eq!(
        inventory().await.status(),
        200,
        "the grace period refuses nothing"
    );
    assert_eq!(
        notified(&app, &acme.token).await,
        ["subscription.past_due", "invoice.issued"]
    );
    assert_eq!(
        emails(&app, "owner@acme.example", "subscription_past_due")
            .await
            .len(),
        1
    );

    // The grace period (7 days from the due time), then unpaid.
    app.run_job(
        "billing.renewals",
        &at(end + TimeDelta::days(7) - TimeDelta::minutes(1)),
    )
    .await;
    assert_eq!(app.subscription(&acme.token).await["status"], "past_due");
    app.run_job("billing.renewals", &at(end + TimeDelta::days(7)))
        .await;
    assert_eq!(app.subscription(&acme.token).await["status"], "unpaid");
    assert_eq!(
        app.invoices(&acme.token).await.len(),
        1,
        "no second invoice"
    );
    // Unpaid: what the plan gates waits for payment; billing and the rest answer.
    crate::helpers::assert_problem(inventory().await, 402, "payment_required").await;
    let create = app
        .stores_create(&acme.token, &serde_json::json!({"name": "Second"}))
        .await;
    crate::helpers::assert_problem(create, 402, "payment_required").await;
    assert_eq!(app.stores_list(&acme.token).await.status(), 200);

    // Paid: active, the period it paid for.
    let paid_at = end + TimeDelta::days(8);
    let payment = app
        .pay(&acme.id, &text(invoice, "id"), "RKT0000001", &at(paid_at))
        .await;
    assert!(matches!(payment, Payment::Applied(_)), "{payment:?}");
    let active = app.subscription(&acme.token).await;
    assert_eq!(active["status"], "active");
    assert_eq!(
        inventory().await.status(),
        200,
        "paid, the gate opens again"
    );
    assert_eq!(time(&active, "current_period_start"), end);
    assert_eq!(time(&active, "current_period_end"), period_end);

    // That period's end: the next invoice, numbered next.
    app.run_job("billing.renewals", &at(period_end)).await;
    let invoices = app.invoices(&acme.token).await;
    assert_eq!(invoices.len(), 2);
    assert_eq!(invoices[0]["number"], "INV-000002", "newest first");
    assert_eq!(time(&invoices[0], "period_start"), period_end);
    assert_eq!(invoices[1]["status"], "paid");
}

#[tokio::test]
async fn the_grace_period_is_a_setting() {
    let app = free_app(2).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let end = time(&app.change_plan(&acme.token, "starter").await, "trial_end");
    app.run_job("billing.renewals", &at(end + TimeDelta::hours(1)))
        .await;
    assert_eq!(app.subscription(&acme.token).await["status"], "past_due");
    app.run_job("billing.renewals", &at(end + TimeDelta::days(2)))
        .await;
    assert_eq!(app.subscription(&acme.token).await["status"], "unpaid");
}

#[tokio::test]
async fn a_renewal_run_as_of_a_far_instant_catches_up_on_everything_due_by_then() {
    let app = free_app(7).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let end = time(&app.change_plan(&acme.token, "starter").await, "trial_end");
    app.run_job("billing.renewals", &at(end + TimeDelta::days(30)))
        .await;
    assert_eq!(app.subscription(&acme.token).await["status"], "unpaid");
    assert_eq!(app.invoices(&acme.token).await.len(), 1);
    // A free tenant's periods advance, keeping their anchor.
    let globex = app.tenant("owner@globex.example", "Globex").await;
    let before = app.subscription(&globex.token).await;
    let start = time(&before, "current_period_start");
    app.run_job("billing.renewals", &at(start + TimeDelta::days(100)))
        .await;
    let after = app.subscription(&globex.token).await;
    assert_eq!(after["plan_code"], "free");
    let next_start = time(&after, "current_period_start");
    assert!(next_start > start + TimeDelta::days(80), "{next_start}");
    assert!(time(&after, "current_period_end") > start + TimeDelta::days(100));
    assert_eq!(
        chrono::Timelike::hour(&next_start),
        chrono::Timelike::hour(&start),
        "same time of day"
    );
    assert!(app.invoices(&globex.token).await.is_empty());
}

#[tokio::test]
async fn running_renewals_twice_at_one_instant_issues_one_invoice() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let end = time(&app.subscription(&acme.token).await, "current_period_end");
    let instant = at(end + TimeDelta::minutes(30));
    app.run_job("billing.renewals", &instant).await;
    app.run_job("billing.renewals", &instant).await;
    let invoices = app.invoices(&acme.token).await;
    assert_eq!(invoices.len(), 1, "{invoices:?}");
    assert_eq!(invoices[0]["plan_code"], "business");
    assert_eq!(invoices[0]["total_minor"], 1000000);
    assert_eq!(
        notified(&app, &acme.token).await,
        ["subscription.past_due", "invoice.issued"],
        "each told once"
    );
}

#[tokio::test]
async fn the_rowguard_jobs_run_command_rehearses_renewals_as_of_its_at() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let end = time(&app.subscription(&acme.token).await, "current_period_end");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_rowguard"))
        .args(["jobs", "run", "billing.renewals", "--at", &at(end)])
        .env("DATABASE_URL", &app.db.url)
        .env_remove("ROWGUARD_SMTP_URL")
        .env_remove("ROWGUARD_DEFAULT_PLAN")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let invoices = app.invoices(&acme.token).await;
    assert_eq!(invoices.len(), 1);
    assert_eq!(time(&invoices[0], "period_start"), end);
}

#[tokio::test]
async fn invoice_numbers_are_gapless_per_tenant() {
    let app = free_app(7).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let globex = app.tenant("owner@globex.example", "Globex").await;
    for tenant in [&acme, &globex] {
        app.trial_already_used(&tenant.id).await;
    }
    // Acme changes its mind: the first invoice is voided, and keeps its number.
    app.change_plan(&acme.token, "starter").await;
    app.change_plan(&acme.token, "business").await;
    app.change_plan(&globex.token, "starter").await;
    let acme_invoices = app.invoices(&acme.token).await;
    let numbers: Vec<&str> = acme_invoices
        .iter()
        .map(|i| i["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["INV-000002", "INV-000001"]);
    assert_eq!(acme_invoices[1]["status"], "void");
    assert_eq!(acme_invoices[0]["status"], "open");
    assert_eq!(acme_invoices[0]["total_minor"], 1000000);
    let globex_invoices = app.invoices(&globex.token).await;
    assert_eq!(globex_invoices.len(), 1);
    assert_eq!(globex_invoices[0]["number"], "INV-000001");
}

#[tokio::test]
async fn a_tenant_reads_and_lists_only_its_own_invoices() {
    let app = free_app(7).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let globex = app.tenant("owner@globex.example", "Globex").await;
    let mut ids = Vec::new();
    for tenant in [&acme, &globex] {
        app.trial_already_used(&tenant.id).await;
        app.change_plan(&tenant.token, "starter").await;
        let invoices = app.invoices(&tenant.token).await;
        assert_eq!(invoices.len(), 1);
        ids.push(text(&invoices[0], "id"));
    }
    // Each reads its own...
    let own = app.billing_invoices_get(&acme.token, &ids[0]).await;
    assert_eq!(own.status(), 200);
    let own: Value = own.json().await.unwrap();
    assert_eq!(own["lines"].as_array().unwrap().len(), 1);
    // ...and not the other's, which is indistinguishable from a missing one.
    assert_problem(
        app.billing_invoices_get(&acme.token, &ids[1]).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.billing_invoices_get(&acme.token, uuid::Uuid::new_v4())
            .await,
        404,
        "not_found",
    )
    .await;
    let listed: Vec<String> = app
        .invoices(&acme.token)
        .await
        .iter()
        .map(|i| text(i, "id"))
        .collect();
    assert_eq!(listed, [ids[0].clone()]);
    // A payment names the tenant it is for: another's invoice is not found there.
    let scope = rowguard::platform::db::Scope {
        tenant_id: Some(acme.id.parse().unwrap()),
        ..rowguard::platform::db::Scope::anonymous()
    };
    let tx = app.database.begin_context(&scope).await.unwrap();
    let refused = rowguard::modules::billing::record_payment(
        &tx,
        ids[1].parse().unwrap(),
        "RKT0000009",
        Utc::now(),
    )
    .await;
    tx.rollback().await;
    assert!(
        matches!(refused, Err(rowguard::error::Error::NotFound)),
        "{refused:?}"
    );
}

#[tokio::test]
async fn the_invoice_list_pages_newest_first_and_refuses_a_bad_cursor() {
    let app = free_app(7).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    app.trial_already_used(&acme.id).await;
    for plan in ["starter", "business", "starter"] {
        app.change_plan(&acme.token, plan).await;
    }
    let first: Value = app
        .billing_invoices_list(&acme.token)
        .limit(2)
        .await
        .json()
        .await
        .unwrap();
    let numbers = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| text(i, "number"))
            .collect()
    };
    assert_eq!(numbers(&first), ["INV-000003", "INV-000002"]);
    let second: Value = app
        .billing_invoices_list(&acme.token)
        .limit(2)
        .cursor(&text(&first, "next_cursor"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(numbers(&second), ["INV-000001"]);
    assert_eq!(second["next_cursor"], Value::Null);
    for bad in [
        app.billing_invoices_list(&acme.token).cursor("garbage!"),
        app.billing_invoices_list(&acme.token).limit(0),
        app.billing_invoices_list(&acme.token).limit(101),
    ] {
        assert_problem(bad.await, 400, "bad_request").await;
    }
}

#[tokio::test]
async fn staff_are_refused_the_invoices_naming_billing_view() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (_, staff) = app
        .member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    // The Owner may.
    assert_eq!(app.billing_invoices_list(&acme.token).await.status(), 200);
    for refused in [
        app.billing_invoices_list(&staff).await,
        app.billing_invoices_get(&staff, uuid::Uuid::new_v4()).await,
    ] {
        let body = assert_problem(refused, 403, "forbidden").await;
        assert_eq!(body["permission"], "billing.view");
    }
}

#[tokio::test]
async fn paying_an_invoice_twice_changes_nothing_the_second_time() {
    let app = free_app(7).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    app.trial_already_used(&acme.id).await;
    app.change_plan(&acme.token, "starter").await;
    let invoice = text(&app.invoices(&acme.token).await[0], "id");
    let first = app
        .pay(&acme.id, &invoice, "RKT0000001", "2030-01-01T00:00:00Z")
        .await;
    assert!(matches!(first, Payment::Applied(_)));
    let after_first = app.subscription(&acme.token).await;
    let invoice_after_first: Value = app
        .billing_invoices_get(&acme.token, &invoice)
        .await
        .json()
        .await
        .unwrap();
    let second = app
        .pay(&acme.id, &invoice, "RKT0000002", "2030-02-01T00:00:00Z")
        .await;
    assert!(matches!(second, Payment::AlreadyPaid(_)), "{second:?}");
    assert_eq!(app.subscription(&acme.token).await, after_first);
    let invoice_after_second: Value = app
        .billing_invoices_get(&acme.token, &invoice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(invoice_after_second, invoice_after_first);
    assert_eq!(invoice_after_second["payment_reference"], "RKT0000001");
}

#[tokio::test]
async fn the_platform_admin_puts_a_tenant_on_a_plan_at_once_and_no_one_else_may() {
    let app = free_app(7).await;
    let bootstrap = app
        .auth_bootstrap(&json!({"email": "root@example.com", "password": PASSWORD, "full_name": "Root", "tenant_name": "Platform"}))
        .await;
    assert_eq!(bootstrap.status(), 201);
    let admin = text(&bootstrap.json::<Value>().await.unwrap(), "access_token");
    let acme = app.tenant("owner@acme.example", "Acme").await;
    app.trial_already_used(&acme.id).await;
    app.change_plan(&acme.token, "starter").await;

    // The platform admin: at once, no invoice (the open one is voided).
    let set = app
        .platform_tenants_set_subscription(&admin, &acme.id, &json!({"plan_code": "business"}))
        .await;
    assert_eq!(set.status(), 200);
    let set: Value = set.json().await.unwrap();
    assert_eq!(set["plan_code"], "business");
    assert_eq!(set["status"], "active");
    assert_eq!(set["pending_plan_code"], Value::Null);
    assert_eq!(app.subscription(&acme.token).await, set);
    let invoices = app.invoices(&acme.token).await;
    assert_eq!(invoices.len(), 1);
    assert_eq!(invoices[0]["status"], "void");

    // Unknown tenant, unknown plan, bad body.
    assert_problem(
        app.platform_tenants_set_subscription(
            &admin,
            &uuid::Uuid::new_v4().to_string(),
            &json!({"plan_code": "starter"}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    let unknown = app
        .platform_tenants_set_subscription(&admin, &acme.id, &json!({"plan_code": "platinum"}))
        .await;
    assert_problem(unknown, 422, "validation_failed").await;
    assert_eq!(app.subscription(&acme.token).await, set);

    // A tenant's Owner, even of that tenant: 403.
    let refused = app
        .platform_tenants_set_subscription(&acme.token, &acme.id, &json!({"plan_code": "free"}))
        .await;
    let body = assert_problem(refused, 403, "forbidden").await;
    assert_eq!(body["permission"], "platform_admin");
    assert_eq!(app.subscription(&acme.token).await, set);
}

#[tokio::test]
async fn a_past_due_tenant_pays_before_moving_up_but_may_move_to_free_which_voids_the_invoice() {
    let app = free_app(7).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let end = time(&app.change_plan(&acme.token, "starter").await, "trial_end");
    app.run_job("billing.renewals", &at(end + TimeDelta::hours(1)))
        .await;
    assert_eq!(app.subscription(&acme.token).await["status"], "past_due");

    let refused = app
        .subscriptions_change(&acme.token, &json!({"plan_code": "business"}))
        .await;
    assert_problem(refused, 409, "conflict").await;
    assert_eq!(app.invoices(&acme.token).await.len(), 1);

    let leaving = app.change_plan(&acme.token, "free").await;
    assert_eq!(leaving["pending_plan_code"], "free");
    app.run_job("billing.renewals", &at(end + TimeDelta::hours(2)))
        .await;
    let on_free = app.subscription(&acme.token).await;
    assert_eq!(on_free["plan_code"], "free");
    assert_eq!(on_free["status"], "active");
    let invoices = app.invoices(&acme.token).await;
    assert_eq!(invoices.len(), 1);
    assert_eq!(invoices[0]["status"], "void");
    // A void invoice paid after all changes nothing (the money is the operator's to
    // refund).
    let late = app
        .pay(
            &acme.id,
            &text(&invoices[0], "id"),
            "RKT0000003",
            &at(end + TimeDelta::hours(3)),
        )
        .await;
    assert!(matches!(late, Payment::Void(_)), "{late:?}");
    assert_eq!(app.subscription(&acme.token).await, on_free);
}
