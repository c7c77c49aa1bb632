//! The identity module's operations (`/api/v1/auth/*` but the invitation's, and
//! `/api/v1/me`), and the fixtures of a session: register, log in, read the queued emails.

use reqwest::Method;
use rowguard::platform::auth::password::Admission;
use serde_json::{Value, json};

use super::{Call, TestApp};

/// The password of every user the fixtures make.
pub const PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    pub fn auth_bootstrap(&self, body: &Value) -> Call<'_> {
        self.request(Method::POST, "/api/v1/auth/bootstrap")
            .json(body)
    }

    pub fn auth_register(&self, body: &Value) -> Call<'_> {
        self.request(Method::POST, "/api/v1/auth/register")
            .json(body)
    }

    pub fn auth_login(&self, body: &Value) -> Call<'_> {
        self.request(Method::POST, "/api/v1/auth/login").json(body)
    }

    pub fn auth_refresh(&self, body: &Value) -> Call<'_> {
        self.request(Method::POST, "/api/v1/auth/refresh")
            .json(body)
    }

    pub fn auth_logout(&self, body: &Value) -> Call<'_> {
        self.request(Method::POST, "/api/v1/auth/logout").json(body)
    }

    pub fn auth_switch_tenant(&self, token: &str, body: &Value) -> Call<'_> {
        self.request(Method::POST, "/api/v1/auth/switch-tenant")
            .bearer(token)
            .json(body)
    }

    pub fn auth_forgot_password(&self, body: &Value) -> Call<'_> {
        self.request(Method::POST, "/api/v1/auth/forgot-password")
            .json(body)
    }

    pub fn auth_reset_password(&self, body: &Value) -> Call<'_> {
        self.request(Method::POST, "/api/v1/auth/reset-password")
            .json(body)
    }

    /// In a store: `.in_store(id)`.
    pub fn me_get(&self, token: &str) -> Call<'_> {
        self.request(Method::GET, "/api/v1/me").bearer(token)
    }

    pub fn me_update(&self, token: &str, body: &Value) -> Call<'_> {
        self.request(Method::PATCH, "/api/v1/me")
            .bearer(token)
            .json(body)
    }

    pub fn me_change_password(&self, token: &str, body: &Value) -> Call<'_> {
        self.request(Method::POST, "/api/v1/me/password")
            .bearer(token)
            .json(body)
    }

    pub fn me_send_verification_email(&self, token: &str) -> Call<'_> {
        self.request(Method::POST, "/api/v1/me/verification-email")
            .bearer(token)
    }

    pub fn auth_verify_email(&self, body: &Value) -> Call<'_> {
        self.request(Method::POST, "/api/v1/auth/verify-email")
            .json(body)
    }
}

// --- fixtures ------------------------------------------------------------------------

impl TestApp {
    /// Registers `email` with [`PASSWORD`] and a tenant; returns the 201 body.
    pub async fn register(&self, email: &str, tenant_name: &str) -> Value {
        let response = self
            .auth_register(&json!({
                "email": email,
                "password": PASSWORD,
                "full_name": "Test User",
                "tenant_name": tenant_name,
            }))
            .await;
        assert_eq!(response.status(), 201, "registering {email}");
        response.json().await.unwrap()
    }

    /// `auth_login` with just an email and a password.
    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.auth_login(&json!({"email": email, "password": password}))
            .await
    }

    /// Logs in with [`PASSWORD`] and returns the 200 body (the token pair).
    pub async fn login_ok(&self, email: &str) -> Value {
        let response = self.login(email, PASSWORD).await;
        assert_eq!(response.status(), 200, "logging in {email}");
        response.json().await.unwrap()
    }

    /// `auth_login` with an email and a password, from `client` as a trusted proxy
    /// forwards it.
    pub fn login_from(&self, client: &str, email: &str, password: &str) -> Call<'_> {
        self.auth_login(&json!({"email": email, "password": password}))
            .forwarded_for(client)
    }

    /// Takes every place of the server's unauthenticated password hashing (registration,
    /// bootstrap, a new invitee, a reset), as a flood of them would; they are free again
    /// when the returned admissions are dropped.
    pub fn saturate_unauthenticated_hashing(&self) -> Vec<Admission> {
        let hasher = self.hasher.as_ref().expect("a server the harness runs");
        std::iter::from_fn(|| hasher.admit_unauthenticated().ok()).collect()
    }

    /// Switches `token`'s session to `tenant_id`; returns the 200 body (the new pair).
    pub async fn switch_ok(&self, token: &str, tenant_id: &str) -> Value {
        let response = self
            .auth_switch_tenant(token, &json!({"tenant_id": tenant_id}))
            .await;
        assert_eq!(response.status(), 200, "switching to {tenant_id}");
        response.json().await.unwrap()
    }

    /// The token of the newest email `template` queued for `email` (a worker has not
    /// delivered it: tests run without workers unless they ask).
    pub async fn queued_token(&self, email: &str, template: &str) -> String {
        self.db
            .superuser()
            .await
            .query_one(
                "SELECT payload->>'secret' FROM jobs
                 WHERE kind = 'email.send' AND payload->>'to' = $1 AND payload->>'template' = $2
                 ORDER BY id DESC LIMIT 1",
                &[&email, &template],
            )
            .await
            .unwrap_or_else(|_| panic!("no {template} email queued for {email}"))
            .get(0)
    }
}
