//! Everything that talks to PostgreSQL: the pool, the embedded default cluster,
//! migrations and policy files, the request transaction that carries the tenant
//! context, and the catalog audit behind `rowguard policies`.

pub mod distribution;
pub mod embedded;
pub mod migrate;
pub mod page;
pub mod request_tx;
pub mod rls_audit;
pub mod roles;
pub mod wait;

use std::time::Duration;

use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

pub use request_tx::{Access, RequestTx, Scope};

use crate::{error::Error, platform::http::common::from_wire};

/// A text column holding one of an enum's wire names (a `CHECK`ed status, an audit
/// action): a value outside the enum is a bug, reported as one, never a panic.
pub fn enum_column<T: poem_openapi::types::ParseFromJSON>(
    row: &tokio_postgres::Row,
    column: &str,
) -> Result<T, Error> {
    let text: String = row.try_get(column)?;
    from_wire(&text).ok_or_else(|| {
        Error::Internal(anyhow::anyhow!(
            "column {column} holds {text:?}, which the API does not know"
        ))
    })
}

/// The role a request transaction runs as, once its context is set: what its SQL may
/// do, under row-level security (README, "Database roles").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeRole {
    /// Every request: tenant data under row-level security, no credentials.
    Api,
    /// The credential flows (login, sessions, passwords, registration, accepting an
    /// invitation): `Api`'s rights plus the functions that read or change credentials.
    Auth,
}

impl RuntimeRole {
    pub fn name(self) -> &'static str {
        match self {
            RuntimeRole::Api => "rowguard_api",
            RuntimeRole::Auth => "rowguard_auth",
        }
    }
}

/// A pool of connections as one login role, whose transactions run as one runtime
/// role. Requests never use a connection directly; they go through
/// [`Database::begin`], which opens the transaction with the tenant context.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    runtime_role: RuntimeRole,
}

/// How to build the pool.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: usize,
    /// How long a request waits for a free connection before it is refused with 503.
    pub acquire_timeout: Duration,
    /// PostgreSQL's statement_timeout on every connection: a runaway query is
    /// cancelled by the server instead of holding a connection.
    pub statement_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_size: 16,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

/// Parses a PostgreSQL URL (its text never appears in the error: it may hold a password).
pub fn parse_url(url: &str, setting: &str) -> anyhow::Result<tokio_postgres::Config> {
    url.parse()
        .map_err(|error| anyhow::anyhow!("{setting} is not a valid PostgreSQL URL: {error}"))
}

/// One connection outside any pool: migrations, the catalog audit, role set-up.
pub async fn connect_once(
    config: &tokio_postgres::Config,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "a one-off database connection ended with an error");
        }
    });
    Ok(client)
}

impl Database {
    /// A pool as the login role of `url`, running requests as `rowguard_api`.
    /// Connections are opened lazily.
    pub fn connect(url: &str, options: &PoolOptions) -> anyhow::Result<Database> {
        Database::connect_with(parse_url(url, "DATABASE_URL")?, RuntimeRole::Api, options)
    }

    /// A pool as the login role of `config`, running requests as `runtime_role`.
    pub fn connect_with(
        mut config: tokio_postgres::Config,
        runtime_role: RuntimeRole,
        options: &PoolOptions,
    ) -> anyhow::Result<Database> {
        config.application_name("rowguard");
        // plan_cache_mode: every prepared statement (and every query of a PL/pgSQL
        // function) runs its generic plan, made once per connection. With the default
        // choice a connection plans a statement afresh on each execution whenever its
        // first five executions happened to be cheaper as custom plans: the opening
        // statement of an anonymous scope folds away to almost nothing, so a
        // connection that began with logins planned it again on every later request
        // (1.5 ms of the 5.4 ms PostgreSQL spent per login in the storm). The
        // statements are written for generic plans (see `page`: no `$1 IS NULL OR`).
        config.options(format!(
            "-c statement_timeout={} -c plan_cache_mode=force_generic_plan",
            options.statement_timeout.as_millis()
        ));
        config.connect_timeout(options.acquire_timeout);
        let manager = Manager::from_config(
            config,
            NoTls,
            // A connection handed back to the pool is never inside a transaction:
            // RequestTx commits, rolls back, or discards it. So recycling only needs
            // to notice a closed connection, without a round trip.
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_size)
            .wait_timeout(Some(options.acquire_timeout))
            .create_timeout(Some(options.acquire_timeout))
            .recycle_timeout(Some(options.acquire_timeout))
            .runtime(Runtime::Tokio1)
            .post_create(Hook::async_fn(move |client, _| {
                Box::pin(async move {
                    // The login role may look up nothing of its own, not even the
                    // names in the opening statement: prepare it (and cache it for the
                    // connection's life) as the runtime role, inside a transaction
                    // rolled back at once, so the role is never set for the session
                    // (invariant 1); a prepared statement outlives the transaction.
                    // A plan made now is made again on first use if it must be.
                    let role = runtime_role.name();
                    client
                        .batch_execute(&format!("BEGIN; SET LOCAL ROLE {role}"))
                        .await
                        .map_err(HookError::Backend)?;
                    let prepared = async {
                        client.prepare_cached(&request_tx::BEGIN_REQUEST).await?;
                        // And what an API key's request runs before it.
                        client.prepare_cached(request_tx::API_KEY_PRINCIPAL).await?;
                        Ok::<_, tokio_postgres::Error>(())
                    }
                    .await;
                    client
                        .batch_execute("ROLLBACK")
                        .await
                        .map_err(HookError::Backend)?;
                    prepared.map_err(HookError::Backend)
                })
            }))
            .build()?;
        Ok(Database { pool, runtime_role })
    }

    pub fn runtime_role(&self) -> RuntimeRole {
        self.runtime_role
    }

    /// A pooled connection as the login role, outside any transaction: for start-up
    /// checks of the catalog. Not for request data: use [`Database::begin`].
    pub async fn admin_connection(&self) -> Result<deadpool_postgres::Object, Error> {
        Ok(self.pool.get().await?)
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Whether the database answers and has every migration this build knows, asked
    /// as the runtime role (the login role has no rights to ask with).
    pub async fn migrations_current(&self) -> Result<bool, Error> {
        let (tx, _) = self.begin(&Scope::anonymous()).await?;
        let applied = async {
            let statement = tx
                .prepare(
                    "SELECT coalesce(max(version), 0)::int4 FROM public.refinery_schema_history",
                )
                .await?;
            let applied: i32 = tx.query_one(&statement, &[]).await?.try_get(0)?;
            Ok(applied)
        }
        .await;
        let applied = tx.finish(applied).await?;
        Ok(applied >= migrate::latest_version())
    }
}

/// Waits until the pool's connections are all back, or the timeout passes. Used at
/// shutdown so in-flight transactions finish before the process exits.
pub async fn close(database: &Database, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    while database.pool.status().available < database.pool.status().size
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    database.pool.close();
}
