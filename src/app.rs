//! Start-up: find the database (a URL, or the embedded cluster), build the pool,
//! migrate, check the isolation invariants, bind, serve until a shutdown signal, then
//! drain. `main` and the test harness both go through [`Application`].

use std::{future::Future, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use poem::{
    Server,
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
};

use tokio_postgres::Config;

use crate::{
    config::{DEFAULT_DATA_DIR, Environment, Settings},
    modules::{self, AppState, identity::service::Identity},
    platform::{
        db::{
            self, Database, PoolOptions, RuntimeRole,
            embedded::{ClusterOptions, EmbeddedCluster},
            migrate, rls_audit, roles,
        },
        jobs::{Queue, WorkerOptions, Workers},
        metering::Meter,
        metrics,
    },
};

/// How long in-flight requests get to finish after a shutdown signal.
const GRACE_PERIOD: Duration = Duration::from_secs(30);

/// Where the server's connections go (README, "Database roles").
pub struct DatabaseTarget {
    /// The tables' owner: migrations run with it when it is known.
    pub owner: Option<Config>,
    /// The login roles of requests and of the credential flows.
    pub logins: Logins,
    /// Kept alive for as long as the server runs; stopped when dropped.
    pub cluster: Option<EmbeddedCluster>,
}

pub enum Logins {
    /// Given by the operator: `DATABASE_URL` and `ROWGUARD_AUTH_DATABASE_URL`.
    Given { api: Box<Config>, auth: Box<Config> },
    /// Development: made by the owner once migrated ([`roles::development_logins`]).
    MadeByOwner,
}

/// Finds the database: the login roles' URLs when given; else, in development, the one
/// URL given taken as the owner's; else the embedded cluster under the data directory,
/// with a `rowguard` database in it.
pub async fn database_target(settings: &Settings) -> anyhow::Result<DatabaseTarget> {
    let owner = settings
        .database
        .owner_database_url
        .as_ref()
        .map(|url| db::parse_url(url.expose(), "ROWGUARD_OWNER_DATABASE_URL"))
        .transpose()?;
    match (
        &settings.database.database_url,
        &settings.database.auth_database_url,
    ) {
        (Some(api), Some(auth)) => {
            let api = db::parse_url(api.expose(), "DATABASE_URL")?;
            // The owner's connection is the first one made when it is given.
            match &owner {
                Some(owner) => wait_for(owner, "the owner's database", settings).await?,
                None => wait_for(&api, "the database", settings).await?,
            }
            return Ok(DatabaseTarget {
                owner,
                logins: Logins::Given {
                    api: Box::new(api),
                    auth: Box::new(db::parse_url(auth.expose(), "ROWGUARD_AUTH_DATABASE_URL")?),
                },
                cluster: None,
            });
        }
        (None, Some(_)) => anyhow::bail!("ROWGUARD_AUTH_DATABASE_URL is set without DATABASE_URL"),
        (Some(url), None) => {
            if settings.database.environment == Environment::Production {
                anyhow::bail!(
                    "ROWGUARD_ENV=production needs the login roles' URLs: DATABASE_URL (requests) and \
                     ROWGUARD_AUTH_DATABASE_URL (credential flows), and migrations run as the owner \
                     (ROWGUARD_OWNER_DATABASE_URL, or `rowguard migrate`): README, \"Database roles\""
                );
            }
            tracing::info!(
                "DATABASE_URL is taken as the owner's (development): the server makes its login roles \
                 {} and {} and connects as them",
                roles::API_LOGIN,
                roles::AUTH_LOGIN
            );
            let owner = owner.unwrap_or(db::parse_url(url.expose(), "DATABASE_URL")?);
            wait_for(&owner, "the database", settings).await?;
            return Ok(DatabaseTarget {
                owner: Some(owner),
                logins: Logins::MadeByOwner,
                cluster: None,
            });
        }
        (None, None) => {}
    }
    // Moving a directory the operator chose would surprise them; the default is only
    // a convenience, so when the cluster's user cannot reach it, it may live elsewhere.
    let (dir, relocate_if_unreachable) = match &settings.database.data_dir {
        Some(dir) => (dir.clone(), false),
        None => (PathBuf::from(DEFAULT_DATA_DIR), true),
    };
    let options = ClusterOptions {
        relocate_if_unreachable,
        ..ClusterOptions::default()
    };
    let cluster = tokio::task::spawn_blocking(move || EmbeddedCluster::start(&dir, &options))
        .await
        .context("starting the embedded PostgreSQL cluster")?
        .context(
            "starting the embedded PostgreSQL cluster (set DATABASE_URL to use another server)",
        )?;
    ensure_database(&cluster.url("postgres"), "rowguard").await?;
    Ok(DatabaseTarget {
        owner: Some(db::parse_url(
            &cluster.url("rowguard"),
            "the embedded cluster's URL",
        )?),
        logins: Logins::MadeByOwner,
        cluster: Some(cluster),
    })
}

/// Waits for the server of `config` up to `ROWGUARD_DB_WAIT_SECS` (the embedded
/// cluster needs no wait: it is started, and waited for, by this process).
async fn wait_for(config: &Config, what: &str, settings: &Settings) -> anyhow::Result<()> {
    db::wait::until_reachable(
        config,
        what,
        Duration::from_secs(settings.database.db_wait_secs),
    )
    .await
}

/// Creates `name` unless it exists. `name` is a constant of this crate, never input.
async fn ensure_database(admin_url: &str, name: &'static str) -> anyhow::Result<()> {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .with_context(|| format!("creating database {name}"))?;
    }
    drop(client);
    let _ = connection.await;
    Ok(())
}

