//! docs/api.md "RBAC": the catalog, roles, assignments, and their guards.

use serde_json::json;

use crate::helpers::{assert_problem, spawn_app, text};

#[tokio::test]
async fn the_permission_catalog_lists_every_code() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let catalog: serde_json::Value = app
        .permissions_list(&acme.token)
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
    assert_eq!(
        codes.len(),
        rowguard::platform::auth::catalog::PERMISSION_CODES.len()
    );
    assert!(
        codes.len() >= 33,
        "the core's and the SaaS modules' permissions"
    );
    assert!(codes.contains(&"stores.assign_users") && codes.contains(&"audit.view"));
    assert!(catalog[0]["description"].is_string());
}

#[tokio::test]
async fn roles_can_be_created_read_changed_and_deleted() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let created = app
        .roles_create(&acme.token, &json!({"name": "Auditor", "description": "Reads the trail", "permissions": ["audit.view", "users.view", "audit.view"]}))
        .await;
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    assert_eq!(created["permissions"], json!(["audit.view", "users.view"]));
    assert_eq!(created["is_system"], false);
    let role = text(&created, "id");

    let renamed = app
        .roles_update(
            &acme.token,
            &role,
            &json!({"name": "Reader", "permissions": ["audit.view"]}),
        )
        .await;
    let renamed: serde_json::Value = renamed.json().await.unwrap();
    assert_eq!(
        (renamed["name"].as_str(), renamed["permissions"].clone()),
        (Some("Reader"), json!(["audit.view"]))
    );
    let set = app
        .roles_set_permissions(&acme.token, &role, &json!({"permissions": ["roles.view"]}))
        .await;
    assert_eq!(set.status(), 200);
    let fetched: serde_json::Value = app
        .roles_get(&acme.token, &role)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["permissions"], json!(["roles.view"]));
    assert_eq!(app.roles_delete(&acme.token, &role).await.status(), 204);
    assert_problem(app.roles_get(&acme.token, &role).await, 404, "not_found").await;
}

#[tokio::test]
async fn unknown_permissions_and_duplicate_names_are_refused() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let unknown = app
        .roles_create(
            &acme.token,
            &json!({"name": "X", "permissions": ["rockets.launch"]}),
        )
        .await;
    assert_problem(unknown, 422, "validation_failed").await;
    let duplicate = app
        .roles_create(&acme.token, &json!({"name": "Staff", "permissions": []}))
        .await;
    assert_problem(duplicate, 409, "conflict").await;
}

