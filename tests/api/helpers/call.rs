//! [`Call`]: one request to the test server, built by an operation method of
//! [`TestApp`] (or by [`TestApp::request`]) and sent when awaited.

use std::{
    fmt,
    future::{Future, IntoFuture},
    pin::Pin,
};

use reqwest::Method;

use super::TestApp;

#[derive(Clone)]
enum Body {
    Json(serde_json::Value),
    Raw(Vec<u8>),
}

/// A request not sent yet. Awaiting it sends it and gives the `reqwest::Response`
/// (panicking only if no response came at all); before that, the options only some
/// requests need are set on it: `.in_store(id)`, `.limit(n)`, `.header(name, value)`...
#[must_use = "a request is sent only when awaited"]
#[derive(Clone)]
pub struct Call<'a> {
    app: &'a TestApp,
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    token: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<Body>,
}

impl TestApp {
    /// Any request, by method and path: for what no operation method sends (a path
    /// that is not an operation, a body that is not JSON, no token where one is due).
    /// Tests otherwise call the operation methods, which are built on this.
    pub fn request(&self, method: Method, path: impl Into<String>) -> Call<'_> {
        Call {
            app: self,
            method,
            path: path.into(),
            query: Vec::new(),
            token: None,
            headers: Vec::new(),
            body: None,
        }
    }
}

impl Call<'_> {
    /// `Authorization: Bearer <token>`.
    pub fn bearer(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }

    /// A JSON body (`Content-Type: application/json`).
    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.body = Some(Body::Json(body.clone()));
        self
    }

    /// A body of raw bytes, with no content type unless one is set by `header`.
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = Some(Body::Raw(bytes.into()));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// `X-Forwarded-For: <address>`: the client a proxy in front of the server
    /// forwards (believed only from a trusted proxy, `ROWGUARD_TRUSTED_PROXIES`).
    pub fn forwarded_for(self, address: &str) -> Self {
        self.header("X-Forwarded-For", address)
    }

    /// `X-Store-ID`: the store the request acts in.
    pub fn in_store(self, store: impl fmt::Display) -> Self {
        self.header("X-Store-ID", &store.to_string())
    }

    /// `?limit=`, of a list.
    pub fn limit(self, limit: i64) -> Self {
        self.query("limit", limit)
    }

    /// `?cursor=`, of a list: the `next_cursor` of the page before.
    pub fn cursor(self, cursor: &str) -> Self {
        self.query("cursor", cursor)
    }

    /// Any other query parameter (`?status=revoked`).
    pub fn query(mut self, name: &'static str, value: impl fmt::Display) -> Self {
        self.query.push((name, value.to_string()));
        self
    }

    /// The request as reqwest builds it, not sent: for a test that sends it another
    /// way (from a task of its own, through another client).
    pub fn into_reqwest(self) -> reqwest::RequestBuilder {
        let mut request = self.app.http.request(self.method, self.app.url(&self.path));
        if !self.query.is_empty() {
            request = request.query(&self.query);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        match self.body {
            Some(Body::Json(body)) => request.json(&body),
            Some(Body::Raw(bytes)) => request.body(bytes),
            None => request,
        }
    }
}

/// `GET /api/v1/products?limit=20`: for assertion messages.
impl fmt::Display for Call<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        for (n, (name, value)) in self.query.iter().enumerate() {
            let separator = if n == 0 { '?' } else { '&' };
            write!(f, "{separator}{name}={value}")?;
        }
        Ok(())
    }
}

impl<'a> IntoFuture for Call<'a> {
    type Output = reqwest::Response;
    type IntoFuture = Pin<Box<dyn Future<Output = reqwest::Response> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        let request = self.into_reqwest();
        Box::pin(async move { request.send().await.expect("request sent") })
    }
}

/// Asserts a problem+json error body with the given status and code; returns the body.
pub async fn assert_problem(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/problem+json"),
        "content type {content_type}"
    );
    let body: serde_json::Value = response.json().await.expect("a JSON body");
    assert_eq!(body["code"], code, "problem code in {body}");
    assert_eq!(body["status"], status, "problem status in {body}");
    body
}

/// A field of a JSON body as a string.
pub fn text(value: &serde_json::Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field} in {value}"))
        .to_string()
}

/// The `Retry-After` of a response, in seconds.
pub fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in {:?}", response.headers()))
}
