//! Payments by M-Pesa (docs/api.md, "Payments: M-Pesa"), against the fake Daraja
//! (`helpers/fake_daraja.rs`): initiation and its idempotency, the callback's
//! authentication and outcomes, reconciliation, and another tenant's rows.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::helpers::{
    Tenant, TestApp, TestDb, assert_problem,
    fake_daraja::{FakeDaraja, Outcome},
    mpesa_settings, spawn_app_with, spawn_paying_app, text,
};

const PHONE: &str = "0712345678";

/// A tenant with an open invoice of KES 2,500.00 (starter, trial used): the tenant
/// and the invoice's id.
async fn tenant_owing(app: &TestApp, email: &str, name: &str) -> (Tenant, String) {
    let tenant = app.tenant(email, name).await;
    app.trial_already_used(&tenant.id).await;
    app.change_plan(&tenant.token, "starter").await;
    let invoice = text(&app.invoices(&tenant.token).await[0], "id");
    (tenant, invoice)
}

fn success(amount: Value) -> Outcome {
    Outcome::Success {
        amount: Some(amount),
        receipt: "NLJ7RT61SV",
    }
}

async fn accepted(response: reqwest::Response) {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"ResultCode": 0, "ResultDesc": "Accepted"}));
}

async fn invoice(app: &TestApp, token: &str, id: &str) -> Value {
    app.billing_invoices_get(token, id)
        .await
        .json()
        .await
        .unwrap()
}

async fn notified(app: &TestApp, token: &str) -> Vec<String> {
    let body: Value = app.notifications_list(token).await.json().await.unwrap();
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| text(n, "kind"))
        .collect()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.db
        .superuser()
        .await
        .query_one(sql, &[])
        .await
        .unwrap()
        .get(0)
}

fn in_minutes(minutes: i64) -> String {
    (Utc::now() + TimeDelta::minutes(minutes)).to_rfc3339()
}

#[tokio::test]
async fn a_push_goes_out_as_daraja_expects_and_a_successful_callback_pays_the_invoice() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |_| {}).await;
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;

    let payment = app
        .start_payment(&acme.token, &invoice_id, PHONE, "pay-1")
        .await;
    assert_eq!(payment["status"], "pending");
    assert_eq!(payment["invoice_id"], invoice_id.as_str());
    assert_eq!(payment["amount_minor"], 250_000);
    assert_eq!(payment["phone_number"], "254712345678");
    assert_eq!(
        payment["customer_message"],
        "Success. Request accepted for processing"
    );
    let checkout = text(&payment, "checkout_request_id");
    assert!(checkout.starts_with("ws_CO_"), "{checkout}");

    // The fake checked every field and the Password; what it got:
    assert_eq!(fake.complaints(), Vec::<String>::new());
    let pushes = fake.pushes();
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0]["Amount"], 2500, "whole shillings");
    assert_eq!(pushes[0]["PhoneNumber"], "254712345678");
    assert_eq!(pushes[0]["AccountReference"], "INV-000001");
    assert_eq!(
        pushes[0]["CallBackURL"],
        "https://billing.example/api/v1/payments/callbacks/cb-0123456789abcdef0123456789abcdef"
    );

    accepted(
        fake.send_callback(&app, &checkout, &success(json!(2500)))
            .await,
    )
    .await;

    let paid = app.payment(&acme.token, &text(&payment, "id")).await;
    assert_eq!(paid["status"], "succeeded");
    assert_eq!(paid["result_code"], 0);
    assert_eq!(paid["mpesa_receipt_number"], "NLJ7RT61SV");
    assert!(paid["completed_at"].is_string());
    let invoice = invoice(&app, &acme.token, &invoice_id).await;
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["payment_reference"], "NLJ7RT61SV");
    // What it paid for applies: the plan change to starter.
    assert_eq!(app.subscription(&acme.token).await["plan_code"], "starter");
    assert_eq!(notified(&app, &acme.token).await[0], "payment.received");
    assert_eq!(
        count(&app, "SELECT count(*) FROM jobs WHERE kind = 'email.send' AND payload->>'template' = 'payment_received'").await,
        1
    );
    // The raw callback is stored as it arrived.
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM payment_callbacks WHERE payload LIKE '%NLJ7RT61SV%' AND applied"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn each_failure_code_settles_the_payment_with_its_status_and_leaves_the_invoice_open() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |_| {}).await;
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;
    let cases = [
        (
            1,
            "The balance is insufficient for the transaction.",
            "failed",
        ),
        (1032, "Request cancelled by user", "cancelled"),
        (1037, "DS timeout user cannot be reached", "timeout"),
        (2001, "The initiator information is invalid.", "failed"),
    ];
    for (attempt, (code, description, status)) in cases.into_iter().enumerate() {
        // A settled payment no longer blocks the next one (another key).
        let payment = app
            .start_payment(
                &acme.token,
                &invoice_id,
                PHONE,
                &format!("attempt-{attempt}"),
            )
            .await;
        let checkout = text(&payment, "checkout_request_id");
        accepted(
            fake.send_callback(&app, &checkout, &Outcome::Code(code, description))
                .await,
        )
        .await;
        let settled = app.payment(&acme.token, &text(&payment, "id")).await;
        assert_eq!(settled["status"], status, "{code}");
        assert_eq!(settled["result_code"], code);
        assert_eq!(settled["result_desc"], description);
        assert_eq!(settled["mpesa_receipt_number"], Value::Null);
        assert_eq!(
            invoice(&app, &acme.token, &invoice_id).await["status"],
            "open"
        );
        assert_eq!(notified(&app, &acme.token).await[0], "payment.failed");
    }
    assert_eq!(
        count(&app, "SELECT count(*) FROM jobs WHERE kind = 'email.send' AND payload->>'template' = 'payment_failed'").await,
        4
    );
}

