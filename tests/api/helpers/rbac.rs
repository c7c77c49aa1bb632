//! The RBAC module's operations (`/api/v1/permissions`, `/api/v1/roles`,
//! `/api/v1/users/{id}/roles`), and the look-up of a role by name.

use std::fmt::Display;

use reqwest::Method;
use serde_json::Value;

use super::{Call, TestApp, text};

impl TestApp {
    pub fn user_roles_list(&self, token: &str, user: impl Display) -> Call<'_> {
        self.request(Method::GET, format!("/api/v1/users/{user}/roles"))
            .bearer(token)
    }

    pub fn user_roles_create(&self, token: &str, user: impl Display, body: &Value) -> Call<'_> {
        self.request(Method::POST, format!("/api/v1/users/{user}/roles"))
            .bearer(token)
            .json(body)
    }

    pub fn user_roles_delete(
        &self,
        token: &str,
        user: impl Display,
        assignment: impl Display,
    ) -> Call<'_> {
        self.request(
            Method::DELETE,
            format!("/api/v1/users/{user}/roles/{assignment}"),
        )
        .bearer(token)
    }

    pub fn permissions_list(&self, token: &str) -> Call<'_> {
        self.request(Method::GET, "/api/v1/permissions")
            .bearer(token)
    }

    /// A page: `.limit(n)`, `.cursor(c)`.
    pub fn roles_list(&self, token: &str) -> Call<'_> {
        self.request(Method::GET, "/api/v1/roles").bearer(token)
    }

    pub fn roles_create(&self, token: &str, body: &Value) -> Call<'_> {
        self.request(Method::POST, "/api/v1/roles")
            .bearer(token)
            .json(body)
    }

    pub fn roles_get(&self, token: &str, role: impl Display) -> Call<'_> {
        self.request(Method::GET, format!("/api/v1/roles/{role}"))
            .bearer(token)
    }

    pub fn roles_update(&self, token: &str, role: impl Display, body: &Value) -> Call<'_> {
        self.request(Method::PATCH, format!("/api/v1/roles/{role}"))
            .bearer(token)
            .json(body)
    }

    pub fn roles_delete(&self, token: &str, role: impl Display) -> Call<'_> {
        self.request(Method::DELETE, format!("/api/v1/roles/{role}"))
            .bearer(token)
    }

    pub fn roles_set_permissions(&self, token: &str, role: impl Display, body: &Value) -> Call<'_> {
        self.request(Method::PUT, format!("/api/v1/roles/{role}/permissions"))
            .bearer(token)
            .json(body)
    }
}

// --- fixtures ------------------------------------------------------------------------

impl TestApp {
    /// The id of the tenant's role named `name`.
    pub async fn role_id(&self, token: &str, name: &str) -> String {
        let roles: Value = self
            .roles_list(token)
            .limit(100)
            .await
            .json()
            .await
            .unwrap();
        roles["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|role| role["name"] == name)
            .map(|role| text(role, "id"))
            .unwrap_or_else(|| panic!("no role {name} in {roles}"))
    }
}
