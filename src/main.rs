use std::process::ExitCode;

/// glibc's malloc took about a quarter of the server's CPU under load (bench/run.sh,
/// profiled with perf); mimalloc's per-thread free lists suit the many small,
/// short-lived allocations of request handling.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use rowguard::{commands, config::Cli, telemetry};

fn main() -> ExitCode {
    let command = Cli::parse().into_command();
    let telemetry = match telemetry::init_exporting(command.log_format(), command.otlp_endpoint()) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("rowguard: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let long_running = command.is_long_running();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("rowguard: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(commands::run(command)) {
        Ok(code) => code,
        // Once: a server's to its log (which a machine may read as JSON), a
        // command's to the terminal.
        Err(error) if long_running => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("rowguard: {error:#}");
            ExitCode::FAILURE
        }
    };
    // Outside the runtime: the exporter's client blocks while it sends the last spans.
    drop(runtime);
    telemetry.shutdown();
    code
}