#[tokio::test]
async fn an_amount_sent_as_a_string_or_a_decimal_is_read_as_the_amount() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |_| {}).await;
    for (index, amount) in [json!("2500.00"), json!(2500.0)].into_iter().enumerate() {
        let (tenant, invoice_id) = tenant_owing(
            &app,
            &format!("owner{index}@acme.example"),
            &format!("Acme {index}"),
        )
        .await;
        let payment = app
            .start_payment(&tenant.token, &invoice_id, PHONE, "k")
            .await;
        let checkout = text(&payment, "checkout_request_id");
        accepted(
            fake.send_callback(&app, &checkout, &success(amount.clone()))
                .await,
        )
        .await;
        let settled = app.payment(&tenant.token, &text(&payment, "id")).await;
        assert_eq!(settled["status"], "succeeded", "{amount}");
    }
}

#[tokio::test]
async fn a_success_for_another_amount_or_none_is_not_a_success() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |_| {}).await;
    let amounts = [Some(json!(1)), None, Some(json!("lots"))];
    for (index, amount) in amounts.into_iter().enumerate() {
        let (tenant, invoice_id) = tenant_owing(
            &app,
            &format!("owner{index}@acme.example"),
            &format!("Acme {index}"),
        )
        .await;
        let payment = app
            .start_payment(&tenant.token, &invoice_id, PHONE, "k")
            .await;
        let checkout = text(&payment, "checkout_request_id");
        let outcome = Outcome::Success {
            amount: amount.clone(),
            receipt: "NLJ7RT61SV",
        };
        accepted(fake.send_callback(&app, &checkout, &outcome).await).await;
        let settled = app.payment(&tenant.token, &text(&payment, "id")).await;
        assert_eq!(settled["status"], "failed", "{amount:?}");
        assert!(
            text(&settled, "result_desc").contains("not the amount asked"),
            "{settled}"
        );
        assert_eq!(settled["mpesa_receipt_number"], Value::Null);
        assert_eq!(
            invoice(&app, &tenant.token, &invoice_id).await["status"],
            "open"
        );
        assert_eq!(app.subscription(&tenant.token).await["plan_code"], "free");
    }
}

#[tokio::test]
async fn the_first_terminal_result_wins_and_repeats_change_nothing() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |_| {}).await;
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;

    // A success, repeated, then a late failure: one success, paid once.
    let payment = app
        .start_payment(&acme.token, &invoice_id, PHONE, "k1")
        .await;
    let checkout = text(&payment, "checkout_request_id");
    accepted(
        fake.send_callback(&app, &checkout, &success(json!(2500)))
            .await,
    )
    .await;
    let after_success = app.payment(&acme.token, &text(&payment, "id")).await;
    let subscription = app.subscription(&acme.token).await;
    accepted(
        fake.send_callback(&app, &checkout, &success(json!(2500)))
            .await,
    )
    .await;
    accepted(
        fake.send_callback(&app, &checkout, &Outcome::Code(2001, "wrong PIN"))
            .await,
    )
    .await;
    assert_eq!(
        app.payment(&acme.token, &text(&payment, "id")).await,
        after_success
    );
    assert_eq!(app.subscription(&acme.token).await, subscription);
    assert_eq!(
        count(&app, "SELECT count(*) FROM payment_callbacks WHERE payment_id IN (SELECT id FROM payments WHERE idempotency_key = 'k1')").await,
        3,
        "every callback stored"
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM payment_callbacks WHERE applied AND payment_id IN (SELECT id FROM payments WHERE idempotency_key = 'k1')").await,
        1
    );
    let received = notified(&app, &acme.token).await;
    assert_eq!(
        received.iter().filter(|k| *k == "payment.received").count(),
        1
    );
    assert!(!received.contains(&"payment.failed".to_string()));

    // Out of order the other way: a cancellation first, then a success for it: stays
    // cancelled, and the invoice stays as it was.
    let (globex, globex_invoice) = tenant_owing(&app, "owner@globex.example", "Globex").await;
    let payment = app
        .start_payment(&globex.token, &globex_invoice, PHONE, "k1")
        .await;
    let checkout = text(&payment, "checkout_request_id");
    accepted(
        fake.send_callback(
            &app,
            &checkout,
            &Outcome::Code(1032, "Request cancelled by user"),
        )
        .await,
    )
    .await;
    accepted(
        fake.send_callback(&app, &checkout, &success(json!(2500)))
            .await,
    )
    .await;
    assert_eq!(
        app.payment(&globex.token, &text(&payment, "id")).await["status"],
        "cancelled"
    );
    assert_eq!(
        invoice(&app, &globex.token, &globex_invoice).await["status"],
        "open"
    );
}

