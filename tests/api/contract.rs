//! What a black-box check of the contract (docs/api.md) found, each tried over HTTP: the
//! store header checked on every operation that takes a bearer token, a `detail` in
//! every problem, revoked invitations leaving the default list, a bad refresh token
//! named as such.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{assert_problem, spawn_app, text};

/// Operations that take no store themselves, but must refuse a store the caller
/// cannot reach when one is named.
const TENANT_WIDE_READS: &[&str] = &[
    "/api/v1/me",
    "/api/v1/tenants/current",
    "/api/v1/users",
    "/api/v1/invitations",
    "/api/v1/stores",
    "/api/v1/roles",
    "/api/v1/permissions",
    "/api/v1/products",
    "/api/v1/audit-events",
];

#[tokio::test]
async fn a_store_of_another_tenant_in_x_store_id_is_refused_on_every_operation() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let globex = app.tenant("owner@globex.example", "Globex").await;
    let own = app.store(&acme.token, "Main").await;
    let foreign = app.store(&globex.token, "Elsewhere").await;
    for path in TENANT_WIDE_READS {
        let allowed = app
            .send(Method::GET, path, Some(&acme.token), None, Some(&own))
            .await;
        assert_eq!(allowed.status(), 200, "{path} with the caller's own store");
        let refused = app
            .send(Method::GET, path, Some(&acme.token), None, Some(&foreign))
            .await;
        assert_problem(refused, 403, "store_access_denied").await;
    }
    let product = json!({"sku": "A-1", "name": "Apple", "price_cents": 100});
    let created = app
        .send(
            Method::POST,
            "/api/v1/products",
            Some(&acme.token),
            Some(&product),
            Some(&own),
        )
        .await;
    assert_eq!(created.status(), 201);
    let other = json!({"sku": "A-2", "name": "Pear", "price_cents": 100});
    let refused = app
        .send(
            Method::POST,
            "/api/v1/products",
            Some(&acme.token),
            Some(&other),
            Some(&foreign),
        )
        .await;
    assert_problem(refused, 403, "store_access_denied").await;
    // Nothing was written by the refused request.
    let listed: serde_json::Value = app
        .get_as(&acme.token, "/api/v1/products")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_store_of_the_tenant_that_the_caller_cannot_reach_is_refused() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let north = app.store(&acme.token, "North").await;
    let south = app.store(&acme.token, "South").await;
    let (_, staff) = app
        .member(&acme.token, "staff@acme.example", "Staff", Some(&north))
        .await;
    let allowed = app
        .send(
            Method::GET,
            "/api/v1/products",
            Some(&staff),
            None,
            Some(&north),
        )
        .await;
    assert_eq!(allowed.status(), 200);
    let refused = app
        .send(
            Method::GET,
            "/api/v1/products",
            Some(&staff),
            None,
            Some(&south),
        )
        .await;
    assert_problem(refused, 403, "store_access_denied").await;
}

#[tokio::test]
async fn an_x_store_id_that_is_not_a_uuid_is_a_bad_request() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let response = app
        .send(
            Method::GET,
            "/api/v1/products",
            Some(&acme.token),
            None,
            Some("store-1"),
        )
        .await;
    let body = assert_problem(response, 400, "bad_request").await;
    assert!(text(&body, "detail").contains("X-Store-ID"), "{body}");
}

#[tokio::test]
async fn a_path_store_acts_on_that_store_while_a_named_store_must_still_be_reachable() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let globex = app.tenant("owner@globex.example", "Globex").await;
    let north = app.store(&acme.token, "North").await;
    let south = app.store(&acme.token, "South").await;
    let foreign = app.store(&globex.token, "Elsewhere").await;
    let (_, manager) = app
        .member(
            &acme.token,
            "manager@acme.example",
            "Store Manager",
            Some(&north),
        )
        .await;
    let rename = json!({"name": "North, renamed"});
    let own = app
        .send(
            Method::PATCH,
            &format!("/api/v1/stores/{north}"),
            Some(&manager),
            Some(&rename),
            Some(&north),
        )
        .await;
    assert_eq!(own.status(), 200, "a Store Manager manages their own store");
    // Naming their own store does not extend their role to another store's path.
    let other = app
        .send(
            Method::PATCH,
            &format!("/api/v1/stores/{south}"),
            Some(&manager),
            Some(&rename),
            Some(&north),
        )
        .await;
    assert_problem(other, 404, "not_found").await;
    // The Owner acts on a path store while naming another tenant's store: refused.
    let named_foreign = app
        .send(
            Method::PATCH,
            &format!("/api/v1/stores/{south}"),
            Some(&acme.token),
            Some(&rename),
            Some(&foreign),
        )
        .await;
    assert_problem(named_foreign, 403, "store_access_denied").await;
}

#[tokio::test]
async fn every_problem_carries_a_detail() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let missing = format!("/api/v1/products/{}", uuid::Uuid::new_v4());
    let answers = [
        (app.get_as(&acme.token, &missing).await, 404),
        (app.get("/api/v1/no-such-route").await, 404),
        (
            app.send(Method::PUT, "/health", None, None, None).await,
            405,
        ),
        (app.get("/api/v1/me").await, 401),
        (
            app.get_as(&acme.token, "/api/v1/products?limit=0").await,
            400,
        ),
    ];
    for (response, status) in answers {
        assert_eq!(response.status().as_u16(), status);
        let body: serde_json::Value = response.json().await.unwrap();
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(!detail.is_empty(), "no detail in {body}");
    }
}

#[tokio::test]
async fn a_revoked_invitation_leaves_the_default_invitation_list() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let role = app.role_id(&acme.token, "Staff").await;
    let created = app
        .post_json_as(
            &acme.token,
            "/api/v1/invitations",
            &json!({"email": "new@acme.example", "role_id": role}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let id = text(&created.json().await.unwrap(), "id");
    let ids = |list: serde_json::Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| text(i, "id"))
            .collect()
    };
    let listed = app
        .get_as(&acme.token, "/api/v1/invitations")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(listed), std::slice::from_ref(&id));

    let path = format!("/api/v1/invitations/{id}");
    let revoked = app
        .send(Method::DELETE, &path, Some(&acme.token), None, None)
        .await;
    assert_eq!(revoked.status(), 204);
    let listed = app
        .get_as(&acme.token, "/api/v1/invitations")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        ids(listed).is_empty(),
        "a revoked invitation is still listed"
    );
    let revoked: serde_json::Value = app
        .get_as(&acme.token, "/api/v1/invitations?status=revoked")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(revoked.clone()), [id]);
    assert_eq!(revoked["items"][0]["status"], "revoked");
}

#[tokio::test]
async fn a_bad_refresh_token_is_refused_as_a_refresh_token() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com", "Acme").await;
    let good = text(&session, "refresh_token");
    let rotated = app
        .post_json("/api/v1/auth/refresh", &json!({"refresh_token": good}))
        .await;
    assert_eq!(rotated.status(), 200, "the legitimate refresh works");
    for bad in ["not-a-token", &"A".repeat(43)] {
        let refused = app
            .post_json("/api/v1/auth/refresh", &json!({"refresh_token": bad}))
            .await;
        let body = assert_problem(refused, 401, "unauthenticated").await;
        let detail = text(&body, "detail");
        assert!(detail.contains("refresh token"), "{detail}");
        assert!(!detail.contains("access token"), "{detail}");
    }
}
