//! `X-Store-ID` is checked on every operation that takes a bearer token (docs/api.md,
//! "Stores"): a store of another tenant, or one the caller cannot reach, is 403
//! `store_access_denied` wherever it is named, not only on store-scoped operations.

use serde_json::json;

use crate::helpers::{TestApp, assert_problem, spawn_app, text};

/// Operations that take no store themselves, each as a caller would call it.
fn tenant_wide_reads<'a>(app: &'a TestApp, token: &str) -> Vec<crate::helpers::Call<'a>> {
    vec![
        app.me_get(token),
        app.tenants_get_current(token),
        app.users_list(token),
        app.invitations_list(token),
        app.stores_list(token),
        app.roles_list(token),
        app.permissions_list(token),
        app.products_list(token),
        app.audit_events_list(token),
    ]
}

#[tokio::test]
async fn a_store_of_another_tenant_in_x_store_id_is_refused_on_every_operation() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let globex = app.tenant("owner@globex.example", "Globex").await;
    let own = app.store(&acme.token, "Main").await;
    let foreign = app.store(&globex.token, "Elsewhere").await;
    for call in tenant_wide_reads(&app, &acme.token) {
        let name = call.to_string();
        let allowed = call.clone().in_store(&own).await;
        assert_eq!(allowed.status(), 200, "{name} with the caller's own store");
        assert_problem(call.in_store(&foreign).await, 403, "store_access_denied").await;
    }
    let apple = json!({"sku": "A-1", "name": "Apple", "price_cents": 100});
    let created = app
        .products_create(&acme.token, &apple)
        .in_store(&own)
        .await;
    assert_eq!(created.status(), 201);
    let pear = json!({"sku": "A-2", "name": "Pear", "price_cents": 100});
    let refused = app
        .products_create(&acme.token, &pear)
        .in_store(&foreign)
        .await;
    assert_problem(refused, 403, "store_access_denied").await;
    // The refused request wrote nothing.
    let listed: serde_json::Value = app.products_list(&acme.token).await.json().await.unwrap();
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
    assert_eq!(
        app.inventory_list(&staff).in_store(&north).await.status(),
        200
    );
    let refused = app.inventory_list(&staff).in_store(&south).await;
    assert_problem(refused, 403, "store_access_denied").await;
    // On an operation that is not store-scoped too: the reach is checked first.
    assert_eq!(app.me_get(&staff).in_store(&north).await.status(), 200);
    let refused = app.me_get(&staff).in_store(&south).await;
    assert_problem(refused, 403, "store_access_denied").await;
}

#[tokio::test]
async fn an_x_store_id_that_is_not_a_uuid_is_a_bad_request() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let response = app.products_list(&acme.token).in_store("store-1").await;
    let body = assert_problem(response, 400, "bad_request").await;
    assert!(text(&body, "detail").contains("X-Store-ID"), "{body}");
}

#[tokio::test]
async fn a_path_store_is_the_one_acted_on_and_a_named_store_must_still_be_reachable() {
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
    let rename = json!({"name": "Renamed"});
    let own = app
        .stores_update(&manager, &north, &rename)
        .in_store(&north)
        .await;
    assert_eq!(own.status(), 200, "a Store Manager manages their own store");
    // Naming their own store does not carry their role over to another store's path.
    let other = app
        .stores_update(&manager, &south, &rename)
        .in_store(&north)
        .await;
    assert_problem(other, 404, "not_found").await;
    // The Owner acting on a store of theirs while naming another tenant's: refused.
    let named_foreign = app
        .stores_update(&acme.token, &south, &rename)
        .in_store(&foreign)
        .await;
    assert_problem(named_foreign, 403, "store_access_denied").await;
    let unchanged: serde_json::Value = app
        .stores_get(&acme.token, &south)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unchanged["name"], "South");
}

#[tokio::test]
async fn a_role_held_in_one_store_does_not_act_tenant_wide_when_the_request_names_that_store() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let north = app.store(&acme.token, "North").await;
    let (_, manager) = app
        .member(
            &acme.token,
            "manager@acme.example",
            "Store Manager",
            Some(&north),
        )
        .await;
    let product = app.product(&acme.token, "A-1").await;
    // In their store, a Store Manager does what the role allows there.
    let adjust = json!({"product_id": product, "delta": 5, "reason": "delivery"});
    let adjusted = app
        .inventory_adjust(&manager, &adjust)
        .in_store(&north)
        .await;
    assert_eq!(adjusted.status(), 201);
    let renamed = app
        .stores_update(&manager, &north, &json!({"name": "North, renamed"}))
        .await;
    assert_eq!(renamed.status(), 200);
    // Naming that store on a tenant-wide operation does not make the role tenant-wide:
    // products.create and users.view are the role's, in North only.
    let created = app
        .products_create(
            &manager,
            &json!({"sku": "B-1", "name": "Pear", "price_cents": 1}),
        )
        .in_store(&north)
        .await;
    let body = assert_problem(created, 403, "forbidden").await;
    assert_eq!(body["permission"], "products.create");
    let users = app.users_list(&manager).in_store(&north).await;
    assert_problem(users, 403, "forbidden").await;
    let tenant = app.tenants_get_current(&manager).in_store(&north).await;
    assert_problem(tenant, 403, "forbidden").await;
}
