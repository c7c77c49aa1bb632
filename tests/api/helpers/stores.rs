//! The stores module's operations (`/api/v1/stores`), and the fixture of a store.

use std::fmt::Display;

use reqwest::Method;
use serde_json::{Value, json};

use super::{Call, TestApp, text};

impl TestApp {
    /// A page: `.limit(n)`, `.cursor(c)`.
    pub fn stores_list(&self, token: &str) -> Call<'_> {
        self.request(Method::GET, "/api/v1/stores").bearer(token)
    }

    pub fn stores_create(&self, token: &str, body: &Value) -> Call<'_> {
        self.request(Method::POST, "/api/v1/stores")
            .bearer(token)
            .json(body)
    }

    pub fn stores_get(&self, token: &str, store: impl Display) -> Call<'_> {
        self.request(Method::GET, format!("/api/v1/stores/{store}"))
            .bearer(token)
    }

    pub fn stores_update(&self, token: &str, store: impl Display, body: &Value) -> Call<'_> {
        self.request(Method::PATCH, format!("/api/v1/stores/{store}"))
            .bearer(token)
            .json(body)
    }

    pub fn stores_delete(&self, token: &str, store: impl Display) -> Call<'_> {
        self.request(Method::DELETE, format!("/api/v1/stores/{store}"))
            .bearer(token)
    }

    pub fn store_users_list(&self, token: &str, store: impl Display) -> Call<'_> {
        self.request(Method::GET, format!("/api/v1/stores/{store}/users"))
            .bearer(token)
    }

    pub fn store_users_put(
        &self,
        token: &str,
        store: impl Display,
        user: impl Display,
    ) -> Call<'_> {
        self.request(Method::PUT, format!("/api/v1/stores/{store}/users/{user}"))
            .bearer(token)
    }

    pub fn store_users_delete(
        &self,
        token: &str,
        store: impl Display,
        user: impl Display,
    ) -> Call<'_> {
        self.request(
            Method::DELETE,
            format!("/api/v1/stores/{store}/users/{user}"),
        )
        .bearer(token)
    }
}

// --- fixtures ------------------------------------------------------------------------

impl TestApp {
    /// Creates a store; returns its id.
    pub async fn store(&self, token: &str, name: &str) -> String {
        let response = self.stores_create(token, &json!({"name": name})).await;
        assert_eq!(response.status(), 201, "creating store {name}");
        let store: Value = response.json().await.unwrap();
        text(&store, "id")
    }
}
