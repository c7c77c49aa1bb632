//! Safaricom's Daraja API, as much of it as payments use: the OAuth token, the STK
//! push (`/mpesa/stkpush/v1/processrequest`) and the STK query
//! (`/mpesa/stkpushquery/v1/query`), over reqwest with rustls. The base URL is a
//! setting, so tests speak this protocol to a local fake (`tests/api/helpers/
//! fake_daraja.rs`) and never to Safaricom.
//!
//! The token lives about an hour (`expires_in`, a string such as "3599"); it is
//! fetched once and shared by every call until a minute before it expires (a lock
//! around the fetch: a burst of payments makes one OAuth call, not one each).

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::gateway::{Gateway, GatewayError, PushAccepted, QueryAnswer, StkPush};
use crate::config::Secret;

/// What the client needs of the settings.
#[derive(Debug, Clone)]
pub struct DarajaConfig {
    pub base_url: String,
    pub consumer_key: Secret,
    pub consumer_secret: Secret,
    pub shortcode: String,
    pub passkey: Secret,
    pub timeout: Duration,
}

pub struct Daraja {
    http: reqwest::Client,
    config: DarajaConfig,
    token: Mutex<Option<(String, Instant)>>,
}

/// A token is renewed this long before Daraja says it expires, so a call never
/// carries one that expires on the way.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// Nairobi's offset: East Africa Time, UTC+3 all year (Kenya keeps no summer time).
const NAIROBI_OFFSET_SECS: i64 = 3 * 3600;

/// Daraja's `Timestamp` for `at`: `YYYYMMDDHHmmss` in Nairobi time.
pub fn timestamp(at: DateTime<Utc>) -> String {
    // A fixed offset: Nairobi's wall clock is UTC plus three hours, every day.
    (at.naive_utc() + TimeDelta::seconds(NAIROBI_OFFSET_SECS))
        .format("%Y%m%d%H%M%S")
        .to_string()
}

/// Daraja's `Password`: base64 of shortcode, passkey and the request's `Timestamp`.
pub fn password(shortcode: &str, passkey: &str, timestamp: &str) -> String {
    STANDARD.encode(format!("{shortcode}{passkey}{timestamp}"))
}

/// An error answer: `{requestId, errorCode, errorMessage}`.
#[derive(Debug, Deserialize)]
struct ErrorAnswer {
    #[serde(rename = "errorCode", default)]
    error_code: Option<String>,
    #[serde(rename = "errorMessage", default)]
    error_message: Option<String>,
}

/// A string, or a number Daraja sometimes sends instead (codes, `expires_in`).
fn loose_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) => Some(text.trim().to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

impl Daraja {
    pub fn new(config: DarajaConfig) -> Result<Daraja, GatewayError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|error| GatewayError::Protocol(format!("the HTTP client: {error}")))?;
        Ok(Daraja {
            http,
            config,
            token: Mutex::new(None),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }

    /// The shared token, fetched when there is none or it is about to expire.
    async fn token(&self) -> Result<String, GatewayError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let response = self
            .http
            .get(self.url("/oauth/v1/generate?grant_type=client_credentials"))
            .basic_auth(
                self.config.consumer_key.expose(),
                Some(self.config.consumer_secret.expose()),
            )
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(refusal(status, &body));
        }
        let token = loose_text(body.get("access_token"))
            .filter(|token| !token.is_empty())
            .ok_or_else(|| GatewayError::Protocol("an OAuth answer without access_token".into()))?;
        let lifetime = loose_text(body.get("expires_in"))
            .and_then(|seconds| seconds.parse::<u64>().ok())
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(3599));
        // A short-lived token is used for half its life rather than not at all.
        let margin = TOKEN_MARGIN.min(lifetime / 2);
        *cached = Some((token.clone(), Instant::now() + lifetime - margin));
        Ok(token)
    }

    /// Forgets the token (Daraja said it is invalid: revoked, or expired early).
    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// Posts `body` with the token; a 401 is retried once with a new token.
    async fn post(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<(reqwest::StatusCode, Value), GatewayError> {
        for attempt in 0..2 {
            let token = self.token().await?;
            let response = self
                .http
                .post(self.url(path))
                .bearer_auth(&token)
                .json(body)
                .send()
                .await
                .map_err(unanswered)?;
            let status = response.status();
            // An answer cut off is no answer: what it said is not known.
            let bytes = response.bytes().await.map_err(unanswered)?;
            let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if status == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
                self.forget_token().await;
                continue;
            }
            return Ok((status, answer));
        }
        Err(GatewayError::Refused {
            code: "401".into(),
            message: "Daraja refused a fresh token".into(),
        })
    }

    fn credentials(&self, at: DateTime<Utc>) -> (String, String) {
        let timestamp = timestamp(at);
        let password = password(
            &self.config.shortcode,
            self.config.passkey.expose(),
            &timestamp,
        );
        (timestamp, password)
    }
}