pub fn pool_options(settings: &Settings) -> PoolOptions {
    PoolOptions {
        max_size: settings.pool_size(),
        acquire_timeout: settings.pool_timeout(),
        statement_timeout: settings.statement_timeout(),
    }
}

/// The credential flows hold a connection briefly (never while a password is hashed):
/// half the request pool, at least two.
fn credential_pool_options(settings: &Settings) -> PoolOptions {
    let mut options = pool_options(settings);
    options.max_size = (options.max_size / 2).max(2);
    options
}

/// The request pool, the credential flows' pool, and the job queue's two: its jobs'
/// transactions (as the request login role) and its machinery (as the credential
/// flows' login role), kept apart from the requests' so that a backlog waits for its
/// own connections, never a request for one (connections open on first use: a
/// process without workers opens none).
pub struct Pools {
    pub api: Database,
    pub auth: Database,
    pub jobs: Database,
    pub queue: Database,
}

/// Each worker runs up to `WorkerOptions::concurrency` jobs, each holding a
/// connection of the jobs' pool; the machinery's claims, heartbeats and schedules
/// are short.
fn job_pool_options(settings: &Settings, concurrency: usize) -> PoolOptions {
    let mut options = pool_options(settings);
    options.max_size = (settings.workers.max(1) * concurrency).max(2);
    options
}

fn queue_pool_options(settings: &Settings) -> PoolOptions {
    let mut options = pool_options(settings);
    options.max_size = settings.workers.max(1) + 2;
    options
}

