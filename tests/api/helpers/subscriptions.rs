//! Plans and subscriptions.

use reqwest::Method;

use super::{Call, TestApp};

impl TestApp {
    /// Public: no token.
    pub fn plans_list(&self) -> Call<'_> {
        self.request(Method::GET, "/api/v1/plans")
    }
}

impl TestApp {
    pub fn subscriptions_current(&self, token: &str) -> Call<'_> {
        self.request(Method::GET, "/api/v1/subscriptions/current")
            .bearer(token)
    }
}
