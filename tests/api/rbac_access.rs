//! `GET /users/{id}/access` (the RBAC module's `access`): the explanation of a member's
//! access agrees with what their requests are answered, because it is the opening
//! statement's answer. Each test shows the real request's outcome beside it.

use rowguard::platform::db::Scope;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, text};

fn role_names(explained: &Value) -> Vec<(String, Option<String>)> {
    explained["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|grant| {
            (
                text(grant, "role_name"),
                grant["store_id"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_tenant_wide_role_grants_the_permission_with_or_without_a_store() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let store = app.store(&acme.token, "Main").await;
    let (admin_id, admin) = app
        .member(&acme.token, "admin@acme.example", "Admin", None)
        .await;
    assert_eq!(
        app.stores_update(&admin, &store, &json!({"name": "Main 2"}))
            .await
            .status(),
        200
    );
    for store in [None, Some(store.as_str())] {
        let explained = app
            .access_of(&acme.token, &admin_id, "stores.edit", store)
            .await;
        assert_eq!(explained["allowed"], true, "{explained}");
        assert!(explained["blocked_by"].is_null());
        assert_eq!(explained["permission"], "stores.edit");
        assert_eq!(explained["store_id"].as_str(), store);
        assert_eq!(role_names(&explained), [("Admin".to_string(), None)]);
    }
}

#[tokio::test]
async fn a_store_scoped_role_grants_the_permission_in_its_store_only() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let store = app.store(&acme.token, "Main").await;
    let (manager_id, manager) = app
        .member(
            &acme.token,
            "manager@acme.example",
            "Store Manager",
            Some(&store),
        )
        .await;
    // Their request in the store is allowed; in another store of theirs there is none.
    assert_eq!(
        app.inventory_list(&manager).in_store(&store).await.status(),
        200
    );
    let in_store = app
        .access_of(&acme.token, &manager_id, "inventory.view", Some(&store))
        .await;
    assert_eq!(in_store["allowed"], true, "{in_store}");
    assert!(in_store["blocked_by"].is_null());
    assert_eq!(
        role_names(&in_store),
        [("Store Manager".to_string(), Some(store.clone()))]
    );
    let tenant_wide = app
        .access_of(&acme.token, &manager_id, "inventory.view", None)
        .await;
    assert_eq!(tenant_wide["allowed"], false, "{tenant_wide}");
    assert!(tenant_wide["blocked_by"].is_null());
    assert!(tenant_wide["grants"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_permission_no_role_grants_is_refused_without_a_grant_or_a_block() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (staff_id, staff) = app
        .member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    assert_eq!(app.roles_list(&staff).await.status(), 403);
    let explained = app
        .access_of(&acme.token, &staff_id, "roles.view", None)
        .await;
    assert_eq!(explained["allowed"], false);
    assert!(explained["blocked_by"].is_null());
    assert!(explained["grants"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_suspended_member_is_blocked_by_member_suspended() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (admin_id, admin) = app
        .member(&acme.token, "admin@acme.example", "Admin", None)
        .await;
    assert_eq!(
        app.access_of(&acme.token, &admin_id, "stores.view", None)
            .await["allowed"],
        true
    );
    assert_eq!(
        app.users_update(&acme.token, &admin_id, &json!({"status": "suspended"}))
            .await
            .status(),
        200
    );
    assert!(app.stores_list(&admin).await.status().is_client_error());
    let explained = app
        .access_of(&acme.token, &admin_id, "stores.view", None)
        .await;
    assert_eq!(explained["allowed"], false);
    assert_eq!(explained["blocked_by"], "member_suspended");
    // The roles still name what would grant it.
    assert_eq!(role_names(&explained), [("Admin".to_string(), None)]);
}

#[tokio::test]
async fn a_store_the_member_cannot_reach_is_blocked_by_store_not_reachable() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let main = app.store(&acme.token, "Main").await;
    let other = app.store(&acme.token, "Other").await;
    let (manager_id, manager) = app
        .member(
            &acme.token,
            "manager@acme.example",
            "Store Manager",
            Some(&main),
        )
        .await;
    assert_eq!(
        app.inventory_list(&manager).in_store(&main).await.status(),
        200
    );
    assert_problem(
        app.inventory_list(&manager).in_store(&other).await,
        403,
        "store_access_denied",
    )
    .await;
    let explained = app
        .access_of(&acme.token, &manager_id, "inventory.view", Some(&other))
        .await;
    assert_eq!(explained["allowed"], false, "{explained}");
    assert_eq!(explained["blocked_by"], "store_not_reachable");
    // A store of another tenant is no more reachable than a missing one.
    let foreign = app.tenant("owner@other.example", "Other").await;
    let foreign_store = app.store(&foreign.token, "Theirs").await;
    let explained = app
        .access_of(
            &acme.token,
            &manager_id,
            "inventory.view",
            Some(&foreign_store),
        )
        .await;
    assert_eq!(explained["blocked_by"], "store_not_reachable");
}

#[tokio::test]
async fn a_feature_missing_from_the_plan_is_blocked_by_feature_not_in_plan() {
    let app = spawn_app_with(|settings| settings.default_plan = "free".into()).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let store = app.store(&acme.token, "Main").await;
    assert_problem(
        app.inventory_list(&acme.token).in_store(&store).await,
        403,
        "feature_not_in_plan",
    )
    .await;
    let explained = app
        .access_of(&acme.token, &acme.owner_id, "inventory.view", Some(&store))
        .await;
    assert_eq!(explained["allowed"], false, "{explained}");
    assert_eq!(explained["blocked_by"], "feature_not_in_plan");
    assert_eq!(role_names(&explained), [("Owner".to_string(), None)]);
    // On a plan with the feature, the same question is allowed.
    app.change_plan(&acme.token, "business").await;
    let explained = app
        .access_of(&acme.token, &acme.owner_id, "inventory.view", Some(&store))
        .await;
    assert!(explained["blocked_by"].is_null(), "{explained}");
}

#[tokio::test]
async fn a_suspended_tenant_is_blocked_by_tenant_suspended() {
    // A request of a suspended tenant is refused before it could ask, so the rule is
    // shown through the function the route calls, in that tenant's context.
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let tenant: Uuid = acme.id.parse().unwrap();
    let owner: Uuid = acme.owner_id.parse().unwrap();
    let explain = || async {
        let (tx, _) = app
            .database
            .begin(&Scope::tenant(tenant, owner))
            .await
            .unwrap();
        let explained =
            rowguard::modules::rbac::access::explain(&tx, tenant, owner, "stores.view", None)
                .await
                .unwrap();
        tx.rollback().await;
        explained
    };
    let before = explain().await;
    assert!(before.allowed && before.blocked_by.is_none());
    app.db
        .superuser()
        .await
        .execute(
            "UPDATE tenants SET status = 'suspended' WHERE id = $1",
            &[&tenant],
        )
        .await
        .unwrap();
    assert_problem(app.stores_list(&acme.token).await, 403, "tenant_suspended").await;
    let after = explain().await;
    assert!(!after.allowed);
    assert_eq!(
        after.blocked_by,
        Some(rowguard::modules::rbac::access::BlockedBy::TenantSuspended)
    );
}

#[tokio::test]
async fn an_unknown_permission_is_422_and_a_user_of_no_membership_404() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let other = app.tenant("owner@other.example", "Other").await;
    assert_eq!(
        app.access_of(&acme.token, &acme.owner_id, "stores.view", None)
            .await["allowed"],
        true
    );
    let unknown = app
        .users_access(&acme.token, &acme.owner_id)
        .query("permission", "stores.fly")
        .await;
    assert_eq!(unknown.status(), 422);
    let unknown: Value = unknown.json().await.unwrap();
    assert_eq!(unknown["code"], "validation_failed");
    assert_eq!(unknown["errors"][0]["field"], "permission");
    for user in [other.owner_id.clone(), Uuid::new_v4().to_string()] {
        assert_problem(
            app.users_access(&acme.token, &user)
                .query("permission", "stores.view")
                .await,
            404,
            "not_found",
        )
        .await;
    }
}

#[tokio::test]
async fn explaining_access_needs_roles_view() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (staff_id, staff) = app
        .member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    assert_eq!(
        app.users_access(&acme.token, &staff_id)
            .query("permission", "stores.view")
            .await
            .status(),
        200
    );
    let refused = app
        .users_access(&staff, &acme.owner_id)
        .query("permission", "stores.view")
        .await;
    assert_eq!(refused.status(), 403);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["permission"], "roles.view");
}