impl DatabaseTarget {
    /// Migrates (when the owner is known), makes the development login roles when
    /// asked to, builds both pools, and refuses a database behind this build.
    pub async fn open(&self, settings: &Settings) -> anyhow::Result<Pools> {
        if let Some(owner) = &self.owner {
            migrate(owner).await?;
        }
        let (api, auth) = match &self.logins {
            Logins::Given { api, auth } => (api.as_ref().clone(), auth.as_ref().clone()),
            Logins::MadeByOwner => {
                let owner = self
                    .owner
                    .as_ref()
                    .context("login roles made by an owner need the owner's URL")?;
                roles::development_logins(owner).await?
            }
        };
        let concurrency = WorkerOptions::default().concurrency;
        let pools = Pools {
            api: Database::connect_with(api.clone(), RuntimeRole::Api, &pool_options(settings))?,
            auth: Database::connect_with(
                auth.clone(),
                RuntimeRole::Auth,
                &credential_pool_options(settings),
            )?,
            jobs: Database::connect_with(
                api,
                RuntimeRole::Api,
                &job_pool_options(settings, concurrency),
            )?,
            queue: Database::connect_with(auth, RuntimeRole::Auth, &queue_pool_options(settings))?,
        };
        if self.owner.is_none() && !pools.api.migrations_current().await? {
            anyhow::bail!(
                "the database is behind this build: run `rowguard migrate` as the owner \
                 (ROWGUARD_OWNER_DATABASE_URL), or give the server ROWGUARD_OWNER_DATABASE_URL"
            );
        }
        Ok(pools)
    }
}

/// Applies migrations and policy files, as the owner.
pub async fn migrate(owner: &Config) -> anyhow::Result<()> {
    let mut client = db::connect_once(owner)
        .await
        .context("connecting to the database as the owner")?;
    migrate::run(&mut client).await
}

/// docs/design.md invariants 2 and 3, and the roles of README "Database roles", checked
/// before serving: the login roles can become their runtime role and nothing else; the
/// runtime roles cannot bypass row-level security (checked after actually switching to
/// them); every tenant-scoped table has RLS enabled, forced and covered by policies.
pub async fn self_check(pools: &Pools) -> anyhow::Result<()> {
    let client = pools.api.admin_connection().await?;
    let report = rls_audit::report(&**client).await?;
    let mut problems = rls_audit::problems(&report);

    // The SECURITY DEFINER functions (credentials, sessions) run as the role that owns
    // them, and answer before any tenant context exists: under FORCED row-level
    // security they would see nothing unless that role bypasses it.
    let owners = client
        .query(
            "SELECT DISTINCT r.rolname::text, r.rolsuper OR r.rolbypassrls
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             JOIN pg_roles r ON r.oid = p.proowner
             WHERE n.nspname = 'app' AND p.prosecdef",
            &[],
        )
        .await?;
    for owner in owners {
        let (name, bypasses): (String, bool) = (owner.try_get(0)?, owner.try_get(1)?);
        if !bypasses {
            problems.push(format!(
                "the role {name} owns the SECURITY DEFINER functions, which must see every tenant's \
                 credentials and sessions: give it BYPASSRLS (ALTER ROLE {name} BYPASSRLS)"
            ));
        }
    }
    drop(client);
    problems.extend(roles::problems([&pools.api, &pools.auth]).await?);

    for db in [&pools.api, &pools.auth] {
        let role = db.runtime_role().name();
        let mut client = db.admin_connection().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT set_config('role', $1, true)", &[&role])
            .await
            .with_context(|| format!("switching to the runtime role {role}"))?;
        let row = tx
            .query_one(
                "SELECT current_user::text, current_setting('is_superuser') = 'on', r.rolbypassrls
                 FROM pg_roles r WHERE r.rolname = current_user",
                &[],
            )
            .await?;
        tx.rollback().await?;
        let (user, superuser, bypass): (String, bool, bool) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        if user != role {
            problems.push(format!("switching to {role} left the session as {user}"));
        }
        if superuser || bypass {
            problems.push(format!("as {user}, row-level security can be bypassed"));
        }
    }

    if problems.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "refusing to start: tenant isolation is not guaranteed:\n  - {}",
            problems.join("\n  - ")
        )
    }
}

/// A server bound to its address, its database migrated and checked, not yet serving.
pub struct Application {
    state: AppState,
    workers: usize,
    usage_flush: Duration,
    acceptor: TcpAcceptor,
    local_addr: SocketAddr,
    /// `ROWGUARD_METRICS_BIND`'s listener and its address.
    metrics: Option<(TcpAcceptor, SocketAddr)>,
    target: DatabaseTarget,
}

