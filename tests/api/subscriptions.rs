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
