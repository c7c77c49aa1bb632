//! The callback benchmark (README, "Payments: M-Pesa"; `bench/callbacks.sh`): ignored
//! by the suite. Many tenants each with a pending payment (made in SQL: what is
//! measured is the callback, not initiation), then callbacks posted 200 at a time:
//! first one success per payment (distinct), then each again (duplicates). It prints
//! callbacks per second and the p99 of the answer for each, and checks by counting
//! rows that nothing was lost or applied twice.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{fake_daraja::FakeDaraja, spawn_paying_app};

const PAYMENTS: usize = 2_000;
const CONCURRENCY: usize = 200;

async fn post_all(app: &crate::helpers::TestApp, bodies: Vec<Vec<u8>>) -> (f64, Duration) {
    let url = format!(
        "http://{}/api/v1/payments/callbacks/{}",
        app.address,
        crate::helpers::fake_daraja::CALLBACK_TOKEN
    );
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(bodies.len());
    let queue = std::sync::Arc::new(tokio::sync::Mutex::new(bodies.into_iter()));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let queue = queue.clone();
        let http = app.http.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let Some(body) = queue.lock().await.next() else {
                    break;
                };
                let sent = Instant::now();
                let response = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                response.bytes().await.unwrap();
                mine.push(sent.elapsed());
            }
            mine
        }));
    }
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    (latencies.len() as f64 / elapsed.as_secs_f64(), p99)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: bench/callbacks.sh runs it"]
async fn bench_callbacks_distinct_and_duplicate() {
    let fake = FakeDaraja::start().await;
    // Production's answer budget (the harness waits for every settlement instead).
    let app = spawn_paying_app(&fake, |settings| {
        settings.pool_size = 8;
        settings.mpesa_callback_answer_ms =
            rowguard::config::Settings::defaults().mpesa_callback_answer_ms;
    })
    .await;
    let superuser = app.db.superuser().await;
    superuser
        .batch_execute(&format!(
            "INSERT INTO tenants (id, name)
               SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 'Bench ' || i
               FROM generate_series(1, {PAYMENTS}) AS i;
             INSERT INTO subscriptions (tenant_id, plan_code, anchor_at, current_period_start, current_period_end)
               SELECT id, 'free', now(), now(), now() + interval '1 month' FROM tenants WHERE name LIKE 'Bench %';
             INSERT INTO invoice_counters (tenant_id, last_number)
               SELECT id, 1 FROM tenants WHERE name LIKE 'Bench %';
             INSERT INTO invoices (tenant_id, seq, number, purpose, plan_code, currency, total_minor,
                                   period_start, period_end, due_at)
               SELECT id, 1, 'INV-000001', 'plan_change', 'starter', 'KES', 250000, now(),
                      now() + interval '1 month', now() FROM tenants WHERE name LIKE 'Bench %';
             INSERT INTO payments (tenant_id, invoice_id, idempotency_key, request_hash, amount_minor,
                                   currency, phone_number, merchant_request_id, checkout_request_id,
                                   customer_message)
               SELECT i.tenant_id, i.id, 'k', sha256('k'), 250000, 'KES', '254712345678', 'mr',
                      'ws_CO_bench_' || i.tenant_id, 'ok'
               FROM invoices AS i JOIN tenants AS t ON t.id = i.tenant_id WHERE t.name LIKE 'Bench %';"
        ))
        .await
        .unwrap();
    let ids: Vec<String> = superuser
        .query("SELECT checkout_request_id FROM payments WHERE checkout_request_id LIKE 'ws_CO_bench_%'", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let bodies = || {
        ids.iter()
            .map(|id| {
                let outcome = crate::helpers::fake_daraja::Outcome::Success {
                    amount: Some(json!(2500)),
                    receipt: "NLJ7RT61SV",
                };
                serde_json::to_vec(&FakeDaraja::callback_body(id, &outcome)).unwrap()
            })
            .collect::<Vec<_>>()
    };
    // Answered is not yet handled: a burst is answered within the budget and settled
    // behind it. Handled per second counts until the last callback is stored.
    let stored = |expected: i64| {
        let superuser = &superuser;
        async move {
            let deadline = Instant::now() + Duration::from_secs(300);
            loop {
                let n: i64 = superuser
                    .query_one(
                        "SELECT count(*) FROM payment_callbacks WHERE payload LIKE '%ws_CO_bench_%'",
                        &[],
                    )
                    .await
                    .unwrap()
                    .get(0);
                if n >= expected {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "{n} of {expected} callbacks stored"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let n = PAYMENTS as i64;
    let started = Instant::now();
    let (distinct_answered, distinct_p99) = post_all(&app, bodies()).await;
    stored(n).await;
    let distinct_handled = PAYMENTS as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let (duplicate_answered, duplicate_p99) = post_all(&app, bodies()).await;
    stored(2 * n).await;
    let duplicate_handled = PAYMENTS as f64 / started.elapsed().as_secs_f64();
    println!(
        "callbacks, {CONCURRENCY} at a time: {PAYMENTS} distinct handled at {distinct_handled:.0}/s \
         (answered at {distinct_answered:.0}/s, p99 answer {distinct_p99:?}), {PAYMENTS} duplicates \
         handled at {duplicate_handled:.0}/s (answered at {duplicate_answered:.0}/s, p99 answer {duplicate_p99:?})"
    );
    let count = |sql: &'static str| {
        let superuser = &superuser;
        async move {
            superuser
                .query_one(sql, &[])
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    assert_eq!(count("SELECT count(*) FROM payments WHERE checkout_request_id LIKE 'ws_CO_bench_%' AND status = 'succeeded'").await, n);
    assert_eq!(count("SELECT count(*) FROM invoices WHERE status = 'paid' AND payment_reference = 'NLJ7RT61SV'").await, n);
    assert_eq!(
        count("SELECT count(*) FROM payment_callbacks WHERE payload LIKE '%ws_CO_bench_%'").await,
        2 * n
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM payment_callbacks WHERE applied AND payload LIKE '%ws_CO_bench_%'"
        )
        .await,
        n
    );
    println!(
        "rows after: {n} payments succeeded, {n} invoices paid, {} callbacks stored, {n} applied",
        2 * n
    );
}
