//! What the platform's HTTP edge serves besides the modules' operations: the OpenAPI
//! document and Swagger UI.

use reqwest::Method;

use super::{Call, TestApp};

impl TestApp {
    /// `GET /openapi.json`.
    pub fn openapi_document(&self) -> Call<'_> {
        self.request(Method::GET, "/openapi.json")
    }

    /// The served OpenAPI document, parsed.
    pub async fn openapi(&self) -> serde_json::Value {
        let response = self.openapi_document().await;
        assert_eq!(response.status(), 200, "GET /openapi.json");
        response.json().await.unwrap()
    }

    /// `GET /docs`.
    pub fn swagger_ui(&self) -> Call<'_> {
        self.request(Method::GET, "/docs")
    }
}
