//! The command line's subcommands, one file per group under `commands/`: the server
//! and workers (here), the database (`database`: `migrate`, `policies`, `db reset`;
//! `seed`: `db seed`), people (`accounts`: `bootstrap`, `user create`, `user
//! assign-role`), tenants (`tenants`: `tenant create|seed-roles|suspend|activate`)
//! and the job queue (`jobs`). Each goes through the services the HTTP operations
//! use, so a command and a request cannot disagree about what a change means.

mod accounts;
mod database;
mod jobs;
mod prompt;
mod seed;
mod tenants;

use std::{io::Write, process::ExitCode};

use crate::{
    app::{self, Application, DatabaseTarget},
    config::{Command, DbCommand, Secret, Settings, UserCommand},
    error::Error,
    modules::{self, AppState, identity::service::Identity},
    platform::{
        db::{self, Database, RuntimeRole},
        jobs::Queue,
    },
};

pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(settings) => {
            let application = Application::build(&settings).await?;
            application.run_until(app::shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker(settings) => {
            app::run_workers(&settings, app::shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate(database) => database::migrate(&database.settings()).await,
        Command::Policies(args) => database::policies(&args).await,
        Command::Db(DbCommand::Reset(args)) => database::reset(&args).await,
        Command::Db(DbCommand::Seed(args)) => seed::seed(&args).await,
        Command::Bootstrap(args) => accounts::bootstrap(&args).await,
        Command::User(UserCommand::Create(args)) => accounts::create_user(&args).await,
        Command::User(UserCommand::AssignRole(args)) => accounts::assign_role(&args).await,
        Command::Tenant(command) => tenants::run(command).await,
        Command::Jobs(command) => jobs::run(command).await,
        Command::Openapi => {
            let document = openapi_document(&Settings::defaults())?;
            // A reader that stops early (`| head`) is not an error worth a panic.
            match writeln!(std::io::stdout(), "{document}") {
                Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
                _ => Ok(ExitCode::SUCCESS),
            }
        }
    }
}

/// What a one-shot command works with: the database found (and waited for),
/// migrated when the owner is known, and the services on it. The target is kept
/// for as long as the command runs: an embedded cluster stops when it is dropped.
async fn open(settings: &Settings) -> anyhow::Result<(AppState, DatabaseTarget)> {
    let target = app::database_target(settings).await?;
    let pools = target.open(settings).await?;
    let state = app::command_state(pools, settings).await?;
    Ok((state, target))
}

/// A refusal of a command: printed once, and the command exits non-zero.
fn refuse(message: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("rowguard: {message}");
    Ok(ExitCode::FAILURE)
}

/// What a refused command prints: a field's problem by its name, a conflict as it is.
fn explain(error: &Error) -> Option<String> {
    match error {
        Error::Validation(fields) => Some(
            fields
                .iter()
                .map(|field| format!("{}: {}", field.field, field.message))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Error::Conflict(why) => Some(why.clone()),
        Error::LimitExceeded { .. } => Some(error.to_string()),
        _ => None,
    }
}

/// Why an operator's change did not happen: what they can fix, or a failure.
enum Outcome {
    Refusal(String),
    Failure(Error),
}

impl From<Error> for Outcome {
    fn from(error: Error) -> Self {
        match explain(&error) {
            Some(why) => Outcome::Refusal(why),
            None => Outcome::Failure(error),
        }
    }
}

/// The document the server would serve. The pool is built but never used (connections
/// open lazily), and the token key is a throwaway: nothing here signs or verifies.
fn openapi_document(settings: &Settings) -> anyhow::Result<String> {
    let url = settings
        .database
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