#[tokio::test]
async fn a_callback_naming_no_payment_of_ours_is_accepted_recorded_and_ignored() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |_| {}).await;
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;
    let payment = app
        .start_payment(&acme.token, &invoice_id, PHONE, "k")
        .await;
    let checkout = text(&payment, "checkout_request_id");

    // The push's own URL, another CheckoutRequestID; then bodies Daraja never sends.
    let unknown = FakeDaraja::callback_body("ws_CO_000000000000000000", &success(json!(2500)));
    accepted(
        fake.post_raw(&app, &checkout, serde_json::to_vec(&unknown).unwrap())
            .await,
    )
    .await;
    accepted(
        fake.post_raw(&app, &checkout, b"not json at all".to_vec())
            .await,
    )
    .await;
    accepted(
        fake.post_raw(&app, &checkout, b"{\"Body\": 3}".to_vec())
            .await,
    )
    .await;

    assert_eq!(
        count(&app, "SELECT count(*) FROM payment_callbacks_unknown").await,
        3
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM payment_callbacks_unknown WHERE checkout_request_id = 'ws_CO_000000000000000000'").await,
        1
    );
    assert_eq!(
        app.payment(&acme.token, &text(&payment, "id")).await["status"],
        "pending"
    );
    assert_eq!(
        invoice(&app, &acme.token, &invoice_id).await["status"],
        "open"
    );
}

#[tokio::test]
async fn the_callback_with_its_token_is_accepted_and_with_another_token_is_a_404() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |_| {}).await;
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;
    let payment = app
        .start_payment(&acme.token, &invoice_id, PHONE, "k")
        .await;
    let checkout = text(&payment, "checkout_request_id");
    let body = FakeDaraja::callback_body(&checkout, &success(json!(2500)));

    // The legitimate path first.
    let url = |token: &str| format!("http://{}/api/v1/payments/callbacks/{token}", app.address);
    for token in [
        "cb-0123456789abcdef0123456789abcdeX",
        "x",
        "cb-0123456789abcdef0123456789abcdef0",
    ] {
        let response = app.http.post(url(token)).json(&body).send().await.unwrap();
        assert_problem(response, 404, "not_found").await;
    }
    assert_eq!(
        app.payment(&acme.token, &text(&payment, "id")).await["status"],
        "pending"
    );
    accepted(
        fake.send_callback(&app, &checkout, &success(json!(2500)))
            .await,
    )
    .await;
    assert_eq!(
        app.payment(&acme.token, &text(&payment, "id")).await["status"],
        "succeeded"
    );
}

#[tokio::test]
async fn a_callback_from_outside_the_allow_list_is_a_403_and_forwarded_addresses_count_only_from_trusted_proxies()
 {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |settings| {
        settings.mpesa_callback_allow = "196.201.214.200/32".parse().unwrap();
        settings.trusted_proxies = "127.0.0.1/32".parse().unwrap();
    })
    .await;
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;
    let payment = app
        .start_payment(&acme.token, &invoice_id, PHONE, "k")
        .await;
    let checkout = text(&payment, "checkout_request_id");
    let body = FakeDaraja::callback_body(&checkout, &success(json!(2500)));
    let url = format!(
        "http://{}/api/v1/payments/callbacks/cb-0123456789abcdef0123456789abcdef",
        app.address
    );
    let post = |forwarded: Option<&'static str>| {
        let mut request = app.http.post(&url).json(&body);
        if let Some(address) = forwarded {
            request = request.header("x-forwarded-for", address);
        }
        request.send()
    };

    // Outside: the proxy itself, another address, a spoofed left-most entry.
    for forwarded in [
        None,
        Some("203.0.113.9"),
        Some("196.201.214.200, 203.0.113.9"),
    ] {
        assert_problem(post(forwarded).await.unwrap(), 403, "forbidden").await;
    }
    assert_eq!(
        app.payment(&acme.token, &text(&payment, "id")).await["status"],
        "pending"
    );
    // Safaricom's address, forwarded by the trusted proxy.
    accepted(post(Some("196.201.214.200")).await.unwrap()).await;
    assert_eq!(
        app.payment(&acme.token, &text(&payment, "id")).await["status"],
        "succeeded"
    );
}

