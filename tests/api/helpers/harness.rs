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
    platform::{
        auth::PasswordHasher,
        db::{
            Database, PoolOptions, RuntimeRole,
            embedded::{ClusterOptions, EmbeddedCluster},
        },
        jobs::{Queue, Registry, WorkerOptions, Workers},
        metering::Meter,
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
        let owner: tokio_postgres::Config = with_database(&admin_url, &template).parse().unwrap();
        app::migrate(&owner)
            .await
            .expect("migrating the template database");
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

/// The same server and database, as another user (with `password`, if any).
pub fn as_user(url: &str, user: &str, password: Option<&str>) -> String {
    let (scheme, rest) = url
        .split_once("://")
        .expect("DATABASE_URL is a postgres:// URL");
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    match password {
        Some(password) => format!("{scheme}://{user}:{password}@{host}"),
        None => format!("{scheme}://{user}@{host}"),
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
    /// The server's own request pool (its request login role), to look at its state.
    pub database: Database,
    /// The server's credential flows' pool (its credential login role).
    pub credentials: Database,
    /// The server's own password hasher (`None` for a server the test runs itself).
    pub hasher: Option<PasswordHasher>,
    /// The server's job queue (its workers run only when the test's settings ask for
    /// them: `settings.workers`).
    pub queue: Option<Queue>,
    /// The job kinds of the server's workers (every module's).
    pub jobs: Option<Registry>,
    /// The server's count of API requests (`None` for a server the test runs itself).
    pub meter: Option<Meter>,
    /// Where the server serves `GET /metrics` (`settings.metrics_bind`), if anywhere.
    pub metrics_address: Option<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub fn test_settings(database_url: &str) -> Settings {
    let mut settings = Settings::for_database(database_url);
    settings.bind = "127.0.0.1:0".parse().unwrap();
    settings.pool_size = 4;
    // A worker would deliver (and so erase) the tokens tests read from the queue: a
    // test that wants workers asks for them.
    settings.workers = 0;
    // Every feature and no limits: the tests of gates and limits choose their plan.
    settings.default_plan = "business".into();
    settings.jwt_secret = Some("test-secret-test-secret-test-secret-0123456789".into());
    // The usage tests flush the meter when they choose to (`TestApp::flush_usage`);
    // a flush of its own every few seconds would race their "not yet" assertions.
    settings.usage_flush_secs = 60;
    // Tests read a callback's outcome as soon as it is answered: on a loaded machine
    // the settlement may outlast production's answer budget. The tests of the budget
    // set their own.
    settings.mpesa_callback_answer_ms = 60_000;
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(TestDb::new().await, configure).await
}

/// The server on a database the test prepared (rows it finds when it starts).
pub async fn spawn_app_on(db: TestDb, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings(&db.url);
    configure(&mut settings);
    let application = Application::build(&settings)
        .await
        .expect("the server starts");
    let address = application.local_addr();
    let metrics_address = application.metrics_addr();
    let database = application.database().clone();
    let credentials = application.credentials().clone();
    let hasher = application.identity().hasher.clone();
    let queue = application.queue().clone();
    let jobs = application.jobs();
    let meter = application.meter().clone();
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
        credentials,
        hasher: Some(hasher),
        queue: Some(queue),
        jobs: Some(jobs),
        meter: Some(meter),
        metrics_address,
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
            credentials: Database::connect_with(
                db.url.parse().unwrap(),
                RuntimeRole::Auth,
                &PoolOptions::default(),
            )
            .unwrap(),
            hasher: None,
            queue: None,
            jobs: None,
            meter: None,
            metrics_address: None,
            db,
            shutdown: None,
            server: None,
        }
    }

    /// The server's job queue.
    pub fn queue(&self) -> &Queue {
        self.queue.as_ref().expect("a server this harness started")
    }

    /// Adds the API requests the server counted to the database now, as its periodic
    /// flush would; how many it recorded.
    pub async fn flush_usage(&self) -> u64 {
        self.meter
            .as_ref()
            .expect("a server this harness started")
            .flush()
            .await
            .expect("the usage flush")
    }

    /// A job queue of its own, on pools of its own: another process's workers.
    pub async fn another_queue(&self) -> Queue {
        let owner: tokio_postgres::Config = self.db.url.parse().unwrap();
        let (api, auth) = rowguard::platform::db::roles::development_logins(&owner)
            .await
            .unwrap();
        let options = PoolOptions {
            max_size: 6,
            ..PoolOptions::default()
        };
        Queue::new(
            Database::connect_with(auth, RuntimeRole::Auth, &options).unwrap(),
            Database::connect_with(api, RuntimeRole::Api, &options).unwrap(),
        )
        .unwrap()
    }

    /// What `rowguard jobs run <kind> --at <at>` does, in this process with the
    /// server's queue and job kinds: the job as of `at`, then everything due (what it
    /// fanned out, emails). How many jobs ran.
    pub async fn run_job(&self, kind: &str, at: &str) -> u64 {
        let at: chrono::DateTime<chrono::Utc> = at.parse().expect("an RFC 3339 instant");
        let options = WorkerOptions {
            poll_interval: std::time::Duration::from_millis(20),
            ..WorkerOptions::default()
        };
        let registry = self.jobs.as_ref().expect("a server this harness started");
        let (_, ran) = Workers::run_as_of(self.queue(), registry, kind, at, &options)
            .await
            .expect("the jobs ran")
            .unwrap_or_else(|| panic!("no job kind {kind}"));
        ran
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
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
