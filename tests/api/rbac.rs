//! docs/api.md "RBAC": the catalog, roles, assignments, and their guards.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{assert_problem, spawn_app, text};

#[tokio::test]
async fn the_permission_catalog_lists_every_code() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let catalog: serde_json::Value = app
        .get_as(&acme.token, "/api/v1/permissions")
        .await
        .json()
        .await
        .unwrap();
    let codes: Vec<&str> = catalog
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 23);
    assert!(codes.contains(&"stores.assign_users") && codes.contains(&"audit.view"));
    assert!(catalog[0]["description"].is_string());
}

#[tokio::test]
async fn roles_can_be_created_read_changed_and_deleted() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let created = app
        .post_json_as(
            &acme.token,
            "/api/v1/roles",
            &json!({"name": "Auditor", "description": "Reads the trail", "permissions": ["audit.view", "users.view", "audit.view"]}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    assert_eq!(created["permissions"], json!(["audit.view", "users.view"]));
    assert_eq!(created["is_system"], false);
    let path = format!("/api/v1/roles/{}", text(&created, "id"));

    let renamed = app
        .send(
            Method::PATCH,
            &path,
            Some(&acme.token),
            Some(&json!({"name": "Reader", "permissions": ["audit.view"]})),
            None,
        )
        .await;
    let renamed: serde_json::Value = renamed.json().await.unwrap();
    assert_eq!(
        (renamed["name"].as_str(), renamed["permissions"].clone()),
        (Some("Reader"), json!(["audit.view"]))
    );
    let set = app
        .send(
            Method::PUT,
            &format!("{path}/permissions"),
            Some(&acme.token),
            Some(&json!({"permissions": ["roles.view"]})),
            None,
        )
        .await;
    assert_eq!(set.status(), 200);
    let fetched: serde_json::Value = app.get_as(&acme.token, &path).await.json().await.unwrap();
    assert_eq!(fetched["permissions"], json!(["roles.view"]));
    assert_eq!(
        app.send(Method::DELETE, &path, Some(&acme.token), None, None)
            .await
            .status(),
        204
    );
    assert_problem(app.get_as(&acme.token, &path).await, 404, "not_found").await;
}

#[tokio::test]
async fn unknown_permissions_and_duplicate_names_are_refused() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let unknown = app
        .post_json_as(
            &acme.token,
            "/api/v1/roles",
            &json!({"name": "X", "permissions": ["rockets.launch"]}),
        )
        .await;
    assert_problem(unknown, 422, "validation_failed").await;
    let duplicate = app
        .post_json_as(
            &acme.token,
            "/api/v1/roles",
            &json!({"name": "Staff", "permissions": []}),
        )
        .await;
    assert_problem(duplicate, 409, "conflict").await;
}

#[tokio::test]
async fn the_owner_role_cannot_be_changed_or_deleted() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let owner = app.role_id(&acme.token, "Owner").await;
    let path = format!("/api/v1/roles/{owner}");
    let rename = app
        .send(
            Method::PATCH,
            &path,
            Some(&acme.token),
            Some(&json!({"name": "Boss"})),
            None,
        )
        .await;
    assert_problem(rename, 409, "conflict").await;
    let strip = app
        .send(
            Method::PUT,
            &format!("{path}/permissions"),
            Some(&acme.token),
            Some(&json!({"permissions": []})),
            None,
        )
        .await;
    assert_problem(strip, 409, "conflict").await;
    assert_problem(
        app.send(Method::DELETE, &path, Some(&acme.token), None, None)
            .await,
        409,
        "conflict",
    )
    .await;
}

