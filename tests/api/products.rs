//! The reference feature module: products and store inventory.

use serde_json::json;

use crate::helpers::{assert_problem, spawn_app, text};

#[tokio::test]
async fn products_can_be_created_listed_changed_and_deleted() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let created = app
        .products_create(
            &acme.token,
            &json!({"sku": "W-1", "name": "Widget", "price_cents": 1299}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    let product = text(&created, "id");
    let listed: serde_json::Value = app
        .products_list(&acme.token)
        .limit(20)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["sku"], "W-1");
    let changed: serde_json::Value = app
        .products_update(&acme.token, &product, &json!({"price_cents": 999}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (changed["price_cents"].as_i64(), changed["name"].as_str()),
        (Some(999), Some("Widget"))
    );
    assert_eq!(
        app.products_delete(&acme.token, &product).await.status(),
        204
    );
    assert_problem(
        app.products_get(&acme.token, &product).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_sku_is_unique_per_tenant_and_fields_are_validated() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let globex = app.tenant("owner@globex.example", "Globex").await;
    let body = json!({"sku": "W-1", "name": "Widget", "price_cents": 1});
    assert_eq!(app.products_create(&acme.token, &body).await.status(), 201);
    assert_problem(
        app.products_create(&acme.token, &body).await,
        409,
        "conflict",
    )
    .await;
    assert_eq!(
        app.products_create(&globex.token, &body).await.status(),
        201
    );
    let bad = app
        .products_create(
            &acme.token,
            &json!({"sku": "has space", "name": "", "price_cents": -1}),
        )
        .await;
    let problem = assert_problem(bad, 422, "validation_failed").await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_tenant_lists_only_its_own_products() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let globex = app.tenant("owner@globex.example", "Globex").await;
    app.product(&acme.token, "ACME-1").await;
    app.product(&globex.token, "GLOBEX-1").await;
    let listed: serde_json::Value = app.products_list(&acme.token).await.json().await.unwrap();
    let skus: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sku"].as_str().unwrap())
        .collect();
    assert_eq!(skus, ["ACME-1"]);
}

#[tokio::test]
async fn inventory_needs_x_store_id_and_shows_only_that_store() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let north = app.store(&acme.token, "North").await;
    let south = app.store(&acme.token, "South").await;
    let widget = app.product(&acme.token, "W-1").await;

    assert_problem(app.inventory_list(&acme.token).await, 400, "bad_request").await;
    async fn adjust(
        app: &crate::helpers::TestApp,
        token: &str,
        widget: &str,
        store: &str,
        delta: i64,
    ) -> reqwest::Response {
        app.inventory_adjust(
            token,
            &json!({"product_id": widget, "delta": delta, "reason": "delivery"}),
        )
        .in_store(store)
        .await
    }
    let first = adjust(&app, &acme.token, &widget, &north, 10).await;
    assert_eq!(first.status(), 201);
    let first: serde_json::Value = first.json().await.unwrap();
    assert_eq!(first["quantity"], 10);
    let second: serde_json::Value = adjust(&app, &acme.token, &widget, &north, -3)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["quantity"], 7);
    assert_eq!(
        adjust(&app, &acme.token, &widget, &south, 5).await.status(),
        201
    );
    assert_problem(
        adjust(&app, &acme.token, &widget, &north, -8).await,
        409,
        "conflict",
    )
    .await;

    let stock: serde_json::Value = app
        .inventory_list(&acme.token)
        .in_store(&north)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        stock["items"],
        json!([{
            "product_id": widget, "sku": "W-1", "name": "W-1", "quantity": 7,
            "updated_at": stock["items"][0]["updated_at"].clone()
        }])
    );
    let without_store = app
        .inventory_adjust(
            &acme.token,
            &json!({"product_id": widget, "delta": 1, "reason": "x"}),
        )
        .await;
    assert_problem(without_store, 400, "bad_request").await;
}

#[tokio::test]
async fn adjusting_another_tenants_product_is_refused() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let globex = app.tenant("owner@globex.example", "Globex").await;
    let store = app.store(&acme.token, "North").await;
    let theirs = app.product(&globex.token, "G-1").await;
    let ours = app.product(&acme.token, "A-1").await;
    let own = app
        .inventory_adjust(
            &acme.token,
            &json!({"product_id": ours, "delta": 1, "reason": "delivery"}),
        )
        .in_store(&store)
        .await;
    assert_eq!(own.status(), 201, "adjusting its own product works");
    let response = app
        .inventory_adjust(
            &acme.token,
            &json!({"product_id": theirs, "delta": 1, "reason": "theft"}),
        )
        .in_store(&store)
        .await;
    assert_problem(response, 422, "validation_failed").await;
}

#[tokio::test]
async fn a_store_scoped_user_sees_only_their_stores_inventory() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let north = app.store(&acme.token, "North").await;
    let south = app.store(&acme.token, "South").await;
    let widget = app.product(&acme.token, "W-1").await;
    for store in [&north, &south] {
        app.inventory_adjust(
            &acme.token,
            &json!({"product_id": widget, "delta": 4, "reason": "opening"}),
        )
        .in_store(store)
        .await;
    }
    let (_, staff) = app
        .member(&acme.token, "staff@acme.example", "Staff", Some(&north))
        .await;
    let own = app.inventory_list(&staff).in_store(&north).await;
    assert_eq!(own.status(), 200);
    let own: serde_json::Value = own.json().await.unwrap();
    assert_eq!(own["items"].as_array().unwrap().len(), 1);
    let other = app.inventory_list(&staff).in_store(&south).await;
    assert_problem(other, 403, "store_access_denied").await;
    let adjust_other = app
        .inventory_adjust(
            &staff,
            &json!({"product_id": widget, "delta": -4, "reason": "x"}),
        )
        .in_store(&south)
        .await;
    assert_problem(adjust_other, 403, "store_access_denied").await;
}
