//! API keys: created with permissions the creator holds, shown once, stored as a hash;
//! a key acts in its tenant as its creator, with the intersection of its permissions
//! and the creator's current ones; revoked, expired, or its creator removed or
//! suspended, it is refused (401); it never reaches `/auth/*`, `/me*` or `/api-keys*`.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, in_days, spawn_app, text};

/// Plan codes are set by the superuser: the tests are about the gate, not billing.
async fn set_plan(app: &TestApp, tenant: &str, plan: &str) {
    app.db
        .superuser()
        .await
        .execute(
            "UPDATE subscriptions SET plan_code = $2 WHERE tenant_id = $1::text::uuid",
            &[&tenant, &plan],
        )
        .await
        .unwrap();
}

/// A custom role with `permissions`, and a member holding it: (role id, member id,
/// member's token).
async fn member_with(
    app: &TestApp,
    owner: &str,
    email: &str,
    permissions: &[&str],
) -> (String, String, String) {
    let role: Value = app
        .roles_create(
            owner,
            &json!({"name": format!("Role of {email}"), "permissions": permissions}),
        )
        .await
        .json()
        .await
        .unwrap();
    let role_id = text(&role, "id");
    let (member, token) = app
        .member(owner, email, &format!("Role of {email}"), None)
        .await;
    (role_id, member, token)
}

#[tokio::test]
async fn a_key_does_what_it_was_given_and_is_refused_the_rest() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let product = app.product(&acme.token, "TEA-1").await;
    let created = app.api_key(&acme.token, &["products.view"]).await;
    let key = text(&created, "key");
    assert!(key.starts_with("rgk_") && key.len() == 85, "{key}");
    assert_eq!(created["permissions"], json!(["products.view"]));
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));

    // Allowed: what the key was given.
    let list = app.products_list(&key).await;
    assert_eq!(list.status(), 200);
    let list: Value = list.json().await.unwrap();
    assert_eq!(list["items"][0]["id"], product.as_str());
    assert_eq!(app.products_get(&key, &product).await.status(), 200);
    // Refused: what the Owner holds but the key was not given.
    let refused = app
        .products_create(&key, &json!({"sku": "X-1", "name": "X", "price_cents": 1}))
        .await;
    let body = assert_problem(refused, 403, "forbidden").await;
    assert_eq!(body["permission"], "products.create");
    assert_problem(app.stores_list(&key).await, 403, "forbidden").await;

    // The list shows the key without the key.
    let keys: Value = app.api_keys_list(&acme.token).await.json().await.unwrap();
    assert_eq!(keys["items"].as_array().unwrap().len(), 1);
    assert_eq!(keys["items"][0]["id"], created["id"]);
    assert!(keys["items"][0].get("key").is_none(), "{keys}");
    assert!(
        !keys.to_string().contains(&key[36..]),
        "the secret in the list"
    );
}