#[tokio::test]
async fn nobody_grants_a_permission_they_do_not_hold() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (staff_id, _) = app
        .member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    let (_, admin) = app
        .member(&acme.token, "admin@acme.example", "Admin", None)
        .await;

    // Creating a role with a permission the Admin lacks.
    let create = app
        .post_json_as(
            &admin,
            "/api/v1/roles",
            &json!({"name": "Editor", "permissions": ["tenants.edit"]}),
        )
        .await;
    assert_eq!(
        assert_problem(create, 403, "forbidden").await["permission"],
        "tenants.edit"
    );
    // Adding it to an existing role.
    let staff_role = app.role_id(&acme.token, "Staff").await;
    let add = app
        .send(
            Method::PUT,
            &format!("/api/v1/roles/{staff_role}/permissions"),
            Some(&admin),
            Some(&json!({"permissions": ["tenants.edit", "products.view"]})),
            None,
        )
        .await;
    assert_eq!(
        assert_problem(add, 403, "forbidden").await["permission"],
        "tenants.edit"
    );
    // Assigning a role that has it.
    let owner_role = app.role_id(&acme.token, "Owner").await;
    let assign = app
        .post_json_as(
            &admin,
            &format!("/api/v1/users/{staff_id}/roles"),
            &json!({"role_id": owner_role}),
        )
        .await;
    assert_eq!(
        assert_problem(assign, 403, "forbidden").await["permission"],
        "tenants.edit"
    );
    // What the Admin holds, they may grant.
    let allowed = app
        .post_json_as(
            &admin,
            "/api/v1/roles",
            &json!({"name": "Viewer", "permissions": ["products.view"]}),
        )
        .await;
    assert_eq!(allowed.status(), 201);
}

#[tokio::test]
async fn roles_are_assigned_tenant_wide_or_per_store_and_me_reflects_the_store() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let store = app.store(&acme.token, "Main").await;
    let (member, token) = app
        .member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    let manager = app.role_id(&acme.token, "Store Manager").await;
    let assigned = app
        .post_json_as(
            &acme.token,
            &format!("/api/v1/users/{member}/roles"),
            &json!({"role_id": manager, "store_id": store}),
        )
        .await;
    assert_eq!(assigned.status(), 201);
    let assigned: serde_json::Value = assigned.json().await.unwrap();
    assert_eq!(assigned["store_id"], store.as_str());
    let twice = app
        .post_json_as(
            &acme.token,
            &format!("/api/v1/users/{member}/roles"),
            &json!({"role_id": manager, "store_id": store}),
        )
        .await;
    assert_problem(twice, 409, "conflict").await;

    let tenant_wide: serde_json::Value =
        app.get_as(&token, "/api/v1/me").await.json().await.unwrap();
    assert!(
        !tenant_wide["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("stores.edit"))
    );
    let in_store: serde_json::Value = app
        .send(Method::GET, "/api/v1/me", Some(&token), None, Some(&store))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        in_store["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("stores.edit"))
    );

    let path = format!("/api/v1/users/{member}/roles/{}", text(&assigned, "id"));
    assert_eq!(
        app.send(Method::DELETE, &path, Some(&acme.token), None, None)
            .await
            .status(),
        204
    );
    let roles: serde_json::Value = app
        .get_as(&acme.token, &format!("/api/v1/users/{member}/roles"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(roles["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_role_still_assigned_cannot_be_deleted() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    app.member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    let staff = app.role_id(&acme.token, "Staff").await;
    let response = app
        .send(
            Method::DELETE,
            &format!("/api/v1/roles/{staff}"),
            Some(&acme.token),
            None,
            None,
        )
        .await;
    assert_problem(response, 409, "conflict").await;
}

#[tokio::test]
async fn a_role_named_by_a_pending_invitation_cannot_be_deleted() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let role: serde_json::Value = app
        .post_json_as(
            &acme.token,
            "/api/v1/roles",
            &json!({"name": "Temp", "permissions": ["products.view"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let role = text(&role, "id");
    let invitation: serde_json::Value = app
        .post_json_as(
            &acme.token,
            "/api/v1/invitations",
            &json!({"email": "new@acme.example", "role_id": role}),
        )
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/v1/roles/{role}");
    assert_problem(
        app.send(Method::DELETE, &path, Some(&acme.token), None, None)
            .await,
        409,
        "conflict",
    )
    .await;
    let revoke = format!("/api/v1/invitations/{}", text(&invitation, "id"));
    app.send(Method::DELETE, &revoke, Some(&acme.token), None, None)
        .await;
    assert_eq!(
        app.send(Method::DELETE, &path, Some(&acme.token), None, None)
            .await
            .status(),
        204
    );
}
