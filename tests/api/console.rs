//! The admin console's serving side (`src/platform/http/console.rs`): the shell at
//! `/console` and at every page's deep link, with its Content-Security-Policy; the
//! embedded assets with their content types; a 404 problem for anything else. What the
//! pages do is tested in a browser (tests/console/run.sh).

use crate::helpers::{assert_problem, spawn_app};

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_console_is_html_with_a_strict_content_security_policy() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/console")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-type"),
        "text/html; charset=utf-8"
    );
    let csp = header(&response, "content-security-policy").to_string();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    assert_eq!(header(&response, "referrer-policy"), "no-referrer");
    let body = response.text().await.unwrap();
    assert!(body.contains("<main id=\"main\""), "{body}");
}

#[tokio::test]
async fn the_shell_has_no_inline_script_or_style_for_the_policy_to_refuse() {
    let app = spawn_app().await;
    let body = app
        .http
        .get(app.url("/console"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!body.contains("<style"), "no style element");
    assert!(!body.contains(" style="), "no style attribute");
    let handlers = body.split(" on").skip(1).filter(|rest| {
        let attribute = rest.trim_start_matches(|c: char| c.is_ascii_alphabetic());
        attribute.len() < rest.len() && attribute.starts_with('=')
    });
    assert_eq!(handlers.count(), 0, "no inline event handler");
    for script in body.split("<script").skip(1) {
        let tag = script.split('>').next().unwrap();
        assert!(
            tag.contains(" src=\"/console/assets/"),
            "a script from a file: <script{tag}>"
        );
    }
}

#[tokio::test]
async fn an_email_links_deep_link_answers_the_same_shell() {
    let app = spawn_app().await;
    let shell = app
        .http
        .get(app.url("/console"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for path in [
        "/console/accept-invitation?token=abc",
        "/console/reset-password?token=abc",
        "/console/verify-email?token=abc",
        "/console/dashboard",
        "/console/",
    ] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(
            !header(&response, "content-security-policy").is_empty(),
            "{path}"
        );
        assert_eq!(response.text().await.unwrap(), shell, "{path}");
    }
}

#[tokio::test]
async fn every_file_the_shell_names_is_served_with_its_content_type() {
    let app = spawn_app().await;
    let shell = app
        .http
        .get(app.url("/console"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let named: Vec<&str> = shell
        .split("\"/console/assets/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(named.len() >= 4, "{named:?}");
    for file in named {
        let response = app
            .http
            .get(app.url(&format!("/console/assets/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{file}");
        let expected = match file.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            other => panic!("unexpected asset type {other:?}"),
        };
        assert_eq!(header(&response, "content-type"), expected, "{file}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    }
    // A page module loaded on demand, not named by the shell.
    let lazy = app
        .http
        .get(app.url("/console/assets/pages/billing.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&lazy, "content-type"),
        "text/javascript; charset=utf-8"
    );
}

#[tokio::test]
async fn an_unknown_console_file_is_a_404_problem() {
    let app = spawn_app().await;
    for path in [
        "/console/assets/nope.js",
        "/console/assets/../index.html",
        "/console/index.html",
        "/console/a/b",
    ] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_problem(response, 404, "not_found").await;
    }
}

#[tokio::test]
async fn the_console_answers_only_get() {
    let app = spawn_app().await;
    let response = app.http.post(app.url("/console")).send().await.unwrap();
    assert_problem(response, 405, "method_not_allowed").await;
}
