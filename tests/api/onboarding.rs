//! Onboarding (docs/api.md, "Onboarding"): a customer signs up with a plan, and
//! everything their account needs is made in one transaction.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, assert_problem, spawn_app};

fn signup(plan: &str) -> Value {
    json!({
        "email": "amina@duka.example", "password": PASSWORD, "full_name": "Amina Odhiambo",
        "tenant_name": "Duka La Amina", "plan_code": plan,
    })
}

#[tokio::test]
async fn signing_up_on_a_plan_with_a_trial_starts_the_trial_with_the_owner_and_a_session() {
    let app = spawn_app().await;
    let before = Utc::now();
    let response = app.onboarding_register(&signup("starter")).await;
    assert_eq!(response.status(), 201);
    let onboarded: Value = response.json().await.unwrap();
    assert_eq!(onboarded["user"]["email"], "amina@duka.example");
    assert_eq!(onboarded["tenant"]["name"], "Duka La Amina");
    let subscription = &onboarded["subscription"];
    assert_eq!(subscription["plan_code"], "starter");
    assert_eq!(subscription["status"], "trialing");
    let trial_end: DateTime<Utc> = subscription["trial_end"].as_str().unwrap().parse().unwrap();
    let trial = trial_end - before;
    assert!(
        trial >= TimeDelta::days(14) && trial < TimeDelta::days(14) + TimeDelta::minutes(5),
        "a 14-day trial: {trial}"
    );
    assert_eq!(subscription["plan"]["code"], "starter");

    // The session is the Owner's, on the trial's plan: its features work.
    let token = onboarded["access_token"].as_str().unwrap();
    let current: Value = app.subscriptions_current(token).await.json().await.unwrap();
    assert_eq!(current["status"], "trialing");
    let store = app.store(token, "Main").await;
    assert_eq!(
        app.inventory_list(token).in_store(&store).await.status(),
        200
    );
    let me: Value = app.me_get(token).await.json().await.unwrap();
    assert!(
        me["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "Owner"),
        "{me}"
    );
}

#[tokio::test]
async fn signing_up_queues_the_welcome_and_the_verification_emails() {
    let app = spawn_app().await;
    assert_eq!(
        app.onboarding_register(&signup("business")).await.status(),
        201
    );
    let mut templates = app.queued_templates("amina@duka.example").await;
    templates.sort();
    assert_eq!(templates, ["email_verification", "welcome"]);
    // The verification link works.
    let token = app
        .queued_token("amina@duka.example", "email_verification")
        .await;
    assert_eq!(
        app.auth_verify_email(&json!({"token": token}))
            .await
            .status(),
        204
    );
}

#[tokio::test]
async fn signing_up_on_the_free_plan_starts_it_active_without_a_trial() {
    let app = spawn_app().await;
    let response = app.onboarding_register(&signup("free")).await;
    assert_eq!(response.status(), 201);
    let onboarded: Value = response.json().await.unwrap();
    assert_eq!(onboarded["subscription"]["plan_code"], "free");
    assert_eq!(onboarded["subscription"]["status"], "active");
    assert_eq!(onboarded["subscription"]["trial_end"], Value::Null);
}

#[tokio::test]
async fn an_unknown_plan_is_refused_naming_the_field_and_nothing_is_created() {
    let app = spawn_app().await;
    let refused = app.onboarding_register(&signup("platinum")).await;
    let body = assert_problem(refused, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "plan_code");
    let users: i64 = app
        .db
        .superuser()
        .await
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 0);
    // The same sign-up with a real plan goes through.
    assert_eq!(
        app.onboarding_register(&signup("starter")).await.status(),
        201
    );
}

#[tokio::test]
async fn a_sign_up_that_fails_midway_leaves_no_user_tenant_subscription_or_email_behind() {
    let app = spawn_app().await;
    // A step after the user, the tenant and the subscription fails: the welcome email
    // is refused by a trigger, as a broken constraint would be.
    app.db
        .superuser()
        .await
        .batch_execute(
            "CREATE FUNCTION refuse_welcome() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.payload->>'template' = 'welcome' THEN
                     RAISE EXCEPTION 'refused by the test';
                 END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER refuse_welcome BEFORE INSERT ON jobs
                 FOR EACH ROW EXECUTE FUNCTION refuse_welcome();",
        )
        .await
        .unwrap();
    let failed = app.onboarding_register(&signup("starter")).await;
    assert_problem(failed, 500, "internal").await;
    let client = app.db.superuser().await;
    for table in [
        "users",
        "tenants",
        "subscriptions",
        "tenant_users",
        "roles",
        "jobs",
    ] {
        let rows: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 0, "{table}");
    }
    // Without the fault the same sign-up succeeds: the test broke only that step.
    client
        .batch_execute("DROP TRIGGER refuse_welcome ON jobs")
        .await
        .unwrap();
    assert_eq!(
        app.onboarding_register(&signup("starter")).await.status(),
        201
    );
}

#[tokio::test]
async fn signing_up_with_a_taken_email_is_refused_as_registration_is() {
    let app = spawn_app().await;
    assert_eq!(
        app.onboarding_register(&signup("starter")).await.status(),
        201
    );
    let again = app.onboarding_register(&signup("business")).await;
    assert_problem(again, 409, "conflict").await;
    let tenants: i64 = app
        .db
        .superuser()
        .await
        .query_one("SELECT count(*) FROM tenants", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(tenants, 1);
}
