//! `rowguard migrate`, `rowguard policies [--check]` and `rowguard db reset`: the
//! database as its owner sees it.

use std::process::ExitCode;

use anyhow::Context;

use super::{prompt, refuse};
use crate::{
    app,
    config::{DbResetArgs, Environment, OutputFormat, PoliciesArgs, Settings},
    platform::db::{self, distribution, migrate, rls_audit},
};

/// `rowguard migrate`: the migrations of `sql/` and the files of `policies/`, as the
/// owner.
pub async fn migrate(settings: &Settings) -> anyhow::Result<ExitCode> {
    let target = migration_target(settings).await?;
    let owner = target
        .owner
        .as_ref()
        .context("rowguard migrate runs as the tables' owner: set ROWGUARD_OWNER_DATABASE_URL")?;
    app::migrate(owner).await?;
    println!("migrations and policy files applied");
    Ok(ExitCode::SUCCESS)
}

/// Where the owner is: ROWGUARD_OWNER_DATABASE_URL, else the server's own resolution
/// (in development, DATABASE_URL alone or the embedded cluster).
async fn migration_target(settings: &Settings) -> anyhow::Result<app::DatabaseTarget> {
    if settings.database.owner_database_url.is_some()
        && settings.database.auth_database_url.is_none()
    {
        // Only the owner is needed: do not ask for the login roles' URLs.
        let mut owner_only = settings.clone();
        owner_only.database.database_url = settings.database.owner_database_url.clone();
        owner_only.database.environment = Environment::Development;
        return app::database_target(&owner_only).await;
    }
    app::database_target(settings).await
}

/// One connection for the catalog audit: as the owner when known (the drift check
/// needs the owner's rights), else as the request login role.
async fn catalog_connection(
    settings: &Settings,
) -> anyhow::Result<(tokio_postgres::Client, app::DatabaseTarget)> {
    let target = migration_target(settings).await?;
    let config = match (&target.owner, &target.logins) {
        (Some(owner), _) => owner.clone(),
        (None, app::Logins::Given { api, .. }) => api.as_ref().clone(),
        (None, app::Logins::MadeByOwner) => anyhow::bail!("no database to read the catalog of"),
    };
    let client = db::connect_once(&config)
        .await
        .context("connecting to the database")?;
    Ok((client, target))
}

/// `rowguard policies [--check] [--format text|json]`: the DBA's view of the live catalog.
pub async fn policies(args: &PoliciesArgs) -> anyhow::Result<ExitCode> {
    let (mut client, _target) = catalog_connection(&args.database.settings()).await?;
    let distributed = distribution::tables(&client).await?;
    if args.citus {
        print!("{}", distribution::citus_statements(&distributed));
        return Ok(if distribution::problems(&distributed).is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let report = rls_audit::report(&client).await?;
    let mut problems = Vec::new();
    if args.check {
        problems = rls_audit::problems(&report);
        problems.extend(rls_audit::drift(&mut client).await?);
        problems.extend(distribution::problems(&distributed));
    }
    match args.format {
        OutputFormat::Text => {
            print!("{}", rls_audit::render_text(&report));
            if args.check {
                if problems.is_empty() {
                    println!("\ncheck: ok");
                } else {
                    println!("\ncheck: {} problem(s)", problems.len());
                    for problem in &problems {
                        println!("  - {problem}");
                    }
                }
            }
        }
        OutputFormat::Json => {
            let mut value = serde_json::to_value(&report)?;
            if args.check {
                value["problems"] = serde_json::to_value(&problems)?;
            }
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `rowguard db reset [--yes]`: every schema of the database dropped (the tables,
/// their rows, the functions, the migration history), an empty `public` made as
/// PostgreSQL makes it, and the migrations run again; in one transaction up to the
/// migrations, so a failure leaves the database as it was. Refused in production,
/// before anything is connected to; asks first unless `--yes`.
pub async fn reset(args: &DbResetArgs) -> anyhow::Result<ExitCode> {
    let settings = args.database.settings();
    if settings.database.environment == Environment::Production {
        return refuse(
            "rowguard db reset is for development only: refused with ROWGUARD_ENV=production",
        );
    }
    if !args.yes
        && !prompt::confirmed(
            "rowguard db reset drops every table, row and function of the database.",
            "reset",
        )?
    {
        return refuse(
            "rowguard db reset drops everything in the database: confirm on a terminal, \
             or pass --yes",
        );
    }
    let target = migration_target(&settings).await?;
    let owner = target
        .owner
        .as_ref()
        .context("rowguard db reset runs as the tables' owner: set ROWGUARD_OWNER_DATABASE_URL")?;
    let mut client = db::connect_once(owner)
        .await
        .context("connecting to the database as the owner")?;
    let dropped = drop_everything(&mut client).await?;
    drop(client);
    app::migrate(owner).await?;
    println!(
        "dropped {}; migrated to version {}",
        if dropped.is_empty() {
            "nothing".to_string()
        } else {
            format!("the schemas {}", dropped.join(", "))
        },
        migrate::latest_version()
    );
    Ok(ExitCode::SUCCESS)
}

/// Drops every schema but PostgreSQL's own and makes `public` again, owned and
/// granted as a new database's is (PostgreSQL 15: `pg_database_owner`, USAGE for
/// all); the names of the schemas dropped.
async fn drop_everything(client: &mut tokio_postgres::Client) -> anyhow::Result<Vec<String>> {
    let tx = client.transaction().await?;
    let rows = tx
        .query(
            "SELECT nspname::text, quote_ident(nspname) FROM pg_namespace
             WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'
             ORDER BY nspname",
            &[],
        )
        .await?;
    let mut dropped = Vec::with_capacity(rows.len());
    for row in rows {
        let (name, quoted): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        tx.batch_execute(&format!("DROP SCHEMA {quoted} CASCADE"))
            .await
            .with_context(|| format!("dropping the schema {name}"))?;
        dropped.push(name);
    }
    // A member of pg_database_owner (the database's owner, or a superuser) makes
    // `public` as PostgreSQL does; another owner keeps it as its own.
    let database_owner: bool = tx
        .query_one(
            "SELECT pg_has_role('pg_database_owner', 'USAGE') OR rolsuper
             FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await?
        .try_get(0)?;
    tx.batch_execute(if database_owner {
        "CREATE SCHEMA public AUTHORIZATION pg_database_owner; GRANT USAGE ON SCHEMA public TO PUBLIC"
    } else {
        "CREATE SCHEMA public; GRANT USAGE ON SCHEMA public TO PUBLIC"
    })
    .await
    .context("making the schema public again")?;
    tx.commit().await?;
    Ok(dropped)
}
