//! docs/api.md "Audit": the trail every write leaves, read newest first.

use serde_json::json;

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn every_write_appends_an_audit_event_in_the_same_transaction() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let store = app.store(&acme.token, "Main street").await;
    let (member_id, _) = app
        .member(&acme.token, "staff@acme.example", "Staff", Some(&store))
        .await;
    app.users_update(&acme.token, &member_id, &json!({"status": "suspended"}))
        .await;
    let events: serde_json::Value = app
        .audit_events_list(&acme.token)
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "member.updated",
            "invitation.accepted",
            "invitation.created",
            "store.created"
        ],
        "newest first"
    );
    let suspended = &events["items"][0];
    assert_eq!(suspended["actor_user_id"], acme.owner_id.as_str());
    assert_eq!(suspended["target_id"], member_id.as_str());
    assert_eq!(suspended["details"]["before"]["status"], "active");
    assert_eq!(suspended["details"]["after"]["status"], "suspended");

    // A write that fails leaves no event behind.
    let failed = app.users_delete(&acme.token, &acme.owner_id).await;
    assert_eq!(failed.status(), 409);
    let after: serde_json::Value = app
        .audit_events_list(&acme.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["items"].as_array().unwrap().len(), 4);

    let (_, staff) = app
        .member(&acme.token, "other@acme.example", "Staff", None)
        .await;
    let body = assert_problem(app.audit_events_list(&staff).await, 403, "forbidden").await;
    assert_eq!(body["permission"], "audit.view");
}