#[tokio::test]
async fn a_malformed_or_unknown_key_is_refused_before_it_counts() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let key = text(&app.api_key(&acme.token, &["products.view"]).await, "key");
    assert_eq!(app.products_list(&key).await.status(), 200);
    // One character changed: the checksum fails.
    let mut changed = key.clone().into_bytes();
    changed[50] = if changed[50] == b'a' { b'b' } else { b'a' };
    let changed = String::from_utf8(changed).unwrap();
    assert_problem(app.products_list(&changed).await, 401, "unauthenticated").await;
    assert_problem(app.products_list("rgk_short").await, 401, "unauthenticated").await;
    // Well formed, checksum right, but no such key.
    let unknown = rowguard::platform::auth::api_key::NewKey::generate().key;
    assert_problem(app.products_list(&unknown).await, 401, "unauthenticated").await;
    // A JWT-looking string is still tried as a token, and refused as one.
    assert_problem(
        app.products_list("not-a-token").await,
        401,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn keys_are_refused_on_auth_me_and_api_keys() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let other = app.tenant("owner@other.example", "Other").await;
    let created = app
        .api_key(&acme.token, &["api_keys.view", "api_keys.manage"])
        .await;
    let key = text(&created, "key");
    // The Owner's token may.
    assert_eq!(app.me_get(&acme.token).await.status(), 200);
    assert_eq!(app.api_keys_list(&acme.token).await.status(), 200);
    // The key may not, though it holds the api_keys permissions.
    assert_problem(app.me_get(&key).await, 401, "unauthenticated").await;
    assert_problem(
        app.me_update(&key, &json!({"full_name": "A program"}))
            .await,
        401,
        "unauthenticated",
    )
    .await;
    assert_problem(
        app.me_send_verification_email(&key).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_problem(
        app.me_change_password(&key, &json!({"current_password": "x", "new_password": "y"}))
            .await,
        401,
        "unauthenticated",
    )
    .await;
    assert_problem(
        app.auth_switch_tenant(&key, &json!({"tenant_id": other.id}))
            .await,
        401,
        "unauthenticated",
    )
    .await;
    assert_problem(app.api_keys_list(&key).await, 401, "unauthenticated").await;
    assert_problem(
        app.api_keys_create(
            &key,
            &json!({"name": "Child", "permissions": ["api_keys.view"], "expires_at": in_days(1)}),
        )
        .await,
        401,
        "unauthenticated",
    )
    .await;
    assert_problem(
        app.api_keys_revoke(&key, text(&created, "id")).await,
        401,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn a_plan_without_api_keys_refuses_the_api_keys_routes() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let created = app.api_key(&acme.token, &["products.view"]).await;
    assert_eq!(app.api_keys_list(&acme.token).await.status(), 200);
    set_plan(&app, &acme.id, "starter").await;
    for call in [
        app.api_keys_list(&acme.token),
        app.api_keys_create(
            &acme.token,
            &json!({"name": "K", "permissions": ["products.view"], "expires_at": in_days(1)}),
        ),
        app.api_keys_revoke(&acme.token, text(&created, "id")),
    ] {
        let body = assert_problem(call.await, 403, "feature_not_in_plan").await;
        assert_eq!(body["feature"], "api_keys");
    }
}

#[tokio::test]
async fn a_key_needs_a_name_permissions_held_and_an_expiry_within_a_year() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (_, _, admin) = member_with(
        &app,
        &acme.token,
        "admin@acme.example",
        &["api_keys.manage", "products.view"],
    )
    .await;
    // Legitimate first.
    assert_eq!(
        app.api_keys_create(
            &admin,
            &json!({"name": "K", "permissions": ["products.view"], "expires_at": in_days(365)})
        )
        .await
        .status(),
        201
    );
    // Not held by the creator: 403 naming it.
    let refused = app
        .api_keys_create(
            &admin,
            &json!({"name": "K", "permissions": ["products.view", "tenants.delete"], "expires_at": in_days(1)}),
        )
        .await;
    let body = assert_problem(refused, 403, "forbidden").await;
    assert_eq!(body["permission"], "tenants.delete");
    for (body, field) in [
        (
            json!({"name": "K", "permissions": ["products.view"], "expires_at": in_days(367)}),
            "expires_at",
        ),
        (
            json!({"name": "K", "permissions": ["products.view"], "expires_at": in_days(-1)}),
            "expires_at",
        ),
        (
            json!({"name": " ", "permissions": ["products.view"], "expires_at": in_days(1)}),
            "name",
        ),
        (
            json!({"name": "K", "permissions": [], "expires_at": in_days(1)}),
            "permissions",
        ),
    ] {
        let response = app.api_keys_create(&admin, &body).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let unknown = app
        .api_keys_create(
            &admin,
            &json!({"name": "K", "permissions": ["nope.nothing"], "expires_at": in_days(1)}),
        )
        .await;
    assert_problem(unknown, 422, "validation_failed").await;
    // No expiry, or not a time: refused, never a 500.
    for body in [
        json!({"name": "K", "permissions": ["products.view"]}),
        json!({"name": "K", "permissions": ["products.view"], "expires_at": "tomorrow"}),
    ] {
        let status = app.api_keys_create(&admin, &body).await.status().as_u16();
        assert!(status == 400 || status == 422, "{body}: {status}");
    }
}

#[tokio::test]
async fn no_table_holds_a_key_in_plain_text() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let key = text(&app.api_key(&acme.token, &["products.view"]).await, "key");
    assert_eq!(app.products_list(&key).await.status(), 200);
    let secret = &key[36..79];
    let superuser = app.db.superuser().await;
    let columns = superuser
        .query(
            "SELECT n.nspname::text, c.relname::text, a.attname::text, t.typname::text
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid
             WHERE c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND t.typname IN ('text', 'varchar', 'bpchar', 'bytea', 'jsonb', 'json', '_text')",
            &[],
        )
        .await
        .unwrap();
    assert!(columns.len() > 20, "the scan found too few columns");
    for column in &columns {
        let (schema, table, name, kind): (String, String, String, String) =
            (column.get(0), column.get(1), column.get(2), column.get(3));
        // bytea with its printable bytes as they are (a key stored raw would show),
        // everything else as text.
        let as_text = if kind == "bytea" {
            format!("encode({name}, 'escape')")
        } else {
            format!("{name}::text")
        };
        let found: i64 = superuser
            .query_one(
                &format!(
                    "SELECT count(*) FROM \"{schema}\".\"{table}\"
                     WHERE strpos({as_text}, $1) > 0"
                ),
                &[&secret],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(found, 0, "{schema}.{table}.{name} holds the key's secret");
    }
}

#[tokio::test]
async fn a_key_of_one_tenant_finds_nothing_of_another() {
    let app = spawn_app().await;
    let a = app.tenant("owner@a.example", "A").await;
    let b = app.tenant("owner@b.example", "B").await;
    let a_product = app.product(&a.token, "A-1").await;
    let b_product = app.product(&b.token, "B-1").await;
    let key = text(
        &app.api_key(&a.token, &["products.view", "products.edit"])
            .await,
        "key",
    );
    assert_eq!(app.products_get(&key, &a_product).await.status(), 200);
    assert_problem(app.products_get(&key, &b_product).await, 404, "not_found").await;
    assert_problem(
        app.products_update(&key, &b_product, &json!({"name": "Hijacked"}))
            .await,
        404,
        "not_found",
    )
    .await;
    let list: Value = app.products_list(&key).await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], a_product.as_str());
    // B's key list does not show A's key.
    let b_keys: Value = app.api_keys_list(&b.token).await.json().await.unwrap();
    assert_eq!(b_keys["items"], json!([]));
}