#[tokio::test]
async fn a_callback_is_answered_within_its_budget_while_its_settlement_waits_and_is_settled_after()
{
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |settings| {
        settings.mpesa_callback_answer_ms = 100;
    })
    .await;
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;
    // The legitimate path first: a callback whose settlement nothing holds up.
    let first = app
        .start_payment(&acme.token, &invoice_id, PHONE, "k")
        .await;
    let first_checkout = text(&first, "checkout_request_id");
    let cancelled = Outcome::Code(1032, "Request cancelled by user");
    accepted(fake.send_callback(&app, &first_checkout, &cancelled).await).await;
    settled(&app, &acme.token, &text(&first, "id")).await;
    assert_eq!(
        app.payment(&acme.token, &text(&first, "id")).await["status"],
        "cancelled"
    );

    // Another attempt, whose settlement must wait: its payment row is locked by
    // another transaction until after the answer has arrived.
    let payment = app
        .start_payment(&acme.token, &invoice_id, PHONE, "k2")
        .await;
    let id = text(&payment, "id");
    let holder = callback_while_locked(&app, &fake, &payment).await;
    // Answered while the settlement cannot have happened: the row is still locked.
    assert_eq!(app.payment(&acme.token, &id).await["status"], "pending");
    holder.batch_execute("COMMIT").await.unwrap();

    // The settlement went on after the answer.
    settled(&app, &acme.token, &id).await;
    assert_eq!(app.payment(&acme.token, &id).await["status"], "succeeded");
    assert_eq!(
        invoice(&app, &acme.token, &invoice_id).await["status"],
        "paid"
    );
}

/// Posts the success callback of `payment` while another connection holds the
/// payment's row locked, so that its settlement must wait, and checks it was answered
/// 200 all the same; returns that connection, whose COMMIT lets the settlement go on.
async fn callback_while_locked(
    app: &TestApp,
    fake: &FakeDaraja,
    payment: &Value,
) -> tokio_postgres::Client {
    let holder = app.db.superuser().await;
    // The id is a uuid the server made: safe in the text.
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM payments WHERE id = '{}' FOR UPDATE",
            text(payment, "id")
        ))
        .await
        .unwrap();
    let answer = fake
        .send_callback(
            app,
            &text(payment, "checkout_request_id"),
            &success(json!(2500)),
        )
        .await;
    assert_eq!(answer.status(), 200);
    holder
}

/// Waits (up to 20 s) until the payment is no longer pending.
async fn settled(app: &TestApp, token: &str, id: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while app.payment(token, id).await["status"] == "pending" {
        assert!(
            std::time::Instant::now() < deadline,
            "the callback was never settled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_shutdown_waits_for_a_callback_answered_before_it_was_settled() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |settings| {
        settings.mpesa_callback_answer_ms = 100;
    })
    .await;
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;
    let payment = app
        .start_payment(&acme.token, &invoice_id, PHONE, "k")
        .await;
    let id = text(&payment, "id");
    let holder = callback_while_locked(&app, &fake, &payment).await;

    // SIGTERM while the settlement waits: the server stops taking requests at once,
    // and does not exit before the settlement is done.
    // The database outlives the server here (the test drops it at its end).
    let mut app = app;
    let detached = TestDb::detached(app.db.url.clone());
    let db = std::mem::replace(&mut app.db, detached);
    let stopping = tokio::spawn(app.stop());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !stopping.is_finished(),
        "the server exited with a settlement pending"
    );
    holder.batch_execute("COMMIT").await.unwrap();
    stopping.await.unwrap().unwrap();

    let status: String = db
        .superuser()
        .await
        .query_one(
            "SELECT status FROM payments WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "succeeded");
}

#[tokio::test]
async fn without_a_trusted_proxy_a_forwarded_address_is_not_believed() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |settings| {
        settings.mpesa_callback_allow = "196.201.214.200/32".parse().unwrap();
    })
    .await;
    let url = format!(
        "http://{}/api/v1/payments/callbacks/cb-0123456789abcdef0123456789abcdef",
        app.address
    );
    let response = app
        .http
        .post(&url)
        .header("x-forwarded-for", "196.201.214.200")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_problem(response, 403, "forbidden").await;
}

