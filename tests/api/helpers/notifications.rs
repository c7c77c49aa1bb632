//! The notifications module's operations (`/api/v1/notifications`).

use std::fmt::Display;

use reqwest::Method;

use super::{Call, TestApp};

impl TestApp {
    /// A page: `.limit(n)`, `.cursor(c)`; only the unread: `.query("unread", true)`.
    pub fn notifications_list(&self, token: &str) -> Call<'_> {
        self.request(Method::GET, "/api/v1/notifications")
            .bearer(token)
    }

    pub fn notifications_read(&self, token: &str, notification: impl Display) -> Call<'_> {
        self.request(
            Method::PUT,
            format!("/api/v1/notifications/{notification}/read"),
        )
        .bearer(token)
    }

    pub fn notifications_read_all(&self, token: &str) -> Call<'_> {
        self.request(Method::POST, "/api/v1/notifications/read-all")
            .bearer(token)
    }

    pub fn notifications_unread_count(&self, token: &str) -> Call<'_> {
        self.request(Method::GET, "/api/v1/notifications/unread-count")
            .bearer(token)
    }
}
