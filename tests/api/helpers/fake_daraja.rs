//! A fake Daraja: an in-process HTTP server speaking Daraja's wire format, strict
//! about what it is sent (Basic auth on the OAuth call, a token it issued on every
//! other, every field of an STK push and its Password made from the Timestamp), and
//! scriptable: it can refuse pushes, answer STK queries with a scripted result (else
//! "being processed"), and post callbacks like Daraja's, with their quirks, to the
//! callback URL the server gave it. What it was asked is kept for the tests to read,
//! and anything it found wrong in a request is listed in [`FakeDaraja::complaints`].

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{TimeDelta, Utc};
use poem::{
    Endpoint, Request, Response, Server,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
};
use serde_json::{Value, json};

pub const CONSUMER_KEY: &str = "fake-consumer-key";
pub const CONSUMER_SECRET: &str = "fake-consumer-secret";
pub const SHORTCODE: &str = "174379";
/// Daraja's published sandbox passkey.
pub const PASSKEY: &str = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";
pub const CALLBACK_TOKEN: &str = "cb-0123456789abcdef0123456789abcdef";

/// What a scripted callback or query reports.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// ResultCode 0, with its metadata; `amount` is the `Amount` item's `Value` as
    /// sent (a number, a string, or `None` for an item without a value).
    Success {
        amount: Option<Value>,
        receipt: &'static str,
    },
    /// Any other code (1 insufficient funds, 1032 cancelled, 1037 unreachable, 2001
    /// wrong PIN), without metadata.
    Code(i64, &'static str),
}

#[derive(Default)]
struct State {
    tokens: Vec<String>,
    oauth_calls: usize,
    pushes: Vec<Value>,
    queries: Vec<String>,
    complaints: Vec<String>,
    refuse_pushes: bool,
    query_results: HashMap<String, Outcome>,
    /// After each accepted push, this long later, a success callback for its amount,
    /// posted to its CallBackURL (at another address than the URL's when given).
    autopay: Option<(Duration, Option<SocketAddr>)>,
    /// Accepted pushes are answered this long after they arrive (a slow Daraja, or a
    /// network that loses the answer: the push happened, the client hears nothing).
    answer_pushes_after: Option<Duration>,
}

#[derive(Clone)]
pub struct FakeDaraja {
    pub address: SocketAddr,
    state: Arc<Mutex<State>>,
    pub(crate) http: reqwest::Client,
}

impl FakeDaraja {
    pub async fn start() -> FakeDaraja {
        FakeDaraja::start_on("127.0.0.1:0").await
    }

    /// On `address` (`rowguard`'s manual check: `cargo run --example fake_daraja`).
    pub async fn start_on(address: &str) -> FakeDaraja {
        let state = Arc::new(Mutex::new(State::default()));
        let acceptor = TcpListener::bind(address.to_string())
            .into_acceptor()
            .await
            .unwrap();
        let address = *acceptor.local_addr()[0].as_socket_addr().unwrap();
        let endpoint = Daraja {
            state: state.clone(),
        };
        tokio::spawn(Server::new_with_acceptor(acceptor).run(endpoint));
        FakeDaraja {
            address,
            state,
            http: reqwest::Client::new(),
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A base URL where nothing listens: Daraja down.
    pub fn unreachable_url() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        format!("http://{address}")
    }

    /// The payer types the PIN `delay` after each push: a success callback for the
    /// push's amount goes to its CallBackURL, or to the same path at `target`.
    pub fn autopay(&self, delay: Duration, target: Option<SocketAddr>) {
        self.state.lock().unwrap().autopay = Some((delay, target));
    }

    /// Accepts each push at once (its callback, with autopay, goes out as usual) but
    /// answers it only `delay` later.
    pub fn answer_pushes_after(&self, delay: Duration) {
        self.state.lock().unwrap().answer_pushes_after = Some(delay);
    }

    pub fn refuse_pushes(&self, refuse: bool) {
        self.state.lock().unwrap().refuse_pushes = refuse;
    }

    /// What an STK query about `checkout_request_id` answers from now on.
    pub fn script_query(&self, checkout_request_id: &str, outcome: Outcome) {
        self.state
            .lock()
            .unwrap()
            .query_results
            .insert(checkout_request_id.to_string(), outcome);
    }

    /// The STK pushes it accepted, as sent.
    pub fn pushes(&self) -> Vec<Value> {
        self.state.lock().unwrap().pushes.clone()
    }

    pub fn oauth_calls(&self) -> usize {
        self.state.lock().unwrap().oauth_calls
    }

    /// The CheckoutRequestIDs it was queried about, in order.
    pub fn queries(&self) -> Vec<String> {
        self.state.lock().unwrap().queries.clone()
    }

    /// What it found wrong in the requests it got (none, for a correct client).
    pub fn complaints(&self) -> Vec<String> {
        self.state.lock().unwrap().complaints.clone()
    }

    /// The callback body Daraja would post about `checkout_request_id`.
    pub fn callback_body(checkout_request_id: &str, outcome: &Outcome) -> Value {
        let mut callback = json!({
            "MerchantRequestID": "29115-34620561-1",
            "CheckoutRequestID": checkout_request_id,
        });
        match outcome {
            Outcome::Success { amount, receipt } => {
                callback["ResultCode"] = json!(0);
                callback["ResultDesc"] = json!("The service request is processed successfully.");
                let amount_item = match amount {
                    Some(value) => json!({"Name": "Amount", "Value": value}),
                    None => json!({"Name": "Amount"}),
                };
                callback["CallbackMetadata"] = json!({"Item": [
                    amount_item,
                    {"Name": "MpesaReceiptNumber", "Value": receipt},
                    // The sandbox sends a Balance item with no value.
                    {"Name": "Balance"},
                    {"Name": "TransactionDate", "Value": 20191219102115u64},
                    {"Name": "PhoneNumber", "Value": 254708374149u64},
                ]});
            }
            Outcome::Code(code, description) => {
                callback["ResultCode"] = json!(code);
                callback["ResultDesc"] = json!(description);
            }
        }
        json!({"Body": {"stkCallback": callback}})
    }

    pub(crate) fn pushes_and_ids(&self) -> Vec<(Value, String)> {
        self.pushes()
            .into_iter()
            .map(|push| {
                let id = push["_CheckoutRequestID"].as_str().unwrap().to_string();
                (push, id)
            })
            .collect()
    }
}

struct Daraja {
    state: Arc<Mutex<State>>,
}

fn answer(status: StatusCode, body: Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body.to_string())
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    answer(
        status,
        json!({"requestId": "fake-request", "errorCode": code, "errorMessage": message}),
    )
}

