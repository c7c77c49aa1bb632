//! The system roles of a new tenant take their permissions from
//! `app.system_role_grants`, the table a feature module's migration adds its
//! permissions to (README, "Adding a feature module").

use crate::helpers::spawn_app;

async fn permissions_of(app: &crate::helpers::TestApp, token: &str, role: &str) -> Vec<String> {
    let roles: serde_json::Value = app
        .get_as(token, "/api/v1/roles?limit=100")
        .await
        .json()
        .await
        .unwrap();
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
    assert_eq!(admin.len(), catalog.len() - 1);
    assert!(!admin.contains(&"tenants.edit".to_string()));
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
    // Existing tenants are the migration's own business: nothing changed for them.
    assert!(
        !permissions_of(&app, &before.token, "Staff")
            .await
            .contains(&widgets)
    );
}
