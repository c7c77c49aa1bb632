//! The command line's subcommands: `serve` (default), `migrate`, `policies`, `jobs`,
//! `tenant`, `bootstrap`, `openapi`.

use std::{io::Write, process::ExitCode};

use anyhow::Context;

use crate::{
    app::{self, Application},
    config::{
        BootstrapArgs, Cli, Command, JobsCommand, OutputFormat, PoliciesArgs, Secret, Settings,
        TenantCommand,
    },
    error::Error,
    modules::{
        self,
        identity::service::{Identity, NewAccount},
    },
    platform::{
        auth::OpaqueToken,
        db::{self, Database, RuntimeRole, distribution, rls_audit},
        jobs::{Queue, WorkerOptions, Workers},
    },
};

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let application = Application::build(&cli.settings).await?;
            application.run_until(app::shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let target = migration_target(&cli.settings).await?;
            let owner = target.owner.as_ref().context(
                "rowguard migrate runs as the tables' owner: set ROWGUARD_OWNER_DATABASE_URL",
            )?;
            app::migrate(owner).await?;
            println!("migrations and policy files applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker => {
            app::run_workers(&cli.settings, app::shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Jobs(command) => jobs(&cli.settings, command).await,
        Command::Tenant(command) => tenant(&cli.settings, command).await,
        Command::Policies(args) => policies(&cli.settings, &args).await,
        Command::Bootstrap(args) => bootstrap(&cli.settings, &args).await,
        Command::Openapi => {
            let document = openapi_document(&cli.settings)?;
            // A reader that stops early (`| head`) is not an error worth a panic.
            match writeln!(std::io::stdout(), "{document}") {
                Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
                _ => Ok(ExitCode::SUCCESS),
            }
        }
    }
}

/// `rowguard bootstrap --email ... --tenant ...`: the first user, as the HTTP
/// bootstrap would create them, without a running server.
async fn bootstrap(settings: &Settings, args: &BootstrapArgs) -> anyhow::Result<ExitCode> {
    let target = app::database_target(settings).await?;
    let pools = target.open(settings).await?;
    let (password, generated) = match &args.password {
        Some(password) => (password.clone(), false),
        None => (OpaqueToken::generate().token, true),
    };
    let identity = Identity::new(pools.api, pools.auth, settings, &app::jwt_secret(settings))?;
    let account = NewAccount {
        email: &args.email,
        password: &password,
        full_name: &args.full_name,
        tenant_name: &args.tenant,
        plan_code: None,
    };
    match identity.bootstrap(account).await {
        Ok((user, tenant, _session)) => {
            println!(
                "created platform admin {} ({}) in tenant {} ({})",
                user.email, user.id, tenant.name, tenant.id
            );
            if generated {
                println!("generated password (shown once): {password}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(Error::BootstrapClosed) => {
            eprintln!("rowguard: bootstrap is closed: a user already exists");
            Ok(ExitCode::FAILURE)
        }
        Err(Error::Validation(fields)) => {
            for field in fields {
                eprintln!("rowguard: {}: {}", field.field, field.message);
            }
            Ok(ExitCode::FAILURE)
        }
        Err(error) => Err(anyhow::anyhow!("bootstrap failed: {error}")),
    }
}

/// `rowguard jobs list` prints the queue (newest first, secrets left out) and the
/// kinds this build runs; `rowguard jobs run <kind> [--at T]` enqueues a periodic
/// kind's job as of `T` and drains the queue in this process: the job, whatever it
/// fans out, and whatever else is due (emails waiting, say), until nothing is.
async fn jobs(settings: &Settings, command: JobsCommand) -> anyhow::Result<ExitCode> {
    settings.validate().map_err(anyhow::Error::msg)?;
    let target = app::database_target(settings).await?;
    let pools = target.open(settings).await?;
    let state = app::app_state(pools, settings).await?;
    let (queue, registry) = (&state.queue, modules::jobs(&state));
    match command {
        JobsCommand::List { state, limit } => {
            let rows = queue.page(state.as_deref(), None, limit).await?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:>8}  {:<9} {:<28} {:>8}  {:<25} tenant / last error",
                "id", "state", "kind", "attempts", "run at"
            )?;
            for row in rows {
                writeln!(
                    out,
                    "{:>8}  {:<9} {:<28} {:>4}/{:<3}  {:<25} {}{}",
                    row.id,
                    row.state,
                    row.kind,
                    row.attempts,
                    row.max_attempts,
                    row.run_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    row.tenant_id
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "platform".into()),
                    row.last_error.map(|e| format!("  {e}")).unwrap_or_default(),
                )?;
            }
            let periodic: Vec<String> = registry
                .names()
                .into_iter()
                .filter_map(|name| {
                    let every = registry.get(name)?.every?;
                    Some(format!("{name} ({every:?})").to_lowercase())
                })
                .collect();
            writeln!(out, "\nkinds: {}", registry.names().join(", "))?;
            writeln!(out, "periodic: {}", periodic.join(", "))?;
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::Run { kind, at } => {
            let now = at.unwrap_or_else(chrono::Utc::now);
            let Some((id, ran)) =
                Workers::run_as_of(queue, &registry, &kind, now, &WorkerOptions::default()).await?
            else {
                eprintln!(
                    "rowguard: no job kind {kind}; this build runs: {}",
                    registry.names().join(", ")
                );
                return Ok(ExitCode::FAILURE);
            };
            match id {
                Some(id) => println!("enqueued {kind} (job {id}) as of {now}"),
                None => println!("{kind} as of {now} was already queued"),
            }
            println!("ran {ran} job(s); none is due now");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The document the server would serve. The pool is built but never used (connections
/// open lazily), and the token key is a throwaway: nothing here signs or verifies.
/// `rowguard tenant suspend|activate <id>`: through `app.set_tenant_status` on the
/// machinery's role (`rowguard_auth`), the operator's; no request role can call it.
async fn tenant(settings: &Settings, command: TenantCommand) -> anyhow::Result<ExitCode> {
    settings.validate().map_err(anyhow::Error::msg)?;
    let target = app::database_target(settings).await?;
    let pools = target.open(settings).await?;
    let (id, status) = match command {
        TenantCommand::Suspend { id } => (id, "suspended"),
        TenantCommand::Activate { id } => (id, "active"),
    };
    let tx = pools.auth.begin_context(&db::Scope::anonymous()).await?;
    let set = async {
        let statement = tx.prepare("SELECT app.set_tenant_status($1, $2)").await?;
        let found: bool = tx
            .query_one(&statement, &[&id, &status])
            .await?
            .try_get(0)?;
        Ok::<_, Error>(found)
    }
    .await;
    if tx.finish(set).await? {
        println!("tenant {id} is {status}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("rowguard: no tenant {id}");
        Ok(ExitCode::FAILURE)
    }
}

fn openapi_document(settings: &Settings) -> anyhow::Result<String> {
    let url = settings
        .database_url
        .as_ref()
        .map(Secret::expose)
        .unwrap_or("postgres://localhost/rowguard");
    let db = Database::connect(url, &app::pool_options(settings))?;
    let credentials = Database::connect_with(
        db::parse_url(url, "DATABASE_URL")?,
        RuntimeRole::Auth,
        &app::pool_options(settings),
    )?;
    let identity = Identity::new(db.clone(), credentials.clone(), settings, &[0u8; 32])?;
    let queue = Queue::new(credentials, db.clone())?;
    let state = modules::AppState::new(db, identity, queue, settings)?;
    Ok(modules::spec_json(&modules::openapi_service(&state)))
}

/// Where `rowguard migrate` finds the owner: ROWGUARD_OWNER_DATABASE_URL, else the
/// server's own resolution (in development, DATABASE_URL alone or the embedded cluster).
async fn migration_target(settings: &Settings) -> anyhow::Result<app::DatabaseTarget> {
    if settings.owner_database_url.is_some() && settings.auth_database_url.is_none() {
        // Only the owner is needed: do not ask for the login roles' URLs.
        let mut owner_only = settings.clone();
        owner_only.database_url = settings.owner_database_url.clone();
        owner_only.environment = crate::config::Environment::Development;
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

/// `rowguard policies [--check] [--format text|json] | --citus`: the DBA's view of the
/// live catalog, or the statements that distribute it.
async fn policies(settings: &Settings, args: &PoliciesArgs) -> anyhow::Result<ExitCode> {
    let (mut client, _target) = catalog_connection(settings).await?;
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
