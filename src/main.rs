use std::process::ExitCode;

/// glibc's malloc took about a quarter of the server's CPU under load (bench/run.sh,
/// profiled with perf); mimalloc's per-thread free lists suit the many small,
/// short-lived allocations of request handling.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use rowguard::{commands, config::Cli, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = match telemetry::init_exporting(
        cli.settings.log_format,
        cli.settings.otlp_endpoint.as_deref(),
    ) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("rowguard: {error:#}");
            return ExitCode::FAILURE;
        }
    };
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
    let code = match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("rowguard: {error:#}");
            ExitCode::FAILURE
        }
    };
    // Outside the runtime: the exporter's client blocks while it sends the last spans.
    drop(runtime);
    telemetry.shutdown();
    code
}
