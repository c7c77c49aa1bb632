//! CORS (`ROWGUARD_CORS_ORIGINS`, src/platform/http/cors.rs): a listed origin's page
//! gets its preflight answered and the headers it needs; any other origin gets no CORS
//! header at all (its browser then refuses to show it the answer), while the request
//! itself is served as without CORS, so the server's own pages and non-browser
//! clients that send `Origin` keep working.

use reqwest::Method;
use rowguard::{app::Application, config::Settings};

use crate::helpers::{TestApp, TestDb, spawn_app, spawn_app_with, test_settings};

const CONSOLE: &str = "https://console.example.com";
const OTHER: &str = "https://evil.example.net";

async fn app_for_the_console() -> TestApp {
    spawn_app_with(|settings| settings.cors_origins = CONSOLE.parse().unwrap()).await
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(name)
        .iter()
        .map(|value| value.to_str().unwrap().to_string())
        .reduce(|a, b| format!("{a}, {b}"))
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.request(Method::OPTIONS, "/api/v1/products")
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, x-store-id",
        )
        .await
}

#[tokio::test]
async fn a_listed_origin_gets_its_preflight_answered() {
    let app = app_for_the_console().await;
    let response = preflight(&app, CONSOLE).await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some(CONSOLE)
    );
    let methods = header(&response, "access-control-allow-methods").unwrap();
    assert!(
        methods.contains("POST") && methods.contains("PATCH"),
        "{methods}"
    );
    let headers = header(&response, "access-control-allow-headers")
        .unwrap()
        .to_lowercase();
    for needed in [
        "authorization",
        "content-type",
        "x-store-id",
        "idempotency-key",
    ] {
        assert!(headers.contains(needed), "{needed} in {headers}");
    }
    // The API's token is a header, not a cookie: no credentials unless asked for.
    assert_eq!(header(&response, "access-control-allow-credentials"), None);
}

#[tokio::test]
async fn a_listed_origin_may_read_the_answer_and_its_request_id() {
    let app = app_for_the_console().await;
    let response = app
        .request(Method::GET, "/api/v1/products")
        .header("origin", CONSOLE)
        .await;
    // Unauthenticated, as the console's first call is: the problem+json answer is
    // readable by the page too.
    assert_eq!(response.status(), 401);
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some(CONSOLE)
    );
    let exposed = header(&response, "access-control-expose-headers")
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("x-request-id"), "{exposed}");
    assert!(exposed.contains("retry-after"), "{exposed}");
    assert!(header(&response, "vary").unwrap().contains("Origin"));
}

#[tokio::test]
async fn another_origin_gets_no_cors_headers() {
    let app = app_for_the_console().await;
    // The console's origin is let in...
    let allowed = app
        .request(Method::GET, "/health")
        .header("origin", CONSOLE)
        .await;
    assert_eq!(
        header(&allowed, "access-control-allow-origin").as_deref(),
        Some(CONSOLE)
    );
    // ...another's request is served, without a header its browser would honour,
    let other = app
        .request(Method::GET, "/health")
        .header("origin", OTHER)
        .await;
    assert_eq!(other.status(), 200);
    for name in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-expose-headers",
    ] {
        assert_eq!(header(&other, name), None, "{name}");
    }
    // and it gets no preflight answer either.
    let preflight = preflight(&app, OTHER).await;
    assert_eq!(header(&preflight, "access-control-allow-origin"), None);
    assert_eq!(header(&preflight, "access-control-allow-methods"), None);
}

#[tokio::test]
async fn without_origins_configured_no_request_gets_cors_headers() {
    let app = spawn_app().await;
    let response = app
        .request(Method::GET, "/health")
        .header("origin", CONSOLE)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    let preflight = preflight(&app, CONSOLE).await;
    assert_eq!(header(&preflight, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn credentials_are_sent_to_listed_origins_only_when_configured() {
    let app = spawn_app_with(|settings| {
        settings.cors_origins = CONSOLE.parse().unwrap();
        settings.cors_allow_credentials = true;
    })
    .await;
    let response = preflight(&app, CONSOLE).await;
    assert_eq!(
        header(&response, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some(CONSOLE)
    );
}

#[tokio::test]
async fn credentials_with_any_origin_are_refused_at_start_up() {
    let db = TestDb::new().await;
    let mut settings: Settings = test_settings(&db.url);
    settings.cors_origins = "*".parse().unwrap();
    // Any origin without credentials starts...
    let application = Application::build(&settings).await;
    assert!(application.is_ok());
    drop(application);
    // ...with credentials it does not.
    settings.cors_allow_credentials = true;
    let refused = Application::build(&settings).await.err().unwrap();
    assert!(
        refused
            .to_string()
            .contains("ROWGUARD_CORS_ALLOW_CREDENTIALS"),
        "{refused}"
    );
}
