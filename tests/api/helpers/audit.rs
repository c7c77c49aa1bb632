//! The audit module's operation (`/api/v1/audit-events`).

use reqwest::Method;

use super::{Call, TestApp};

impl TestApp {
    /// Newest first; a page: `.limit(n)`, `.cursor(c)`.
    pub fn audit_events_list(&self, token: &str) -> Call<'_> {
        self.request(Method::GET, "/api/v1/audit-events")
            .bearer(token)
    }
}