#[tokio::test]
async fn the_default_allow_list_is_safaricoms_published_addresses() {
    let settings = rowguard::config::Settings::defaults();
    for address in ["196.201.214.200", "196.201.213.114", "196.201.212.69"] {
        assert!(
            settings
                .mpesa_callback_allow
                .contains(address.parse().unwrap()),
            "{address}"
        );
    }
    assert!(
        !settings
            .mpesa_callback_allow
            .contains("127.0.0.1".parse().unwrap())
    );
}

#[tokio::test]
async fn a_lost_callback_is_recovered_by_reconciliation_after_two_minutes() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |_| {}).await;
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;
    let payment = app
        .start_payment(&acme.token, &invoice_id, PHONE, "k")
        .await;
    let id = text(&payment, "id");
    let checkout = text(&payment, "checkout_request_id");

    // Within two minutes: nobody asks.
    app.run_job("payments.reconcile", &in_minutes(1)).await;
    assert!(fake.queries().is_empty());
    // Past them, Daraja says it is still being processed: it stays pending.
    app.run_job("payments.reconcile", &in_minutes(3)).await;
    assert_eq!(fake.queries(), vec![checkout.clone()]);
    assert_eq!(app.payment(&acme.token, &id).await["status"], "pending");
    // Then it answers success: settled as a callback would, the invoice paid.
    fake.script_query(&checkout, success(json!(2500)));
    app.run_job("payments.reconcile", &in_minutes(4)).await;
    let settled = app.payment(&acme.token, &id).await;
    assert_eq!(settled["status"], "succeeded");
    assert_eq!(
        invoice(&app, &acme.token, &invoice_id).await["status"],
        "paid"
    );
    assert_eq!(app.subscription(&acme.token).await["plan_code"], "starter");
    assert_eq!(fake.complaints(), Vec::<String>::new());

    // A query answering a cancellation settles another one as cancelled.
    let (globex, globex_invoice) = tenant_owing(&app, "owner@globex.example", "Globex").await;
    let payment = app
        .start_payment(&globex.token, &globex_invoice, PHONE, "k")
        .await;
    fake.script_query(
        &text(&payment, "checkout_request_id"),
        Outcome::Code(1032, "Request cancelled by user"),
    );
    app.run_job("payments.reconcile", &in_minutes(5)).await;
    assert_eq!(
        app.payment(&globex.token, &text(&payment, "id")).await["status"],
        "cancelled"
    );
}

#[tokio::test]
async fn a_query_saying_failure_never_overwrites_a_recorded_success() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |_| {}).await;
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;
    let payment = app
        .start_payment(&acme.token, &invoice_id, PHONE, "k")
        .await;
    let id = text(&payment, "id");
    let checkout = text(&payment, "checkout_request_id");
    accepted(
        fake.send_callback(&app, &checkout, &success(json!(2500)))
            .await,
    )
    .await;
    let recorded = app.payment(&acme.token, &id).await;

    // The sandbox has answered failure for payments that succeeded.
    fake.script_query(&checkout, Outcome::Code(1032, "Request cancelled by user"));
    app.run_job("payments.reconcile", &in_minutes(10)).await;
    assert_eq!(app.payment(&acme.token, &id).await, recorded);
    assert!(
        fake.queries().is_empty(),
        "a settled payment is not asked about"
    );
    assert_eq!(
        invoice(&app, &acme.token, &invoice_id).await["status"],
        "paid"
    );
}

#[tokio::test]
async fn the_same_key_replays_the_payment_without_a_push_and_another_body_is_a_conflict() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |_| {}).await;
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;
    let first = app
        .start_payment(&acme.token, &invoice_id, PHONE, "key-1")
        .await;
    // The same request in another spelling of the number is the same request.
    let again = app
        .start_payment(&acme.token, &invoice_id, "+254712345678", "key-1")
        .await;
    assert_eq!(again, first);
    assert_eq!(fake.pushes().len(), 1);

    let other = app
        .payments_mpesa_initiate(
            &acme.token,
            Some("key-1"),
            &json!({"invoice_id": invoice_id, "phone_number": "0799999999"}),
        )
        .await;
    assert_problem(other, 422, "idempotency_conflict").await;
    assert_eq!(fake.pushes().len(), 1);
    // The OAuth token was fetched once and reused.
    assert_eq!(fake.oauth_calls(), 1);
}

#[tokio::test]
async fn the_idempotency_key_is_required_and_at_most_255_characters() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |_| {}).await;
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;
    let body = json!({"invoice_id": invoice_id, "phone_number": PHONE});
    for key in [None, Some(""), Some(&*"k".repeat(256))] {
        let response = app.payments_mpesa_initiate(&acme.token, key, &body).await;
        assert_problem(response, 400, "bad_request").await;
    }
    assert!(fake.pushes().is_empty());
    app.start_payment(&acme.token, &invoice_id, PHONE, &"k".repeat(255))
        .await;
}

