//! Email end to end: the server's worker delivers what the flows enqueue to a real
//! SMTP conversation (a sink in the harness), the links work, a delivered token leaves
//! the database, SMTP trouble never fails the request that caused the email, and a
//! refused address ends `dead`, where the platform admin sees it. Without an SMTP URL
//! the link is in the log.

use std::time::Duration;

use rowguard::platform::db::Scope;
use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, SmtpSink, TestApp, assert_problem, spawn_app, spawn_app_with, text,
};

const WAIT: Duration = Duration::from_secs(20);

/// A server with one worker, sending to `smtp_url`.
async fn app_sending_to(smtp_url: &str) -> TestApp {
    let url = smtp_url.to_string();
    spawn_app_with(move |settings| {
        settings.smtp_url = Some(url.as_str().into());
        settings.workers = 1;
        settings.public_url = Some("https://console.example".into());
    })
    .await
}

async fn job_states(app: &TestApp, template: &str) -> Vec<(String, i32, Option<String>)> {
    app.db
        .superuser()
        .await
        .query(
            "SELECT state, attempts, last_error FROM jobs
             WHERE kind = 'email.send' AND payload->>'template' = $1 ORDER BY id",
            &[&template],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
}

/// Waits until the newest `template` email job is in `state`.
async fn until_job_is(app: &TestApp, template: &str, state: &str) -> (String, i32, Option<String>) {
    for _ in 0..400 {
        if let Some(last) = job_states(app, template).await.pop()
            && last.0 == state
        {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the {template} job never became {state}: {:?}",
        job_states(app, template).await
    );
}

#[tokio::test]
async fn an_invitation_arrives_by_email_and_its_link_accepts_it() {
    let sink = SmtpSink::start().await;
    let app = app_sending_to(&sink.url()).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let role_id = app.role_id(&acme.token, "Staff").await;
    let invited = app
        .invitations_create(
            &acme.token,
            &json!({"email": "grace@example.com", "role_id": role_id}),
        )
        .await;
    assert_eq!(invited.status(), 201);

    let mail = sink
        .wait_for_link(
            "grace@example.com",
            "/console/accept-invitation?token=",
            WAIT,
        )
        .await;
    assert!(mail.subject.contains("Acme"), "{}", mail.subject);
    assert!(mail.html.contains("Acme") && mail.text.contains("Staff"));
    let link = mail.link("/console/accept-invitation?token=");
    assert!(
        link.starts_with("https://console.example/console/accept-invitation?token="),
        "{link}"
    );
    let accepted = app
        .auth_accept_invitation(
            &json!({"token": mail.token(), "password": PASSWORD, "full_name": "Grace Hopper"}),
        )
        .await;
    assert_eq!(accepted.status(), 200);
    let session: Value = accepted.json().await.unwrap();
    assert_eq!(text(&session, "tenant_id"), acme.id);
}

#[tokio::test]
async fn a_password_reset_arrives_by_email_and_its_link_sets_the_new_password() {
    let sink = SmtpSink::start().await;
    let app = app_sending_to(&sink.url()).await;
    app.register("ada@example.com", "Analytical Engines").await;
    let asked = app
        .auth_forgot_password(&json!({"email": "ada@example.com"}))
        .await;
    assert_eq!(asked.status(), 202);

    let mail = sink
        .wait_for_link("ada@example.com", "/console/reset-password?token=", WAIT)
        .await;
    let reset = app
        .auth_reset_password(
            &json!({"token": mail.token(), "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(reset.status(), 204);
    assert_eq!(
        app.login("ada@example.com", "a brand new passphrase")
            .await
            .status(),
        200
    );
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 401);
}

#[tokio::test]
async fn a_delivered_emails_token_no_longer_stays_in_the_database() {
    let sink = SmtpSink::start().await;
    let app = app_sending_to(&sink.url()).await;
    app.register("ada@example.com", "Analytical Engines").await;
    app.auth_forgot_password(&json!({"email": "ada@example.com"}))
        .await;
    let mail = sink
        .wait_for_link("ada@example.com", "/console/reset-password?token=", WAIT)
        .await;
    until_job_is(&app, "password_reset", "succeeded").await;

    let superuser = app.db.superuser().await;
    let token = mail.token();
    // Nowhere in the queue, nor anywhere else in the jobs' rows: only its hash remains.
    let anywhere: i64 = superuser
        .query_one(
            "SELECT count(*) FROM jobs WHERE jobs::text LIKE '%' || $1 || '%'",
            &[&token],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(anywhere, 0);
    let secrets: i64 = superuser
        .query_one(
            "SELECT count(*) FROM jobs WHERE state = 'succeeded' AND payload ? 'secret'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(secrets, 0);
}

#[tokio::test]
async fn registering_sends_a_verification_link_that_verifies_the_address_once() {
    let sink = SmtpSink::start().await;
    let app = app_sending_to(&sink.url()).await;
    let session = app.register("ada@example.com", "Analytical Engines").await;
    let token = text(&session, "access_token");
    assert_eq!(session["user"]["email_verified"], false);

    let mail = sink
        .wait_for_link("ada@example.com", "/console/verify-email?token=", WAIT)
        .await;
    let verified = app.auth_verify_email(&json!({"token": mail.token()})).await;
    assert_eq!(verified.status(), 204);
    let me: Value = app.me_get(&token).await.json().await.unwrap();
    assert_eq!(me["user"]["email_verified"], true);
    // Single use.
    let again = app.auth_verify_email(&json!({"token": mail.token()})).await;
    assert_problem(again, 401, "unauthenticated").await;
}

#[tokio::test]
async fn a_member_can_ask_for_a_new_verification_link() {
    let sink = SmtpSink::start().await;
    let app = app_sending_to(&sink.url()).await;
    let session = app.register("ada@example.com", "Analytical Engines").await;
    let token = text(&session, "access_token");
    sink.wait_for_link("ada@example.com", "/console/verify-email?token=", WAIT)
        .await;

    let asked = app.me_send_verification_email(&token).await;
    assert_eq!(asked.status(), 202);
    for _ in 0..400 {
        let links = sink
            .messages()
            .iter()
            .filter(|mail| mail.text.contains("/console/verify-email?token="))
            .count();
        if links == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tokens: Vec<String> = sink
        .messages()
        .iter()
        .filter(|mail| mail.text.contains("/console/verify-email?token="))
        .map(|mail| mail.token())
        .collect();
    assert_eq!(tokens.len(), 2, "a second link arrives");
    assert_ne!(tokens[0], tokens[1]);
    // The newer link works.
    assert_eq!(
        app.auth_verify_email(&json!({"token": tokens[1]}))
            .await
            .status(),
        204
    );
}

#[tokio::test]
async fn with_smtp_down_the_request_succeeds_and_its_email_waits_for_a_retry() {
    let app = app_sending_to(&SmtpSink::unused_url()).await;
    app.register("ada@example.com", "Analytical Engines").await;
    let asked = app
        .auth_forgot_password(&json!({"email": "ada@example.com"}))
        .await;
    assert_eq!(asked.status(), 202);

    let (_, attempts, error) = until_job_is(&app, "password_reset", "failed").await;
    // Failed, not dead: worth another attempt. At least one: the retry is due 1 to 2
    // seconds later, and on a loaded machine the poll above can first see the state
    // after the second attempt failed too (seen once in a full run on 2 cores).
    assert!(attempts >= 1, "{attempts} attempts");
    assert!(
        !error.unwrap_or_default().is_empty(),
        "the failure is recorded"
    );
    let due_later: bool = app
        .db
        .superuser()
        .await
        .query_one(
            "SELECT run_at >= created_at + interval '900 milliseconds' FROM jobs
             WHERE payload->>'template' = 'password_reset'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // The backoff after a first attempt is between 1 and 2 seconds (longer after
    // later ones).
    assert!(due_later, "retried after a backoff");
}

#[tokio::test]
async fn an_address_the_smtp_server_refuses_ends_dead_and_the_platform_admin_sees_and_retries_it() {
    let sink = SmtpSink::start().await;
    sink.refuse("nobody@acme.example");
    let app = app_sending_to(&sink.url()).await;
    let bootstrap = app
        .auth_bootstrap(&json!({"email": "root@example.com", "password": PASSWORD, "full_name": "Root", "tenant_name": "Platform"}))
        .await;
    assert_eq!(bootstrap.status(), 201);
    let admin: Value = bootstrap.json().await.unwrap();
    let admin = text(&admin, "access_token");
    let role_id = app.role_id(&admin, "Staff").await;
    for email in ["nobody@acme.example", "grace@acme.example"] {
        let invited = app
            .invitations_create(&admin, &json!({"email": email, "role_id": role_id}))
            .await;
        assert_eq!(invited.status(), 201);
    }
    // The good address is delivered; the refused one is dead at its first attempt.
    sink.wait_for("grace@acme.example", WAIT).await;
    let mut dead = Value::Null;
    for _ in 0..400 {
        let listed: Value = app
            .platform_jobs_list(&admin)
            .query("state", "dead")
            .await
            .json()
            .await
            .unwrap();
        if !listed["items"].as_array().unwrap().is_empty() {
            dead = listed;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let items = dead["items"].as_array().expect("a dead job is listed");
    assert_eq!(items.len(), 1, "{dead}");
    let job = &items[0];
    assert_eq!(job["kind"], "email.send");
    assert_eq!(job["payload"]["to"], "nobody@acme.example");
    assert_eq!(job["attempts"], 1);
    assert!(job["last_error"].as_str().unwrap().contains("550"), "{job}");
    assert!(
        job["payload"].get("secret").is_none(),
        "the token is not shown: {job}"
    );

    let retried = app
        .platform_jobs_retry(&admin, job["id"].as_i64().unwrap())
        .await;
    assert_eq!(retried.status(), 200);
    let retried: Value = retried.json().await.unwrap();
    assert_eq!(retried["state"], "queued");
    assert!(
        retried["max_attempts"].as_i64().unwrap() >= 2,
        "one more attempt: {retried}"
    );
}

#[tokio::test]
async fn the_platform_routes_refuse_a_member_who_is_not_a_platform_admin() {
    let app = spawn_app().await;
    let bootstrap = app
        .auth_bootstrap(&json!({"email": "root@example.com", "password": PASSWORD, "full_name": "Root", "tenant_name": "Platform"}))
        .await;
    let admin: Value = bootstrap.json().await.unwrap();
    assert_eq!(
        app.platform_jobs_list(&text(&admin, "access_token"))
            .await
            .status(),
        200
    );

    // The Owner of their own tenant is no platform admin.
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let refused = app.platform_jobs_list(&acme.token).await;
    let body = assert_problem(refused, 403, "forbidden").await;
    assert_eq!(body["permission"], "platform_admin");
    let retry = app.platform_jobs_retry(&acme.token, 1).await;
    assert_problem(retry, 403, "forbidden").await;
}

#[tokio::test]
async fn accepting_an_invitation_emails_the_inviter() {
    let sink = SmtpSink::start().await;
    let app = app_sending_to(&sink.url()).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    app.member(&acme.token, "grace@example.com", "Staff", None)
        .await;
    let told = sink
        .wait_for_link("owner@acme.example", "accepted your invitation", WAIT)
        .await;
    assert!(
        told.subject.contains("grace@example.com"),
        "{}",
        told.subject
    );
    assert!(told.text.contains("https://console.example/console"));
}

#[tokio::test]
async fn without_an_smtp_url_the_reset_link_is_written_to_the_log() {
    // The server enqueues (no workers); `rowguard jobs run` delivers, to its log.
    let app = spawn_app().await;
    app.register("ada@example.com", "Analytical Engines").await;
    app.auth_forgot_password(&json!({"email": "ada@example.com"}))
        .await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_rowguard"))
        .args(["jobs", "run", "notifications.deliver"])
        .env("DATABASE_URL", &app.db.url)
        .env("RUST_LOG", "info")
        .env_remove("ROWGUARD_SMTP_URL")
        .output()
        .await
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{log}");
    let start = log
        .find("/console/reset-password?token=")
        .unwrap_or_else(|| panic!("no reset link in the log:\n{log}"));
    let token: String = log[start + "/console/reset-password?token=".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let reset = app
        .auth_reset_password(&json!({"token": token, "new_password": "a brand new passphrase"}))
        .await;
    assert_eq!(reset.status(), 204, "the logged link works");
}

/// Runs `sql` in a request transaction of `user` in `tenant`, as the request role
/// (what SQL injected into a request could do); its error, if any, and then rolls
/// back unless `commit`.
async fn as_a_request(
    app: &TestApp,
    tenant: &str,
    user: &str,
    sql: &str,
    commit: bool,
) -> Result<(), String> {
    let scope = Scope::tenant(tenant.parse().unwrap(), user.parse().unwrap());
    let (tx, _) = app.database.begin(&scope).await.unwrap();
    let result = tx.batch_execute(sql).await;
    match result {
        Ok(()) if commit => {
            tx.commit().await.unwrap();
            Ok(())
        }
        other => {
            tx.rollback().await;
            other.map_err(|error| format!("{error:?}"))
        }
    }
}

async fn queued_emails_to(app: &TestApp, to: &str) -> i64 {
    app.db
        .superuser()
        .await
        .query_one(
            "SELECT count(*) FROM jobs WHERE kind = 'email.send' AND payload->>'to' = $1",
            &[&to],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_request_cannot_send_an_email_of_its_choosing_to_an_address_of_its_choosing() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (grace, _) = app
        .member(&acme.token, "grace@acme.example", "Staff", None)
        .await;
    let (tenant, owner) = (acme.id.as_str(), acme.owner_id.as_str());
    // Legitimate: a notification's email to a member of the tenant.
    let before = queued_emails_to(&app, "grace@acme.example").await;
    let member_email = format!(
        "SELECT app.send_member_email('{grace}', 'invitation_accepted', \
         '{{\"invitee_email\": \"x@example.com\", \"tenant_name\": \"Acme\"}}')"
    );
    as_a_request(&app, tenant, owner, &member_email, true)
        .await
        .unwrap();
    assert_eq!(
        queued_emails_to(&app, "grace@acme.example").await,
        before + 1
    );

    // Any recipient, template and data: refused to requests.
    let phishing = "SELECT app.enqueue_notification('victim@external.example', 'password_reset', \
                    '{\"link\": \"https://evil.example/login\", \"expires_at\": \"soon\"}')";
    let refused = as_a_request(&app, tenant, owner, phishing, false).await;
    assert!(refused.unwrap_err().contains("permission denied"));
    // A member email to someone who is no member: nothing is sent.
    let outsider = format!(
        "SELECT app.send_member_email('{}', 'invitation_accepted', '{{}}')",
        uuid::Uuid::new_v4()
    );
    as_a_request(&app, tenant, owner, &outsider, true)
        .await
        .unwrap();
    // A member email with another template (one that carries a link): refused.
    let reset = format!("SELECT app.send_member_email('{grace}', 'password_reset', '{{}}')");
    assert!(
        as_a_request(&app, tenant, owner, &reset, false)
            .await
            .is_err()
    );
    // An invitation email without the invitation's token: nothing is sent.
    let invitation = "SELECT app.send_invitation_email(id, 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA') \
                      FROM invitations";
    as_a_request(&app, tenant, owner, invitation, true)
        .await
        .unwrap();
    assert_eq!(queued_emails_to(&app, "victim@external.example").await, 0);
    assert_eq!(
        queued_emails_to(&app, "grace@acme.example").await,
        before + 1
    );
}

#[tokio::test]
async fn a_request_cannot_plant_a_verification_token_nor_pass_the_hourly_limit() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com", "Analytical Engines").await;
    let (tenant, user) = (text(&session["tenant"], "id"), text(&session["user"], "id"));
    let links = || async {
        app.db
            .superuser()
            .await
            .query_one(
                "SELECT count(*) FROM jobs WHERE payload->>'template' = 'email_verification'",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let ask = "SELECT app.request_email_verification()";
    // Legitimate: registration sent one, and asking again sends another.
    assert_eq!(links().await, 1);
    as_a_request(&app, &tenant, &user, ask, true).await.unwrap();
    assert_eq!(links().await, 2);
    // The token is made inside the database: there is no way to hand it one.
    let planted = "SELECT app.request_email_verification('x', '\\x00'::bytea, now() + interval '100 years', 1000000)";
    let refused = as_a_request(&app, &tenant, &user, planted, false).await;
    assert!(refused.unwrap_err().contains("does not exist"));
    // Three more this hour, then no more, however asked.
    for _ in 0..6 {
        as_a_request(&app, &tenant, &user, ask, true).await.unwrap();
    }
    assert_eq!(links().await, 5);
}
