//! Start-up: find the database (a URL, or the embedded cluster), build the pool,
//! migrate, check the isolation invariants, bind, serve until a shutdown signal, then
//! drain. `main` and the test harness both go through [`Application`].

use std::{future::Future, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use poem::{
    Server,
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
};

use crate::{
    config::{DEFAULT_DATA_DIR, Settings},
    modules::{
        self, AppState,
        identity::service::{Identity, PRUNE_INTERVAL},
    },
    platform::db::{
        Database, PoolOptions,
        embedded::{ClusterOptions, EmbeddedCluster},
        migrate, rls_audit,
    },
};

/// How long in-flight requests get to finish after a shutdown signal.
const GRACE_PERIOD: Duration = Duration::from_secs(30);

/// The database the server uses: the one at `DATABASE_URL`, or the embedded cluster.
pub struct DatabaseTarget {
    pub url: String,
    /// Kept alive for as long as the server runs; stopped when dropped.
    pub cluster: Option<EmbeddedCluster>,
}

/// Finds the database: `DATABASE_URL` when given (nothing is managed), else the
/// embedded cluster under the data directory, with a `rowguard` database in it.
pub async fn database_target(settings: &Settings) -> anyhow::Result<DatabaseTarget> {
    if let Some(url) = &settings.database_url {
        return Ok(DatabaseTarget {
            url: url.expose().to_string(),
            cluster: None,
        });
    }
    // Moving a directory the operator chose would surprise them; the default is only
    // a convenience, so when the cluster's user cannot reach it, it may live elsewhere.
    let (dir, relocate_if_unreachable) = match &settings.data_dir {
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
        url: cluster.url("rowguard"),
        cluster: Some(cluster),
    })
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

/// Applies migrations and policy files.
pub async fn migrate(db: &Database) -> anyhow::Result<()> {
    let mut client = db
        .admin_connection()
        .await
        .context("connecting to the database")?;
    migrate::run(&mut client).await
}

/// docs/design.md invariants 2 and 3, checked before serving: the runtime role cannot
/// bypass row-level security (checked after actually switching to it), and every
/// tenant-scoped table has RLS enabled, forced and covered by policies.
pub async fn self_check(db: &Database) -> anyhow::Result<()> {
    let mut client = db.admin_connection().await?;
    let report = rls_audit::report(&**client).await?;
    let mut problems = rls_audit::problems(&report);

    // The SECURITY DEFINER functions (credentials, sessions) run as the login role that
    // owns the tables, and answer before any tenant context exists: under FORCED row-level
    // security they would see nothing unless that role bypasses it.
    let login_role = client
        .query_one(
            "SELECT current_user::text, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await?;
    let (login_name, login_bypasses): (String, bool) =
        (login_role.try_get(0)?, login_role.try_get(1)?);
    if !login_bypasses {
        problems.push(format!(
            "the login role {login_name} owns the tables and their SECURITY DEFINER functions, which must see \
             every tenant's credentials and sessions: give it BYPASSRLS (ALTER ROLE {login_name} BYPASSRLS)"
        ));
    }

    let tx = client.transaction().await?;
    tx.execute(
        "SELECT set_config('role', $1, true)",
        &[&rls_audit::RUNTIME_ROLE],
    )
    .await
    .context("switching to the runtime role rowguard_api")?;
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
    if user != rls_audit::RUNTIME_ROLE {
        problems.push(format!(
            "switching to {} left the session as {user}",
            rls_audit::RUNTIME_ROLE
        ));
    }
    if superuser || bypass {
        problems.push(format!("as {user}, row-level security can be bypassed"));
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
    db: Database,
    identity: Identity,
    acceptor: TcpAcceptor,
    local_addr: SocketAddr,
    target: DatabaseTarget,
}

impl Application {
    pub async fn build(settings: &Settings) -> anyhow::Result<Application> {
        settings.validate().map_err(anyhow::Error::msg)?;
        let target = database_target(settings).await?;
        let db = Database::connect(&target.url, &pool_options(settings))?;
        migrate(&db).await?;
        self_check(&db).await?;
        let acceptor = TcpListener::bind(settings.bind.to_string())
            .into_acceptor()
            .await
            .with_context(|| format!("binding {}", settings.bind))?;
        let local_addr = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().copied())
            .context("the listener has no socket address")?;
        let identity = Identity::new(db.clone(), settings, &jwt_secret(settings))?;
        // Before serving, so that a server started after a long pause counts nothing
        // stale; then every few minutes while it serves (`run_until`).
        prune_attempts(&identity).await;
        Ok(Application {
            db,
            identity,
            acceptor,
            local_addr,
            target,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The identity flows the server runs (its password hasher, its limits).
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Serves until `shutdown` resolves, lets in-flight requests finish (up to the
    /// grace period), waits for their transactions, then stops an embedded cluster.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let state = AppState {
            db: self.db.clone(),
            identity: self.identity.clone(),
        };
        tracing::info!(address = %self.local_addr, "serving");
        let pruning = tokio::spawn(prune_periodically(self.identity.clone()));
        let served = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(modules::routes(state), shutdown, Some(GRACE_PERIOD))
            .await;
        pruning.abort();
        served?;
        crate::platform::db::close(&self.db, Duration::from_secs(5)).await;
        if let Some(cluster) = self.target.cluster {
            let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Forgets the throttle attempts no window counts any more. There is no job queue
/// yet (a later issue builds one): until then the server prunes from this task of its
/// own, every `PRUNE_INTERVAL`; with several servers each does, harmlessly.
async fn prune_periodically(identity: Identity) {
    let mut interval = tokio::time::interval(PRUNE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate, and `build` has just pruned.
    interval.tick().await;
    loop {
        interval.tick().await;
        prune_attempts(&identity).await;
    }
}

/// One pruning; a failure is logged and left to the next one.
async fn prune_attempts(identity: &Identity) {
    match identity.prune_attempts().await {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(pruned, "forgot old throttle attempts"),
        Err(error) => tracing::warn!(%error, "pruning old throttle attempts failed"),
    }
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
