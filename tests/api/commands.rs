//! The operator's command line (`src/commands/`), run as the built binary against the
//! test's own database: each command does what it says through the services the API
//! uses (shown by signing in afterwards), refuses what it must, and its `--help` shows
//! only its own flags.

use std::process::{Output, Stdio};

use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{PASSWORD, TestDb, assert_problem, spawn_app, spawn_app_on, text};

/// `rowguard <args>` on `url` with `env`, as from a script: no terminal, warnings only.
async fn rowguard_on(url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_rowguard"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .env_remove("ROWGUARD_ENV")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("rowguard runs")
}

async fn rowguard(db: &TestDb, args: &[&str], env: &[(&str, &str)]) -> Output {
    rowguard_on(&db.url, args, env).await
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn assert_succeeded(output: &Output) {
    assert!(
        output.status.success(),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
}

/// A command that must have failed, saying `why` on stderr.
#[track_caller]
fn assert_refused(output: &Output, why: &str) {
    assert!(!output.status.success(), "succeeded: {}", stdout(output));
    assert!(stderr(output).contains(why), "{}", stderr(output));
}

/// The uuid after `label (` in a command's output (`created user a@b (uuid)`).
fn id_after(output: &Output, label: &str) -> String {
    let out = stdout(output);
    let start = out
        .find(&format!("{label} ("))
        .unwrap_or_else(|| panic!("no {label:?} in {out}"))
        + label.len()
        + 2;
    out[start..start + 36].to_string()
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    db.superuser()
        .await
        .query_one(sql, &[])
        .await
        .unwrap()
        .get(0)
}

/// `rowguard user create` with [`PASSWORD`] from the environment; the new user's id.
async fn create_user(db: &TestDb, email: &str) -> String {
    let output = rowguard(
        db,
        &[
            "user",
            "create",
            "--email",
            email,
            "--full-name",
            "Ada Lovelace",
        ],
        &[("ROWGUARD_USER_PASSWORD", PASSWORD)],
    )
    .await;
    assert_succeeded(&output);
    id_after(&output, &format!("created user {email}"))
}

// --- --help ----------------------------------------------------------------------------

#[tokio::test]
async fn a_one_shot_commands_help_lists_its_flags_and_not_the_servers() {
    let db = TestDb::new().await;
    let serve = stdout(&rowguard(&db, &["serve", "--help"], &[]).await);
    assert!(serve.contains("--bind"), "{serve}");
    assert!(serve.contains("--jwt-secret"), "{serve}");
    for command in [
        &["db", "seed"][..],
        &["db", "reset"],
        &["user", "create"],
        &["tenant", "seed-roles"],
        &["migrate"],
    ] {
        let args: Vec<&str> = command.iter().copied().chain(["--help"]).collect();
        let help = stdout(&rowguard(&db, &args, &[]).await);
        assert!(help.contains("--database-url"), "{command:?}: {help}");
        assert!(help.contains("--db-wait-secs"), "{command:?}: {help}");
        for server_flag in ["--bind", "--jwt-secret", "--smtp-url", "--mpesa-passkey"] {
            assert!(
                !help.contains(server_flag),
                "{command:?} lists {server_flag}: {help}"
            );
        }
    }
}

// --- db seed ---------------------------------------------------------------------------

#[tokio::test]
async fn db_seed_makes_a_demo_tenant_each_of_whose_members_signs_in() {
    let db = TestDb::new().await;
    let output = rowguard(
        &db,
        &["db", "seed"],
        &[("ROWGUARD_SEED_PASSWORD", PASSWORD)],
    )
    .await;
    assert_succeeded(&output);
    let printed = stdout(&output);
    let app = spawn_app_on(db, |_| {}).await;
    for email in [
        "owner@demo.example.com",
        "admin@demo.example.com",
        "manager@demo.example.com",
        "staff@demo.example.com",
    ] {
        assert!(printed.contains(email), "{printed}");
        app.login_ok(email).await;
    }
    let owner = app.login_ok("owner@demo.example.com").await;
    let products = app.products_list(&text(&owner, "access_token")).await;
    assert_eq!(products.status(), 200);
    let products: serde_json::Value = products.json().await.unwrap();
    assert_eq!(products["items"].as_array().unwrap().len(), 4, "{products}");
    // The Staff member works in the first store and sees its stock there.
    let staff = app.login_ok("staff@demo.example.com").await;
    let store: String = app
        .db
        .superuser()
        .await
        .query_one("SELECT id::text FROM stores WHERE code = 'DT'", &[])
        .await
        .unwrap()
        .get(0);
    let stock = app
        .inventory_list(&text(&staff, "access_token"))
        .in_store(&store)
        .await;
    assert_eq!(stock.status(), 200);
    let stock: serde_json::Value = stock.json().await.unwrap();
    assert_eq!(stock["items"].as_array().unwrap().len(), 4, "{stock}");
    // ...and only there: the other store is not theirs.
    let airport: String = app
        .db
        .superuser()
        .await
        .query_one("SELECT id::text FROM stores WHERE code = 'AP'", &[])
        .await
        .unwrap()
        .get(0);
    let elsewhere = app
        .inventory_list(&text(&staff, "access_token"))
        .in_store(&airport)
        .await;
    assert_problem(elsewhere, 403, "store_access_denied").await;
}

#[tokio::test]
async fn db_seed_refuses_a_database_it_seeded_already() {
    let db = TestDb::new().await;
    let env = [("ROWGUARD_SEED_PASSWORD", PASSWORD)];
    assert_succeeded(&rowguard(&db, &["db", "seed"], &env).await);
    let users = count(&db, "SELECT count(*) FROM users").await;
    let again = rowguard(&db, &["db", "seed"], &env).await;
    assert_refused(&again, "seeded already");
    assert_eq!(count(&db, "SELECT count(*) FROM users").await, users);
    assert_eq!(count(&db, "SELECT count(*) FROM tenants").await, 1);
}

#[tokio::test]
async fn db_seed_prints_the_password_it_generates() {
    let db = TestDb::new().await;
    let output = rowguard(&db, &["db", "seed"], &[]).await;
    assert_succeeded(&output);
    let printed = stdout(&output);
    let password = printed
        .lines()
        .find_map(|line| line.strip_prefix("password of each (shown once): "))
        .unwrap_or_else(|| panic!("no password in {printed}"))
        .to_string();
    let app = spawn_app_on(db, |_| {}).await;
    let login = app.login("admin@demo.example.com", &password).await;
    assert_eq!(login.status(), 200);
}

// --- db reset --------------------------------------------------------------------------

#[tokio::test]
async fn db_reset_drops_everything_and_migrates_again() {
    let db = TestDb::new().await;
    create_user(&db, "ada@example.com").await;
    assert_eq!(count(&db, "SELECT count(*) FROM users").await, 1);
    let output = rowguard(&db, &["db", "reset", "--yes"], &[]).await;
    assert_succeeded(&output);
    assert_eq!(count(&db, "SELECT count(*) FROM users").await, 0);
    // Migrated and covered again: the catalog check passes and a server serves on it.
    assert_succeeded(&rowguard(&db, &["policies", "--check"], &[]).await);
    let app = spawn_app_on(db, |_| {}).await;
    app.register("ada@example.com", "Again").await;
}

#[tokio::test]
async fn db_reset_is_refused_in_production() {
    let db = TestDb::new().await;
    create_user(&db, "ada@example.com").await;
    let output = rowguard(
        &db,
        &["db", "reset", "--yes"],
        &[("ROWGUARD_ENV", "production")],
    )
    .await;
    assert_refused(&output, "refused with ROWGUARD_ENV=production");
    assert_eq!(count(&db, "SELECT count(*) FROM users").await, 1);
}

#[tokio::test]
async fn db_reset_without_yes_and_without_a_terminal_to_ask_drops_nothing() {
    let db = TestDb::new().await;
    create_user(&db, "ada@example.com").await;
    let output = rowguard(&db, &["db", "reset"], &[]).await;
    assert_refused(&output, "--yes");
    assert_eq!(count(&db, "SELECT count(*) FROM users").await, 1);
}

// --- user ------------------------------------------------------------------------------

#[tokio::test]
async fn user_create_makes_a_user_with_the_password_of_the_environment() {
    let db = TestDb::new().await;
    let id = create_user(&db, "ada@example.com").await;
    let found = count(
        &db,
        &format!(
            "SELECT count(*) FROM users u JOIN auth.user_credentials c ON c.user_id = u.id
             WHERE u.id = '{id}' AND u.email = 'ada@example.com' AND NOT u.is_platform_admin"
        ),
    )
    .await;
    assert_eq!(found, 1);
    // The same email again is refused, saying why.
    let again = rowguard(
        &db,
        &[
            "user",
            "create",
            "--email",
            "ADA@example.com",
            "--full-name",
            "Ada",
        ],
        &[("ROWGUARD_USER_PASSWORD", PASSWORD)],
    )
    .await;
    assert_refused(&again, "already registered");
}

#[tokio::test]
async fn user_create_without_a_password_to_read_creates_nobody() {
    let db = TestDb::new().await;
    let output = rowguard(
        &db,
        &[
            "user",
            "create",
            "--email",
            "ada@example.com",
            "--full-name",
            "Ada",
        ],
        &[],
    )
    .await;
    assert_refused(&output, "ROWGUARD_USER_PASSWORD");
    assert_eq!(count(&db, "SELECT count(*) FROM users").await, 0);
}

#[tokio::test]
async fn user_create_refuses_a_weak_password_naming_the_field() {
    let db = TestDb::new().await;
    let output = rowguard(
        &db,
        &[
            "user",
            "create",
            "--email",
            "ada@example.com",
            "--full-name",
            "Ada",
        ],
        &[("ROWGUARD_USER_PASSWORD", "short")],
    )
    .await;
    assert_refused(&output, "password");
    assert_eq!(count(&db, "SELECT count(*) FROM users").await, 0);
}

#[tokio::test]
async fn user_assign_role_lets_a_user_into_a_tenant_with_that_role() {
    let app = spawn_app().await;
    let owner = app.register("owner@example.com", "Acme").await;
    let tenant = owner["tenant"]["id"].as_str().unwrap().to_string();
    let user = create_user(&app.db, "ada@example.com").await;
    // Not a member yet: signing in finds no tenant of theirs.
    assert_ne!(app.login("ada@example.com", PASSWORD).await.status(), 200);

    let output = rowguard(
        &app.db,
        &[
            "user",
            "assign-role",
            "--user",
            &user,
            "--tenant",
            &tenant,
            "--role",
            "Admin",
        ],
        &[],
    )
    .await;
    assert_succeeded(&output);
    let session = app.login_ok("ada@example.com").await;
    assert_eq!(session["tenant_id"], tenant.as_str());
    let me: serde_json::Value = app
        .me_get(&text(&session, "access_token"))
        .await
        .json()
        .await
        .unwrap();
    assert!(me.to_string().contains("Admin"), "{me}");
    // An Admin creates products there.
    let created = app
        .products_create(
            &text(&session, "access_token"),
            &json!({"sku": "A-1", "name": "Anvil", "price_cents": 100}),
        )
        .await;
    assert_eq!(created.status(), 201);
    // The operator's change is in the tenant's audit trail, with no actor.
    let audited = count(
        &app.db,
        &format!(
            "SELECT count(*) FROM audit_events WHERE action = 'role.assigned'
             AND target_id = '{user}' AND actor_user_id IS NULL"
        ),
    )
    .await;
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn user_assign_role_refuses_a_role_the_tenant_does_not_have() {
    let app = spawn_app().await;
    let owner = app.register("owner@example.com", "Acme").await;
    let tenant = owner["tenant"]["id"].as_str().unwrap().to_string();
    let user = create_user(&app.db, "ada@example.com").await;
    let output = rowguard(
        &app.db,
        &[
            "user",
            "assign-role",
            "--user",
            &user,
            "--tenant",
            &tenant,
            "--role",
            "Wizard",
        ],
        &[],
    )
    .await;
    assert_refused(&output, "no role named");
    // Nothing half-done: not even a membership.
    assert_ne!(app.login("ada@example.com", PASSWORD).await.status(), 200);
}

// --- tenant ----------------------------------------------------------------------------

#[tokio::test]
async fn tenant_create_founds_a_tenant_owned_by_an_existing_user() {
    let db = TestDb::new().await;
    let user = create_user(&db, "ada@example.com").await;
    let output = rowguard(
        &db,
        &[
            "tenant",
            "create",
            "--name",
            "Analytical Engines",
            "--owner",
            &user,
        ],
        &[],
    )
    .await;
    assert_succeeded(&output);
    let tenant = id_after(&output, "created tenant Analytical Engines");
    let app = spawn_app_on(db, |_| {}).await;
    let session = app.login_ok("ada@example.com").await;
    assert_eq!(session["tenant_id"], tenant.as_str());
    // The Owner of a tenant on the default plan: its subscription exists, and the
    // Owner may change the tenant.
    let renamed = app
        .request(reqwest::Method::PATCH, "/api/v1/tenants/current")
        .bearer(&text(&session, "access_token"))
        .json(&json!({"name": "Difference Engines"}))
        .await;
    assert_eq!(renamed.status(), 200);
    let subscriptions = count(
        &app.db,
        &format!("SELECT count(*) FROM subscriptions WHERE tenant_id = '{tenant}'"),
    )
    .await;
    assert_eq!(subscriptions, 1);
}

#[tokio::test]
async fn tenant_create_refuses_an_owner_who_does_not_exist() {
    let db = TestDb::new().await;
    let nobody = uuid::Uuid::new_v4().to_string();
    let output = rowguard(
        &db,
        &["tenant", "create", "--name", "Ghosts", "--owner", &nobody],
        &[],
    )
    .await;
    assert_refused(&output, "no user");
    assert_eq!(count(&db, "SELECT count(*) FROM tenants").await, 0);
}

#[tokio::test]
async fn tenant_seed_roles_restores_missing_system_roles_and_their_permissions() {
    let app = spawn_app().await;
    let owner = app.register("owner@example.com", "Acme").await;
    let tenant = owner["tenant"]["id"].as_str().unwrap().to_string();
    let grants = |role: &'static str| {
        let tenant = tenant.clone();
        let db = &app.db;
        async move {
            count(
                db,
                &format!(
                    "SELECT count(*) FROM role_permissions rp JOIN roles r
                     ON r.tenant_id = rp.tenant_id AND r.id = rp.role_id
                     WHERE r.tenant_id = '{tenant}' AND r.name = '{role}' AND r.is_system"
                ),
            )
            .await
        }
    };
    let (staff, admin) = (grants("Staff").await, grants("Admin").await);
    assert!(staff > 0 && admin > 0);
    app.db
        .superuser()
        .await
        .batch_execute(&format!(
            "DELETE FROM roles WHERE tenant_id = '{tenant}' AND name = 'Staff';
             DELETE FROM role_permissions rp USING roles r
             WHERE r.tenant_id = rp.tenant_id AND r.id = rp.role_id AND r.tenant_id = '{tenant}'
               AND r.name = 'Admin' AND rp.permission_code = 'products.create'"
        ))
        .await
        .unwrap();
    assert_eq!(grants("Staff").await, 0);

    let output = rowguard(&app.db, &["tenant", "seed-roles", &tenant], &[]).await;
    assert_succeeded(&output);
    assert!(stdout(&output).contains("Staff"), "{}", stdout(&output));
    assert_eq!(grants("Staff").await, staff);
    assert_eq!(grants("Admin").await, admin);

    let again = rowguard(&app.db, &["tenant", "seed-roles", &tenant], &[]).await;
    assert_succeeded(&again);
    assert!(
        stdout(&again).contains("no system role was missing; 0 default"),
        "{}",
        stdout(&again)
    );
}

#[tokio::test]
async fn tenant_seed_roles_refuses_a_tenant_that_does_not_exist() {
    let db = TestDb::new().await;
    let nobody = uuid::Uuid::new_v4().to_string();
    let output = rowguard(&db, &["tenant", "seed-roles", &nobody], &[]).await;
    assert_refused(&output, "no tenant");
    assert_eq!(count(&db, "SELECT count(*) FROM roles").await, 0);
}

// --- start-up: the wait for the database, one message ----------------------------------

/// A local port nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_command_gives_up_waiting_for_the_database_after_the_configured_time() {
    let port = closed_port().await;
    let url = format!("postgres://root@127.0.0.1:{port}/rowguard");
    let output = rowguard_on(
        &url,
        &["tenant", "seed-roles", &uuid::Uuid::new_v4().to_string()],
        &[("ROWGUARD_DB_WAIT_SECS", "1")],
    )
    .await;
    assert!(!output.status.success());
    let (out, err) = (stdout(&output), stderr(&output));
    let message = format!("127.0.0.1:{port} did not accept a connection within 1 s");
    // Printed once, and said why each retry happened before that.
    assert_eq!(
        format!("{out}{err}").matches(&message).count(),
        1,
        "{out}\n{err}"
    );
    assert!(
        out.contains("is not accepting connections yet; retrying"),
        "{out}"
    );
}

#[tokio::test]
async fn the_server_gives_up_waiting_for_the_database_with_one_message() {
    let port = closed_port().await;
    let url = format!("postgres://root@127.0.0.1:{port}/rowguard");
    let output = rowguard_on(
        &url,
        &["serve"],
        &[
            ("ROWGUARD_DB_WAIT_SECS", "1"),
            ("ROWGUARD_BIND", "127.0.0.1:0"),
        ],
    )
    .await;
    assert!(!output.status.success());
    let all = format!("{}{}", stdout(&output), stderr(&output));
    assert_eq!(
        all.matches("did not accept a connection within 1 s")
            .count(),
        1,
        "{all}"
    );
}

#[tokio::test]
async fn a_command_waits_for_a_database_that_comes_up_late() {
    let db = TestDb::new().await;
    let config: tokio_postgres::Config = db.url.parse().unwrap();
    let (host, port) = match (&config.get_hosts()[0], config.get_ports().first()) {
        (tokio_postgres::config::Host::Tcp(host), Some(port)) => (host.clone(), *port),
        _ => {
            eprintln!("skipped: the test database is not reached over TCP");
            return;
        }
    };
    let late = closed_port().await;
    let url = format!(
        "postgres://{}@127.0.0.1:{late}/{}",
        config.get_user().unwrap(),
        config.get_dbname().unwrap()
    );
    let command = tokio::spawn(async move {
        rowguard_on(
            &url,
            &[
                "user",
                "create",
                "--email",
                "ada@example.com",
                "--full-name",
                "Ada",
            ],
            &[
                ("ROWGUARD_DB_WAIT_SECS", "30"),
                ("ROWGUARD_USER_PASSWORD", PASSWORD),
            ],
        )
        .await
    });
    // The database "comes up" a moment later: a proxy to it starts listening.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let listener = TcpListener::bind(("127.0.0.1", late)).await.unwrap();
    let proxy = tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let target = (host.clone(), port);
            tokio::spawn(async move {
                if let Ok(mut server) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    let output = command.await.unwrap();
    proxy.abort();
    assert_succeeded(&output);
    assert!(
        stdout(&output).contains("retrying"),
        "it had to wait: {}",
        stdout(&output)
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM users WHERE email = 'ada@example.com'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_one_shot_command_does_not_warn_about_the_jwt_secret() {
    let db = TestDb::new().await;
    let output = rowguard(&db, &["jobs", "list"], &[("RUST_LOG", "info")]).await;
    assert_succeeded(&output);
    let all = format!("{}{}", stdout(&output), stderr(&output));
    assert!(!all.contains("ROWGUARD_JWT_SECRET"), "{all}");
}
