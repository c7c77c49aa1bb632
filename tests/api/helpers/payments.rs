//! Payments: the routes, and a server paying through the fake Daraja.

use std::fmt::Display;

use reqwest::Method;
use rowguard::config::Settings;
use serde_json::{Value, json};

use super::{
    Call, TestApp,
    fake_daraja::{
        CALLBACK_TOKEN, CONSUMER_KEY, CONSUMER_SECRET, FakeDaraja, Outcome, PASSKEY, SHORTCODE,
    },
    spawn_app_with,
};

/// The M-Pesa settings of a server paying through `base_url` (the fake's, or one
/// where nothing listens), callbacks allowed from this machine.
pub fn mpesa_settings(settings: &mut Settings, base_url: &str) {
    settings.mpesa_base_url = base_url.to_string();
    settings.mpesa_consumer_key = Some(CONSUMER_KEY.into());
    settings.mpesa_consumer_secret = Some(CONSUMER_SECRET.into());
    settings.mpesa_shortcode = Some(SHORTCODE.into());
    settings.mpesa_passkey = Some(PASSKEY.into());
    settings.mpesa_callback_token = Some(CALLBACK_TOKEN.into());
    settings.mpesa_callback_allow = "127.0.0.1/32,::1/128".parse().unwrap();
    settings.mpesa_timeout_ms = 2_000;
    settings.public_url = Some("https://billing.example".into());
}

/// A server on `free` that pays through `fake`, tenants' subscriptions moved by the
/// tests (`configure` may change more).
pub async fn spawn_paying_app(fake: &FakeDaraja, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let base_url = fake.base_url();
    spawn_app_with(move |settings| {
        settings.default_plan = "free".into();
        mpesa_settings(settings, &base_url);
        configure(settings);
    })
    .await
}

impl FakeDaraja {
    /// Posts the callback about `checkout_request_id` to the callback URL of the
    /// push that made it, at `app` (the URL's path, with its token; the server's
    /// public URL is not where a test server listens).
    pub async fn send_callback(
        &self,
        app: &TestApp,
        checkout_request_id: &str,
        outcome: &Outcome,
    ) -> reqwest::Response {
        let body = FakeDaraja::callback_body(checkout_request_id, outcome);
        self.post_raw(app, checkout_request_id, serde_json::to_vec(&body).unwrap())
            .await
    }

    /// Posts `body` as it is to the callback URL of the push `checkout_request_id`.
    pub async fn post_raw(
        &self,
        app: &TestApp,
        checkout_request_id: &str,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let url = self
            .pushes_and_ids()
            .into_iter()
            .find(|(_, id)| id == checkout_request_id)
            .map(|(push, _)| push["CallBackURL"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no push {checkout_request_id}"));
        let path = url.splitn(4, '/').nth(3).unwrap();
        self.http
            .post(format!("http://{}/{path}", app.address))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }
}

impl TestApp {
    pub fn payments_mpesa_initiate(
        &self,
        token: &str,
        key: Option<&str>,
        body: &Value,
    ) -> Call<'_> {
        let call = self
            .request(Method::POST, "/api/v1/payments/mpesa/initiate")
            .bearer(token)
            .json(body);
        match key {
            Some(key) => call.header("Idempotency-Key", key),
            None => call,
        }
    }

    pub fn payments_get(&self, token: &str, payment: impl Display) -> Call<'_> {
        self.request(Method::GET, format!("/api/v1/payments/{payment}"))
            .bearer(token)
    }

    pub fn billing_history(&self, token: &str) -> Call<'_> {
        self.request(Method::GET, "/api/v1/billing/history")
            .bearer(token)
    }

    /// Starts paying `invoice` from `phone` with `key` (202 asserted): the payment.
    pub async fn start_payment(&self, token: &str, invoice: &str, phone: &str, key: &str) -> Value {
        let response = self
            .payments_mpesa_initiate(
                token,
                Some(key),
                &json!({"invoice_id": invoice, "phone_number": phone}),
            )
            .await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 202, "{body}");
        body
    }

    /// The payment as the API shows it (200 asserted).
    pub async fn payment(&self, token: &str, payment: &str) -> Value {
        let response = self.payments_get(token, payment).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}
