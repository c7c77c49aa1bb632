//! docs/api.md "Me".

use serde_json::json;

use crate::helpers::{PASSWORD, assert_problem, spawn_app, text};

#[tokio::test]
async fn me_shows_the_user_tenant_memberships_roles_and_permissions() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com", "First").await;
    let response = app
        .get_as(&text(&session, "access_token"), "/api/v1/me")
        .await;
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
    let own = app
        .http
        .get(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .header("X-Store-ID", own_store.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    for store in [store, uuid::Uuid::new_v4()] {
        let response = app
            .http
            .get(app.url("/api/v1/me"))
            .bearer_auth(&token)
            .header("X-Store-ID", store.to_string())
            .send()
            .await
            .unwrap();
        assert_problem(response, 403, "store_access_denied").await;
    }
    let malformed = app
        .http
        .get(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .header("X-Store-ID", "not-a-uuid")
        .send()
        .await
        .unwrap();
    assert_problem(malformed, 400, "bad_request").await;
}

#[tokio::test]
async fn patch_me_changes_the_full_name_and_validates_it() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com", "First").await;
    let token = text(&session, "access_token");
    let response = app
        .http
        .patch(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .json(&json!({"full_name": "  Ada King  "}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let user: serde_json::Value = response.json().await.unwrap();
    assert_eq!(user["full_name"], "Ada King");
    let blank = app
        .http
        .patch(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .json(&json!({"full_name": "   "}))
        .send()
        .await
        .unwrap();
    assert_problem(blank, 422, "validation_failed").await;
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com", "First").await;
    let response = app
        .post_json_as(
            &text(&session, "access_token"),
            "/api/v1/me/password",
            &json!({"current_password": "not my password", "new_password": "a brand new passphrase"}),
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
        .post_json_as(
            &text(&this, "access_token"),
            "/api/v1/me/password",
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
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": other["refresh_token"]}),
        )
        .await;
    assert_problem(other, 401, "unauthenticated").await;
    let this = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": this["refresh_token"]}),
        )
        .await;
    assert_eq!(this.status(), 200);
}
