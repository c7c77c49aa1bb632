//! The test harness: a real PostgreSQL, a fresh database per test, and the real server.
//!
//! With `DATABASE_URL` set, that server is used; without it, a throwaway cluster is
//! started the same way as the embedded default (and dies with the test process). A
//! template database is migrated once per test process; each test gets its own
//! database cloned from it (`CREATE DATABASE ... TEMPLATE`), dropped when the test
//! ends, so tests run in parallel and never see each other's data.

use std::{
    net::SocketAddr,
    sync::{
        OnceLock,
        atomic::{AtomicU32, Ordering},
    },
};

use rowguard::{
    app::{self, Application},
    config::Settings,
    platform::db::{
        Database, PoolOptions,
        embedded::{ClusterOptions, EmbeddedCluster},
    },
};
use tokio::sync::oneshot;
use tokio_postgres::{Client, NoTls};

struct Cluster {
    admin_url: String,
    template: String,
    _embedded: Option<EmbeddedCluster>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

fn cluster() -> &'static Cluster {
    // Set-up is async but runs once for the whole process, from whichever test's
    // runtime gets here first: give it a thread and a runtime of its own.
    CLUSTER.get_or_init(|| {
        std::thread::spawn(set_up_cluster)
            .join()
            .expect("setting up the test database cluster failed")
    })
}

fn set_up_cluster() -> Cluster {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (admin_url, embedded) = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => (url, None),
        _ => {
            let root = std::env::temp_dir().join(format!("rowguard-test-{}", std::process::id()));
            remove_stale_cluster_dirs();
            let options = ClusterOptions {
                throwaway: true,
                settings: vec![("max_connections".into(), "300".into())],
                port: None,
                // The system temporary directory is reachable by every user; a
                // relocated throwaway cluster would outlive the stale-directory sweep.
                relocate_if_unreachable: false,
            };
            let embedded = EmbeddedCluster::start(&root, &options).unwrap_or_else(|error| {
                panic!("cannot start a throwaway PostgreSQL cluster: {error}")
            });
            (embedded.url("postgres"), Some(embedded))
        }
    };
    let template = format!("rowguard_tpl_{}", std::process::id());
    runtime.block_on(async {
        let admin = connect(&admin_url).await;
        drop_stale_databases(&admin).await;
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {template} WITH (FORCE)"))
            .await
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {template}"))
            .await
            .unwrap();
        let db = Database::connect(
            &with_database(&admin_url, &template),
            &PoolOptions::default(),
        )
        .unwrap();
        app::migrate(&db)
            .await
            .expect("migrating the template database");
        db.pool().close();
    });
    Cluster {
        admin_url,
        template,
        _embedded: embedded,
    }
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill(pid, 0) only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    alive || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Throwaway clusters of test processes that are gone.
fn remove_stale_cluster_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name
            .strip_prefix("rowguard-test-")
            .and_then(|p| p.parse::<i32>().ok())
            && !pid_alive(pid)
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Databases left by test processes that are gone (a killed run cannot drop its own).
async fn drop_stale_databases(admin: &Client) {
    let rows = admin
        .query(
            "SELECT datname::text FROM pg_database WHERE datname ~ '^rowguard_(tpl|test)_[0-9]+'",
            &[],
        )
        .await
        .unwrap();
    for row in rows {
        let name: String = row.get(0);
        let pid: i32 = name
            .split('_')
            .nth(2)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if pid != 0 && !pid_alive(pid) {
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
}

/// The same server URL, pointing at another database.
pub fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url
        .split_once("://")
        .expect("DATABASE_URL is a postgres:// URL");
    let (authority, query) = match rest.split_once('/') {
        Some((authority, path)) => (authority, path.split_once('?').map(|(_, q)| q)),
        None => (
            rest.split_once('?').map_or(rest, |(a, _)| a),
            rest.split_once('?').map(|(_, q)| q),
        ),
    };
    match query {
        Some(query) => format!("{scheme}://{authority}/{database}?{query}"),
        None => format!("{scheme}://{authority}/{database}"),
    }
}

pub async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to the test database server: {error}"));
    tokio::spawn(connection);
    client
}

