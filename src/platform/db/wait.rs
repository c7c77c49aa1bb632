//! Waiting for the database at start-up (`ROWGUARD_DB_WAIT_SECS`): a server started
//! with its database (a compose file, a machine booting) would otherwise exit at
//! once because PostgreSQL is still starting. Only what may pass is retried: a
//! refused or timed-out connection, a server starting up or shutting down, or full;
//! a wrong password or a missing database fails at once, since waiting cannot fix it.

use std::time::{Duration, Instant};

use tokio_postgres::{Config, config::Host, error::SqlState};

use super::connect_once;

/// The first retry's delay; each next one doubles, up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(4);

/// Connects to `config` until it answers or `max_wait` has passed, logging each retry
/// and why; then an error naming the server, the wait and the last error. `what`
/// names the connection's role in messages ("the database", "the owner's database").
pub async fn until_reachable(
    config: &Config,
    what: &str,
    max_wait: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    // A host that drops packets would hold one attempt for the system's TCP timeout
    // (minutes): each attempt gets a few seconds unless the URL says otherwise.
    let mut probe = config.clone();
    if probe.get_connect_timeout().is_none() {
        probe.connect_timeout(MAX_DELAY);
    }
    let mut delay = FIRST_DELAY;
    let mut attempt = 1u32;
    loop {
        let error = match connect_once(&probe).await {
            Ok(client) => {
                drop(client);
                if attempt > 1 {
                    tracing::info!(attempts = attempt, "{what} at {} answers", server(config));
                }
                return Ok(());
            }
            Err(error) => error,
        };
        if !passing(&error) {
            anyhow::bail!(
                "cannot connect to {what} at {}: {}",
                server(config),
                cause(&error)
            );
        }
        let waited = started.elapsed();
        if waited + delay > max_wait {
            anyhow::bail!(
                "{what} at {} did not accept a connection within {} s \
                 (ROWGUARD_DB_WAIT_SECS={}; {attempt} attempt(s)): {}",
                server(config),
                max_wait.as_secs(),
                max_wait.as_secs(),
                cause(&error)
            );
        }
        tracing::warn!(
            attempt,
            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            error = %cause(&error),
            "{what} at {} is not accepting connections yet; retrying",
            server(config)
        );
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_DELAY);
        attempt += 1;
    }
}

/// Whether waiting may help: no answer at all (refused, reset, timed out), or one of
/// PostgreSQL's "not now" answers.
fn passing(error: &tokio_postgres::Error) -> bool {
    match error.code() {
        None => true,
        Some(code) => [
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
        ]
        .contains(code),
    }
}

/// The error and its source (tokio-postgres's own text of an I/O error is only
/// "error connecting to server"); never the URL, which may hold a password.
fn cause(error: &tokio_postgres::Error) -> String {
    match std::error::Error::source(error) {
        Some(source) if !error.to_string().contains(&source.to_string()) => {
            format!("{error}: {source}")
        }
        _ => error.to_string(),
    }
}

/// Where `config` points, for messages: hosts and ports, no user or password.
fn server(config: &Config) -> String {
    let ports = config.get_ports();
    config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}/.s.PGSQL.{port}", path.display()),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_is_named_without_its_credentials() {
        let config: Config = "postgres://app:s3cret@db.internal:6432/rowguard"
            .parse()
            .unwrap();
        assert_eq!(server(&config), "db.internal:6432");
    }
}
