//! Everything that talks to PostgreSQL: the pool, the embedded default cluster,
//! migrations and policy files, the request transaction that carries the tenant
//! context, and the catalog audit behind `rowguard policies`.

pub mod embedded;
pub mod migrate;
pub mod page;
pub mod request_tx;
pub mod rls_audit;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
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

/// The login role's view of the database: a pool of connections. Requests never use a
/// connection directly; they go through [`Database::begin`], which opens the
/// transaction with the tenant context.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
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

impl Database {
    /// Builds the pool; connections are opened lazily.
    pub fn connect(url: &str, options: &PoolOptions) -> anyhow::Result<Database> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|error| {
            anyhow::anyhow!("DATABASE_URL is not a valid PostgreSQL URL: {error}")
        })?;
        config.application_name("rowguard");
        config.options(format!(
            "-c statement_timeout={}",
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
            .build()?;
        Ok(Database { pool })
    }

    /// A pooled connection as the login role, for start-up work (migrations, checks)
    /// and the health check. Not for request data: use [`Database::begin`].
    pub async fn admin_connection(&self) -> Result<deadpool_postgres::Object, Error> {
        Ok(self.pool.get().await?)
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Whether the database answers and has every migration this build knows.
    pub async fn migrations_current(&self) -> Result<bool, Error> {
        let client = self.admin_connection().await?;
        let row = client
            .query_one(
                "SELECT coalesce(max(version), 0)::int4 FROM refinery_schema_history",
                &[],
            )
            .await?;
        let applied: i32 = row.try_get(0)?;
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
