//! Invoices, and paying them as the payment flows will (`billing::record_payment`,
//! the test double of a gateway's success).

use chrono::{DateTime, Utc};
use reqwest::Method;
use rowguard::{modules::billing, platform::db::Scope};
use serde_json::Value;
use std::fmt::Display;
use uuid::Uuid;

use super::{Call, TestApp};

impl TestApp {
    pub fn billing_invoices_list(&self, token: &str) -> Call<'_> {
        self.request(Method::GET, "/api/v1/billing/invoices")
            .bearer(token)
    }

    pub fn billing_invoices_get(&self, token: &str, invoice: impl Display) -> Call<'_> {
        self.request(Method::GET, format!("/api/v1/billing/invoices/{invoice}"))
            .bearer(token)
    }

    /// The tenant's invoices, newest first (200 asserted).
    pub async fn invoices(&self, token: &str) -> Vec<Value> {
        let response = self.billing_invoices_list(token).limit(100).await;
        assert_eq!(response.status(), 200, "the invoices");
        let body: Value = response.json().await.unwrap();
        body["items"].as_array().unwrap().clone()
    }

    /// Records the payment of `invoice` of `tenant` at `paid_at` with `receipt`, in a
    /// transaction of that tenant's context, as a payment callback would.
    pub async fn pay(
        &self,
        tenant: &str,
        invoice: &str,
        receipt: &str,
        paid_at: &str,
    ) -> billing::Payment {
        let scope = Scope {
            tenant_id: Some(tenant.parse().unwrap()),
            ..Scope::anonymous()
        };
        let paid_at: DateTime<Utc> = paid_at.parse().unwrap();
        let invoice: Uuid = invoice.parse().unwrap();
        let tx = self.database.begin_context(&scope).await.unwrap();
        let paid = billing::record_payment(&tx, invoice, receipt, paid_at).await;
        tx.finish(paid).await.unwrap()
    }
}
