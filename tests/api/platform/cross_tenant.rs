//! Every operation of the served OpenAPI document that takes an id, tried with tenant
//! B's token on tenant A's ids: 404 every time, and A's data unchanged. A new by-id
//! operation fails this test until it is added to the tables below.

use std::collections::HashMap;

use serde_json::json;

use crate::helpers::{TestApp, assert_problem, spawn_app, text};

/// Everything of tenant A, as the superuser sees it, in a stable order.
async fn snapshot(app: &TestApp, tenant: &str) -> serde_json::Value {
    let superuser = app.db.superuser().await;
    let tables: Vec<String> = superuser
        .query(
            "SELECT c.relname::text FROM pg_class c
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut all = serde_json::Map::new();
    for table in tables {
        let rows: serde_json::Value = superuser
            .query_one(
                &format!(
                    "SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]')
                     FROM public.{table} t WHERE tenant_id = $1::text::uuid"
                ),
                &[&tenant],
            )
            .await
            .unwrap()
            .get(0);
        all.insert(table, rows);
    }
    let tenant_row: serde_json::Value = superuser
        .query_one(
            "SELECT to_jsonb(t) FROM tenants t WHERE id = $1::text::uuid",
            &[&tenant],
        )
        .await
        .unwrap()
        .get(0);
    all.insert("tenants".into(), tenant_row);
    serde_json::Value::Object(all)
}

#[tokio::test]
async fn another_tenants_ids_are_not_found_by_any_operation_and_change_nothing() {
    let app = spawn_app().await;
    let a = app.tenant("owner@a.example", "Tenant A").await;
    let b = app.tenant("owner@b.example", "Tenant B").await;

    // One of everything in tenant A.
    let store = app.store(&a.token, "A store").await;
    let product = app.product(&a.token, "A-1").await;
    let (member, _) = app
        .member(&a.token, "member@a.example", "Staff", Some(&store))
        .await;
    let assignments: serde_json::Value = app
        .user_roles_list(&a.token, &member)
        .await
        .json()
        .await
        .unwrap();
    let assignment = text(&assignments["items"][0], "id");
    let role: serde_json::Value = app
        .roles_create(
            &a.token,
            &json!({"name": "A role", "permissions": ["products.view"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let role = text(&role, "id");
    let staff_role = app.role_id(&a.token, "Staff").await;
    let invitation: serde_json::Value = app
        .invitations_create(
            &a.token,
            &json!({"email": "pending@a.example", "role_id": staff_role}),
        )
        .await
        .json()
        .await
        .unwrap();
    let invitation = text(&invitation, "id");
    app.store_users_put(&a.token, &store, &member).await;
    let b_role = app.role_id(&b.token, "Staff").await;
    // The member's acceptance notified the owner.
    let notifications: serde_json::Value =
        app.notifications_list(&a.token).await.json().await.unwrap();
    let notification = text(&notifications["items"][0], "id");

    // An API key of A's (made while A's plan has the feature).
    let api_key = app.api_key(&a.token, &["products.view"]).await;
    let api_key = text(&api_key, "id");

    // An invoice: A, back on free with its trial had, moves to starter.
    app.db
        .superuser()
        .await
        .execute(
            "UPDATE subscriptions SET plan_code = 'free' WHERE tenant_id = $1::text::uuid",
            &[&a.id],
        )
        .await
        .unwrap();
    app.trial_already_used(&a.id).await;
    app.change_plan(&a.token, "starter").await;
    let invoice = text(&app.invoices(&a.token).await[0], "id");
    // A payment of it (as an accepted STK push leaves it; this server has no Daraja).
    let payment: uuid::Uuid = app
        .db
        .superuser()
        .await
        .query_one(
            "INSERT INTO payments (tenant_id, invoice_id, idempotency_key, request_hash, amount_minor,
                                   currency, phone_number, merchant_request_id, checkout_request_id,
                                   customer_message)
             VALUES ($1::text::uuid, $2::text::uuid, 'k', sha256('k'), 250000, 'KES', '254712345678',
                     'mr-1', 'ws_CO_cross_tenant', 'Success. Request accepted for processing')
             RETURNING id",
            &[&a.id, &invoice],
        )
        .await
        .unwrap()
        .get(0);
    let payment = payment.to_string();

    // The ids each by-id path takes, from tenant A.
    let ids: HashMap<&str, Vec<(&str, &str)>> = HashMap::from([
        ("/api/v1/users/{id}", vec![("id", member.as_str())]),
        ("/api/v1/users/{id}/roles", vec![("id", member.as_str())]),
        ("/api/v1/users/{id}/access", vec![("id", member.as_str())]),
        (
            "/api/v1/users/{id}/roles/{assignment_id}",
            vec![
                ("id", member.as_str()),
                ("assignment_id", assignment.as_str()),
            ],
        ),
        ("/api/v1/stores/{id}", vec![("id", store.as_str())]),
        ("/api/v1/stores/{id}/users", vec![("id", store.as_str())]),
        (
            "/api/v1/stores/{id}/users/{user_id}",
            vec![("id", store.as_str()), ("user_id", member.as_str())],
        ),
        ("/api/v1/roles/{id}", vec![("id", role.as_str())]),
        (
            "/api/v1/roles/{id}/permissions",
            vec![("id", role.as_str())],
        ),
        ("/api/v1/products/{id}", vec![("id", product.as_str())]),
        (
            "/api/v1/invitations/{id}",
            vec![("id", invitation.as_str())],
        ),
        (
            "/api/v1/notifications/{id}/read",
            vec![("id", notification.as_str())],
        ),
        (
            "/api/v1/billing/invoices/{id}",
            vec![("id", invoice.as_str())],
        ),
        ("/api/v1/payments/{id}", vec![("id", payment.as_str())]),
        ("/api/v1/api-keys/{id}", vec![("id", api_key.as_str())]),
    ]);
    // Each by-id operation as the test client sends it: tenant B's token on those
    // ids, and a valid body, so that a 404 cannot come from validation failing first.
    let token = b.token.as_str();
    let call = |operation: &str| {
        Some(match operation {
            "users_get" => app.users_get(token, &member),
            "users_update" => app.users_update(token, &member, &json!({"status": "suspended"})),
            "users_delete" => app.users_delete(token, &member),
            "user_roles_list" => app.user_roles_list(token, &member),
            "users_access" => app
                .users_access(token, &member)
                .query("permission", "stores.view"),
            "user_roles_create" => {
                app.user_roles_create(token, &member, &json!({"role_id": b_role}))
            }
            "user_roles_delete" => app.user_roles_delete(token, &member, &assignment),
            "stores_get" => app.stores_get(token, &store),
            "stores_update" => app.stores_update(token, &store, &json!({"name": "Hijacked"})),
            "stores_delete" => app.stores_delete(token, &store),
            "store_users_list" => app.store_users_list(token, &store),
            "store_users_put" => app.store_users_put(token, &store, &member),
            "store_users_delete" => app.store_users_delete(token, &store, &member),
            "roles_get" => app.roles_get(token, &role),
            "roles_update" => app.roles_update(token, &role, &json!({"name": "Hijacked"})),
            "roles_delete" => app.roles_delete(token, &role),
            "roles_set_permissions" => {
                app.roles_set_permissions(token, &role, &json!({"permissions": ["products.view"]}))
            }
            "products_get" => app.products_get(token, &product),
            "products_update" => app.products_update(token, &product, &json!({"name": "Hijacked"})),
            "products_delete" => app.products_delete(token, &product),
            "invitations_delete" => app.invitations_delete(token, &invitation),
            "notifications_read" => app.notifications_read(token, &notification),
            "billing_invoices_get" => app.billing_invoices_get(token, &invoice),
            "payments_get" => app.payments_get(token, &payment),
            "api_keys_revoke" => app.api_keys_revoke(token, &api_key),
            _ => return None,
        })
    };

    let before = snapshot(&app, &a.id).await;
    let spec = app.openapi().await;
    let mut tried = 0;
    for (template, item) in spec["paths"].as_object().unwrap() {
        // The operator routes act on no tenant's resources (the queue's jobs): a
        // tenant's token is refused there outright (403, tests/api/email.rs).
        if !template.contains('{') || template.starts_with("/api/v1/platform/") {
            continue;
        }
        let params = ids.get(template.as_str()).unwrap_or_else(|| {
            panic!("{template} takes an id but is not covered by this test: add it to the table")
        });
        let mut path = template.clone();
        for (name, value) in params {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        assert!(
            !path.contains('{'),
            "{template}: a parameter is missing from the table"
        );
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap();
            let call = call(id).unwrap_or_else(|| {
                panic!("{method} {template} ({id}) takes an id but is not covered by this test: add it to the calls")
            });
            // What the test client sends is the document's operation, on A's ids: a
            // wrong route would answer 404 too, and prove nothing. (A query string,
            // as /users/{id}/access requires one, is not part of the route.)
            assert_eq!(
                call.to_string().split('?').next().unwrap(),
                format!("{} {path}", method.to_uppercase()),
                "{id}: the test client's request is not this operation"
            );
            let response = call.await;
            let status = response.status().as_u16();
            assert_eq!(
                status, 404,
                "{method} {template} with tenant B's token on A's ids answered {status}"
            );
            assert_problem(response, 404, "not_found").await;
            tried += 1;
        }
    }
    assert!(tried >= 20, "only {tried} by-id operations were tried");
    assert_eq!(
        snapshot(&app, &a.id).await,
        before,
        "tenant A's data changed"
    );
}
