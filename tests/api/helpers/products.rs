//! The products module's operations (`/api/v1/products`, and the store-scoped
//! `/api/v1/inventory`), and the fixture of a product.

use std::fmt::Display;

use reqwest::Method;
use serde_json::{Value, json};

use super::{Call, TestApp, text};

impl TestApp {
    /// A page: `.limit(n)`, `.cursor(c)`.
    pub fn products_list(&self, token: &str) -> Call<'_> {
        self.request(Method::GET, "/api/v1/products").bearer(token)
    }

    pub fn products_create(&self, token: &str, body: &Value) -> Call<'_> {
        self.request(Method::POST, "/api/v1/products")
            .bearer(token)
            .json(body)
    }

    pub fn products_get(&self, token: &str, product: impl Display) -> Call<'_> {
        self.request(Method::GET, format!("/api/v1/products/{product}"))
            .bearer(token)
    }

    pub fn products_update(&self, token: &str, product: impl Display, body: &Value) -> Call<'_> {
        self.request(Method::PATCH, format!("/api/v1/products/{product}"))
            .bearer(token)
            .json(body)
    }

    pub fn products_delete(&self, token: &str, product: impl Display) -> Call<'_> {
        self.request(Method::DELETE, format!("/api/v1/products/{product}"))
            .bearer(token)
    }

    /// Needs `.in_store(id)` (`X-Store-ID`); a page: `.limit(n)`, `.cursor(c)`.
    pub fn inventory_list(&self, token: &str) -> Call<'_> {
        self.request(Method::GET, "/api/v1/inventory").bearer(token)
    }

    /// Needs `.in_store(id)` (`X-Store-ID`).
    pub fn inventory_adjust(&self, token: &str, body: &Value) -> Call<'_> {
        self.request(Method::POST, "/api/v1/inventory/adjustments")
            .bearer(token)
            .json(body)
    }
}

// --- fixtures ------------------------------------------------------------------------

impl TestApp {
    /// Creates a product; returns its id.
    pub async fn product(&self, token: &str, sku: &str) -> String {
        let response = self
            .products_create(token, &json!({"sku": sku, "name": sku, "price_cents": 100}))
            .await;
        assert_eq!(response.status(), 201, "creating product {sku}");
        let product: Value = response.json().await.unwrap();
        text(&product, "id")
    }
}
