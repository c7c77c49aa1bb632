//! Usage, and the command that runs its aggregation.

use reqwest::Method;

use super::{Call, TestApp};

impl TestApp {
    pub fn usage_current(&self, token: &str) -> Call<'_> {
        self.request(Method::GET, "/api/v1/usage/current")
            .bearer(token)
    }

    pub fn usage_history(&self, token: &str) -> Call<'_> {
        self.request(Method::GET, "/api/v1/usage/history")
            .bearer(token)
    }
}

impl TestApp {
    /// `rowguard jobs run <kind> --at <at>` on this server's database, as an operator
    /// runs it (a process of its own; email goes to its log); panics unless it
    /// succeeds, and returns what it printed.
    pub async fn jobs_run(&self, kind: &str, at: chrono::DateTime<chrono::Utc>) -> String {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_rowguard"))
            .args(["jobs", "run", kind, "--at", &at.to_rfc3339()])
            .env("DATABASE_URL", &self.db.url)
            .env_remove("ROWGUARD_SMTP_URL")
            .env_remove("ROWGUARD_OWNER_DATABASE_URL")
            .env_remove("ROWGUARD_AUTH_DATABASE_URL")
            .output()
            .await
            .unwrap();
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "rowguard jobs run {kind}: {log}");
        log
    }
}