#[tokio::test]
async fn two_concurrent_requests_with_one_key_make_one_push() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |_| {}).await;
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;
    let (a, b) = tokio::join!(
        app.start_payment(&acme.token, &invoice_id, PHONE, "same"),
        app.start_payment(&acme.token, &invoice_id, PHONE, "same"),
    );
    assert_eq!(a, b);
    assert_eq!(fake.pushes().len(), 1);
}

#[tokio::test]
async fn a_second_key_while_a_payment_is_pending_is_a_409() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |_| {}).await;
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;
    app.start_payment(&acme.token, &invoice_id, PHONE, "first")
        .await;
    let second = app
        .payments_mpesa_initiate(
            &acme.token,
            Some("second"),
            &json!({"invoice_id": invoice_id, "phone_number": PHONE}),
        )
        .await;
    assert_problem(second, 409, "conflict").await;
    assert_eq!(fake.pushes().len(), 1, "no second prompt on the phone");
}

#[tokio::test]
async fn daraja_refusing_or_down_is_a_502_and_leaves_nothing_pending() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |_| {}).await;
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;
    let body = json!({"invoice_id": invoice_id, "phone_number": PHONE});
    fake.refuse_pushes(true);
    let refused = app
        .payments_mpesa_initiate(&acme.token, Some("k"), &body)
        .await;
    assert_problem(refused, 502, "payment_gateway_error").await;
    let history: Value = app.billing_history(&acme.token).await.json().await.unwrap();
    assert_eq!(history["items"], json!([]));
    // The same key, once Daraja accepts: a push now.
    fake.refuse_pushes(false);
    let paid = app
        .start_payment(&acme.token, &invoice_id, PHONE, "k")
        .await;
    assert_eq!(paid["status"], "pending");

    // Down: nothing listens at its address.
    let down = spawn_app_with(|settings| {
        settings.default_plan = "free".into();
        mpesa_settings(settings, &FakeDaraja::unreachable_url());
    })
    .await;
    let (globex, globex_invoice) = tenant_owing(&down, "owner@globex.example", "Globex").await;
    let response = down
        .payments_mpesa_initiate(
            &globex.token,
            Some("k"),
            &json!({"invoice_id": globex_invoice, "phone_number": PHONE}),
        )
        .await;
    assert_problem(response, 502, "payment_gateway_error").await;
    assert_eq!(count(&down, "SELECT count(*) FROM payments").await, 0);
}

#[tokio::test]
async fn without_mpesa_settings_initiating_is_a_503_and_the_callback_a_404() {
    let app = spawn_app_with(|settings| settings.default_plan = "free".into()).await;
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;
    let response = app
        .payments_mpesa_initiate(
            &acme.token,
            Some("k"),
            &json!({"invoice_id": invoice_id, "phone_number": PHONE}),
        )
        .await;
    assert_problem(response, 503, "payment_gateway_error").await;
    let callback = app
        .http
        .post(format!(
            "http://{}/api/v1/payments/callbacks/anything",
            app.address
        ))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_problem(callback, 404, "not_found").await;
}

#[tokio::test]
async fn phone_numbers_are_normalised_and_others_refused() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |_| {}).await;
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;
    for bad in ["0812345678", "12345", "+255712345678", ""] {
        let response = app
            .payments_mpesa_initiate(
                &acme.token,
                Some("k"),
                &json!({"invoice_id": invoice_id, "phone_number": bad}),
            )
            .await;
        let body = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(body["errors"][0]["field"], "phone_number");
    }
    let payment = app
        .start_payment(&acme.token, &invoice_id, "0112345678", "ok")
        .await;
    assert_eq!(payment["phone_number"], "254112345678");
}

#[tokio::test]
async fn an_invoice_that_is_not_open_is_a_409() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |_| {}).await;
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;
    app.pay(
        &acme.id,
        &invoice_id,
        "RKT0000001",
        &Utc::now().to_rfc3339(),
    )
    .await;
    let response = app
        .payments_mpesa_initiate(
            &acme.token,
            Some("k"),
            &json!({"invoice_id": invoice_id, "phone_number": PHONE}),
        )
        .await;
    assert_problem(response, 409, "conflict").await;
    assert!(fake.pushes().is_empty());
}