#[tokio::test]
async fn a_revoked_key_is_refused_and_both_changes_are_audited() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let created = app.api_key(&acme.token, &["products.view"]).await;
    let key = text(&created, "key");
    assert_eq!(app.products_list(&key).await.status(), 200);
    assert_eq!(
        app.api_keys_revoke(&acme.token, text(&created, "id"))
            .await
            .status(),
        204
    );
    assert_problem(app.products_list(&key).await, 401, "unauthenticated").await;
    let keys: Value = app.api_keys_list(&acme.token).await.json().await.unwrap();
    assert!(keys["items"][0]["revoked_at"].is_string(), "{keys}");
    let events: Value = app
        .audit_events_list(&acme.token)
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["target_id"] == created["id"])
        .map(|event| event["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.len(), 2, "{events}");
    assert!(actions.contains(&"api_key.created") && actions.contains(&"api_key.revoked"));
    // Another id: 404.
    assert_problem(
        app.api_keys_revoke(&acme.token, uuid::Uuid::new_v4()).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let created = app.api_key(&acme.token, &["products.view"]).await;
    let key = text(&created, "key");
    assert_eq!(app.products_list(&key).await.status(), 200);
    app.db
        .superuser()
        .await
        .execute(
            "UPDATE api_keys SET created_at = now() - interval '2 days',
                                 expires_at = now() - interval '1 second'
             WHERE id = $1::text::uuid",
            &[&text(&created, "id")],
        )
        .await
        .unwrap();
    assert_problem(app.products_list(&key).await, 401, "unauthenticated").await;
}

#[tokio::test]
async fn a_key_stops_when_its_creator_is_suspended_or_removed() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (_, member, token) = member_with(
        &app,
        &acme.token,
        "integrator@acme.example",
        &["api_keys.manage", "products.view"],
    )
    .await;
    let key = text(&app.api_key(&token, &["products.view"]).await, "key");
    assert_eq!(app.products_list(&key).await.status(), 200);

    let suspend = app
        .users_update(&acme.token, &member, &json!({"status": "suspended"}))
        .await;
    assert_eq!(suspend.status(), 200);
    assert_problem(app.products_list(&key).await, 401, "unauthenticated").await;
    let activate = app
        .users_update(&acme.token, &member, &json!({"status": "active"}))
        .await;
    assert_eq!(activate.status(), 200);
    assert_eq!(app.products_list(&key).await.status(), 200);

    assert_eq!(app.users_delete(&acme.token, &member).await.status(), 204);
    assert_problem(app.products_list(&key).await, 401, "unauthenticated").await;
}

#[tokio::test]
async fn a_key_cannot_exceed_its_creator_once_the_creator_is_demoted() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (role, _, token) = member_with(
        &app,
        &acme.token,
        "integrator@acme.example",
        &["api_keys.manage", "products.view", "products.create"],
    )
    .await;
    let key = text(
        &app.api_key(&token, &["products.view", "products.create"])
            .await,
        "key",
    );
    let product = json!({"sku": "K-1", "name": "By key", "price_cents": 5});
    assert_eq!(app.products_create(&key, &product).await.status(), 201);

    let demoted = app
        .roles_set_permissions(
            &acme.token,
            &role,
            &json!({"permissions": ["api_keys.manage", "products.view"]}),
        )
        .await;
    assert_eq!(demoted.status(), 200);
    let refused = app
        .products_create(
            &key,
            &json!({"sku": "K-2", "name": "By key", "price_cents": 5}),
        )
        .await;
    let body = assert_problem(refused, 403, "forbidden").await;
    assert_eq!(body["permission"], "products.create");
    // What both still hold still works.
    assert_eq!(app.products_list(&key).await.status(), 200);
}

