//! Two server processes on one database (issue 16, "More than one server process"):
//! the built binary started twice, each with its job workers and its usage meter, as
//! two replicas behind a load balancer would be. Whatever one process learns is in
//! the database, so the other acts on it: the login throttle, the job queue, the
//! usage counts, the sessions.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::helpers::{PASSWORD, SmtpSink, TestApp, TestDb, as_user, assert_problem, text};

const JWT_SECRET: &str = "two-processes-share-this-secret-0123456789abcdef";
/// Failures per email and client address before 429: small, so the test is quick.
const MAX_FAILURES: u32 = 3;

/// One `rowguard serve` process, its log lines (JSON) kept for the test to read.
struct ServerProcess {
    child: Child,
    address: SocketAddr,
    log: Arc<Mutex<Vec<Value>>>,
}

impl ServerProcess {
    /// Starts the binary on `db` and waits until it serves. As in production, it
    /// connects as its two login roles only and does not migrate (the test database
    /// is migrated already): a server given the owner's URL re-applies the policy files
    /// at start-up, and could deadlock with the other process serving meanwhile.
    async fn start(db: &TestDb, smtp: &SmtpSink) -> ServerProcess {
        let owner: tokio_postgres::Config = db.url.parse().unwrap();
        let (api, auth) = rowguard::platform::db::roles::development_logins(&owner)
            .await
            .unwrap();
        let login_url =
            |login: &tokio_postgres::Config| as_user(&db.url, login.get_user().unwrap(), None);
        let mut child = Command::new(env!("CARGO_BIN_EXE_rowguard"))
            .arg("serve")
            .env("DATABASE_URL", login_url(&api))
            .env("ROWGUARD_AUTH_DATABASE_URL", login_url(&auth))
            .env("ROWGUARD_BIND", "127.0.0.1:0")
            .env("ROWGUARD_LOG_FORMAT", "json")
            // The workers' debug line names each job they complete.
            .env("RUST_LOG", "info,rowguard::platform::jobs=debug")
            .env("ROWGUARD_JWT_SECRET", JWT_SECRET)
            .env("ROWGUARD_SMTP_URL", smtp.url())
            .env("ROWGUARD_DEFAULT_PLAN", "business")
            .env("ROWGUARD_WORKERS", "1")
            .env("ROWGUARD_POOL_SIZE", "4")
            .env("ROWGUARD_USAGE_FLUSH_SECS", "1")
            .env(
                "ROWGUARD_LOGIN_MAX_FAILURES_PER_EMAIL",
                MAX_FAILURES.to_string(),
            )
            .stdout(Stdio::piped())
            // A fatal error at start-up is printed there, in the test's output.
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the rowguard binary starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (serving, mut address) = tokio::sync::mpsc::unbounded_channel::<SocketAddr>();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let kept = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(entry) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if entry["fields"]["message"] == "serving"
                    && let Some(at) = entry["fields"]["address"].as_str()
                {
                    let _ = serving.send(at.parse().unwrap());
                }
                kept.lock().unwrap().push(entry);
            }
        });
        let address = tokio::time::timeout(Duration::from_secs(60), address.recv())
            .await
            .expect("the server said it was serving within a minute")
            .unwrap_or_else(|| {
                let log = log.lock().unwrap();
                let tail = &log[log.len().saturating_sub(5)..];
                panic!("the server exited before serving; its last lines: {tail:#?}")
            });
        ServerProcess {
            child,
            address,
            log,
        }
    }

    /// A client of this process's API.
    fn client(&self, db: &TestDb) -> TestApp {
        TestApp::attach(self.address, TestDb::detached(db.url.clone()))
    }

    /// The ids of the jobs this process's workers completed, from its log.
    fn jobs_succeeded(&self) -> BTreeSet<i64> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|entry| entry["fields"]["message"] == "job succeeded")
            .filter_map(|entry| entry["fields"]["job"].as_i64())
            .collect()
    }

    /// SIGTERM, and the graceful shutdown it starts (the usage meter flushes once more).
    async fn stop(mut self) {
        let pid = self.child.id().expect("still running") as i32;
        // SAFETY: sends a signal to the child this test started and still owns.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the server stopped within 30 s of SIGTERM")
            .unwrap();
        assert!(status.success(), "the server exited with {status}");
    }
}

/// Two processes on one fresh database, and the SMTP sink both deliver to.
async fn two_processes() -> (TestDb, SmtpSink, ServerProcess, ServerProcess) {
    let db = TestDb::new().await;
    let smtp = SmtpSink::start().await;
    let a = ServerProcess::start(&db, &smtp).await;
    let b = ServerProcess::start(&db, &smtp).await;
    (db, smtp, a, b)
}

#[tokio::test]
async fn failed_logins_on_one_process_lock_the_login_on_the_other() {
    let (db, _smtp, a, b) = two_processes().await;
    let (on_a, on_b) = (a.client(&db), b.client(&db));
    on_a.register("owner@example.com", "Acme").await;
    // The legitimate sign-in works on B.
    on_b.login_ok("owner@example.com").await;

    for _ in 0..MAX_FAILURES {
        let response = on_a.login("owner@example.com", "not-the-password").await;
        assert_problem(response, 401, "invalid_credentials").await;
    }

    // B never saw a failure, yet refuses even the right password.
    let response = on_b.login("owner@example.com", PASSWORD).await;
    assert_problem(response, 429, "rate_limited").await;
}