#[tokio::test]
async fn another_tenants_invoice_or_payment_is_a_404() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |_| {}).await;
    let (acme, acme_invoice) = tenant_owing(&app, "owner@acme.example", "Acme").await;
    let (globex, _) = tenant_owing(&app, "owner@globex.example", "Globex").await;
    // Acme pays its own; Globex cannot see that payment, nor pay Acme's invoice.
    let payment = app
        .start_payment(&acme.token, &acme_invoice, PHONE, "k")
        .await;
    assert_eq!(
        app.payment(&acme.token, &text(&payment, "id")).await,
        payment
    );
    let theirs = app.payments_get(&globex.token, text(&payment, "id")).await;
    assert_problem(theirs, 404, "not_found").await;
    let foreign = app
        .payments_mpesa_initiate(
            &globex.token,
            Some("k2"),
            &json!({"invoice_id": acme_invoice, "phone_number": PHONE}),
        )
        .await;
    assert_problem(foreign, 404, "not_found").await;
    let history: Value = app
        .billing_history(&globex.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history["items"], json!([]));
    assert_eq!(fake.pushes().len(), 1);
}

#[tokio::test]
async fn the_history_lists_the_tenants_attempts_newest_first() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |_| {}).await;
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;
    let first = app
        .start_payment(&acme.token, &invoice_id, PHONE, "1")
        .await;
    fake.send_callback(
        &app,
        &text(&first, "checkout_request_id"),
        &Outcome::Code(1032, "Request cancelled by user"),
    )
    .await;
    let second = app
        .start_payment(&acme.token, &invoice_id, PHONE, "2")
        .await;
    let history: Value = app
        .billing_history(&acme.token)
        .limit(1)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history["items"][0]["id"], second["id"]);
    let cursor = text(&history, "next_cursor");
    let rest: Value = app
        .billing_history(&acme.token)
        .limit(1)
        .query("cursor", &cursor)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"][0]["id"], first["id"]);
    assert_eq!(rest["items"][0]["status"], "cancelled");
}

#[tokio::test]
async fn a_trial_ends_in_an_invoice_that_paid_by_mpesa_makes_the_subscription_active_again() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |settings| settings.billing_grace_days = 7).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let trial = app.change_plan(&acme.token, "starter").await;
    let end: DateTime<Utc> = text(&trial, "trial_end").parse().unwrap();
    // The trial ends: an invoice; unpaid past its grace, the subscription is unpaid.
    app.run_job("billing.renewals", &end.to_rfc3339()).await;
    app.run_job("billing.renewals", &(end + TimeDelta::days(8)).to_rfc3339())
        .await;
    assert_eq!(app.subscription(&acme.token).await["status"], "unpaid");
    let invoices = app.invoices(&acme.token).await;
    assert_eq!(invoices.len(), 1);
    let invoice_id = text(&invoices[0], "id");

    // Paying is not gated: the owner pays from the phone.
    let payment = app
        .start_payment(&acme.token, &invoice_id, PHONE, "renewal")
        .await;
    let checkout = text(&payment, "checkout_request_id");
    accepted(
        fake.send_callback(&app, &checkout, &success(json!("2500.00")))
            .await,
    )
    .await;
    let subscription = app.subscription(&acme.token).await;
    assert_eq!(subscription["status"], "active");
    assert_eq!(subscription["plan_code"], "starter");
    assert_eq!(
        invoice(&app, &acme.token, &invoice_id).await["status"],
        "paid"
    );
    assert_eq!(fake.complaints(), Vec::<String>::new());
}

#[tokio::test]
async fn the_fakes_payer_pays_each_push_by_itself_as_the_manual_check_relies_on() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |_| {}).await;
    fake.autopay(std::time::Duration::from_millis(50), Some(app.address));
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;
    let payment = app
        .start_payment(&acme.token, &invoice_id, PHONE, "k")
        .await;
    let id = text(&payment, "id");
    let mut status = Value::Null;
    for _ in 0..100 {
        status = app.payment(&acme.token, &id).await["status"].clone();
        if status != "pending" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, "succeeded");
    assert_eq!(
        invoice(&app, &acme.token, &invoice_id).await["status"],
        "paid"
    );
}

