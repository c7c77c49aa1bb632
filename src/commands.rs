//! The command line's subcommands: `serve` (default), `migrate`, `policies`.

use std::{io::Write, process::ExitCode};

use anyhow::Context;

use crate::{
    app::{self, Application},
    config::{BootstrapArgs, Cli, Command, OutputFormat, PoliciesArgs, Secret, Settings},
    error::Error,
    modules::{
        self,
        identity::service::{Identity, NewAccount},
    },
    platform::{
        auth::OpaqueToken,
        db::{Database, rls_audit},
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
            let (db, _target) = connect(&cli.settings).await?;
            app::migrate(&db).await?;
            println!("migrations and policy files applied");
            Ok(ExitCode::SUCCESS)
        }
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
    let (db, _target) = connect(settings).await?;
    app::migrate(&db).await?;
    let (password, generated) = match &args.password {
        Some(password) => (password.clone(), false),
        None => (OpaqueToken::generate().token, true),
    };
    let identity = Identity::new(db, settings, &app::jwt_secret(settings))?;
    let account = NewAccount {
        email: &args.email,
        password: &password,
        full_name: &args.full_name,
        tenant_name: &args.tenant,
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

/// The document the server would serve. The pool is built but never used (connections
/// open lazily), and the token key is a throwaway: nothing here signs or verifies.
fn openapi_document(settings: &Settings) -> anyhow::Result<String> {
    let url = settings
        .database_url
        .as_ref()
        .map(Secret::expose)
        .unwrap_or("postgres://localhost/rowguard");
    let db = Database::connect(url, &app::pool_options(settings))?;
    let identity = Identity::new(db.clone(), settings, &[0u8; 32])?;
    let state = modules::AppState { db, identity };
    Ok(modules::spec_json(&modules::openapi_service(&state)))
}

async fn connect(settings: &Settings) -> anyhow::Result<(Database, app::DatabaseTarget)> {
    let target = app::database_target(settings).await?;
    let mut options = app::pool_options(settings);
    options.max_size = 1;
    let db = Database::connect(&target.url, &options)?;
    Ok((db, target))
}

/// `rowguard policies [--check] [--format text|json]`: the DBA's view of the live catalog.
async fn policies(settings: &Settings, args: &PoliciesArgs) -> anyhow::Result<ExitCode> {
    let (db, _target) = connect(settings).await?;
    let mut client = db
        .admin_connection()
        .await
        .context("connecting to the database")?;
    let report = rls_audit::report(&**client).await?;
    let mut problems = Vec::new();
    if args.check {
        problems = rls_audit::problems(&report);
        problems.extend(rls_audit::drift(&mut client).await?);
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