#[tokio::test]
async fn last_used_is_recorded_at_most_once_a_minute_and_key_requests_count_as_usage() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let created = app.api_key(&acme.token, &["products.view"]).await;
    let key = text(&created, "key");
    let id = text(&created, "id");
    assert_eq!(last_used_at(&app, &id).await, None);
    app.flush_usage().await;
    assert_eq!(app.products_list(&key).await.status(), 200);
    let first = last_used_at(&app, &id).await;
    assert!(first.is_some());
    assert_eq!(app.products_list(&key).await.status(), 200);
    assert_eq!(
        last_used_at(&app, &id).await,
        first,
        "written again within the minute"
    );
    // Stale by more than a minute: the next request records it again.
    app.db
        .superuser()
        .await
        .execute(
            "UPDATE api_keys SET last_used_at = now() - interval '2 minutes'
             WHERE id = $1::text::uuid",
            &[&text(&created, "id")],
        )
        .await
        .unwrap();
    let stale = last_used_at(&app, &id).await;
    assert_eq!(app.products_list(&key).await.status(), 200);
    assert_ne!(last_used_at(&app, &id).await, stale);
    // The three key requests count for the key's tenant.
    assert_eq!(app.flush_usage().await, 3);
}

async fn last_used_at(app: &TestApp, id: &str) -> Option<String> {
    app.db
        .superuser()
        .await
        .query_one(
            "SELECT last_used_at::text FROM api_keys WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_key_grants_nothing_once_the_tenant_moves_to_a_plan_without_api_keys() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let key = text(&app.api_key(&acme.token, &["products.view"]).await, "key");
    assert_eq!(app.products_list(&key).await.status(), 200);
    // Starter has no api_keys: the key made on business stops granting.
    app.db
        .superuser()
        .await
        .execute(
            "UPDATE subscriptions SET plan_code = 'starter' WHERE tenant_id = $1::text::uuid",
            &[&acme.id],
        )
        .await
        .unwrap();
    let refused = app.products_list(&key).await;
    assert_eq!(
        assert_problem(refused, 403, "forbidden").await["permission"],
        "products.view"
    );
    // The Owner's own token is untouched.
    assert_eq!(app.products_list(&acme.token).await.status(), 200);
}

#[tokio::test]
async fn a_key_cannot_read_its_creators_notifications() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let key = text(&app.api_key(&acme.token, &["products.view"]).await, "key");
    assert_eq!(app.notifications_list(&acme.token).await.status(), 200);
    assert_problem(app.notifications_list(&key).await, 401, "unauthenticated").await;
    assert_problem(
        app.notifications_unread_count(&key).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_problem(
        app.notifications_read_all(&key).await,
        401,
        "unauthenticated",
    )
    .await;
}