async fn bind(address: SocketAddr) -> anyhow::Result<(TcpAcceptor, SocketAddr)> {
    let acceptor = TcpListener::bind(address.to_string())
        .into_acceptor()
        .await
        .with_context(|| format!("binding {address}"))?;
    let local_addr = acceptor
        .local_addr()
        .first()
        .and_then(|addr| addr.as_socket_addr().copied())
        .context("the listener has no socket address")?;
    Ok((acceptor, local_addr))
}

impl Application {
    pub async fn build(settings: &Settings) -> anyhow::Result<Application> {
        settings.validate().map_err(anyhow::Error::msg)?;
        let target = database_target(settings).await?;
        let pools = target.open(settings).await?;
        self_check(&pools).await?;
        let (acceptor, local_addr) = bind(settings.bind).await?;
        let metrics = match settings.metrics_bind {
            Some(address) => Some(bind(address).await?),
            None => None,
        };
        let state = app_state(pools, settings).await?;
        // Before serving, so that a server started after a long pause counts nothing
        // stale; then hourly, by the job `identity.prune_attempts`.
        match state.identity.prune_attempts().await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "forgot old throttle attempts"),
            Err(error) => tracing::warn!(%error, "pruning old throttle attempts failed"),
        }
        Ok(Application {
            state,
            workers: settings.workers,
            usage_flush: settings.usage_flush_interval(),
            acceptor,
            local_addr,
            metrics,
            target,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where `GET /metrics` is served (`ROWGUARD_METRICS_BIND`), if anywhere.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, address)| *address)
    }

    /// The request pool (as the login role of requests).
    pub fn database(&self) -> &Database {
        &self.state.db
    }

    /// The credential flows' pool.
    pub fn credentials(&self) -> &Database {
        &self.state.identity.credentials
    }

    /// The identity flows the server runs (its password hasher, its limits).
    pub fn identity(&self) -> &Identity {
        &self.state.identity
    }

    /// The job queue the server's workers run.
    pub fn queue(&self) -> &Queue {
        &self.state.queue
    }

    /// The job kinds the server's workers run (every module's).
    pub fn jobs(&self) -> crate::platform::jobs::Registry {
        modules::jobs(&self.state)
    }

    /// The server's count of API requests (flushed every `ROWGUARD_USAGE_FLUSH_SECS`,
    /// or now by [`Meter::flush`]).
    pub fn meter(&self) -> &Meter {
        &self.state.meter
    }

    /// Serves until `shutdown` resolves, lets in-flight requests finish (up to the
    /// grace period), waits for their transactions, then stops an embedded cluster.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let state = self.state.clone();
        let workers = (self.workers > 0).then(|| {
            Workers::start(
                self.workers,
                state.queue.clone(),
                modules::jobs(&state),
                WorkerOptions::default(),
            )
        });
        let flusher = state.meter.start_flushing(self.usage_flush);
        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics_server = self.metrics.map(|(acceptor, address)| {
            tracing::info!(%address, "serving /metrics");
            let endpoint = metrics::endpoint(state.metrics.clone(), metrics_sources(&state));
            tokio::spawn(
                Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
                    endpoint,
                    async {
                        let _ = metrics_stopped.await;
                    },
                    Some(Duration::from_secs(1)),
                ),
            )
        });
        tracing::info!(address = %self.local_addr, workers = self.workers, "serving");
        let served = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(modules::routes(state), shutdown, Some(GRACE_PERIOD))
            .await;
        // Scraped until the API stops: a draining server is still worth watching.
        let _ = stop_metrics.send(());
        if let Some(metrics_server) = metrics_server {
            let _ = metrics_server.await;
        }
        // Every request has been counted once serving has stopped: the last flush.
        flusher.stop(Duration::from_secs(5)).await;
        // Once requests have: callbacks answered while still settling finish, and
        // jobs in flight finish (or go back to the queue), side by side within one
        // grace period.
        tokio::join!(self.state.payments.finish_settling(GRACE_PERIOD), async {
            if let Some(workers) = workers {
                workers.stop(GRACE_PERIOD).await;
            }
        });
        served?;
        let close = Duration::from_secs(5);
        tokio::join!(
            crate::platform::db::close(&self.state.db, close),
            crate::platform::db::close(&self.state.identity.credentials, close),
            crate::platform::db::close(self.state.queue.work(), close),
        );
        if let Some(cluster) = self.target.cluster {
            let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// What a scrape of `/metrics` reads the levels of: every pool, by the name its
/// gauges carry, the password hasher and the job queue.
fn metrics_sources(state: &AppState) -> metrics::Sources {
    metrics::Sources {
        pools: vec![
            ("api", state.db.clone()),
            ("auth", state.identity.credentials.clone()),
            ("jobs", state.queue.work().clone()),
            ("queue", state.queue.machinery().clone()),
        ],
        hasher: state.identity.hasher.clone(),
        queue: state.queue.clone(),
    }
}

/// What a server, a worker and `rowguard jobs` run with, from the pools opened for
/// `settings`: the identity flows, the mailer and the job queue. Refuses a default
/// plan that does not exist.
pub async fn app_state(pools: Pools, settings: &Settings) -> anyhow::Result<AppState> {
    state_with_key(pools, settings, &jwt_secret(settings)).await
}

/// [`app_state`] for a one-shot command: no warning about a missing JWT secret, since
/// a command signs no token anyone uses.
pub async fn command_state(pools: Pools, settings: &Settings) -> anyhow::Result<AppState> {
    state_with_key(pools, settings, &command_key(settings)).await
}

async fn state_with_key(
    pools: Pools,
    settings: &Settings,
    jwt_secret: &[u8],
) -> anyhow::Result<AppState> {
    if !modules::subscriptions::plan_exists(&pools.api, &settings.default_plan).await? {
        anyhow::bail!(
            "ROWGUARD_DEFAULT_PLAN={} is not a plan (GET /api/v1/plans lists them)",
            settings.default_plan
        );
    }
    let identity = Identity::new(pools.api.clone(), pools.auth, settings, jwt_secret)?;
    let queue = Queue::new(pools.queue, pools.jobs)?;
    AppState::new(pools.api, identity, queue, settings)
}

/// `rowguard worker`: job workers (at least one) and the scheduler, no HTTP, until a
/// shutdown signal; then the jobs in flight finish or go back to the queue.
pub async fn run_workers(
    settings: &Settings,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    settings.validate().map_err(anyhow::Error::msg)?;
    let target = database_target(settings).await?;
    let pools = target.open(settings).await?;
    self_check(&pools).await?;
    let state = app_state(pools, settings).await?;
    let count = settings.workers.max(1);
    let workers = Workers::start(
        count,
        state.queue.clone(),
        modules::jobs(&state),
        WorkerOptions::default(),
    );
    tracing::info!(workers = count, "working");
    shutdown.await;
    workers.stop(GRACE_PERIOD).await;
    if let Some(cluster) = target.cluster {
        let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The access-token key: the configured secret, or in development a random one (tokens
/// then do not survive a restart). `Settings::validate` refuses the latter in
/// production.
pub fn jwt_secret(settings: &Settings) -> Vec<u8> {
    match &settings.jwt_secret {
        Some(secret) => secret.expose().as_bytes().to_vec(),
        None => {
            tracing::warn!(
                "ROWGUARD_JWT_SECRET is not set: using a random key; tokens will not survive a restart"
            );
            let mut key = vec![0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
            key
        }
    }
}

/// The key of a one-shot command's services: the configured secret, else a random
/// one, silently (the tokens a command makes, such as bootstrap's session, are
/// thrown away).
pub fn command_key(settings: &Settings) -> Vec<u8> {
    match &settings.jwt_secret {
        Some(secret) => secret.expose().as_bytes().to_vec(),
        None => {
            let mut key = vec![0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
            key
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
