//! docs/api.md "Stores", and store-scoped users seeing only their stores and inventory.

use serde_json::json;

use crate::helpers::{assert_problem, spawn_app, text};

#[tokio::test]
async fn stores_can_be_created_read_changed_and_deleted() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let created = app
        .stores_create(
            &acme.token,
            &json!({"name": "Main street", "code": "MAIN", "address": "1 Main St"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    assert_eq!(created["code"], "MAIN");
    assert_eq!(created["status"], "active");
    let store = text(&created, "id");

    let fetched: serde_json::Value = app
        .stores_get(&acme.token, &store)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["name"], "Main street");
    let changed = app
        .stores_update(
            &acme.token,
            &store,
            &json!({"name": "High street", "status": "archived"}),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let changed: serde_json::Value = changed.json().await.unwrap();
    assert_eq!(
        (changed["name"].as_str(), changed["code"].as_str()),
        (Some("High street"), Some("MAIN"))
    );
    assert_eq!(changed["status"], "archived");

    assert_eq!(app.stores_delete(&acme.token, &store).await.status(), 204);
    assert_problem(app.stores_get(&acme.token, &store).await, 404, "not_found").await;
    assert_problem(
        app.stores_delete(&acme.token, &store).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_store_code_is_unique_in_its_tenant_and_fields_are_validated() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let globex = app.tenant("owner@globex.example", "Globex").await;
    let body = json!({"name": "Main", "code": "MAIN"});
    assert_eq!(app.stores_create(&acme.token, &body).await.status(), 201);
    assert_problem(app.stores_create(&acme.token, &body).await, 409, "conflict").await;
    assert_eq!(
        app.stores_create(&globex.token, &body).await.status(),
        201,
        "another tenant may"
    );
    let bad = app
        .stores_create(&acme.token, &json!({"name": "", "code": "has spaces"}))
        .await;
    let problem = assert_problem(bad, 422, "validation_failed").await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn members_are_linked_to_and_unlinked_from_stores() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let store = app.store(&acme.token, "Main").await;
    let (member, _) = app
        .member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    assert_eq!(
        app.store_users_put(&acme.token, &store, &member)
            .await
            .status(),
        204
    );
    assert_eq!(
        app.store_users_put(&acme.token, &store, &member)
            .await
            .status(),
        204,
        "idempotent"
    );
    let listed: serde_json::Value = app
        .store_users_list(&acme.token, &store)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["id"], member.as_str());
    assert_eq!(
        app.store_users_delete(&acme.token, &store, &member)
            .await
            .status(),
        204
    );
    assert_problem(
        app.store_users_delete(&acme.token, &store, &member).await,
        404,
        "not_found",
    )
    .await;
    let stranger = uuid::Uuid::new_v4();
    assert_problem(
        app.store_users_put(&acme.token, &store, stranger).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_user_whose_roles_are_all_store_scoped_sees_only_their_stores() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let north = app.store(&acme.token, "North").await;
    let south = app.store(&acme.token, "South").await;
    let (_, clerk) = app
        .member(
            &acme.token,
            "clerk@acme.example",
            "Store Manager",
            Some(&north),
        )
        .await;

    let all: serde_json::Value = app.stores_list(&acme.token).await.json().await.unwrap();
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        2,
        "the Owner sees every store"
    );
    let theirs: serde_json::Value = app.stores_list(&clerk).await.json().await.unwrap();
    let ids: Vec<&str> = theirs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [north.as_str()]);
    assert_eq!(app.stores_get(&clerk, &north).await.status(), 200);
    assert_problem(app.stores_get(&clerk, &south).await, 404, "not_found").await;

    // X-Store-ID: their store works; another store, or one that does not exist, is 403.
    let own = app.inventory_list(&clerk).in_store(&north).await;
    assert_eq!(own.status(), 200);
    for store in [south, uuid::Uuid::new_v4().to_string()] {
        let other = app.inventory_list(&clerk).in_store(&store).await;
        assert_problem(other, 403, "store_access_denied").await;
    }
}

#[tokio::test]
async fn a_store_of_another_tenant_in_x_store_id_answers_403_store_access_denied() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let globex = app.tenant("owner@globex.example", "Globex").await;
    let theirs = app.store(&globex.token, "Globex HQ").await;
    let response = app.inventory_list(&acme.token).in_store(&theirs).await;
    assert_problem(response, 403, "store_access_denied").await;
}

#[tokio::test]
async fn a_store_manager_manages_their_own_store_and_no_other() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let north = app.store(&acme.token, "North").await;
    let south = app.store(&acme.token, "South").await;
    let (_, manager) = app
        .member(
            &acme.token,
            "manager@acme.example",
            "Store Manager",
            Some(&north),
        )
        .await;
    let rename = json!({"name": "North (renovated)"});
    let own = app.stores_update(&manager, &north, &rename).await;
    assert_eq!(own.status(), 200);
    let users = app.store_users_list(&manager, &north).await;
    assert_eq!(users.status(), 200);
    let other = app.stores_update(&manager, &south, &rename).await;
    assert_problem(other, 404, "not_found").await;
    // The Owner can still reach an archived store to bring it back.
    let archive = json!({"status": "archived"});
    assert_eq!(
        app.stores_update(&acme.token, &south, &archive)
            .await
            .status(),
        200
    );
    let revive = json!({"status": "active"});
    assert_eq!(
        app.stores_update(&acme.token, &south, &revive)
            .await
            .status(),
        200
    );
}
