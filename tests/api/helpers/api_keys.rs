//! The API keys module's operations (`/api/v1/api-keys`), and the fixture of a key.

use std::fmt::Display;

use reqwest::Method;
use serde_json::{Value, json};

use super::{Call, TestApp};

impl TestApp {
    /// A page: `.limit(n)`, `.cursor(c)`.
    pub fn api_keys_list(&self, token: &str) -> Call<'_> {
        self.request(Method::GET, "/api/v1/api-keys").bearer(token)
    }

    pub fn api_keys_create(&self, token: &str, body: &Value) -> Call<'_> {
        self.request(Method::POST, "/api/v1/api-keys")
            .bearer(token)
            .json(body)
    }

    pub fn api_keys_revoke(&self, token: &str, key: impl Display) -> Call<'_> {
        self.request(Method::DELETE, format!("/api/v1/api-keys/{key}"))
            .bearer(token)
    }
}

// --- fixtures ------------------------------------------------------------------------

/// An expiry `days` from now, as the API takes it.
pub fn in_days(days: i64) -> String {
    (chrono::Utc::now() + chrono::TimeDelta::days(days)).to_rfc3339()
}

impl TestApp {
    /// Creates a key with `permissions`, expiring in 30 days (201 asserted); the
    /// created key's body, `key` included.
    pub async fn api_key(&self, token: &str, permissions: &[&str]) -> Value {
        let response = self
            .api_keys_create(
                token,
                &json!({"name": "Till 1", "permissions": permissions, "expires_at": in_days(30)}),
            )
            .await;
        assert_eq!(
            response.status(),
            201,
            "creating an API key: {:?}",
            response.text().await
        );
        response.json().await.unwrap()
    }
}