/// A request that failed after it was sent (or may have been: reqwest cannot always
/// tell) is [`GatewayError::Unanswered`]; only a failure to connect is certain to have
/// done nothing.
fn unanswered(error: reqwest::Error) -> GatewayError {
    if error.is_connect() {
        return unreachable(error);
    }
    GatewayError::Unanswered(if error.is_timeout() {
        "no answer in time".to_string()
    } else {
        error.without_url().to_string()
    })
}

fn unreachable(error: reqwest::Error) -> GatewayError {
    GatewayError::Unreachable(if error.is_timeout() {
        "no answer in time".to_string()
    } else {
        error.without_url().to_string()
    })
}

fn refusal(status: reqwest::StatusCode, body: &Value) -> GatewayError {
    let error: Option<ErrorAnswer> = serde_json::from_value(body.clone()).ok();
    let (code, message) = error
        .map(|e| (e.error_code, e.error_message))
        .unwrap_or_default();
    GatewayError::Refused {
        code: code.unwrap_or_else(|| status.as_u16().to_string()),
        message: message.unwrap_or_else(|| status.to_string()),
    }
}

/// Daraja truncates nothing itself: it refuses a field past its limit.
fn at_most(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

impl Gateway for Daraja {
    fn stk_push<'a>(
        &'a self,
        push: &'a StkPush,
    ) -> BoxFuture<'a, Result<PushAccepted, GatewayError>> {
        Box::pin(async move {
            // One instant for both: the Password is checked against the Timestamp.
            let (timestamp, password) = self.credentials(push.at);
            let body = json!({
                "BusinessShortCode": self.config.shortcode,
                "Password": password,
                "Timestamp": timestamp,
                "TransactionType": "CustomerPayBillOnline",
                "Amount": push.amount,
                "PartyA": push.phone,
                "PartyB": self.config.shortcode,
                "PhoneNumber": push.phone,
                "CallBackURL": push.callback_url,
                "AccountReference": at_most(&push.account_reference, 12),
                "TransactionDesc": at_most(&push.description, 13),
            });
            let (status, answer) = self.post("/mpesa/stkpush/v1/processrequest", &body).await?;
            if !status.is_success() {
                return Err(refusal(status, &answer));
            }
            let code = loose_text(answer.get("ResponseCode"));
            if code.as_deref() != Some("0") {
                return Err(GatewayError::Refused {
                    code: code.unwrap_or_default(),
                    message: loose_text(answer.get("ResponseDescription")).unwrap_or_default(),
                });
            }
            let checkout_request_id = loose_text(answer.get("CheckoutRequestID"))
                .filter(|id| !id.is_empty())
                .ok_or_else(|| {
                    GatewayError::Protocol("an STK push answer without CheckoutRequestID".into())
                })?;
            Ok(PushAccepted {
                merchant_request_id: loose_text(answer.get("MerchantRequestID"))
                    .unwrap_or_default(),
                checkout_request_id,
                customer_message: loose_text(answer.get("CustomerMessage")).unwrap_or_default(),
            })
        })
    }

    fn stk_query<'a>(
        &'a self,
        checkout_request_id: &'a str,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<QueryAnswer, GatewayError>> {
        Box::pin(async move {
            let (timestamp, password) = self.credentials(at);
            let body = json!({
                "BusinessShortCode": self.config.shortcode,
                "Password": password,
                "Timestamp": timestamp,
                "CheckoutRequestID": checkout_request_id,
            });
            let (status, answer) = self.post("/mpesa/stkpushquery/v1/query", &body).await?;
            // While the payer has not answered, Daraja says so as an error
            // (500.001.1001, "The transaction is being processed").
            let message = loose_text(answer.get("errorMessage")).unwrap_or_default();
            if loose_text(answer.get("errorCode")).as_deref() == Some("500.001.1001")
                || message.to_ascii_lowercase().contains("being processed")
            {
                return Ok(QueryAnswer::Processing);
            }
            if !status.is_success() {
                return Err(refusal(status, &answer));
            }
            let code = loose_text(answer.get("ResultCode"))
                .and_then(|code| code.parse::<i64>().ok())
                .ok_or_else(|| {
                    GatewayError::Protocol("an STK query answer without ResultCode".into())
                })?;
            Ok(QueryAnswer::Result {
                code,
                description: loose_text(answer.get("ResultDesc")).unwrap_or_default(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timestamp_is_nairobi_time_of_the_instant() {
        let at: DateTime<Utc> = "2026-12-31T22:30:05Z".parse().unwrap();
        // Three hours ahead: already the next year in Nairobi.
        assert_eq!(timestamp(at), "20270101013005");
    }

    #[test]
    fn the_password_is_base64_of_shortcode_passkey_and_timestamp() {
        // Daraja's sandbox example: shortcode 174379 and its published passkey.
        let passkey = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";
        let encoded = password("174379", passkey, "20160216165627");
        let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
        assert_eq!(decoded, format!("174379{passkey}20160216165627"));
    }

    #[test]
    fn codes_are_read_whether_strings_or_numbers() {
        assert_eq!(loose_text(Some(&json!("3599"))), Some("3599".into()));
        assert_eq!(loose_text(Some(&json!(3599))), Some("3599".into()));
        assert_eq!(loose_text(Some(&json!(null))), None);
        assert_eq!(loose_text(None), None);
    }
}
