//! The tenancy module's operations (`/api/v1/tenants/current`, `/api/v1/users`,
//! `/api/v1/invitations`, `POST /api/v1/auth/accept-invitation`), and the fixtures of
//! a tenant and its members.

use std::fmt::Display;

use reqwest::Method;
use serde_json::{Value, json};

use super::{Call, PASSWORD, TestApp, text};

impl TestApp {
    pub fn tenants_get_current(&self, token: &str) -> Call<'_> {
        self.request(Method::GET, "/api/v1/tenants/current")
            .bearer(token)
    }

    pub fn tenants_update_current(&self, token: &str, body: &Value) -> Call<'_> {
        self.request(Method::PATCH, "/api/v1/tenants/current")
            .bearer(token)
            .json(body)
    }

    /// A page: `.limit(n)`, `.cursor(c)`.
    pub fn users_list(&self, token: &str) -> Call<'_> {
        self.request(Method::GET, "/api/v1/users").bearer(token)
    }

    pub fn users_get(&self, token: &str, user: impl Display) -> Call<'_> {
        self.request(Method::GET, format!("/api/v1/users/{user}"))
            .bearer(token)
    }

    pub fn users_update(&self, token: &str, user: impl Display, body: &Value) -> Call<'_> {
        self.request(Method::PATCH, format!("/api/v1/users/{user}"))
            .bearer(token)
            .json(body)
    }

    pub fn users_delete(&self, token: &str, user: impl Display) -> Call<'_> {
        self.request(Method::DELETE, format!("/api/v1/users/{user}"))
            .bearer(token)
    }

    pub fn invitations_create(&self, token: &str, body: &Value) -> Call<'_> {
        self.request(Method::POST, "/api/v1/invitations")
            .bearer(token)
            .json(body)
    }

    /// A page: `.limit(n)`, `.cursor(c)`.
    pub fn invitations_list(&self, token: &str) -> Call<'_> {
        self.request(Method::GET, "/api/v1/invitations")
            .bearer(token)
    }

    pub fn invitations_delete(&self, token: &str, invitation: impl Display) -> Call<'_> {
        self.request(Method::DELETE, format!("/api/v1/invitations/{invitation}"))
            .bearer(token)
    }

    pub fn auth_accept_invitation(&self, body: &Value) -> Call<'_> {
        self.request(Method::POST, "/api/v1/auth/accept-invitation")
            .json(body)
    }
}

// --- fixtures ------------------------------------------------------------------------

/// A tenant made through the API: its Owner's session.
pub struct Tenant {
    pub id: String,
    pub owner_id: String,
    pub token: String,
}

impl TestApp {
    /// Registers an Owner and their tenant.
    pub async fn tenant(&self, email: &str, name: &str) -> Tenant {
        let session = self.register(email, name).await;
        Tenant {
            id: text(&session["tenant"], "id"),
            owner_id: text(&session["user"], "id"),
            token: text(&session, "access_token"),
        }
    }

    /// Invites `email` with the role named `role` (in `store`, if given) and accepts
    /// as a new user with [`PASSWORD`]; returns (user id, access token).
    pub async fn member(
        &self,
        owner_token: &str,
        email: &str,
        role: &str,
        store: Option<&str>,
    ) -> (String, String) {
        let role_id = self.role_id(owner_token, role).await;
        let response = self
            .invitations_create(
                owner_token,
                &json!({"email": email, "role_id": role_id, "store_id": store}),
            )
            .await;
        assert_eq!(
            response.status(),
            201,
            "inviting {email}: {:?}",
            response.text().await
        );
        let token = self.queued_token(email, "invitation").await;
        let accepted = self
            .auth_accept_invitation(
                &json!({"token": token, "password": PASSWORD, "full_name": "Invited Member"}),
            )
            .await;
        assert_eq!(accepted.status(), 200, "accepting for {email}");
        let accepted: Value = accepted.json().await.unwrap();
        let access_token = text(&accepted, "access_token");
        let me: Value = self.me_get(&access_token).await.json().await.unwrap();
        (text(&me["user"], "id"), access_token)
    }
}
