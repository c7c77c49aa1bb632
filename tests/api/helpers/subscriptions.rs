//! Plans and subscriptions.

use reqwest::Method;
use serde_json::{Value, json};

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

    pub fn subscriptions_change(&self, token: &str, body: &Value) -> Call<'_> {
        self.request(Method::PUT, "/api/v1/subscriptions/current")
            .bearer(token)
            .json(body)
    }

    pub fn subscriptions_cancel(&self, token: &str) -> Call<'_> {
        self.request(Method::DELETE, "/api/v1/subscriptions/current")
            .bearer(token)
    }

    /// The tenant's subscription (200 asserted).
    pub async fn subscription(&self, token: &str) -> Value {
        let response = self.subscriptions_current(token).await;
        assert_eq!(response.status(), 200, "the subscription");
        response.json().await.unwrap()
    }

    /// Moves to `plan` (200 asserted); the subscription.
    pub async fn change_plan(&self, token: &str, plan: &str) -> Value {
        let response = self
            .subscriptions_change(token, &json!({ "plan_code": plan }))
            .await;
        assert_eq!(response.status(), 200, "moving to {plan}");
        response.json().await.unwrap()
    }

    /// The tenant had its trial already (as if long ago), without running the clock.
    pub async fn trial_already_used(&self, tenant: &str) {
        self.db
            .superuser()
            .await
            .execute(
                "UPDATE subscriptions SET trial_used = true WHERE tenant_id = $1::text::uuid",
                &[&tenant],
            )
            .await
            .unwrap();
    }
}