/// What is wrong with the credentials of a push or a query (`None`: nothing).
fn password_complaint(body: &Value) -> Option<String> {
    let timestamp = body["Timestamp"].as_str().unwrap_or_default();
    if timestamp.len() != 14 || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!("Timestamp {timestamp:?} is not YYYYMMDDHHmmss"));
    }
    // Nairobi time, UTC+3, within a few minutes of now.
    let nairobi_now = Utc::now().naive_utc() + TimeDelta::hours(3);
    let sent = chrono::NaiveDateTime::parse_from_str(timestamp, "%Y%m%d%H%M%S").ok()?;
    if (sent - nairobi_now).abs() > TimeDelta::minutes(5) {
        return Some(format!("Timestamp {timestamp} is not Nairobi's time now"));
    }
    let expected = STANDARD.encode(format!("{SHORTCODE}{PASSKEY}{timestamp}"));
    if body["Password"].as_str() != Some(expected.as_str()) {
        return Some("the Password is not base64(shortcode + passkey + Timestamp)".into());
    }
    if body["BusinessShortCode"] != json!(SHORTCODE) {
        return Some("BusinessShortCode".into());
    }
    None
}

impl Daraja {
    fn authorized(&self, request: &Request) -> bool {
        let bearer = request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Bearer "));
        bearer.is_some_and(|token| self.state.lock().unwrap().tokens.iter().any(|t| t == token))
    }

    fn oauth(&self, request: &Request) -> Response {
        let mut state = self.state.lock().unwrap();
        state.oauth_calls += 1;
        let expected = format!(
            "Basic {}",
            STANDARD.encode(format!("{CONSUMER_KEY}:{CONSUMER_SECRET}"))
        );
        if request.uri().query() != Some("grant_type=client_credentials") {
            state
                .complaints
                .push("OAuth without grant_type=client_credentials".into());
            return error(
                StatusCode::BAD_REQUEST,
                "400.008.02",
                "Invalid grant type passed",
            );
        }
        if request.header("authorization") != Some(expected.as_str()) {
            state
                .complaints
                .push("OAuth with wrong Basic credentials".into());
            return error(
                StatusCode::BAD_REQUEST,
                "400.008.01",
                "Invalid Authentication passed",
            );
        }
        let token = format!("fake-token-{}", state.tokens.len() + 1);
        state.tokens.push(token.clone());
        // `expires_in` is a string, as Daraja sends it.
        answer(
            StatusCode::OK,
            json!({"access_token": token, "expires_in": "3599"}),
        )
    }

