//! The health module's operations (`/health`, `/health/db`).

use reqwest::Method;

use super::{Call, TestApp};

impl TestApp {
    pub fn health_get(&self) -> Call<'_> {
        self.request(Method::GET, "/health")
    }

    pub fn health_db(&self) -> Call<'_> {
        self.request(Method::GET, "/health/db")
    }
}
