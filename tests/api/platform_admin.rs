//! The operator routes of tenants: a platform admin lists every tenant's summary and
//! suspends or reactivates one (its members refused from their next request); anyone
//! else is refused every platform route.

use serde_json::{Value, json};

use crate::helpers::{assert_problem, spawn_app, text};

#[tokio::test]
async fn the_platform_admin_lists_tenants_with_plan_status_and_members() {
    let app = spawn_app().await;
    let (admin, platform) = app.platform_admin().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    app.member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    let listed = app.platform_tenants_list(&admin).await;
    assert_eq!(listed.status(), 200);
    let listed: Value = listed.json().await.unwrap();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{listed}");
    assert_eq!(items[0]["id"], platform.as_str());
    let acme_row = &items[1];
    assert_eq!(acme_row["id"], acme.id.as_str());
    assert_eq!(acme_row["name"], "Acme");
    assert_eq!(acme_row["status"], "active");
    assert_eq!(acme_row["members"], 2);
    assert!(acme_row["plan_code"].is_string() && acme_row["subscription_status"].is_string());
    // Pages of one.
    let first: Value = app
        .platform_tenants_list(&admin)
        .limit(1)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["items"][0]["id"], platform.as_str());
    let second: Value = app
        .platform_tenants_list(&admin)
        .limit(1)
        .cursor(first["next_cursor"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["items"][0]["id"], acme.id.as_str());
}

#[tokio::test]
async fn suspending_a_tenant_refuses_its_members_on_their_next_request() {
    let app = spawn_app().await;
    let (admin, platform) = app.platform_admin().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let key = text(&app.api_key(&acme.token, &["products.view"]).await, "key");
    assert_eq!(app.products_list(&acme.token).await.status(), 200);
    assert_eq!(app.products_list(&key).await.status(), 200);

    let suspended = app
        .platform_tenants_update(&admin, &acme.id, &json!({"status": "suspended"}))
        .await;
    assert_eq!(suspended.status(), 200);
    let suspended: Value = suspended.json().await.unwrap();
    assert_eq!(suspended["status"], "suspended");
    assert_problem(
        app.products_list(&acme.token).await,
        403,
        "tenant_suspended",
    )
    .await;
    assert_problem(app.products_list(&key).await, 403, "tenant_suspended").await;

    let active = app
        .platform_tenants_update(&admin, &acme.id, &json!({"status": "active"}))
        .await;
    assert_eq!(active.status(), 200);
    assert_eq!(app.products_list(&acme.token).await.status(), 200);

    // Unknown tenant, bad status, own tenant.
    assert_problem(
        app.platform_tenants_update(
            &admin,
            &uuid::Uuid::new_v4().to_string(),
            &json!({"status": "active"}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    let bad = app
        .platform_tenants_update(&admin, &acme.id, &json!({"status": "deleted"}))
        .await
        .status()
        .as_u16();
    assert!(bad == 400 || bad == 422, "{bad}");
    assert_problem(
        app.platform_tenants_update(&admin, &platform, &json!({"status": "suspended"}))
            .await,
        409,
        "conflict",
    )
    .await;
}

#[tokio::test]
async fn a_non_admin_is_refused_every_platform_route() {
    let app = spawn_app().await;
    let (admin, _) = app.platform_admin().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let key = text(&app.api_key(&acme.token, &["products.view"]).await, "key");
    // The admin is allowed each of them first.
    assert_eq!(app.platform_tenants_list(&admin).await.status(), 200);
    assert_eq!(
        app.platform_tenants_update(&admin, &acme.id, &json!({"status": "active"}))
            .await
            .status(),
        200
    );
    assert_eq!(app.platform_jobs_list(&admin).await.status(), 200);
    assert_eq!(
        app.platform_tenants_set_subscription(&admin, &acme.id, &json!({"plan_code": "business"}))
            .await
            .status(),
        200
    );
    // The Owner of a tenant is not a platform admin.
    for token in [acme.token.as_str()] {
        for call in [
            app.platform_tenants_list(token),
            app.platform_tenants_update(token, &acme.id, &json!({"status": "suspended"})),
            app.platform_tenants_set_subscription(token, &acme.id, &json!({"plan_code": "free"})),
            app.platform_jobs_list(token),
            app.platform_jobs_retry(token, 1),
        ] {
            let body = assert_problem(call.await, 403, "forbidden").await;
            assert_eq!(body["permission"], "platform_admin");
        }
    }
    // A key, even the platform admin's own, never acts as the operator.
    let admin_key = text(&app.api_key(&admin, &["products.view"]).await, "key");
    for key in [key.as_str(), admin_key.as_str()] {
        assert_problem(app.platform_tenants_list(key).await, 401, "unauthenticated").await;
        assert_problem(app.platform_jobs_list(key).await, 401, "unauthenticated").await;
    }
    // Nothing changed.
    let listed: Value = app
        .platform_tenants_list(&admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][1]["status"], "active");
    assert_eq!(app.subscription(&acme.token).await["plan_code"], "business");
}

#[tokio::test]
async fn the_command_line_suspends_and_activates_a_tenant() {
    use clap::Parser;
    use rowguard::config::Cli;
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    assert_eq!(app.products_list(&acme.token).await.status(), 200);
    let run = |action: &'static str, id: String| {
        let cli = Cli::try_parse_from([
            "rowguard",
            "tenant",
            action,
            &id,
            "--database-url",
            &app.db.url,
        ])
        .unwrap();
        rowguard::commands::run(cli.into_command())
    };
    let code = run("suspend", acme.id.clone()).await.unwrap();
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    assert_problem(
        app.products_list(&acme.token).await,
        403,
        "tenant_suspended",
    )
    .await;
    let code = run("activate", acme.id.clone()).await.unwrap();
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    assert_eq!(app.products_list(&acme.token).await.status(), 200);
    let unknown = run("suspend", uuid::Uuid::new_v4().to_string())
        .await
        .unwrap();
    assert_eq!(unknown, std::process::ExitCode::FAILURE);
}
