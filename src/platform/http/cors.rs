//! CORS, for a console served from another origin than the API
//! (`ROWGUARD_CORS_ORIGINS`), the outermost layer, around the edge (so that every
//! answer of the edge, problem+json included, carries the headers; a preflight is
//! answered before the edge, without a request id). poem's `Cors` answers the
//! preflight and adds the headers; around it, this layer decides which requests it
//! sees at all: only those
//! from a listed origin. poem's own answer to any other origin is a 403, which would
//! also refuse the server's own pages (a browser sends `Origin` with a same-origin
//! POST) and any non-browser client that sets the header; here such a request is
//! served as if no CORS were configured, without CORS headers, and the browser
//! enforces the rest.

use std::{fmt, str::FromStr, sync::Arc};

use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response,
    http::{HeaderValue, Method, header},
    middleware::Cors,
};

use super::problem::problem_response;

/// The request headers a browser page may send: the bearer token, JSON bodies, a
/// payment's `Idempotency-Key`, the store of a store-scoped operation, and a request
/// id of its own.
const ALLOWED_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "idempotency-key",
    "x-store-id",
    "x-request-id",
];

/// The response headers a page may read beyond the always-readable ones: the request
/// id (quoted in every problem+json body and in the log), a throttle's wait, and the
/// location of a created resource.
const EXPOSED_HEADERS: &[&str] = &["x-request-id", "retry-after", "location"];

/// How long a browser may reuse a preflight's answer, in seconds.
const PREFLIGHT_MAX_AGE_SECS: i32 = 600;

/// `ROWGUARD_CORS_ORIGINS`: which origins' pages may call the API from a browser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No CORS headers (the default): only the server's own origin's pages can call.
    #[default]
    None,
    /// `*`: any origin (without credentials: `Settings::validate` refuses both).
    Any,
    /// Exactly these origins (`scheme://host[:port]`, lowercase).
    Listed(Vec<String>),
}

impl CorsOrigins {
    pub fn is_any(&self) -> bool {
        matches!(self, CorsOrigins::Any)
    }

    fn allows(&self, origin: &str) -> bool {
        match self {
            CorsOrigins::None => false,
            CorsOrigins::Any => true,
            CorsOrigins::Listed(origins) => origins.iter().any(|listed| listed == origin),
        }
    }
}

/// Why a value of `ROWGUARD_CORS_ORIGINS` is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidOrigin(String);

impl fmt::Display for InvalidOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidOrigin {}

impl FromStr for CorsOrigins {
    type Err = InvalidOrigin;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let items: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .collect();
        if items.is_empty() {
            return Ok(CorsOrigins::None);
        }
        if items.contains(&"*") {
            return if items.len() == 1 {
                Ok(CorsOrigins::Any)
            } else {
                Err(InvalidOrigin(
                    "`*` (any origin) cannot be listed with other origins".into(),
                ))
            };
        }
        items
            .into_iter()
            .map(origin)
            .collect::<Result<_, _>>()
            .map(CorsOrigins::Listed)
    }
}

/// One origin as a browser sends it in `Origin`: `http` or `https`, a host, maybe a
/// port, and nothing else. A trailing slash or a path would never match, silently:
/// refused, saying so.
fn origin(item: &str) -> Result<String, InvalidOrigin> {
    let invalid = |why: &str| {
        Err(InvalidOrigin(format!(
            "{item:?} is not an origin ({why}); write it as the browser sends it, \
             e.g. https://console.example.com or http://localhost:5173"
        )))
    };
    let lowered = item.to_ascii_lowercase();
    let Some((scheme, authority)) = lowered.split_once("://") else {
        return invalid("no scheme");
    };
    if scheme != "http" && scheme != "https" {
        return invalid("the scheme is not http or https");
    }
    if authority.is_empty() {
        return invalid("no host");
    }
    if authority.contains(['/', '?', '#']) {
        return invalid("an origin has no path, not even a trailing slash");
    }
    if authority.contains('@') || authority.chars().any(char::is_whitespace) {
        return invalid("it holds user information or spaces");
    }
    // The port, after the last colon outside an IPv6 literal's brackets.
    if let Some((_, port)) = authority.rsplit_once(':')
        && !port.ends_with(']')
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return invalid("the port is not a number");
    }
    Ok(lowered)
}

