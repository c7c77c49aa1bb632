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