/// Polls the invoice until it is no longer open (or about five seconds pass).
async fn settled_invoice(app: &TestApp, token: &str, id: &str) -> Value {
    let mut shown = Value::Null;
    for _ in 0..100 {
        shown = invoice(app, token, id).await;
        if shown["status"] != "open" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    shown
}

#[tokio::test]
async fn a_push_daraja_never_answered_is_still_paid_when_its_prompt_is() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |settings| settings.mpesa_timeout_ms = 300).await;
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;
    // Daraja takes the push (the prompt goes to the phone) but its answer comes too
    // late; the payer types the PIN a second later.
    fake.answer_pushes_after(std::time::Duration::from_secs(2));
    fake.autopay(std::time::Duration::from_millis(700), Some(app.address));
    let body = json!({"invoice_id": invoice_id, "phone_number": PHONE});
    let unanswered = app
        .payments_mpesa_initiate(&acme.token, Some("k"), &body)
        .await;
    let problem = assert_problem(unanswered, 502, "payment_gateway_error").await;
    assert!(
        text(&problem, "detail").contains("did not answer in time"),
        "{problem}"
    );
    assert_eq!(fake.pushes().len(), 1, "the push did reach Daraja");

    let paid = settled_invoice(&app, &acme.token, &invoice_id).await;
    assert_eq!(paid["status"], "paid", "{paid}");
    let history: Value = app.billing_history(&acme.token).await.json().await.unwrap();
    let payments = history["items"].as_array().unwrap();
    assert_eq!(payments.len(), 1, "{history}");
    assert_eq!(payments[0]["status"], "succeeded");
    assert_eq!(
        payments[0]["checkout_request_id"],
        fake.pushes_and_ids()[0].1.as_str()
    );
    // The key's retry answers that payment and sends nothing.
    let replay = app
        .start_payment(&acme.token, &invoice_id, PHONE, "k")
        .await;
    assert_eq!(replay["id"], payments[0]["id"]);
    assert_eq!(fake.pushes().len(), 1);
    assert_eq!(
        count(&app, "SELECT count(*) FROM payment_callbacks_unknown").await,
        0
    );
}

#[tokio::test]
async fn after_an_unanswered_push_the_invoice_takes_no_other_push_while_its_prompt_may_be_paid() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |settings| settings.mpesa_timeout_ms = 300).await;
    let (acme, invoice_id) = tenant_owing(&app, "owner@acme.example", "Acme").await;
    let body = json!({"invoice_id": invoice_id, "phone_number": PHONE});
    fake.answer_pushes_after(std::time::Duration::from_secs(2));
    let first = app
        .payments_mpesa_initiate(&acme.token, Some("first"), &body)
        .await;
    assert_problem(first, 502, "payment_gateway_error").await;

    // Daraja answers at once again, but the first prompt may still be paid: a second
    // push could charge the payer twice.
    fake.answer_pushes_after(std::time::Duration::ZERO);
    for key in ["first", "second"] {
        let again = app
            .payments_mpesa_initiate(&acme.token, Some(key), &body)
            .await;
        let problem = assert_problem(again, 409, "conflict").await;
        assert!(
            text(&problem, "detail").contains("try again after"),
            "{problem}"
        );
    }
    // The first key with another body is a conflict of the key, as ever.
    let other = app
        .payments_mpesa_initiate(
            &acme.token,
            Some("first"),
            &json!({"invoice_id": invoice_id, "phone_number": "0798765432"}),
        )
        .await;
    assert_problem(other, 422, "idempotency_conflict").await;
    assert_eq!(fake.pushes().len(), 1, "no second prompt on the phone");
    assert_eq!(count(&app, "SELECT count(*) FROM payments").await, 0);
}

#[tokio::test]
async fn a_success_that_fits_unanswered_pushes_of_two_tenants_pays_neither() {
    let fake = FakeDaraja::start().await;
    let app = spawn_paying_app(&fake, |settings| settings.mpesa_timeout_ms = 300).await;
    fake.answer_pushes_after(std::time::Duration::from_secs(1));
    let mut owing = Vec::new();
    for (email, name) in [
        ("owner@acme.example", "Acme"),
        ("owner@globex.example", "Globex"),
    ] {
        let (tenant, invoice_id) = tenant_owing(&app, email, name).await;
        let body = json!({"invoice_id": invoice_id, "phone_number": PHONE});
        let response = app
            .payments_mpesa_initiate(&tenant.token, Some("k"), &body)
            .await;
        assert_problem(response, 502, "payment_gateway_error").await;
        owing.push((tenant, invoice_id));
    }
    // Same amount, same number: the callback cannot say whose prompt was paid.
    let (_, checkout) = fake.pushes_and_ids()[0].clone();
    let mut callback = FakeDaraja::callback_body(&checkout, &success(json!(2500)));
    callback["Body"]["stkCallback"]["CallbackMetadata"]["Item"][4]["Value"] =
        json!(254712345678u64);
    accepted(
        fake.post_raw(&app, &checkout, serde_json::to_vec(&callback).unwrap())
            .await,
    )
    .await;
    for (tenant, invoice_id) in &owing {
        assert_eq!(
            invoice(&app, &tenant.token, invoice_id).await["status"],
            "open"
        );
    }
    assert_eq!(count(&app, "SELECT count(*) FROM payments").await, 0);
    assert_eq!(
        count(&app, "SELECT count(*) FROM payment_callbacks_unknown").await,
        1,
        "recorded for the operator"
    );
}
