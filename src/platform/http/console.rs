//! The admin web console (API.md, "Admin console"): hand-written HTML, CSS and ES
//! modules from `console/` at the top of the repository, embedded in the binary at
//! build time so that `cargo run` serves it with no Node.js and no build step. The
//! console is a client of the public `/api/v1` like any other, so it lives beside the
//! HTTP edge rather than in a module: it owns no SQL, no permission, no job.
//!
//! `/console` and every `/console/<page>` deep link (the email links,
//! `/console/reset-password?token=…`) answer the same shell; the page is chosen in the
//! browser. `/console/assets/<file>` answers an embedded file or a 404 problem.

use poem::{
    Endpoint, IntoResponse, Request, Response,
    http::{HeaderValue, Method, StatusCode, header},
};

use super::problem::problem_response;

/// Where the console is mounted.
pub const PATH: &str = "/console";

/// Scripts, styles, images, fonts and API calls only from this origin; no inline
/// script or style, no `eval`, no plugin, no framing (clickjacking), forms post only
/// here, and no `<base>` that could redirect the relative URLs.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

const SHELL: &[u8] = include_bytes!("../../../console/index.html");

/// Every file under `console/assets/` with its content type (a unit test below fails
/// when a file there is missing from this list).
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "console.css",
        CSS,
        include_bytes!("../../../console/assets/console.css"),
    ),
    (
        "icon.svg",
        SVG,
        include_bytes!("../../../console/assets/icon.svg"),
    ),
    (
        "main.js",
        JS,
        include_bytes!("../../../console/assets/main.js"),
    ),
    (
        "api.js",
        JS,
        include_bytes!("../../../console/assets/api.js"),
    ),
    (
        "dom.js",
        JS,
        include_bytes!("../../../console/assets/dom.js"),
    ),
    (
        "session.js",
        JS,
        include_bytes!("../../../console/assets/session.js"),
    ),
    (
        "pages/auth.js",
        JS,
        include_bytes!("../../../console/assets/pages/auth.js"),
    ),
    (
        "pages/tenant.js",
        JS,
        include_bytes!("../../../console/assets/pages/tenant.js"),
    ),
    (
        "pages/catalog.js",
        JS,
        include_bytes!("../../../console/assets/pages/catalog.js"),
    ),
    (
        "pages/billing.js",
        JS,
        include_bytes!("../../../console/assets/pages/billing.js"),
    ),
    (
        "pages/platform.js",
        JS,
        include_bytes!("../../../console/assets/pages/platform.js"),
    ),
];

/// What a path under `/console` (the part after it) names.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Shell,
    Asset(&'static str, &'static [u8]),
    Missing,
}

fn resolve(rest: &str) -> Target {
    let rest = rest.trim_start_matches('/');
    if let Some(file) = rest.strip_prefix("assets/") {
        return ASSETS
            .iter()
            .find(|(name, _, _)| *name == file)
            .map_or(Target::Missing, |(_, kind, bytes)| {
                Target::Asset(kind, bytes)
            });
    }
    // A page is one lower-case word or several joined by hyphens; anything else (a
    // dot, a slash, an upper-case letter) is no page of the console.
    let page = rest.trim_end_matches('/');
    if page
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Target::Shell
    } else {
        Target::Missing
    }
}

/// The endpoint mounted at [`PATH`] (nested: it sees the path after it).
pub fn endpoint() -> impl Endpoint {
    poem::endpoint::make_sync(serve)
}

fn serve(request: Request) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return problem_response(StatusCode::METHOD_NOT_ALLOWED, None);
    }
    let (content_type, body) = match resolve(request.uri().path()) {
        Target::Shell => (HTML, SHELL),
        Target::Asset(content_type, body) => (content_type, body),
        Target::Missing => {
            return problem_response(
                StatusCode::NOT_FOUND,
                Some("the console has no such page or file".into()),
            );
        }
    };
    let mut response = body
        .with_content_type(content_type)
        .with_header(header::CACHE_CONTROL, "no-cache")
        .into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        // The email links carry their token in the query: never pass it on.
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_under_console_assets_is_served() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console/assets");
        let mut pending = vec![root.clone()];
        let mut files = Vec::new();
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let name = path.strip_prefix(&root).unwrap().to_string_lossy();
                    files.push(name.replace('\\', "/"));
                }
            }
        }
        for file in files {
            assert!(
                ASSETS.iter().any(|(name, _, _)| *name == file),
                "console/assets/{file} is not in ASSETS"
            );
        }
    }

    #[test]
    fn pages_are_the_shell_and_other_paths_are_missing() {
        assert_eq!(resolve(""), Target::Shell);
        assert_eq!(resolve("/"), Target::Shell);
        assert_eq!(resolve("/reset-password"), Target::Shell);
        assert_eq!(resolve("/assets/nope.js"), Target::Missing);
        assert_eq!(resolve("/index.html"), Target::Missing);
        assert_eq!(resolve("/a/b"), Target::Missing);
        assert!(matches!(resolve("/assets/main.js"), Target::Asset(JS, _)));
    }
}