#[tokio::test]
async fn a_job_is_run_once_by_the_workers_of_two_processes() {
    let (db, smtp, a, b) = two_processes().await;
    const JOBS: usize = 200;
    let superuser = db.superuser().await;
    let ids: BTreeSet<i64> = superuser
        .query(
            "INSERT INTO jobs (kind, payload)
             SELECT 'email.send', jsonb_build_object('to', format('person%s@example.com', n),
                                                     'template', 'registration_attempted')
             FROM generate_series(1, $1::int) AS n
             RETURNING id",
            &[&(JOBS as i32)],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done: i64 = superuser
            .query_one(
                "SELECT count(*) FROM jobs WHERE id = ANY($1) AND state = 'succeeded'",
                &[&ids.iter().copied().collect::<Vec<_>>()],
            )
            .await
            .unwrap()
            .get(0);
        if done == JOBS as i64 {
            break;
        }
        assert!(Instant::now() < deadline, "{done} of {JOBS} jobs succeeded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Several more polls of both workers: a job run twice would have shown by now.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let (by_a, by_b) = (a.jobs_succeeded(), b.jobs_succeeded());
    assert!(
        !by_a.is_disjoint(&ids) && !by_b.is_disjoint(&ids),
        "both processes' workers ran jobs (A {}, B {})",
        by_a.len(),
        by_b.len()
    );
    assert!(
        by_a.is_disjoint(&by_b),
        "jobs run by both: {:?}",
        by_a.intersection(&by_b).collect::<Vec<_>>()
    );
    // (The scheduler's periodic jobs run too: only the inserted ones are counted.)
    let ran: BTreeSet<i64> = by_a.union(&by_b).copied().collect();
    assert_eq!(
        ran.intersection(&ids).copied().collect::<BTreeSet<_>>(),
        ids
    );

    let attempts: Vec<i32> = superuser
        .query(
            "SELECT attempts FROM jobs WHERE id = ANY($1)",
            &[&ids.iter().copied().collect::<Vec<_>>()],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(attempts.iter().all(|&n| n == 1), "{attempts:?}");
    let messages = smtp.messages();
    let recipients: BTreeSet<String> = messages.iter().flat_map(|m| m.to.clone()).collect();
    assert_eq!(messages.len(), JOBS, "one email per job");
    assert_eq!(recipients.len(), JOBS, "each person got one email");
}

/// `api_requests` of `GET /usage/current`.
fn api_requests(usage: &Value) -> i64 {
    usage["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|metric| metric["code"] == "api_requests")
        .and_then(|metric| metric["value"].as_i64())
        .unwrap_or_else(|| panic!("no api_requests in {usage}"))
}

#[tokio::test]
async fn usage_counted_by_two_processes_is_summed() {
    let (db, smtp, a, b) = two_processes().await;
    let (on_a, on_b) = (a.client(&db), b.client(&db));
    let registered = on_a.register("owner@example.com", "Acme").await;
    let tenant = text(&registered["tenant"], "id");
    let token = text(&registered, "access_token");
    for _ in 0..5 {
        assert_eq!(on_a.me_get(&token).await.status(), 200);
    }
    for _ in 0..7 {
        assert_eq!(on_b.me_get(&token).await.status(), 200);
    }

    // Each process's periodic flush adds its own count to the same row.
    let superuser = db.superuser().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let flushed: i64 = superuser
            .query_one(
                "SELECT coalesce(sum(api_requests), 0)::bigint FROM usage_periods WHERE tenant_id = $1::text::uuid",
                &[&tenant],
            )
            .await
            .unwrap()
            .get(0);
        if flushed == 12 {
            break;
        }
        assert!(flushed < 12, "{flushed} requests counted for 12");
        assert!(
            Instant::now() < deadline,
            "{flushed} of 12 requests flushed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Read by a third process, so that the reading request itself is not yet counted.
    a.stop().await;
    b.stop().await;
    let c = ServerProcess::start(&db, &smtp).await;
    let response = c.client(&db).usage_current(&token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(api_requests(&response.json().await.unwrap()), 12);
}

#[tokio::test]
async fn a_token_issued_by_one_process_is_honoured_by_the_other() {
    let (db, _smtp, a, b) = two_processes().await;
    let (on_a, on_b) = (a.client(&db), b.client(&db));
    on_a.register("owner@example.com", "Acme").await;
    let pair = on_a.login_ok("owner@example.com").await;

    let response = on_b.me_get(&text(&pair, "access_token")).await;
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["user"]["email"], "owner@example.com", "{me}");

    let response = on_b
        .auth_refresh(&json!({"refresh_token": text(&pair, "refresh_token")}))
        .await;
    assert_eq!(response.status(), 200, "B rotates A's refresh token");
}

#[tokio::test]
async fn a_logout_on_one_process_ends_the_session_on_the_other() {
    let (db, _smtp, a, b) = two_processes().await;
    let (on_a, on_b) = (a.client(&db), b.client(&db));
    on_a.register("owner@example.com", "Acme").await;
    let pair = on_a.login_ok("owner@example.com").await;
    let access = text(&pair, "access_token");
    assert_eq!(on_b.me_get(&access).await.status(), 200);

    let response = on_a
        .auth_logout(&json!({"refresh_token": text(&pair, "refresh_token")}))
        .await;
    assert_eq!(response.status(), 204);

    // The access token has not expired, but its session has, on B too.
    assert_eq!(on_b.me_get(&access).await.status(), 401);
}
