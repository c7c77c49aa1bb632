//! Every operation declares what it requires, one line next to its route, and the
//! OpenAPI document carries it (`x-permission`).

use rowguard::platform::auth::access::Requires;

use crate::helpers::spawn_app;

#[tokio::test]
async fn every_operation_is_declared_public_member_or_with_a_permission() {
    let app = spawn_app().await;
    let spec = app.openapi().await;
    let declared = rowguard::modules::operations();
    let mut seen = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap();
            seen.push(id.to_string());
            let declaration = declared.iter().find(|d| d.id == id).unwrap_or_else(|| {
                panic!("{method} {path} ({id}) declares neither public access nor a permission")
            });
            let secured = operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty());
            match declaration.requires {
                Requires::Public => {
                    assert!(!secured, "{id} is declared public but takes a bearer token")
                }
                Requires::Member => assert!(
                    secured,
                    "{id} is declared for members but takes no bearer token"
                ),
                Requires::PlatformAdmin => {
                    assert!(
                        secured,
                        "{id} is for platform admins but takes no bearer token"
                    );
                    assert_eq!(
                        operation["x-platform-admin"], true,
                        "{id}: x-platform-admin"
                    );
                }
                Requires::Permission(code) | Requires::PermissionInSomeStore(code) => {
                    assert!(secured, "{id} requires {code} but takes no bearer token");
                    assert_eq!(operation["x-permission"], code, "{id}: x-permission");
                }
            }
        }
    }
    for declaration in &declared {
        assert!(
            seen.contains(&declaration.id.to_string()),
            "{} is declared but not served",
            declaration.id
        );
    }
    assert!(seen.len() >= 40, "{seen:?}");
}

#[tokio::test]
async fn every_declared_permission_is_in_the_catalog() {
    let app = spawn_app().await;
    let superuser = app.db.superuser().await;
    for declaration in rowguard::modules::operations() {
        if let Some(code) = declaration.permission_code() {
            let known: bool = superuser
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM permissions WHERE code = $1)",
                    &[&code],
                )
                .await
                .unwrap()
                .get(0);
            assert!(
                known,
                "{} requires {code}, which is not in the catalog",
                declaration.id
            );
        }
    }
}