/// A database of its own for one test, dropped when the test ends.
pub struct TestDb {
    pub name: String,
    pub url: String,
    /// Dropped with the test (false for a database the test manages itself).
    owned: bool,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let cluster = cluster();
        let name = format!(
            "rowguard_test_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        );
        let admin = connect(&cluster.admin_url).await;
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {name} TEMPLATE {}",
                cluster.template
            ))
            .await
            .unwrap_or_else(|error| panic!("cannot create the test database {name}: {error}"));
        let url = with_database(&cluster.admin_url, &name);
        TestDb {
            name,
            url,
            owned: true,
        }
    }

    /// A database the test manages itself (on a cluster of its own).
    pub fn detached(url: String) -> TestDb {
        TestDb {
            name: String::new(),
            url,
            owned: false,
        }
    }

    /// A superuser connection to this test's database: for fixtures and for looking
    /// behind the API's back. Row-level security does not apply to it.
    pub async fn superuser(&self) -> Client {
        connect(&self.url).await
    }

    /// A pool as the server builds it (the login role; requests go through `begin`).
    pub fn database(&self, max_size: usize) -> Database {
        let options = PoolOptions {
            max_size,
            ..PoolOptions::default()
        };
        Database::connect(&self.url, &options).unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let admin_url = cluster().admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let admin = connect(&admin_url).await;
                let _ = admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            });
        })
        .join();
    }
}

