//! `rowguard jobs list` prints the queue (newest first, secrets left out) and the
//! kinds this build runs; `rowguard jobs run <kind> [--at T]` enqueues a periodic
//! kind's job as of `T` and drains the queue in this process: the job, whatever it
//! fans out, and whatever else is due (emails waiting, say), until nothing is.

use std::{io::Write, process::ExitCode};

use super::{open, refuse};
use crate::{
    config::JobsCommand,
    modules,
    platform::jobs::{WorkerOptions, Workers},
};

pub async fn run(command: JobsCommand) -> anyhow::Result<ExitCode> {
    match command {
        JobsCommand::List {
            state,
            limit,
            database,
        } => {
            let (app, _target) = open(&database.settings()).await?;
            let (queue, registry) = (&app.queue, modules::jobs(&app));
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
        JobsCommand::Run { kind, at, settings } => {
            settings.validate().map_err(anyhow::Error::msg)?;
            let (app, _target) = open(&settings).await?;
            let (queue, registry) = (&app.queue, modules::jobs(&app));
            let now = at.unwrap_or_else(chrono::Utc::now);
            let Some((id, ran)) =
                Workers::run_as_of(queue, &registry, &kind, now, &WorkerOptions::default()).await?
            else {
                return refuse(format!(
                    "no job kind {kind}; this build runs: {}",
                    registry.names().join(", ")
                ));
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
