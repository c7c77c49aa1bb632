//! In-app notifications: private to their recipient within a tenant, written by real
//! flows (an accepted invitation notifies its inviter).

use rowguard::platform::db::Scope;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Tenant, TestApp, assert_problem, spawn_app, text};

async fn json_of(response: reqwest::Response) -> Value {
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
}

async fn listed(app: &TestApp, token: &str) -> Vec<Value> {
    json_of(app.notifications_list(token).await).await["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn unread_count(app: &TestApp, token: &str) -> i64 {
    json_of(app.notifications_unread_count(token).await).await["count"]
        .as_i64()
        .unwrap()
}

/// Acme, whose Owner has one notification: `member@acme.example` accepted the Owner's
/// invitation. Returns the tenant, the member (id, token) and the notification's id.
async fn acme_with_an_accepted_invitation(app: &TestApp) -> (Tenant, (String, String), String) {
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let member = app
        .member(&acme.token, "member@acme.example", "Staff", None)
        .await;
    let items = listed(app, &acme.token).await;
    assert_eq!(items.len(), 1, "{items:?}");
    let notification = text(&items[0], "id");
    (acme, member, notification)
}

fn uuid(text: &str) -> Uuid {
    text.parse().unwrap()
}

#[tokio::test]
async fn an_accepted_invitation_notifies_the_inviter() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (member_id, member_token) = app
        .member(&acme.token, "member@acme.example", "Staff", None)
        .await;
    let items = listed(&app, &acme.token).await;
    assert_eq!(items.len(), 1, "{items:?}");
    let notification = &items[0];
    assert_eq!(notification["kind"], "invitation.accepted");
    assert_eq!(notification["data"]["user_id"], member_id.as_str());
    assert!(notification["data"]["invitation_id"].is_string());
    assert!(
        notification["body"]
            .as_str()
            .unwrap()
            .contains("member@acme.example")
    );
    assert!(!text(notification, "title").is_empty());
    assert!(notification["read_at"].is_null());
    assert!(notification["created_at"].is_string());
    assert!(listed(&app, &member_token).await.is_empty());
}

#[tokio::test]
async fn another_member_of_the_same_tenant_can_neither_see_nor_read_it() {
    let app = spawn_app().await;
    let (acme, (_, member_token), notification) = acme_with_an_accepted_invitation(&app).await;
    assert!(listed(&app, &member_token).await.is_empty());
    assert_eq!(unread_count(&app, &member_token).await, 0);
    assert_problem(
        app.notifications_read(&member_token, &notification).await,
        404,
        "not_found",
    )
    .await;
    // The refused read changed nothing; the owner's own works.
    assert_eq!(unread_count(&app, &acme.token).await, 1);
    let read = json_of(app.notifications_read(&acme.token, &notification).await).await;
    assert_eq!(read["id"], notification.as_str());
    assert!(read["read_at"].is_string());
}

#[tokio::test]
async fn a_member_of_another_tenant_gets_404_for_it() {
    let app = spawn_app().await;
    let (_, _, notification) = acme_with_an_accepted_invitation(&app).await;
    let globex = app.tenant("owner@globex.example", "Globex").await;
    assert!(listed(&app, &globex.token).await.is_empty());
    assert_problem(
        app.notifications_read(&globex.token, &notification).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn reading_a_notification_twice_keeps_the_first_read_at() {
    let app = spawn_app().await;
    let (acme, _, notification) = acme_with_an_accepted_invitation(&app).await;
    let first = json_of(app.notifications_read(&acme.token, &notification).await).await;
    let second = json_of(app.notifications_read(&acme.token, &notification).await).await;
    assert!(first["read_at"].is_string(), "{first}");
    assert_eq!(first["read_at"], second["read_at"]);
    assert_eq!(
        listed(&app, &acme.token).await[0]["read_at"],
        first["read_at"]
    );
}

#[tokio::test]
async fn the_unread_filter_and_the_unread_count_leave_out_read_notifications() {
    let app = spawn_app().await;
    let (acme, _, first) = acme_with_an_accepted_invitation(&app).await;
    app.member(&acme.token, "second@acme.example", "Staff", None)
        .await;
    assert_eq!(unread_count(&app, &acme.token).await, 2);
    json_of(app.notifications_read(&acme.token, &first).await).await;

    let unread = json_of(
        app.notifications_list(&acme.token)
            .query("unread", true)
            .await,
    )
    .await;
    let unread = unread["items"].as_array().unwrap();
    assert_eq!(unread.len(), 1, "{unread:?}");
    assert_ne!(unread[0]["id"], first.as_str());
    assert!(unread[0]["read_at"].is_null());
    assert_eq!(unread_count(&app, &acme.token).await, 1);
    assert_eq!(listed(&app, &acme.token).await.len(), 2);
}

#[tokio::test]
async fn read_all_marks_every_notification_of_the_caller_read() {
    let app = spawn_app().await;
    let (acme, _, _) = acme_with_an_accepted_invitation(&app).await;
    app.member(&acme.token, "second@acme.example", "Staff", None)
        .await;
    let response = app.notifications_read_all(&acme.token).await;
    assert_eq!(response.status(), 204);
    assert_eq!(unread_count(&app, &acme.token).await, 0);
    let items = listed(&app, &acme.token).await;
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|item| item["read_at"].is_string()));
}