/// The real server, on a free port, on its own test database.
pub struct TestApp {
    pub address: SocketAddr,
    pub http: reqwest::Client,
    pub db: TestDb,
    /// The server's own pool, to look at its state.
    pub database: Database,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub fn test_settings(database_url: &str) -> Settings {
    let mut settings = Settings::for_database(database_url);
    settings.bind = "127.0.0.1:0".parse().unwrap();
    settings.pool_size = 4;
    settings.jwt_secret = Some("test-secret-test-secret-test-secret-0123456789".into());
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDb::new().await;
    let mut settings = test_settings(&db.url);
    configure(&mut settings);
    let application = Application::build(&settings)
        .await
        .expect("the server starts");
    let address = application.local_addr();
    let database = application.database().clone();
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async {
        let _ = stop.await;
    }));
    TestApp {
        address,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        db,
        database,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

impl TestApp {
    /// A client for a server the test runs itself.
    pub fn attach(address: SocketAddr, db: TestDb) -> TestApp {
        TestApp {
            address,
            http: reqwest::Client::new(),
            database: Database::connect(&db.url, &PoolOptions::default()).unwrap(),
            db,
            shutdown: None,
            server: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// Graceful shutdown, as on SIGTERM; returns the server's result.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.server.take().unwrap().await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Asserts a problem+json error body with the given status and code; returns the body.
pub async fn assert_problem(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/problem+json"),
        "content type {content_type}"
    );
    let body: serde_json::Value = response.json().await.expect("a JSON body");
    assert_eq!(body["code"], code, "problem code in {body}");
    assert_eq!(body["status"], status, "problem status in {body}");
    body
}

pub const PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json_as(
        &self,
        token: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// Registers `email` with [`PASSWORD`] and a tenant; returns the 201 body.
    pub async fn register(&self, email: &str, tenant_name: &str) -> serde_json::Value {
        let response = self
            .post_json(
                "/api/v1/auth/register",
                &serde_json::json!({
                    "email": email,
                    "password": PASSWORD,
                    "full_name": "Test User",
                    "tenant_name": tenant_name,
                }),
            )
            .await;
        assert_eq!(response.status(), 201, "registering {email}");
        response.json().await.unwrap()
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/login",
            &serde_json::json!({"email": email, "password": password}),
        )
        .await
    }

    /// Logs in and returns the 200 body (the token pair).
    pub async fn login_ok(&self, email: &str) -> serde_json::Value {
        let response = self.login(email, PASSWORD).await;
        assert_eq!(response.status(), 200, "logging in {email}");
        response.json().await.unwrap()
    }
}

/// A field of a JSON body as a string.
pub fn text(value: &serde_json::Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field} in {value}"))
        .to_string()
}

/// A tenant made through the API: its Owner's session.
pub struct Tenant {
    pub id: String,
    pub owner_id: String,
    pub token: String,
}

impl TestApp {
    /// Any request, with optional bearer token, body and `X-Store-ID`.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
        store: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(store) = store {
            request = request.header("X-Store-ID", store);
        }
        request.send().await.expect("request sent")
    }

    /// Registers an Owner and their tenant.
    pub async fn tenant(&self, email: &str, name: &str) -> Tenant {
        let session = self.register(email, name).await;
        Tenant {
            id: text(&session["tenant"], "id"),
            owner_id: text(&session["user"], "id"),
            token: text(&session, "access_token"),
        }
    }

    /// The id of the tenant's role named `name`.
    pub async fn role_id(&self, token: &str, name: &str) -> String {
        let roles: serde_json::Value = self
            .get_as(token, "/api/v1/roles?limit=100")
            .await
            .json()
            .await
            .unwrap();
        roles["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|role| role["name"] == name)
            .map(|role| text(role, "id"))
            .unwrap_or_else(|| panic!("no role {name} in {roles}"))
    }

    /// The newest token the outbox holds for `email` with `template`.
    pub async fn outbox_token(&self, email: &str, template: &str) -> String {
        self.db
            .superuser()
            .await
            .query_one(
                "SELECT payload->>'token' FROM notification_outbox
                 WHERE recipient = $1 AND template = $2 ORDER BY created_at DESC LIMIT 1",
                &[&email, &template],
            )
            .await
            .unwrap_or_else(|_| panic!("no {template} for {email} in the outbox"))
            .get(0)
    }

    /// Invites `email` with the role named `role` (in `store`, if given) and accepts
    /// as a new user with [`PASSWORD`]; returns (user id, access token).
    pub async fn member(
        &self,
        owner_token: &str,
        email: &str,
        role: &str,
        store: Option<&str>,
    ) -> (String, String) {
        let role_id = self.role_id(owner_token, role).await;
        let response = self
            .post_json_as(
                owner_token,
                "/api/v1/invitations",
                &serde_json::json!({"email": email, "role_id": role_id, "store_id": store}),
            )
            .await;
        assert_eq!(
            response.status(),
            201,
            "inviting {email}: {:?}",
            response.text().await
        );
        let token = self.outbox_token(email, "invitation").await;
        let accepted = self
            .post_json(
                "/api/v1/auth/accept-invitation",
                &serde_json::json!({"token": token, "password": PASSWORD, "full_name": "Invited Member"}),
            )
            .await;
        assert_eq!(accepted.status(), 200, "accepting for {email}");
        let accepted: serde_json::Value = accepted.json().await.unwrap();
        let access_token = text(&accepted, "access_token");
        let me: serde_json::Value = self
            .get_as(&access_token, "/api/v1/me")
            .await
            .json()
            .await
            .unwrap();
        (text(&me["user"], "id"), access_token)
    }

    /// Creates a store; returns its id.
    pub async fn store(&self, token: &str, name: &str) -> String {
        let response = self
            .post_json_as(token, "/api/v1/stores", &serde_json::json!({"name": name}))
            .await;
        assert_eq!(response.status(), 201, "creating store {name}");
        let store: serde_json::Value = response.json().await.unwrap();
        text(&store, "id")
    }

    /// Creates a product; returns its id.
    pub async fn product(&self, token: &str, sku: &str) -> String {
        let response = self
            .post_json_as(
                token,
                "/api/v1/products",
                &serde_json::json!({"sku": sku, "name": sku, "price_cents": 100}),
            )
            .await;
        assert_eq!(response.status(), 201, "creating product {sku}");
        let product: serde_json::Value = response.json().await.unwrap();
        text(&product, "id")
    }
}
