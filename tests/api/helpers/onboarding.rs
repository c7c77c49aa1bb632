//! Calls of the onboarding module.

use reqwest::Method;
use serde_json::Value;

use super::{Call, TestApp};

impl TestApp {
    pub fn onboarding_register(&self, body: &Value) -> Call<'_> {
        self.request(Method::POST, "/api/v1/onboarding/register")
            .json(body)
    }

    /// The templates of the emails queued for `email`, oldest first.
    pub async fn queued_templates(&self, email: &str) -> Vec<String> {
        self.db
            .superuser()
            .await
            .query(
                "SELECT payload->>'template' FROM jobs
                 WHERE kind = 'email.send' AND payload->>'to' = $1 ORDER BY id",
                &[&email],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    }
}
