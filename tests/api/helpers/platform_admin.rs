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
