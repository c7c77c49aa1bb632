//! The tenant lifecycle module's operations (`POST /api/v1/tenants`,
//! `/api/v1/tenants/current/export`, `DELETE /api/v1/tenants/current`), and
//! `GET /api/v1/users/{id}/access` of the RBAC module.

use std::fmt::Display;

use reqwest::Method;
use serde_json::{Value, json};

use super::{Call, TestApp, text};

impl TestApp {
    pub fn tenants_create(&self, token: &str, body: &Value) -> Call<'_> {
        self.request(Method::POST, "/api/v1/tenants")
            .bearer(token)
            .json(body)
    }

    pub fn tenants_export_current(&self, token: &str) -> Call<'_> {
        self.request(Method::GET, "/api/v1/tenants/current/export")
            .bearer(token)
    }

    pub fn tenants_delete_current(&self, token: &str, body: &Value) -> Call<'_> {
        self.request(Method::DELETE, "/api/v1/tenants/current")
            .bearer(token)
            .json(body)
    }

    /// `.query("permission", code)`, and `.query("store_id", id)` for a store.
    pub fn users_access(&self, token: &str, user: impl Display) -> Call<'_> {
        self.request(Method::GET, format!("/api/v1/users/{user}/access"))
            .bearer(token)
    }
}

// --- fixtures ------------------------------------------------------------------------

impl TestApp {
    /// Creates a tenant named `name` as the holder of `token` (201 asserted); its id.
    pub async fn another_tenant(&self, token: &str, name: &str) -> String {
        let response = self.tenants_create(token, &json!({"name": name})).await;
        assert_eq!(
            response.status(),
            201,
            "creating the tenant {name}: {:?}",
            response.text().await
        );
        text(&response.json().await.unwrap(), "id")
    }

    /// The export of `token`'s tenant (200 asserted), one JSON value per line.
    pub async fn export_lines(&self, token: &str) -> Vec<Value> {
        let response = self.tenants_export_current(token).await;
        assert_eq!(response.status(), 200, "exporting");
        let body = response.text().await.unwrap();
        body.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// `users_access` of `user` for `permission`, in `store` if given (200 asserted).
    pub async fn access_of(
        &self,
        token: &str,
        user: &str,
        permission: &str,
        store: Option<&str>,
    ) -> Value {
        let mut call = self
            .users_access(token, user)
            .query("permission", permission.to_string());
        if let Some(store) = store {
            call = call.query("store_id", store.to_string());
        }
        let response = call.await;
        assert_eq!(response.status(), 200, "explaining {permission} of {user}");
        response.json().await.unwrap()
    }
}