#[tokio::test]
async fn the_owner_role_cannot_be_changed_or_deleted() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let owner = app.role_id(&acme.token, "Owner").await;
    let rename = app
        .roles_update(&acme.token, &owner, &json!({"name": "Boss"}))
        .await;
    assert_problem(rename, 409, "conflict").await;
    let strip = app
        .roles_set_permissions(&acme.token, &owner, &json!({"permissions": []}))
        .await;
    assert_problem(strip, 409, "conflict").await;
    assert_problem(app.roles_delete(&acme.token, &owner).await, 409, "conflict").await;
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
        .roles_create(
            &admin,
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
        .roles_set_permissions(
            &admin,
            &staff_role,
            &json!({"permissions": ["tenants.edit", "products.view"]}),
        )
        .await;
    assert_eq!(
        assert_problem(add, 403, "forbidden").await["permission"],
        "tenants.edit"
    );
    // Assigning a role that has it.
    let owner_role = app.role_id(&acme.token, "Owner").await;
    let assign = app
        .user_roles_create(&admin, &staff_id, &json!({"role_id": owner_role}))
        .await;
    assert_eq!(
        assert_problem(assign, 403, "forbidden").await["permission"],
        "tenants.delete"
    );
    // What the Admin holds, they may grant.
    let allowed = app
        .roles_create(
            &admin,
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
        .user_roles_create(
            &acme.token,
            &member,
            &json!({"role_id": manager, "store_id": store}),
        )
        .await;
    assert_eq!(assigned.status(), 201);
    let assigned: serde_json::Value = assigned.json().await.unwrap();
    assert_eq!(assigned["store_id"], store.as_str());
    let twice = app
        .user_roles_create(
            &acme.token,
            &member,
            &json!({"role_id": manager, "store_id": store}),
        )
        .await;
    assert_problem(twice, 409, "conflict").await;

    let tenant_wide: serde_json::Value = app.me_get(&token).await.json().await.unwrap();
    assert!(
        !tenant_wide["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("stores.edit"))
    );
    let in_store: serde_json::Value = app
        .me_get(&token)
        .in_store(&store)
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

    assert_eq!(
        app.user_roles_delete(&acme.token, &member, text(&assigned, "id"))
            .await
            .status(),
        204
    );
    let roles: serde_json::Value = app
        .user_roles_list(&acme.token, &member)
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
    let response = app.roles_delete(&acme.token, &staff).await;
    assert_problem(response, 409, "conflict").await;
}

#[tokio::test]
async fn a_role_named_by_a_pending_invitation_cannot_be_deleted() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let role: serde_json::Value = app
        .roles_create(
            &acme.token,
            &json!({"name": "Temp", "permissions": ["products.view"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let role = text(&role, "id");
    let invitation: serde_json::Value = app
        .invitations_create(
            &acme.token,
            &json!({"email": "new@acme.example", "role_id": role}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_problem(app.roles_delete(&acme.token, &role).await, 409, "conflict").await;
    app.invitations_delete(&acme.token, text(&invitation, "id"))
        .await;
    assert_eq!(app.roles_delete(&acme.token, &role).await.status(), 204);
}

async fn permissions_of(app: &crate::helpers::TestApp, token: &str, role: &str) -> Vec<String> {
    let roles: serde_json::Value = app.roles_list(token).limit(100).await.json().await.unwrap();
    let role = roles["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == role)
        .unwrap();
    role["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_new_tenants_system_roles_hold_the_defaults() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let catalog: Vec<String> = app
        .db
        .superuser()
        .await
        .query("SELECT code FROM permissions ORDER BY code", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(permissions_of(&app, &acme.token, "Owner").await, catalog);
    let admin = permissions_of(&app, &acme.token, "Admin").await;
    // Everything but editing and deleting the tenant.
    assert_eq!(admin.len(), catalog.len() - 2);
    assert!(!admin.contains(&"tenants.edit".to_string()));
    assert!(!admin.contains(&"tenants.delete".to_string()));
    assert_eq!(
        permissions_of(&app, &acme.token, "Staff").await,
        [
            "inventory.adjust",
            "inventory.view",
            "products.view",
            "stores.view",
            "tenants.view"
        ]
    );
}

#[tokio::test]
async fn a_permission_granted_in_system_role_grants_reaches_the_next_new_tenant() {
    let app = spawn_app().await;
    let before = app.tenant("owner@before.example", "Before").await;
    // What a module's migration does: a new permission, given to Staff by default.
    app.db.superuser().await
        .batch_execute(
            "INSERT INTO permissions (code, description) VALUES ('widgets.view', 'See widgets');
             INSERT INTO app.system_role_grants (role_name, permission_code) VALUES ('Staff', 'widgets.view');",
        )
        .await
        .unwrap();
    let after = app.tenant("owner@after.example", "After").await;
    let widgets = "widgets.view".to_string();
    assert!(
        permissions_of(&app, &after.token, "Staff")
            .await
            .contains(&widgets)
    );
    assert!(
        permissions_of(&app, &after.token, "Owner")
            .await
            .contains(&widgets)
    );
    assert!(
        !permissions_of(&app, &after.token, "Store Manager")
            .await
            .contains(&widgets)
    );
    // Existing tenants are their migration's business: nothing changed for them.
    assert!(
        !permissions_of(&app, &before.token, "Staff")
            .await
            .contains(&widgets)
    );
}

/// A role created by the tenant's Owner; returns its id.
async fn custom_role(
    app: &crate::helpers::TestApp,
    token: &str,
    name: &str,
    permissions: &[&str],
) -> String {
    let created = app
        .roles_create(token, &json!({"name": name, "permissions": permissions}))
        .await;
    assert_eq!(created.status(), 201, "creating role {name}");
    text(&created.json().await.unwrap(), "id")
}

#[tokio::test]
async fn changing_a_role_needs_every_permission_it_has_before_and_after() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    custom_role(
        &app,
        &acme.token,
        "Editor",
        &["roles.view", "roles.edit", "products.view"],
    )
    .await;
    let small = custom_role(&app, &acme.token, "Small", &["products.view"]).await;
    let (_, editor) = app
        .member(&acme.token, "editor@acme.example", "Editor", None)
        .await;
    // A role within what the editor holds: changed.
    let widened = app
        .roles_set_permissions(
            &editor,
            &small,
            &json!({"permissions": ["products.view", "roles.view"]}),
        )
        .await;
    assert_eq!(widened.status(), 200);
    // A role above them: not emptied, not touched at all.
    let admin = app.role_id(&acme.token, "Admin").await;
    let before = permissions_of(&app, &acme.token, "Admin").await;
    let emptied = app
        .roles_set_permissions(&editor, &admin, &json!({"permissions": []}))
        .await;
    assert_problem(emptied, 403, "forbidden").await;
    let described = app
        .roles_update(&editor, &admin, &json!({"description": "nobody"}))
        .await;
    assert_problem(described, 403, "forbidden").await;
    assert_eq!(permissions_of(&app, &acme.token, "Admin").await, before);
}

#[tokio::test]
async fn a_system_role_keeps_its_name() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let staff = app.role_id(&acme.token, "Staff").await;
    let described = app
        .roles_update(
            &acme.token,
            &staff,
            &json!({"description": "Works in a store"}),
        )
        .await;
    assert_eq!(described.status(), 200);
    let renamed = app
        .roles_update(&acme.token, &staff, &json!({"name": "Crew"}))
        .await;
    assert_problem(renamed, 409, "conflict").await;
    assert_eq!(app.role_id(&acme.token, "Staff").await, staff);
}

#[tokio::test]
async fn deleting_a_store_needs_the_right_to_remove_each_assignment_it_takes_with_it() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let north = app.store(&acme.token, "North").await;
    let south = app.store(&acme.token, "South").await;
    let closer_perms = [
        "stores.delete",
        "stores.view",
        "tenants.view",
        "products.view",
        "inventory.view",
        "inventory.adjust",
    ];
    let closer = custom_role(&app, &acme.token, "Closer", &closer_perms).await;
    let (closer_id, closer_token) = app
        .member(&acme.token, "closer@acme.example", "Closer", Some(&north))
        .await;
    let in_south = app
        .user_roles_create(
            &acme.token,
            &closer_id,
            &json!({"role_id": closer, "store_id": south}),
        )
        .await;
    assert_eq!(in_south.status(), 201);
    app.member(&acme.token, "staff@acme.example", "Staff", Some(&north))
        .await;
    app.member(&acme.token, "owner2@acme.example", "Owner", Some(&south))
        .await;
    // North holds Staff's and Closer's assignments, both within what the closer holds.
    assert_eq!(app.stores_delete(&closer_token, &north).await.status(), 204);
    // South holds an Owner assignment the closer could not remove directly.
    let refused = app.stores_delete(&closer_token, &south).await;
    assert_problem(refused, 403, "forbidden").await;
    assert_eq!(app.stores_get(&acme.token, &south).await.status(), 200);
}
