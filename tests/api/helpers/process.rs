//! The server as an operator runs it: `rowguard serve`, a process of its own, with its
//! log captured (what its stdout and stderr carry, as a log collector would get them),
//! and a real OTLP/HTTP collector for it to export spans to.

use std::{
    net::SocketAddr,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use poem::{
    EndpointExt, Request, Response, Server,
    listener::{Acceptor, Listener, TcpListener},
};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::Child,
    task::JoinHandle,
};

use super::{TestApp, TestDb, test_settings};

const STARTUP: Duration = Duration::from_secs(60);

/// A running `rowguard serve`.
pub struct ServerProcess {
    child: Child,
    log: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

fn capture(
    stream: impl AsyncRead + Unpin + Send + 'static,
    log: Arc<Mutex<String>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut log = log.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    })
}

impl ServerProcess {
    /// Starts `rowguard serve` on `db` (its URL taken as the owner's, as in
    /// development), on a free port, without workers, with `env` on top; returns it
    /// once it serves, with a client of its API.
    pub async fn start(db: TestDb, env: &[(&str, &str)]) -> (ServerProcess, TestApp) {
        let settings = test_settings(&db.url);
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rowguard"));
        command
            .arg("serve")
            .env("DATABASE_URL", &db.url)
            .env_remove("ROWGUARD_AUTH_DATABASE_URL")
            .env_remove("ROWGUARD_OWNER_DATABASE_URL")
            .env_remove("ROWGUARD_SMTP_URL")
            .env_remove("ROWGUARD_METRICS_BIND")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("NO_COLOR")
            .env("ROWGUARD_BIND", "127.0.0.1:0")
            .env("ROWGUARD_WORKERS", "0")
            .env("ROWGUARD_DEFAULT_PLAN", &settings.default_plan)
            .env(
                "ROWGUARD_JWT_SECRET",
                settings.jwt_secret.as_ref().unwrap().expose(),
            )
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("starting rowguard serve");
        let log = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            capture(child.stdout.take().unwrap(), log.clone()),
            capture(child.stderr.take().unwrap(), log.clone()),
        ];
        let process = ServerProcess {
            child,
            log,
            readers,
        };
        let address = tokio::time::timeout(STARTUP, async {
            loop {
                if let Some(address) = serving_address(&process.log()) {
                    return address;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("rowguard serve did not start:\n{}", process.log()));
        (process, TestApp::attach(address, db))
    }

    /// What the process has written so far, stdout and stderr, line by line.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, as an orchestrator stops it; waits for it to exit and returns its
    /// whole log.
    pub async fn stop(mut self) -> String {
        let pid = self.child.id().expect("the server is running") as i32;
        // SAFETY: a signal to a child process of this test.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let status = tokio::time::timeout(STARTUP, self.child.wait())
            .await
            .expect("the server stops on SIGTERM")
            .unwrap();
        for reader in self.readers.drain(..) {
            let _ = reader.await;
        }
        let log = self.log();
        assert!(status.success(), "the server failed: {status}\n{log}");
        log
    }
}

/// The address of `serving address=127.0.0.1:1234 ...`, the line start-up ends with.
fn serving_address(log: &str) -> Option<SocketAddr> {
    let start = log.find("serving address=")? + "serving address=".len();
    log[start..].split_whitespace().next()?.parse().ok()
}

/// One request a collector received.
#[derive(Debug, Clone)]
pub struct Export {
    pub method: String,
    pub path: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// An OTLP/HTTP collector: it answers every POST as a collector accepting it (200,
/// an empty `Export…ServiceResponse`) and keeps what it received.
pub struct OtlpCollector {
    pub address: SocketAddr,
    received: Arc<Mutex<Vec<Export>>>,
    _server: JoinHandle<()>,
}

impl OtlpCollector {
    pub async fn start() -> OtlpCollector {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let address = *acceptor.local_addr()[0].as_socket_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let keep = received.clone();
        let endpoint = poem::endpoint::make(move |mut request: Request| {
            let keep = keep.clone();
            async move {
                let body = request.take_body().into_vec().await.unwrap_or_default();
                keep.lock().unwrap().push(Export {
                    method: request.method().to_string(),
                    path: request.uri().path().to_string(),
                    content_type: request
                        .header("content-type")
                        .unwrap_or_default()
                        .to_string(),
                    body,
                });
                Response::builder()
                    .content_type("application/x-protobuf")
                    .body(Vec::<u8>::new())
            }
        });
        let server = tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor)
                .run(endpoint.map_to_response())
                .await;
        });
        OtlpCollector {
            address,
            received,
            _server: server,
        }
    }

    /// The collector's base URL, as OTEL_EXPORTER_OTLP_ENDPOINT takes it.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn received(&self) -> Vec<Export> {
        self.received.lock().unwrap().clone()
    }
}