#[tokio::test]
async fn the_cursor_pages_through_notifications_newest_first() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    for email in ["one@acme.example", "two@acme.example", "three@acme.example"] {
        app.member(&acme.token, email, "Staff", None).await;
    }
    let first = json_of(app.notifications_list(&acme.token).limit(2).await).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = text(&first, "next_cursor");
    let second = json_of(
        app.notifications_list(&acme.token)
            .limit(2)
            .cursor(&cursor)
            .await,
    )
    .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());

    let pages: Vec<&Value> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["items"].as_array().unwrap())
        .collect();
    let bodies: Vec<&str> = pages
        .iter()
        .map(|item| item["body"].as_str().unwrap())
        .collect();
    for (body, email) in
        bodies
            .iter()
            .zip(["three@acme.example", "two@acme.example", "one@acme.example"])
    {
        assert!(body.contains(email), "{bodies:?}: newest first");
    }
}

#[tokio::test]
async fn the_policy_hides_a_notification_from_another_user_of_the_same_tenant() {
    let app = spawn_app().await;
    let (acme, (member_id, _), notification) = acme_with_an_accepted_invitation(&app).await;
    let count = "SELECT count(*) FROM notifications WHERE id = $1";
    let id = uuid(&notification);

    // As the runtime role, in the owner's context: their row is there.
    let (tx, _) = app
        .database
        .begin(&Scope::tenant(uuid(&acme.id), uuid(&acme.owner_id)))
        .await
        .unwrap();
    let seen: i64 = tx.query_one(count, &[&id]).await.unwrap().get(0);
    assert_eq!(seen, 1);
    tx.rollback().await;

    // Same tenant, another user's context: not visible, not updatable.
    let (tx, _) = app
        .database
        .begin(&Scope::tenant(uuid(&acme.id), uuid(&member_id)))
        .await
        .unwrap();
    let seen: i64 = tx.query_one(count, &[&id]).await.unwrap().get(0);
    assert_eq!(seen, 0);
    let updated = tx
        .execute(
            "UPDATE notifications SET read_at = now() WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(updated, 0);
    tx.rollback().await;
}

#[tokio::test]
async fn a_member_can_notify_another_member_of_the_tenant_but_not_a_user_of_another() {
    let app = spawn_app().await;
    let (acme, (member_id, _), _) = acme_with_an_accepted_invitation(&app).await;
    let globex = app.tenant("owner@globex.example", "Globex").await;
    let as_member = Scope::tenant(uuid(&acme.id), uuid(&member_id));

    // The INSERT policy checks only the tenant: a flow of the member notifies the owner,
    // who sees it; the writer cannot read it back.
    let (tx, _) = app.database.begin(&as_member).await.unwrap();
    let id = rowguard::modules::notifications::notify(
        &tx,
        uuid(&acme.owner_id),
        "roles.changed",
        "Written by another member",
        "",
        &json!({}),
    )
    .await
    .unwrap();
    let seen: i64 = tx
        .query_one("SELECT count(*) FROM notifications WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(seen, 0, "the writer reads another member's notification");
    tx.commit().await.unwrap();
    let items = listed(&app, &acme.token).await;
    assert!(items.iter().any(|item| item["id"] == id.to_string()));

    // A user who is not a member of the context's tenant cannot be a recipient.
    let (tx, _) = app.database.begin(&as_member).await.unwrap();
    let refused = rowguard::modules::notifications::notify(
        &tx,
        uuid(&globex.owner_id),
        "roles.changed",
        "To another tenant",
        "",
        &json!({}),
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(rowguard::error::Error::Constraint {
                kind: rowguard::error::ConstraintKind::ForeignKey,
                ..
            })
        ),
        "{refused:?}"
    );
    tx.rollback().await;
}
