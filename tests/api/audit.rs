//! API.md "Audit": the trail every write leaves, read newest first.

use reqwest::Method;
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
    app.send(
        Method::PATCH,
        &format!("/api/v1/users/{member_id}"),
        Some(&acme.token),
        Some(&json!({"status": "suspended"})),
        None,
    )
    .await;
    let events: serde_json::Value = app
        .get_as(&acme.token, "/api/v1/audit-events")
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
    let failed = app
        .send(
            Method::DELETE,
            &format!("/api/v1/users/{}", acme.owner_id),
            Some(&acme.token),
            None,
            None,
        )
        .await;
    assert_eq!(failed.status(), 409);
    let after: serde_json::Value = app
        .get_as(&acme.token, "/api/v1/audit-events")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["items"].as_array().unwrap().len(), 4);

    let (_, staff) = app
        .member(&acme.token, "other@acme.example", "Staff", None)
        .await;
    let body = assert_problem(
        app.get_as(&staff, "/api/v1/audit-events").await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(body["permission"], "audit.view");
}
