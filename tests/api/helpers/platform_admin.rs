//! The operator routes, `/api/v1/platform/*`.

use reqwest::Method;

use super::{Call, TestApp};

impl TestApp {
    /// `?state=`: `.query("state", "dead")`.
    pub fn platform_jobs_list(&self, token: &str) -> Call<'_> {
        self.request(Method::GET, "/api/v1/platform/jobs")
            .bearer(token)
    }

    pub fn platform_jobs_retry(&self, token: &str, id: i64) -> Call<'_> {
        self.request(Method::POST, format!("/api/v1/platform/jobs/{id}/retry"))
            .bearer(token)
    }
}

impl TestApp {
    pub fn platform_tenants_set_subscription(
        &self,
        token: &str,
        tenant: &str,
        body: &serde_json::Value,
    ) -> Call<'_> {
        self.request(
            Method::PUT,
            format!("/api/v1/platform/tenants/{tenant}/subscription"),
        )
        .bearer(token)
        .json(body)
    }
}

impl TestApp {
    /// A page: `.limit(n)`, `.cursor(c)`.
    pub fn platform_tenants_list(&self, token: &str) -> Call<'_> {
        self.request(Method::GET, "/api/v1/platform/tenants")
            .bearer(token)
    }

    pub fn platform_tenants_update(
        &self,
        token: &str,
        tenant: &str,
        body: &serde_json::Value,
    ) -> Call<'_> {
        self.request(Method::PATCH, format!("/api/v1/platform/tenants/{tenant}"))
            .bearer(token)
            .json(body)
    }

    /// The platform admin (bootstrap, 201 asserted): (access token, tenant id).
    pub async fn platform_admin(&self) -> (String, String) {
        let response = self
            .auth_bootstrap(&serde_json::json!({
                "email": "root@example.com", "password": super::PASSWORD,
                "full_name": "Root", "tenant_name": "Platform"
            }))
            .await;
        assert_eq!(response.status(), 201, "bootstrap");
        let body: serde_json::Value = response.json().await.unwrap();
        (
            super::text(&body, "access_token"),
            super::text(&body["tenant"], "id"),
        )
    }
}