/// The CORS layer of `origins`; with [`CorsOrigins::None`], it passes every request
/// through untouched.
pub struct CorsLayer {
    origins: CorsOrigins,
    allow_credentials: bool,
}

impl CorsLayer {
    pub fn new(origins: CorsOrigins, allow_credentials: bool) -> CorsLayer {
        CorsLayer {
            origins,
            allow_credentials,
        }
    }
}

impl<E: Endpoint> Middleware<E> for CorsLayer {
    type Output = CorsLayerEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        let inner = Arc::new(inner);
        let mut cors = Cors::new()
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers(ALLOWED_HEADERS.iter().copied())
            .expose_headers(EXPOSED_HEADERS.iter().copied())
            .allow_credentials(self.allow_credentials)
            .max_age(PREFLIGHT_MAX_AGE_SECS);
        if let CorsOrigins::Listed(origins) = &self.origins {
            cors = cors.allow_origins(origins.iter().map(String::as_str));
        }
        CorsLayerEndpoint {
            cors: Middleware::transform(&cors, inner.clone()),
            inner,
            origins: self.origins.clone(),
        }
    }
}

pub struct CorsLayerEndpoint<E: Endpoint> {
    inner: Arc<E>,
    cors: <Cors as Middleware<Arc<E>>>::Output,
    origins: CorsOrigins,
}

impl<E: Endpoint> Endpoint for CorsLayerEndpoint<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        if self.origins == CorsOrigins::None {
            return self
                .inner
                .call(request)
                .await
                .map(IntoResponse::into_response);
        }
        let allowed = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|origin| origin.to_str().ok())
            .is_some_and(|origin| self.origins.allows(origin));
        let mut response = if allowed {
            // poem refuses a preflight asking for a method or header not allowed
            // with an error; this layer is outside the edge, so it is made
            // problem+json here.
            match self.cors.call(request).await {
                Ok(response) => response,
                Err(error) => problem_response(error.status(), Some(error.to_string())),
            }
        } else {
            self.inner.call(request).await?.into_response()
        };
        // The answer depends on the Origin header whenever origins are configured:
        // a cache must not hand one origin's answer (with or without the headers) to
        // another.
        let varies = response
            .headers()
            .get_all(header::VARY)
            .iter()
            .any(|value| value.to_str().is_ok_and(|v| v.contains("Origin")));
        if !varies {
            response
                .headers_mut()
                .append(header::VARY, HeaderValue::from_static("Origin"));
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_setting_is_no_cors() {
        assert_eq!("".parse(), Ok(CorsOrigins::None));
        assert_eq!(" , ".parse(), Ok(CorsOrigins::None));
    }

    #[test]
    fn origins_are_listed_exactly_and_lowercased() {
        assert_eq!(
            "https://Console.Example.com, http://localhost:5173".parse(),
            Ok(CorsOrigins::Listed(vec![
                "https://console.example.com".into(),
                "http://localhost:5173".into()
            ]))
        );
        assert_eq!("*".parse(), Ok(CorsOrigins::Any));
    }

    #[test]
    fn what_a_browser_never_sends_as_an_origin_is_refused() {
        for refused in [
            "https://console.example.com/",
            "https://console.example.com/app",
            "console.example.com",
            "ftp://console.example.com",
            "https://",
            "https://user@console.example.com",
            "https://console.example.com:abc",
            "*, https://console.example.com",
        ] {
            assert!(refused.parse::<CorsOrigins>().is_err(), "{refused}");
        }
        assert!("http://[::1]:8080".parse::<CorsOrigins>().is_ok());
    }
}
