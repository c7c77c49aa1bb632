//! Schema changes: the refinery migrations of `sql/`, then the policy files of
//! `policies/` (docs/design.md invariant 7), both embedded in the binary at build time.
//!
//! Policy files are re-applied on every migrate, idempotently: for each file, every
//! live policy of its table is dropped and the file's statements run, in one
//! transaction. So the live policies are exactly the files' — a policy removed from a
//! file disappears from the database too.

use anyhow::Context;
use tokio_postgres::{Client, GenericClient};

mod embedded {
    refinery::embed_migrations!("sql");
}

/// One file of `policies/`: the policies of one table.
#[derive(Debug, Clone, Copy)]
pub struct PolicyFile {
    pub table: &'static str,
    pub sql: &'static str,
}

/// The policy files this binary was built with, sorted by table name.
pub const POLICY_FILES: &[PolicyFile] = include!(concat!(env!("OUT_DIR"), "/policy_files.rs"));

/// Serializes concurrent migrators (several servers starting at once, parallel test
/// set-up) on one database.
const MIGRATION_LOCK: i64 = 0x726f_7767_7561_7264; // "rowguard"

/// The highest migration version this build knows.
pub fn latest_version() -> i32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|migration| migration.version())
        .max()
        .unwrap_or(0)
}

/// Applies pending migrations, then every policy file.
pub async fn run(client: &mut Client) -> anyhow::Result<()> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .context("taking the migration lock")?;
    let result = migrate_locked(client).await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result
}

async fn migrate_locked(client: &mut Client) -> anyhow::Result<()> {
    let report = embedded::migrations::runner()
        .run_async(client)
        .await
        .context("applying the migrations of sql/")?;
    for migration in report.applied_migrations() {
        tracing::info!(migration = %migration, "applied migration");
    }
    let tx = client.transaction().await?;
    // The files' own DROP POLICY IF EXISTS would each log a NOTICE here.
    tx.batch_execute("SET LOCAL client_min_messages = warning")
        .await?;
    for file in POLICY_FILES {
        apply_policy_file(&tx, file).await?;
    }
    tx.commit().await.context("committing the policy files")?;
    Ok(())
}

/// Replaces the live policies of the file's table with the file's. Runs inside the
/// caller's transaction; `rowguard policies --check` uses it in a transaction it rolls
/// back, to compare the live catalog with the files.
pub async fn apply_policy_file(
    client: &impl GenericClient,
    file: &PolicyFile,
) -> anyhow::Result<()> {
    // The server quotes the identifiers (format %I): no name is spliced in here.
    let drops = client
        .query(
            "SELECT format('DROP POLICY %I ON %I.%I', policyname, schemaname, tablename)
             FROM pg_policies WHERE schemaname = 'public' AND tablename = $1",
            &[&file.table],
        )
        .await?;
    for drop in drops {
        let statement: String = drop.try_get(0)?;
        client.batch_execute(&statement).await?;
    }
    client
        .batch_execute(file.sql)
        .await
        .with_context(|| format!("applying policies/{}.sql", file.table))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::embedded;

    /// refinery's checksums of the migrations that have been released. refinery
    /// refuses to migrate a database whose applied migration differs from the file of
    /// the same version, so a released migration is never edited, not even a comment:
    /// the next change goes in a new file.
    const RELEASED: &[(u32, u64)] = &[
        (1, 15908092228634201993),
        (2, 14909697960307646903),
        (3, 2298503505276662361),
        (4, 12868626615118096850),
        (5, 12841215504481851956),
        (6, 6577536469413864897),
        (7, 9357442481720775545),
        (8, 11127311891399305981),
        (9, 17246820562756838981),
    ];

    #[test]
    fn released_migrations_are_never_edited() {
        let migrations = embedded::migrations::runner().get_migrations().clone();
        let found: Vec<(u32, u64)> = migrations
            .iter()
            .filter(|m| RELEASED.iter().any(|(v, _)| *v as i32 == m.version()))
            .map(|m| (m.version() as u32, m.checksum()))
            .collect();
        assert_eq!(
            found, RELEASED,
            "a released migration changed; add a new one instead"
        );
    }
}