    fn push(&self, body: Value) -> Response {
        let mut complaints = Vec::new();
        if let Some(complaint) = password_complaint(&body) {
            complaints.push(complaint);
        }
        let phone_ok = |v: &Value| {
            v.as_str().is_some_and(|p| {
                p.len() == 12
                    && (p.starts_with("2547") || p.starts_with("2541"))
                    && p.bytes().all(|b| b.is_ascii_digit())
            })
        };
        if body["TransactionType"] != json!("CustomerPayBillOnline") {
            complaints.push("TransactionType".into());
        }
        if body["Amount"].as_i64().is_none_or(|amount| amount <= 0) {
            complaints.push(format!(
                "Amount {} is not a positive integer",
                body["Amount"]
            ));
        }
        if !phone_ok(&body["PartyA"]) || body["PartyA"] != body["PhoneNumber"] {
            complaints.push("PartyA / PhoneNumber".into());
        }
        if body["PartyB"] != json!(SHORTCODE) {
            complaints.push("PartyB".into());
        }
        let url = body["CallBackURL"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !url.starts_with("http")
            || ["mpesa", "safaricom", "query"]
                .iter()
                .any(|w| url.contains(w))
        {
            complaints.push(format!("CallBackURL {url:?}"));
        }
        let within = |field: &str, max: usize| {
            body[field]
                .as_str()
                .is_some_and(|text| !text.is_empty() && text.chars().count() <= max)
        };
        if !within("AccountReference", 12) {
            complaints.push("AccountReference".into());
        }
        if !within("TransactionDesc", 13) {
            complaints.push("TransactionDesc".into());
        }
        let mut state = self.state.lock().unwrap();
        if !complaints.is_empty() {
            let message = format!("Bad Request - {}", complaints.join("; "));
            state.complaints.extend(complaints);
            return error(StatusCode::BAD_REQUEST, "400.002.02", &message);
        }
        if state.refuse_pushes {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500.001.1001",
                "Unable to lock subscriber, a transaction is already in process for the current subscriber",
            );
        }
        let checkout = format!("ws_CO_01122026{:012}", state.pushes.len() + 1);
        if let Some((delay, target)) = state.autopay {
            let url = body["CallBackURL"].as_str().unwrap_or_default().to_string();
            let url = match target {
                Some(target) => format!(
                    "http://{target}/{}",
                    url.splitn(4, '/').nth(3).unwrap_or_default()
                ),
                None => url,
            };
            let mut callback = FakeDaraja::callback_body(
                &checkout,
                &Outcome::Success {
                    amount: Some(body["Amount"].clone()),
                    receipt: "FAKE000001",
                },
            );
            // The payer's number, as a number (as Daraja sends it).
            let phone: Option<u64> = body["PhoneNumber"].as_str().and_then(|p| p.parse().ok());
            callback["Body"]["stkCallback"]["CallbackMetadata"]["Item"][4]["Value"] = json!(phone);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let sent = reqwest::Client::new()
                    .post(&url)
                    .json(&callback)
                    .send()
                    .await;
                println!(
                    "fake Daraja: posted the success callback to {url}: {:?}",
                    sent.map(|r| r.status())
                );
            });
        }
        let mut kept = body;
        kept["_CheckoutRequestID"] = json!(checkout);
        state.pushes.push(kept);
        answer(
            StatusCode::OK,
            json!({
                "MerchantRequestID": format!("29115-{}", state.pushes.len()),
                "CheckoutRequestID": checkout,
                "ResponseCode": "0",
                "ResponseDescription": "Success. Request accepted for processing",
                "CustomerMessage": "Success. Request accepted for processing",
            }),
        )
    }

    fn query(&self, body: Value) -> Response {
        let mut state = self.state.lock().unwrap();
        if let Some(complaint) = password_complaint(&body) {
            state.complaints.push(format!("query: {complaint}"));
            return error(
                StatusCode::BAD_REQUEST,
                "400.002.02",
                "Bad Request - Invalid Password",
            );
        }
        let checkout = body["CheckoutRequestID"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        state.queries.push(checkout.clone());
        match state.query_results.get(&checkout) {
            None => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500.001.1001",
                "The transaction is being processed",
            ),
            Some(outcome) => {
                let (code, description) = match outcome {
                    Outcome::Success { .. } => {
                        (0, "The service request is processed successfully.")
                    }
                    Outcome::Code(code, description) => (*code, *description),
                };
                // The query's codes are strings.
                answer(
                    StatusCode::OK,
                    json!({
                        "ResponseCode": "0",
                        "ResponseDescription": "The service request has been accepted successsfully",
                        "MerchantRequestID": "29115-1",
                        "CheckoutRequestID": checkout,
                        "ResultCode": code.to_string(),
                        "ResultDesc": description,
                    }),
                )
            }
        }
    }
}

impl Endpoint for Daraja {
    type Output = Response;

    async fn call(&self, mut request: Request) -> poem::Result<Response> {
        let path = request.uri().path().to_string();
        if path == "/oauth/v1/generate" {
            return Ok(self.oauth(&request));
        }
        if !self.authorized(&request) {
            self.state
                .lock()
                .unwrap()
                .complaints
                .push(format!("{path} without a token it issued"));
            return Ok(error(
                StatusCode::UNAUTHORIZED,
                "404.001.04",
                "Invalid Access Token",
            ));
        }
        let bytes = request.take_body().into_vec().await.unwrap_or_default();
        let Ok(body) = serde_json::from_slice::<Value>(&bytes) else {
            return Ok(error(
                StatusCode::BAD_REQUEST,
                "400.002.02",
                "Bad Request - Invalid JSON",
            ));
        };
        Ok(match path.as_str() {
            "/mpesa/stkpush/v1/processrequest" => {
                let answered = self.push(body);
                let late = self.state.lock().unwrap().answer_pushes_after;
                if let Some(delay) = late {
                    tokio::time::sleep(delay).await;
                }
                answered
            }
            "/mpesa/stkpushquery/v1/query" => self.query(body),
            _ => error(StatusCode::NOT_FOUND, "404.001.01", "Resource not found"),
        })
    }
}
