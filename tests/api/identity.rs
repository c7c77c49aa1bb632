//! The identity module: docs/api.md "Auth" (registration, bootstrap, login, tokens, password
//! reset) and "Me".

use reqwest::Method;
use serde_json::json;

use crate::helpers::{
    PASSWORD, TestApp, TestDb, assert_problem, retry_after, spawn_app, spawn_app_on,
    spawn_app_with, text,
};

fn register_body(email: &str) -> serde_json::Value {
    json!({"email": email, "password": PASSWORD, "full_name": "Ada Lovelace", "tenant_name": "Analytical Engines"})
}

// --- register ------------------------------------------------------------------------

#[tokio::test]
async fn register_creates_the_user_their_tenant_and_makes_them_owner() {
    let app = spawn_app().await;
    let body = app
        .register("  Ada@Example.COM ", "Analytical Engines")
        .await;
    assert_eq!(
        body["user"]["email"], "ada@example.com",
        "the email is normalized"
    );
    assert_eq!(body["tenant"]["name"], "Analytical Engines");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(body["refresh_token"].is_string());

    let me: serde_json::Value = app
        .me_get(&text(&body, "access_token"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["tenant"]["id"], body["tenant"]["id"]);
    assert_eq!(me["roles"][0]["name"], "Owner");
    assert_eq!(me["roles"][0]["store_id"], serde_json::Value::Null);
    let permissions = me["permissions"].as_array().unwrap();
    assert_eq!(
        permissions.len(),
        rowguard::platform::auth::catalog::PERMISSION_CODES.len(),
        "the Owner holds every permission: {permissions:?}"
    );

    let superuser = app.db.superuser().await;
    let roles: Vec<String> = superuser
        .query("SELECT name FROM roles WHERE is_system ORDER BY name", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(roles, ["Admin", "Owner", "Staff", "Store Manager"]);
}

#[tokio::test]
async fn register_with_a_registered_email_answers_409_conflict_whatever_its_case() {
    let app = spawn_app().await;
    app.register("ada@example.com", "First").await;
    let response = app.auth_register(&register_body("ADA@example.com")).await;
    assert_problem(response, 409, "conflict").await;
}

#[tokio::test]
async fn two_concurrent_registrations_of_one_email_leave_exactly_one_account() {
    let app = spawn_app().await;
    let body = register_body("race@example.com");
    let (first, second) = tokio::join!(app.auth_register(&body), app.auth_register(&body));
    let mut statuses = [first.status().as_u16(), second.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [201, 409]);
    let users: i64 = app
        .db
        .superuser()
        .await
        .query_one(
            "SELECT count(*) FROM users WHERE email = 'race@example.com'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 1);
    let tenants: i64 = app
        .db
        .superuser()
        .await
        .query_one("SELECT count(*) FROM tenants", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(tenants, 1, "the failed registration left no tenant behind");
}

#[tokio::test]
async fn register_with_invalid_fields_answers_422_naming_each_field() {
    let app = spawn_app().await;
    let response = app
        .auth_register(&json!({"email": "not-an-email", "password": "short", "full_name": " ", "tenant_name": "Fine"}))
        .await;
    let body = assert_problem(response, 422, "validation_failed").await;
    let mut fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort();
    assert_eq!(fields, ["email", "full_name", "password"]);
}

#[tokio::test]
async fn register_with_a_password_equal_to_the_email_answers_422() {
    let app = spawn_app().await;
    let mut body = register_body("ada@example.com");
    body["password"] = json!("ADA@example.com");
    let problem = assert_problem(app.auth_register(&body).await, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "password");
}

#[tokio::test]
async fn register_with_a_password_over_128_characters_answers_422_without_hashing() {
    let app = spawn_app().await;
    // Every place for unauthenticated hashing is taken: a registration that tried to
    // hash would answer 503, so a 422 shows the length was refused before hashing.
    let _held = app.saturate_unauthenticated_hashing();
    assert_problem(
        app.auth_register(&register_body("grace@example.com")).await,
        503,
        "unavailable",
    )
    .await;
    let mut body = register_body("ada@example.com");
    body["password"] = json!("x".repeat(10_000));
    let response = app.auth_register(&body).await;
    assert_problem(response, 422, "validation_failed").await;
}

#[tokio::test]
async fn register_with_malformed_json_answers_400_and_wrong_types_422() {
    let app = spawn_app().await;
    // Not JSON at all: no operation method sends that.
    let response = app
        .request(Method::POST, "/api/v1/auth/register")
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .await;
    assert_problem(response, 400, "bad_request").await;
    let response = app
        .auth_register(&json!({"email": 42, "password": [], "full_name": null}))
        .await;
    assert_problem(response, 422, "validation_failed").await;
}

#[tokio::test]
async fn register_answers_403_when_registration_is_disabled() {
    let app =
        spawn_app_with(|settings| settings.registration = rowguard::config::Registration::Closed)
            .await;
    let response = app.auth_register(&register_body("ada@example.com")).await;
    assert_problem(response, 403, "registration_disabled").await;
}

#[tokio::test]
async fn registration_finds_a_taken_email_before_hashing() {
    let app = spawn_app().await;
    app.register("ada@example.com", "First").await;
    // A flood holds every place of unauthenticated hashing...
    let flood = app.saturate_unauthenticated_hashing();
    assert!(!flood.is_empty());
    // ...so a registration that needs a hash is refused at once...
    let new = app.auth_register(&register_body("grace@example.com")).await;
    assert_problem(new, 503, "unavailable").await;
    // ...while a taken email is answered without one.
    let taken = app.auth_register(&register_body("ada@example.com")).await;
    assert_problem(taken, 409, "conflict").await;
}

#[tokio::test]
async fn logins_are_served_while_unauthenticated_hashing_is_saturated() {
    let app = spawn_app().await;
    app.register("ada@example.com", "First").await;
    let _flood = app.saturate_unauthenticated_hashing();
    let registration = app.auth_register(&register_body("grace@example.com")).await;
    assert_problem(registration, 503, "unavailable").await;
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn registrations_of_taken_emails_are_limited_per_client_address_and_sign_ups_are_not() {
    let app = spawn_app_with(|settings| {
        settings.register_max_taken_emails_per_client = 2;
        settings.trusted_proxies = "127.0.0.1/32".parse().unwrap();
    })
    .await;
    let from = |client: &str, email: &str| {
        app.auth_register(&register_body(email))
            .forwarded_for(client)
    };
    // Signing up is never counted: more new accounts than the limit, from one address.
    for email in ["ada@example.com", "grace@example.com", "alan@example.com"] {
        assert_eq!(from("198.51.100.1", email).await.status(), 201, "{email}");
    }
    // Probing taken emails is: two 409s, then 429 for that client, whatever the email.
    for email in ["ada@example.com", "grace@example.com"] {
        assert_problem(from("198.51.100.1", email).await, 409, "conflict").await;
    }
    let refused = from("198.51.100.1", "edsger@example.com").await;
    assert!((1..=3600).contains(&retry_after(&refused)));
    assert_problem(refused, 429, "rate_limited").await;
    // Another client is counted apart.
    assert_eq!(
        from("198.51.100.2", "edsger@example.com").await.status(),
        201
    );
}

#[tokio::test]
async fn with_concealment_a_taken_email_is_answered_like_a_new_registration_and_its_owner_told() {
    let app = spawn_app_with(|settings| settings.register_conceal_taken_emails = true).await;
    let new = app.auth_register(&register_body("ada@example.com")).await;
    assert_eq!(new.status(), 202);
    let new_body = new.bytes().await.unwrap();
    assert!(new_body.is_empty());
    // The account exists: its owner logs in.
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 200);

    let mut again = register_body("ADA@example.com");
    again["password"] = json!("someone else's passphrase");
    let taken = app.auth_register(&again).await;
    assert_eq!(taken.status(), 202);
    assert_eq!(taken.bytes().await.unwrap(), new_body);

    let superuser = app.db.superuser().await;
    let told: i64 = superuser
        .query_one(
            "SELECT count(*) FROM jobs WHERE kind = 'email.send'
             AND payload->>'to' = 'ada@example.com' AND payload->>'template' = 'registration_attempted'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(told, 1, "the owner is told of the attempt");
    let (users, tenants): (i64, i64) = {
        let row = superuser
            .query_one(
                "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM tenants)",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(
        (users, tenants),
        (1, 1),
        "nothing was created for the taken email"
    );
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 200);
}

// --- bootstrap -----------------------------------------------------------------------

#[tokio::test]
async fn bootstrap_creates_a_platform_admin_and_closes_for_good() {
    let app = spawn_app().await;
    let response = app.auth_bootstrap(&register_body("root@example.com")).await;
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["user"]["is_platform_admin"], true);
    assert!(body["access_token"].is_string());

    let again = app
        .auth_bootstrap(&register_body("other@example.com"))
        .await;
    assert_problem(again, 409, "bootstrap_closed").await;
}

#[tokio::test]
async fn bootstrap_is_closed_once_any_user_registered() {
    let app = spawn_app().await;
    app.register("ada@example.com", "First").await;
    let response = app.auth_bootstrap(&register_body("root@example.com")).await;
    assert_problem(response, 409, "bootstrap_closed").await;
}

#[tokio::test]
async fn concurrent_bootstraps_create_exactly_one_user() {
    let app = spawn_app().await;
    let bodies = ["a@example.com", "b@example.com", "c@example.com"].map(register_body);
    let (a, b, c) = tokio::join!(
        app.auth_bootstrap(&bodies[0]),
        app.auth_bootstrap(&bodies[1]),
        app.auth_bootstrap(&bodies[2]),
    );
    let mut statuses = [
        a.status().as_u16(),
        b.status().as_u16(),
        c.status().as_u16(),
    ];
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409]);
    let users: i64 = app
        .db
        .superuser()
        .await
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 1);
}

#[tokio::test]
async fn a_closed_bootstrap_is_refused_before_hashing() {
    let app = spawn_app().await;
    let first = app.auth_bootstrap(&register_body("root@example.com")).await;
    assert_eq!(first.status(), 201);
    let _flood = app.saturate_unauthenticated_hashing();
    // Anything that needs a hash is refused at once now...
    let registration = app.auth_register(&register_body("ada@example.com")).await;
    assert_problem(registration, 503, "unavailable").await;
    // ...and a closed bootstrap needs none.
    let again = app
        .auth_bootstrap(&register_body("other@example.com"))
        .await;
    assert_problem(again, 409, "bootstrap_closed").await;
}

#[tokio::test]
async fn the_bootstrap_command_creates_the_first_user_once() {
    let app = spawn_app().await;
    let run = || {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_rowguard"))
            .args([
                "bootstrap",
                "--email",
                "root@example.com",
                "--tenant",
                "Platform",
            ])
            .env("DATABASE_URL", &app.db.url)
            .env("ROWGUARD_BOOTSTRAP_PASSWORD", PASSWORD)
            .env("RUST_LOG", "warn")
            .output()
    };
    let first = run().await.unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(app.login("root@example.com", PASSWORD).await.status(), 200);
    let second = run().await.unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("bootstrap is closed"));
}

// --- login ---------------------------------------------------------------------------

#[tokio::test]
async fn login_with_the_right_password_returns_a_token_pair_for_the_tenant() {
    let app = spawn_app().await;
    let registered = app.register("ada@example.com", "First").await;
    let body = app.login_ok(" ADA@example.com ").await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["tenant_id"], registered["tenant"]["id"]);
    assert_eq!(app.me_get(&text(&body, "access_token")).await.status(), 200);
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_401_body() {
    let app = spawn_app().await;
    app.register("ada@example.com", "First").await;
    let wrong = assert_problem(
        app.login("ada@example.com", "wrong password!").await,
        401,
        "invalid_credentials",
    )
    .await;
    let unknown = assert_problem(
        app.login("nobody@example.com", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    let strip = |mut body: serde_json::Value| {
        body.as_object_mut().unwrap().remove("request_id");
        body
    };
    assert_eq!(strip(wrong), strip(unknown));
}

#[tokio::test]
async fn unknown_email_and_wrong_password_do_the_same_work_one_verification_each() {
    let app = spawn_app().await;
    app.register("ada@example.com", "First").await;
    let hasher = app.hasher.clone().unwrap();
    // Counted, not timed: the time of a hash is the machine's, the number of hashes is
    // the flow's. Both verify one argon2id hash of the same parameters (the unknown
    // email against the dummy hash, made like any other); without it, the unknown
    // email would answer after no hash at all.
    let verifications = |email: &'static str| {
        let (app, hasher) = (&app, &hasher);
        async move {
            let before = hasher.completed();
            assert_eq!(app.login(email, "wrong password!").await.status(), 401);
            hasher.completed() - before
        }
    };
    assert_eq!(verifications("ada@example.com").await, 1);
    assert_eq!(verifications("nobody@example.com").await, 1);
}

#[tokio::test]
async fn login_picks_the_requested_tenant_or_the_one_used_last() {
    let app = spawn_app().await;
    let ada = app.register("ada@example.com", "First").await;
    let other = app.register("grace@example.com", "Second").await;
    // Make ada a member of the second tenant too.
    let superuser = app.db.superuser().await;
    superuser
        .execute(
            "INSERT INTO tenant_users (tenant_id, user_id) SELECT $1::text::uuid, $2::text::uuid",
            &[&text(&other["tenant"], "id"), &text(&ada["user"], "id")],
        )
        .await
        .unwrap();
    let chosen = app
        .auth_login(&json!({"email": "ada@example.com", "password": PASSWORD, "tenant_id": other["tenant"]["id"]}))
        .await;
    let chosen: serde_json::Value = chosen.json().await.unwrap();
    assert_eq!(chosen["tenant_id"], other["tenant"]["id"]);
    // Without tenant_id: the one used last, which is now the second.
    assert_eq!(
        app.login_ok("ada@example.com").await["tenant_id"],
        other["tenant"]["id"]
    );

    let stranger = app
        .auth_login(&json!({"email": "ada@example.com", "password": PASSWORD, "tenant_id": uuid::Uuid::new_v4()}))
        .await;
    assert_problem(stranger, 404, "not_found").await;
    let _ = ada;
}

#[tokio::test]
async fn login_to_a_suspended_tenant_or_membership_answers_403() {
    let app = spawn_app().await;
    let ada = app.register("ada@example.com", "First").await;
    let superuser = app.db.superuser().await;
    superuser
        .batch_execute("UPDATE tenant_users SET status = 'suspended'")
        .await
        .unwrap();
    assert_problem(
        app.login("ada@example.com", PASSWORD).await,
        403,
        "tenant_suspended",
    )
    .await;
    superuser
        .batch_execute(
            "UPDATE tenant_users SET status = 'active'; UPDATE tenants SET status = 'suspended'",
        )
        .await
        .unwrap();
    assert_problem(
        app.login("ada@example.com", PASSWORD).await,
        403,
        "tenant_suspended",
    )
    .await;
    let _ = ada;
}

#[tokio::test]
async fn login_skips_a_suspended_last_used_tenant_for_the_most_recent_active_one() {
    let app = spawn_app().await;
    let (ada, second) = ada_in_two_tenants(&app).await;
    let in_second = app
        .auth_login(&json!({"email": "ada@example.com", "password": PASSWORD, "tenant_id": second}))
        .await;
    assert_eq!(in_second.status(), 200);
    assert_eq!(
        app.login_ok("ada@example.com").await["tenant_id"],
        second.as_str()
    );
    // Suspended in the tenant she used last...
    app.db
        .superuser()
        .await
        .execute(
            "UPDATE tenant_users SET status = 'suspended'
             WHERE tenant_id = $1::text::uuid AND user_id = $2::text::uuid",
            &[&second, &text(&ada["user"], "id")],
        )
        .await
        .unwrap();
    // ...she still logs in, to the other one.
    assert_eq!(
        app.login_ok("ada@example.com").await["tenant_id"],
        ada["tenant"]["id"]
    );
    let there = app
        .auth_login(&json!({"email": "ada@example.com", "password": PASSWORD, "tenant_id": second}))
        .await;
    assert_problem(there, 403, "tenant_suspended").await;
}

#[tokio::test]
async fn failed_logins_are_throttled_per_email_with_retry_after() {
    let app = spawn_app_with(|settings| settings.login_max_failures_per_email = 3).await;
    app.register("ada@example.com", "First").await;
    for _ in 0..3 {
        assert_eq!(
            app.login("ada@example.com", "wrong password!")
                .await
                .status(),
            401
        );
    }
    let response = app.login("ada@example.com", PASSWORD).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_problem(response, 429, "rate_limited").await;
    // Another email from the same client is not throttled by this one's failures.
    app.register("grace@example.com", "Second").await;
    assert_eq!(app.login("grace@example.com", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn failed_logins_are_throttled_per_client_address_across_emails() {
    let app = spawn_app_with(|settings| settings.login_max_failures_per_client = 4).await;
    app.register("ada@example.com", "First").await;
    for n in 0..4 {
        assert_eq!(
            app.login(&format!("nobody{n}@example.com"), "wrong password!")
                .await
                .status(),
            401
        );
    }
    assert_problem(
        app.login("ada@example.com", PASSWORD).await,
        429,
        "rate_limited",
    )
    .await;
}

#[tokio::test]
async fn the_throttle_is_shared_by_every_server_on_the_database() {
    let app = spawn_app_with(|settings| settings.login_max_failures_per_email = 2).await;
    app.register("ada@example.com", "First").await;
    let mut settings = crate::helpers::test_settings(&app.db.url);
    settings.login_max_failures_per_email = 2;
    let application = rowguard::app::Application::build(&settings).await.unwrap();
    let address = application.local_addr();
    tokio::spawn(application.run_until(std::future::pending()));
    let second = TestApp::attach(address, TestDb::detached(app.db.url.clone()));

    assert_eq!(
        app.login("ada@example.com", "wrong password!")
            .await
            .status(),
        401
    );
    let response = second.login("ada@example.com", "wrong password!").await;
    assert_eq!(response.status(), 401);
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 429);
}

/// A server behind a proxy on the test's own address, which forwards its clients.
async fn behind_a_proxy(configure: impl FnOnce(&mut rowguard::config::Settings)) -> TestApp {
    spawn_app_with(|settings| {
        settings.trusted_proxies = "127.0.0.1/32".parse().unwrap();
        configure(settings);
    })
    .await
}

const OWNER: &str = "203.0.113.9";
const ATTACKER: &str = "198.51.100.7";

#[tokio::test]
async fn the_owner_at_another_address_still_logs_in_after_an_attackers_failures() {
    let app = behind_a_proxy(|settings| settings.login_max_failures_per_email = 3).await;
    app.register("ada@example.com", "First").await;
    let owner = || app.login_from(OWNER, "ada@example.com", PASSWORD);
    assert_eq!(owner().await.status(), 200);
    for _ in 0..3 {
        let guess = app.login_from(ATTACKER, "ada@example.com", "wrong password!");
        assert_eq!(guess.await.status(), 401);
    }
    // The attacker is locked out of the email, from where they are...
    let locked = app.login_from(ATTACKER, "ada@example.com", PASSWORD).await;
    assert_problem(locked, 429, "rate_limited").await;
    // ...and the owner, elsewhere, is not.
    assert_eq!(owner().await.status(), 200);
}

#[tokio::test]
async fn failures_for_one_email_from_everywhere_grow_a_capped_retry_after_not_a_lockout() {
    let app = behind_a_proxy(|settings| {
        settings.login_delay_after_failures_per_email = 1;
        settings.login_max_delay_secs = 5;
        settings.login_throttle_window_secs = 3600;
    })
    .await;
    app.register("ada@example.com", "First").await;
    assert_eq!(
        app.login_from(OWNER, "ada@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let superuser = app.db.superuser().await;
    // Each round, the waits so far are over (every attempt moved a minute back), a
    // guesser at a fresh address fails, and another guess right after it must wait.
    let earlier = "UPDATE auth.attempts SET created_at = created_at - interval '1 minute'";
    let latest_now = "UPDATE auth.attempts SET created_at = now()
                      WHERE id = (SELECT max(id) FROM auth.attempts WHERE kind = 'login_email')";
    let mut waits = Vec::new();
    for n in 1..=5 {
        superuser.batch_execute(earlier).await.unwrap();
        let guess = app.login_from(
            &format!("198.51.100.{n}"),
            "ada@example.com",
            "wrong password!",
        );
        assert_eq!(guess.await.status(), 401, "guess {n}");
        superuser.batch_execute(latest_now).await.unwrap();
        let early = app
            .login_from(&format!("192.0.2.{n}"), "ada@example.com", "another guess")
            .await;
        waits.push(retry_after(&early));
        assert_problem(early, 429, "rate_limited").await;
    }
    assert_eq!(waits, [1, 2, 4, 5, 5], "doubling, capped at 5 s");
    // Once the wait is over the owner logs in: no lockout for the window.
    superuser.batch_execute(earlier).await.unwrap();
    assert_eq!(
        app.login_from(OWNER, "ada@example.com", PASSWORD)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_spoofed_x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    // The test connects from 127.0.0.1, which is no trusted proxy here.
    let app = spawn_app_with(|settings| {
        settings.login_max_failures_per_client = 3;
        settings.trusted_proxies = "10.0.0.0/8".parse().unwrap();
    })
    .await;
    app.register("ada@example.com", "First").await;
    assert_eq!(
        app.login_from("198.51.100.1", "ada@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    for n in 0..3 {
        let claimed = format!("198.51.100.{}", 10 + n);
        let guess = app.login_from(
            &claimed,
            &format!("nobody{n}@example.com"),
            "wrong password!",
        );
        assert_eq!(guess.await.status(), 401);
    }
    // Each claimed another address; all were counted as the one they came from.
    let response = app
        .login_from("198.51.100.99", "ada@example.com", PASSWORD)
        .await;
    assert_problem(response, 429, "rate_limited").await;
}

#[tokio::test]
async fn through_a_trusted_proxy_two_forwarded_clients_are_counted_apart() {
    let app = behind_a_proxy(|settings| settings.login_max_failures_per_client = 3).await;
    app.register("ada@example.com", "First").await;
    let (first, second) = ("198.51.100.1", "198.51.100.2");
    assert_eq!(
        app.login_from(first, "ada@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    for n in 0..3 {
        let guess = app.login_from(first, &format!("nobody{n}@example.com"), "wrong password!");
        assert_eq!(guess.await.status(), 401);
    }
    let locked = app.login_from(first, "ada@example.com", PASSWORD).await;
    assert_problem(locked, 429, "rate_limited").await;
    assert_eq!(
        app.login_from(second, "ada@example.com", PASSWORD)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn ipv6_clients_in_one_64_are_counted_as_one() {
    let app = behind_a_proxy(|settings| settings.login_max_failures_per_client = 3).await;
    app.register("ada@example.com", "First").await;
    let (neighbour, other_network) = ("2001:db8:1:2::6", "2001:db8:1:3::6");
    assert_eq!(
        app.login_from(neighbour, "ada@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    for n in 0..3 {
        let address = format!("2001:db8:1:2::{:x}", 0x100 + n);
        let guess = app.login_from(
            &address,
            &format!("nobody{n}@example.com"),
            "wrong password!",
        );
        assert_eq!(guess.await.status(), 401);
    }
    let locked = app.login_from(neighbour, "ada@example.com", PASSWORD).await;
    assert_problem(locked, 429, "rate_limited").await;
    assert_eq!(
        app.login_from(other_network, "ada@example.com", PASSWORD)
            .await
            .status(),
        200
    );
}

// --- refresh, logout, switch ----------------------------------------------------------

#[tokio::test]
async fn refresh_rotates_the_pair_and_the_old_refresh_token_stops_working() {
    let app = spawn_app().await;
    let first = app.register("ada@example.com", "First").await;
    let response = app
        .auth_refresh(&json!({"refresh_token": first["refresh_token"]}))
        .await;
    assert_eq!(response.status(), 200);
    let second: serde_json::Value = response.json().await.unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(second["tenant_id"], first["tenant"]["id"]);
    assert_eq!(
        app.me_get(&text(&second, "access_token")).await.status(),
        200
    );
}

#[tokio::test]
async fn a_refresh_token_used_twice_revokes_its_whole_family() {
    let app = spawn_app().await;
    let first = app.register("ada@example.com", "First").await;
    let rotated: serde_json::Value = app
        .auth_refresh(&json!({"refresh_token": first["refresh_token"]}))
        .await
        .json()
        .await
        .unwrap();
    // The stolen first token is presented again: refused, and the family is revoked...
    let reuse = app
        .auth_refresh(&json!({"refresh_token": first["refresh_token"]}))
        .await;
    assert_problem(reuse, 401, "unauthenticated").await;
    // ...so the legitimate holder's newer token is refused too.
    let newer = app
        .auth_refresh(&json!({"refresh_token": rotated["refresh_token"]}))
        .await;
    assert_problem(newer, 401, "unauthenticated").await;
    // Another session of the same user is untouched.
    let other = app.login_ok("ada@example.com").await;
    let other = app
        .auth_refresh(&json!({"refresh_token": other["refresh_token"]}))
        .await;
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn a_garbage_refresh_token_answers_401() {
    let app = spawn_app().await;
    for token in ["", "nonsense", &"A".repeat(43)] {
        let response = app.auth_refresh(&json!({"refresh_token": token})).await;
        assert_problem(response, 401, "unauthenticated").await;
    }
}

#[tokio::test]
async fn logout_ends_the_session_of_the_refresh_token() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com", "First").await;
    let response = app
        .auth_logout(&json!({"refresh_token": session["refresh_token"]}))
        .await;
    assert_eq!(response.status(), 204);
    let refresh = app
        .auth_refresh(&json!({"refresh_token": session["refresh_token"]}))
        .await;
    assert_problem(refresh, 401, "unauthenticated").await;
}

#[tokio::test]
async fn switch_tenant_issues_a_pair_for_another_membership_and_404_for_a_stranger() {
    let app = spawn_app().await;
    let ada = app.register("ada@example.com", "First").await;
    let grace = app.register("grace@example.com", "Second").await;
    let token = text(&ada, "access_token");

    let stranger = app
        .auth_switch_tenant(&token, &json!({"tenant_id": grace["tenant"]["id"]}))
        .await;
    assert_problem(stranger, 404, "not_found").await;

    app.db
        .superuser()
        .await
        .execute(
            "INSERT INTO tenant_users (tenant_id, user_id) SELECT $1::text::uuid, $2::text::uuid",
            &[&text(&grace["tenant"], "id"), &text(&ada["user"], "id")],
        )
        .await
        .unwrap();
    let switched = app
        .auth_switch_tenant(&token, &json!({"tenant_id": grace["tenant"]["id"]}))
        .await;
    assert_eq!(switched.status(), 200);
    let switched: serde_json::Value = switched.json().await.unwrap();
    assert_eq!(switched["tenant_id"], grace["tenant"]["id"]);
    let me: serde_json::Value = app
        .me_get(&text(&switched, "access_token"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["tenant"]["id"], grace["tenant"]["id"]);
    assert_eq!(
        me["roles"],
        json!([]),
        "ada holds no role in the second tenant"
    );
}

// --- password reset --------------------------------------------------------------------

async fn queued_token(app: &TestApp, email: &str) -> Option<String> {
    app.db
        .superuser()
        .await
        .query_opt(
            "SELECT payload->>'secret' FROM jobs
             WHERE kind = 'email.send' AND payload->>'to' = $1 AND payload->>'template' = 'password_reset'
             ORDER BY id DESC LIMIT 1",
            &[&email],
        )
        .await
        .unwrap()
        .map(|row| row.get(0))
}

#[tokio::test]
async fn forgot_password_answers_202_always_and_queues_a_token_only_for_a_known_email() {
    let app = spawn_app().await;
    app.register("ada@example.com", "First").await;
    for email in ["ada@example.com", "nobody@example.com", "not an email"] {
        let response = app.auth_forgot_password(&json!({"email": email})).await;
        assert_eq!(response.status(), 202, "{email}");
    }
    assert!(queued_token(&app, "ada@example.com").await.is_some());
    assert!(queued_token(&app, "nobody@example.com").await.is_none());
}

#[tokio::test]
async fn forgot_password_acts_on_at_most_five_requests_per_email_per_hour() {
    let app = spawn_app().await;
    app.register("ada@example.com", "First").await;
    for _ in 0..7 {
        let response = app
            .auth_forgot_password(&json!({"email": "ada@example.com"}))
            .await;
        assert_eq!(response.status(), 202);
    }
    let queued: i64 = app
        .db
        .superuser()
        .await
        .query_one(
            "SELECT count(*) FROM jobs WHERE payload->>'to' = 'ada@example.com' AND payload->>'template' = 'password_reset'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(queued, 5);
}

#[tokio::test]
async fn forgot_password_past_its_limit_records_no_more_attempts() {
    let app = spawn_app().await;
    app.register("ada@example.com", "First").await;
    for _ in 0..20 {
        let response = app
            .auth_forgot_password(&json!({"email": "ada@example.com"}))
            .await;
        assert_eq!(response.status(), 202);
    }
    let superuser = app.db.superuser().await;
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
    assert_eq!(
        count("SELECT count(*) FROM jobs WHERE payload->>'to' = 'ada@example.com' AND payload->>'template' = 'password_reset'").await,
        5
    );
    assert_eq!(
        count("SELECT count(*) FROM auth.attempts WHERE kind = 'forgot_email'").await,
        5,
        "requests past the limit leave no row"
    );
}

#[tokio::test]
async fn the_server_forgets_attempts_older_than_every_window_when_it_starts() {
    let db = TestDb::new().await;
    db.superuser()
        .await
        .batch_execute(
            "INSERT INTO auth.attempts (kind, subject, created_at) VALUES
                 ('login_email', 'old@example.com', now() - interval '2 hours'),
                 ('login_client', '198.51.100.1', now() - interval '3 days'),
                 ('forgot_email', 'old@example.com', now() - interval '61 minutes'),
                 ('login_email', 'recent@example.com', now() - interval '5 minutes'),
                 ('forgot_email', 'recent@example.com', now() - interval '30 minutes')",
        )
        .await
        .unwrap();
    let app = spawn_app_on(db, |_| {}).await;
    let left: Vec<String> = app
        .db
        .superuser()
        .await
        .query("SELECT subject FROM auth.attempts ORDER BY subject", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    // The forgot-password window (an hour) outlasts the login window (15 minutes).
    assert_eq!(left, ["recent@example.com", "recent@example.com"]);
}

#[tokio::test]
async fn reset_password_sets_the_password_once_and_ends_every_session() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com", "First").await;
    app.auth_forgot_password(&json!({"email": "ada@example.com"}))
        .await;
    let token = queued_token(&app, "ada@example.com").await.unwrap();

    let reset = json!({"token": token, "new_password": "a brand new passphrase"});
    assert_eq!(app.auth_reset_password(&reset).await.status(), 204);
    assert_eq!(
        app.login("ada@example.com", "a brand new passphrase")
            .await
            .status(),
        200
    );
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 401);
    let refresh = app
        .auth_refresh(&json!({"refresh_token": session["refresh_token"]}))
        .await;
    assert_problem(refresh, 401, "unauthenticated").await;

    let again = app
        .auth_reset_password(&json!({"token": token, "new_password": "yet another passphrase"}))
        .await;
    assert_problem(again, 401, "unauthenticated").await;
}

#[tokio::test]
async fn an_expired_or_malformed_reset_token_is_refused() {
    let app = spawn_app().await;
    app.register("ada@example.com", "First").await;
    app.auth_forgot_password(&json!({"email": "ada@example.com"}))
        .await;
    let token = queued_token(&app, "ada@example.com").await.unwrap();
    app.db
        .superuser()
        .await
        .batch_execute(
            "UPDATE auth.password_reset_tokens SET expires_at = now() - interval '1 second'",
        )
        .await
        .unwrap();
    let expired = app
        .auth_reset_password(&json!({"token": token, "new_password": "a brand new passphrase"}))
        .await;
    assert_problem(expired, 401, "unauthenticated").await;
    let malformed = app
        .auth_reset_password(&json!({"token": "short", "new_password": "a brand new passphrase"}))
        .await;
    assert_problem(malformed, 400, "bad_request").await;
}

#[tokio::test]
async fn reset_password_with_a_weak_password_answers_422_and_keeps_the_token() {
    let app = spawn_app().await;
    app.register("ada@example.com", "First").await;
    app.auth_forgot_password(&json!({"email": "ada@example.com"}))
        .await;
    let token = queued_token(&app, "ada@example.com").await.unwrap();
    let weak = app
        .auth_reset_password(&json!({"token": token, "new_password": "ada@example.com"}))
        .await;
    assert_problem(weak, 422, "validation_failed").await;
    let good = app
        .auth_reset_password(&json!({"token": token, "new_password": "a brand new passphrase"}))
        .await;
    assert_eq!(good.status(), 204);
}

#[tokio::test]
async fn parallel_wrong_passwords_cannot_outrun_the_throttle() {
    let app = spawn_app_with(|settings| settings.login_max_failures_per_email = 3).await;
    app.register("ada@example.com", "First").await;
    let attempts: Vec<_> = (0..10)
        .map(|_| app.login("ada@example.com", "wrong password!"))
        .collect();
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|response| response.status().as_u16())
        .collect();
    let verified = statuses.iter().filter(|&&status| status == 401).count();
    assert_eq!(
        verified, 3,
        "only the limit's worth of guesses reach the password check: {statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|&&status| status == 429).count(), 7);
}

#[tokio::test]
async fn successful_logins_do_not_count_against_the_client_address() {
    let app = spawn_app_with(|settings| settings.login_max_failures_per_client = 3).await;
    app.register("ada@example.com", "First").await;
    for _ in 0..6 {
        assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 200);
    }
}

/// Ada, Owner of "First", made a member of "Second" too; returns her registration
/// body and the second tenant's id.
async fn ada_in_two_tenants(app: &TestApp) -> (serde_json::Value, String) {
    let ada = app.register("ada@example.com", "First").await;
    let grace = app.register("grace@example.com", "Second").await;
    let second = text(&grace["tenant"], "id");
    app.db
        .superuser()
        .await
        .execute(
            "INSERT INTO tenant_users (tenant_id, user_id) SELECT $1::text::uuid, $2::text::uuid",
            &[&second, &text(&ada["user"], "id")],
        )
        .await
        .unwrap();
    (ada, second)
}

#[tokio::test]
async fn switching_tenant_from_an_ended_session_answers_401() {
    let app = spawn_app().await;
    let (ada, second) = ada_in_two_tenants(&app).await;
    let token = text(&ada, "access_token");
    let target = json!({"tenant_id": second});
    assert_eq!(app.auth_switch_tenant(&token, &target).await.status(), 200);
    // Logged out (or reset, or revoked): the access token cannot mint a fresh session.
    app.auth_logout(&json!({"refresh_token": ada["refresh_token"]}))
        .await;
    let response = app.auth_switch_tenant(&token, &target).await;
    assert_problem(response, 401, "unauthenticated").await;
}

#[tokio::test]
async fn switching_to_the_tokens_own_tenant_is_refused() {
    let app = spawn_app().await;
    let (ada, second) = ada_in_two_tenants(&app).await;
    let token = text(&ada, "access_token");
    app.switch_ok(&token, &second).await;
    let own = json!({"tenant_id": ada["tenant"]["id"]});
    assert_problem(app.auth_switch_tenant(&token, &own).await, 409, "conflict").await;
}

#[tokio::test]
async fn a_switched_session_ends_with_the_session_it_came_from() {
    let app = spawn_app().await;
    let (ada, second) = ada_in_two_tenants(&app).await;
    let token = text(&ada, "access_token");
    let switched = app.switch_ok(&token, &second).await;
    let switched_token = text(&switched, "access_token");
    assert_eq!(app.me_get(&switched_token).await.status(), 200);
    // Logging out the original session ends what was switched from it.
    app.auth_logout(&json!({"refresh_token": ada["refresh_token"]}))
        .await;
    assert_problem(app.me_get(&switched_token).await, 401, "unauthenticated").await;
    let refresh = app
        .auth_refresh(&json!({"refresh_token": switched["refresh_token"]}))
        .await;
    assert_problem(refresh, 401, "unauthenticated").await;
}

#[tokio::test]
async fn an_access_token_stops_working_when_its_session_is_logged_out() {
    let app = spawn_app().await;
    let ada = app.register("ada@example.com", "First").await;
    let token = text(&ada, "access_token");
    let store = json!({"name": "Main"});
    assert_eq!(app.stores_create(&token, &store).await.status(), 201);
    app.auth_logout(&json!({"refresh_token": ada["refresh_token"]}))
        .await;
    assert_problem(app.me_get(&token).await, 401, "unauthenticated").await;
    let write = app
        .stores_create(&token, &json!({"name": "After logout"}))
        .await;
    assert_problem(write, 401, "unauthenticated").await;
}

#[tokio::test]
async fn an_access_token_stops_working_after_a_password_reset() {
    let app = spawn_app().await;
    let ada = app.register("ada@example.com", "First").await;
    let token = text(&ada, "access_token");
    assert_eq!(app.me_get(&token).await.status(), 200);
    app.auth_forgot_password(&json!({"email": "ada@example.com"}))
        .await;
    let reset = queued_token(&app, "ada@example.com").await.unwrap();
    let body = json!({"token": reset, "new_password": "a brand new passphrase"});
    assert_eq!(app.auth_reset_password(&body).await.status(), 204);
    assert_problem(app.me_get(&token).await, 401, "unauthenticated").await;
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_access_tokens_and_keeps_the_callers() {
    let app = spawn_app().await;
    let ada = app.register("ada@example.com", "First").await;
    let this_session = text(&ada, "access_token");
    let other_session = text(&app.login_ok("ada@example.com").await, "access_token");
    assert_eq!(app.me_get(&other_session).await.status(), 200);
    let change = json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"});
    assert_eq!(
        app.me_change_password(&this_session, &change)
            .await
            .status(),
        204
    );
    assert_eq!(app.me_get(&this_session).await.status(), 200);
    assert_problem(app.me_get(&other_session).await, 401, "unauthenticated").await;
}

#[tokio::test]
async fn a_detected_refresh_token_reuse_ends_the_access_tokens_of_the_session() {
    let app = spawn_app().await;
    let ada = app.register("ada@example.com", "First").await;
    let role = app.role_id(&text(&ada, "access_token"), "Admin").await;
    let stolen = json!({"refresh_token": ada["refresh_token"]});
    let rotated: serde_json::Value = app.auth_refresh(&stolen).await.json().await.unwrap();
    let token = text(&rotated, "access_token");
    assert_eq!(app.me_get(&token).await.status(), 200);
    // The old refresh token again: the whole session is revoked, its access tokens too.
    assert_problem(app.auth_refresh(&stolen).await, 401, "unauthenticated").await;
    let invite = json!({"email": "thief@example.com", "role_id": role});
    let refused = app.invitations_create(&token, &invite).await;
    assert_problem(refused, 401, "unauthenticated").await;
}

#[tokio::test]
async fn using_one_reset_token_ends_the_others() {
    let app = spawn_app().await;
    app.register("ada@example.com", "First").await;
    app.auth_forgot_password(&json!({"email": "ada@example.com"}))
        .await;
    let first = queued_token(&app, "ada@example.com").await.unwrap();
    app.auth_forgot_password(&json!({"email": "ada@example.com"}))
        .await;
    let second = queued_token(&app, "ada@example.com").await.unwrap();
    assert_ne!(first, second);
    let reset = json!({"token": second, "new_password": "a brand new passphrase"});
    assert_eq!(app.auth_reset_password(&reset).await.status(), 204);
    let stale = json!({"token": first, "new_password": "the attacker's passphrase"});
    assert_problem(
        app.auth_reset_password(&stale).await,
        401,
        "unauthenticated",
    )
    .await;
}

// --- me ------------------------------------------------------------------------------

#[tokio::test]
async fn me_shows_the_user_tenant_memberships_roles_and_permissions() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com", "First").await;
    let response = app.me_get(&text(&session, "access_token")).await;
    assert_eq!(response.status(), 200);
    let me: serde_json::Value = response.json().await.unwrap();
    assert_eq!(me["user"]["email"], "ada@example.com");
    assert_eq!(me["tenant"]["name"], "First");
    assert_eq!(
        me["memberships"],
        json!([{"tenant_id": session["tenant"]["id"], "tenant_name": "First", "status": "active"}])
    );
    assert_eq!(me["roles"].as_array().unwrap().len(), 1);
    assert!(
        me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("roles.assign"))
    );
}

#[tokio::test]
async fn me_with_a_store_of_another_tenant_answers_403_store_access_denied() {
    let app = spawn_app().await;
    let ada = app.register("ada@example.com", "First").await;
    let grace = app.register("grace@example.com", "Second").await;
    let store: uuid::Uuid = app
        .db
        .superuser()
        .await
        .query_one(
            "INSERT INTO stores (tenant_id, name) VALUES ($1::text::uuid, 'Grace''s shop') RETURNING id",
            &[&text(&grace["tenant"], "id")],
        )
        .await
        .unwrap()
        .get(0);
    let own_store: uuid::Uuid = app
        .db
        .superuser()
        .await
        .query_one(
            "INSERT INTO stores (tenant_id, name) VALUES ($1::text::uuid, 'Ada''s shop') RETURNING id",
            &[&text(&ada["tenant"], "id")],
        )
        .await
        .unwrap()
        .get(0);
    let token = text(&ada, "access_token");
    let own = app.me_get(&token).in_store(own_store).await;
    assert_eq!(own.status(), 200);
    for store in [store, uuid::Uuid::new_v4()] {
        let response = app.me_get(&token).in_store(store).await;
        assert_problem(response, 403, "store_access_denied").await;
    }
    let malformed = app.me_get(&token).in_store("not-a-uuid").await;
    assert_problem(malformed, 400, "bad_request").await;
}

#[tokio::test]
async fn patch_me_changes_the_full_name_and_validates_it() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com", "First").await;
    let token = text(&session, "access_token");
    let response = app
        .me_update(&token, &json!({"full_name": "  Ada King  "}))
        .await;
    assert_eq!(response.status(), 200);
    let user: serde_json::Value = response.json().await.unwrap();
    assert_eq!(user["full_name"], "Ada King");
    let blank = app.me_update(&token, &json!({"full_name": "   "})).await;
    assert_problem(blank, 422, "validation_failed").await;
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com", "First").await;
    let response = app
        .me_change_password(&text(&session, "access_token"), &json!({"current_password": "not my password", "new_password": "a brand new passphrase"}),
        )
        .await;
    let body = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "current_password");
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions_but_not_this_one() {
    let app = spawn_app().await;
    let this = app.register("ada@example.com", "First").await;
    let other = app.login_ok("ada@example.com").await;
    let response = app
        .me_change_password(
            &text(&this, "access_token"),
            &json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        app.login("ada@example.com", "a brand new passphrase")
            .await
            .status(),
        200
    );
    let other = app
        .auth_refresh(&json!({"refresh_token": other["refresh_token"]}))
        .await;
    assert_problem(other, 401, "unauthenticated").await;
    let this = app
        .auth_refresh(&json!({"refresh_token": this["refresh_token"]}))
        .await;
    assert_eq!(this.status(), 200);
}

fn password_change(current: &str, new: &str) -> serde_json::Value {
    json!({"current_password": current, "new_password": new})
}

#[tokio::test]
async fn wrong_current_passwords_count_as_failed_logins_and_lock_the_password_change() {
    let app = spawn_app_with(|settings| settings.login_max_failures_per_email = 3).await;
    let session = app.register("ada@example.com", "First").await;
    let token = text(&session, "access_token");
    let changed = app
        .me_change_password(&token, &password_change(PASSWORD, "a brand new passphrase"))
        .await;
    assert_eq!(changed.status(), 204);
    // Someone holding the access token guesses the current password.
    for _ in 0..3 {
        let guess = app
            .me_change_password(
                &token,
                &password_change("a guess", "the thief's passphrase"),
            )
            .await;
        assert_problem(guess, 422, "validation_failed").await;
    }
    // Locked before checking, even the right one...
    let right = app
        .me_change_password(
            &token,
            &password_change("a brand new passphrase", "the thief's passphrase"),
        )
        .await;
    assert!((1..=900).contains(&retry_after(&right)));
    assert_problem(right, 429, "rate_limited").await;
    // ...and the guesses were failed logins of the email from this client.
    let login = app.login("ada@example.com", "a brand new passphrase").await;
    assert_problem(login, 429, "rate_limited").await;
}

#[tokio::test]
async fn the_password_change_answers_429_while_logins_are_locked_for_the_caller() {
    let app = spawn_app_with(|settings| settings.login_max_failures_per_email = 3).await;
    let session = app.register("ada@example.com", "First").await;
    let token = text(&session, "access_token");
    let changed = app
        .me_change_password(&token, &password_change(PASSWORD, "a brand new passphrase"))
        .await;
    assert_eq!(changed.status(), 204);
    for _ in 0..3 {
        assert_eq!(
            app.login("ada@example.com", "wrong password!")
                .await
                .status(),
            401
        );
    }
    let change = app
        .me_change_password(
            &token,
            &password_change("a brand new passphrase", "yet another passphrase"),
        )
        .await;
    assert!(change.headers().contains_key("retry-after"));
    assert_problem(change, 429, "rate_limited").await;
}

#[tokio::test]
async fn a_bad_refresh_token_is_refused_as_a_refresh_token() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com", "Acme").await;
    let good = json!({"refresh_token": text(&session, "refresh_token")});
    assert_eq!(
        app.auth_refresh(&good).await.status(),
        200,
        "the legitimate refresh works"
    );
    for bad in ["not-a-token".to_string(), "A".repeat(43)] {
        let refused = app.auth_refresh(&json!({"refresh_token": bad})).await;
        let body = assert_problem(refused, 401, "unauthenticated").await;
        let detail = text(&body, "detail");
        assert!(detail.contains("refresh token"), "{detail}");
        assert!(!detail.contains("access token"), "{detail}");
    }
}

#[tokio::test]
async fn switch_tenant_checks_x_store_id_in_the_tokens_tenant_not_the_target() {
    let app = spawn_app().await;
    let (ada, second) = ada_in_two_tenants(&app).await;
    let token = text(&ada, "access_token");
    let own_store = app.store(&token, "Main").await;
    let target = json!({"tenant_id": second});
    // A client that always sends its current store can still switch.
    let switched = app
        .auth_switch_tenant(&token, &target)
        .in_store(&own_store)
        .await;
    assert_eq!(switched.status(), 200);
    // A store ada cannot reach is refused, as on every operation.
    let foreign = app
        .auth_switch_tenant(&token, &target)
        .in_store(uuid::Uuid::new_v4())
        .await;
    assert_problem(foreign, 403, "store_access_denied").await;
}

#[tokio::test]
async fn switching_tenant_moves_the_session_so_a_switch_with_a_stolen_access_token_is_caught() {
    let app = spawn_app().await;
    let (ada, second) = ada_in_two_tenants(&app).await;
    let token = text(&ada, "access_token");
    // The legitimate switch: the new pair works, its refresh token refreshes.
    let switched = app.switch_ok(&token, &second).await;
    let moved = json!({"refresh_token": switched["refresh_token"]});
    let refreshed = app.auth_refresh(&moved).await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: serde_json::Value = refreshed.json().await.unwrap();
    assert_eq!(
        app.me_get(&text(&refreshed, "access_token")).await.status(),
        200
    );
    // The refresh token from before the switch was used up by it: presenting it again
    // is a reuse, and ends the session wherever it went.
    let before = json!({"refresh_token": ada["refresh_token"]});
    assert_problem(app.auth_refresh(&before).await, 401, "unauthenticated").await;
    let after_reuse = app.me_get(&text(&refreshed, "access_token")).await;
    assert_problem(after_reuse, 401, "unauthenticated").await;
}

#[tokio::test]
async fn a_password_change_ends_a_session_moved_away_with_the_callers_access_token() {
    let app = spawn_app().await;
    let (ada, second) = ada_in_two_tenants(&app).await;
    let victim = text(&ada, "access_token");
    // A thief with the victim's access token moves the session to the other tenant.
    let stolen = app.switch_ok(&victim, &second).await;
    assert_eq!(
        app.me_get(&text(&stolen, "access_token")).await.status(),
        200
    );
    // The victim changes the password: the moved session ends, the thief's tokens too.
    let change = json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"});
    assert_eq!(app.me_change_password(&victim, &change).await.status(), 204);
    let refresh = app
        .auth_refresh(&json!({"refresh_token": stolen["refresh_token"]}))
        .await;
    assert_problem(refresh, 401, "unauthenticated").await;
    let me = app.me_get(&text(&stolen, "access_token")).await;
    assert_problem(me, 401, "unauthenticated").await;
}

#[tokio::test]
async fn a_password_change_from_where_the_session_is_keeps_it() {
    let app = spawn_app().await;
    let (ada, second) = ada_in_two_tenants(&app).await;
    let switched = app.switch_ok(&text(&ada, "access_token"), &second).await;
    let here = text(&switched, "access_token");
    let change = json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"});
    assert_eq!(app.me_change_password(&here, &change).await.status(), 204);
    assert_eq!(app.me_get(&here).await.status(), 200);
    let refresh = app
        .auth_refresh(&json!({"refresh_token": switched["refresh_token"]}))
        .await;
    assert_eq!(refresh.status(), 200);
}

#[tokio::test]
async fn re_enabling_a_disabled_user_does_not_revive_the_sessions_it_ended() {
    let app = spawn_app().await;
    let ada = app.register("ada@example.com", "Analytical Engines").await;
    let token = text(&ada, "access_token");
    assert_eq!(app.me_get(&token).await.status(), 200);
    let superuser = app.db.superuser().await;
    let set_status = "UPDATE users SET status = $2 WHERE id = $1::text::uuid";
    let user = text(&ada["user"], "id");
    superuser
        .execute(set_status, &[&user, &"disabled"])
        .await
        .unwrap();
    superuser
        .execute(set_status, &[&user, &"active"])
        .await
        .unwrap();
    // The account works again, through a new sign-in; the sessions of before stay
    // ended, their access and refresh tokens with them.
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 200);
    assert_problem(app.me_get(&token).await, 401, "unauthenticated").await;
    let refresh = app
        .auth_refresh(&json!({"refresh_token": ada["refresh_token"]}))
        .await;
    assert_problem(refresh, 401, "unauthenticated").await;
}

#[tokio::test]
async fn a_refresh_racing_a_disable_waits_for_it_instead_of_deadlocking_and_the_session_ends() {
    let app = spawn_app().await;
    let ada = app.register("ada@example.com", "Analytical Engines").await;
    let user = text(&ada["user"], "id");
    // The legitimate refresh works.
    let first = app
        .auth_refresh(&json!({"refresh_token": ada["refresh_token"]}))
        .await;
    assert_eq!(first.status(), 200);
    let first: serde_json::Value = first.json().await.unwrap();

    // Hold the session's row, so the next refresh stops inside its transaction once it
    // holds its token; then disable the user while it waits there.
    let holder = app.db.superuser().await;
    holder.batch_execute("BEGIN").await.unwrap();
    holder
        .execute(
            "SELECT 1 FROM sessions WHERE user_id = $1::text::uuid FOR UPDATE",
            &[&user],
        )
        .await
        .unwrap();
    let refresh = {
        let body = json!({"refresh_token": first["refresh_token"]});
        let app = &app;
        async move { app.auth_refresh(&body).await }
    };
    let disable = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let superuser = app.db.superuser().await;
        superuser
            .execute(
                "UPDATE users SET status = 'disabled' WHERE id = $1::text::uuid",
                &[&user],
            )
            .await
    };
    let release = async {
        // Longer than deadlock_timeout (1 s): a lock cycle would be found by now.
        tokio::time::sleep(std::time::Duration::from_millis(1_800)).await;
        holder.batch_execute("COMMIT").await.unwrap();
    };
    let (refreshed, disabled, ()) = tokio::join!(refresh, disable, release);
    disabled.expect("the disable is not a deadlock's victim");
    let status = refreshed.status();
    assert!(
        status == 200 || status == 401,
        "the refresh either finished before the disable or was refused: {status}"
    );
    // Whichever came first, the session is over.
    assert_problem(
        app.me_get(&text(&first, "access_token")).await,
        401,
        "unauthenticated",
    )
    .await;
    if status == 200 {
        let pair: serde_json::Value = refreshed.json().await.unwrap();
        assert_problem(
            app.me_get(&text(&pair, "access_token")).await,
            401,
            "unauthenticated",
        )
        .await;
    }
}

#[tokio::test]
async fn a_disabled_users_access_tokens_stop_working_at_once() {
    let app = spawn_app().await;
    let ada = app.tenant("ada@example.com", "Analytical Engines").await;
    assert_eq!(app.me_get(&ada.token).await.status(), 200);

    // Disabled by the platform (no API yet: a later issue's platform administration).
    app.db
        .superuser()
        .await
        .execute(
            "UPDATE users SET status = 'disabled' WHERE id = $1::text::uuid",
            &[&ada.owner_id],
        )
        .await
        .unwrap();
    assert_problem(app.me_get(&ada.token).await, 401, "unauthenticated").await;
    assert_problem(
        app.login("ada@example.com", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
}
