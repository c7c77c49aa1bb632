//! W3C trace context at the edge (src/platform/http/trace.rs), the request log line
//! of a real `rowguard serve` process, and the export of its spans by OTLP to a real
//! collector listening on HTTP.

use crate::helpers::{OtlpCollector, ServerProcess, TestDb, spawn_app};

const CALLERS_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The response's `traceparent`, split into (version, trace id, span id, flags).
fn answered(response: &reqwest::Response) -> (String, String, String, String) {
    let header = response.headers()["traceparent"].to_str().unwrap();
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!(parts.len(), 4, "{header}");
    (
        parts[0].into(),
        parts[1].into(),
        parts[2].into(),
        parts[3].into(),
    )
}

#[tokio::test]
async fn a_valid_traceparent_continues_the_callers_trace_in_a_span_of_the_servers_own() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(app.url("/health"))
        .header("traceparent", TRACEPARENT)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (version, trace, span, flags) = answered(&response);
    assert_eq!(
        (version.as_str(), trace.as_str(), flags.as_str()),
        ("00", CALLERS_TRACE, "01")
    );
    assert_ne!(
        span, "00f067aa0ba902b7",
        "the server's span is not the caller's"
    );
    assert_eq!(span.len(), 16);
}

#[tokio::test]
async fn an_invalid_traceparent_is_ignored_and_the_request_starts_a_trace_of_its_own() {
    let app = spawn_app().await;
    let mut traces = Vec::new();
    for invalid in [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-injected=1",
        "not a traceparent",
    ] {
        let response = app
            .http
            .get(app.url("/health"))
            .header("traceparent", invalid)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{invalid}");
        let (version, trace, _, _) = answered(&response);
        assert_eq!(version, "00");
        assert_ne!(trace, CALLERS_TRACE, "{invalid} was believed");
        assert_ne!(trace, "0".repeat(32));
        assert!(
            trace
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        traces.push(trace);
    }
    traces.sort();
    traces.dedup();
    assert_eq!(traces.len(), 5, "each request got a new trace");
}

#[tokio::test]
async fn the_request_log_line_names_its_trace_user_tenant_and_client_without_colour_codes() {
    let (server, app) = ServerProcess::start(TestDb::new().await, &[]).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let me = app
        .me_get(&acme.token)
        .header("traceparent", TRACEPARENT)
        .await;
    assert_eq!(me.status(), 200);
    let log = server.stop().await;
    let line = log
        .lines()
        .find(|line| line.contains("request finished") && line.contains(CALLERS_TRACE))
        .unwrap_or_else(|| panic!("no request line with the caller's trace id:\n{log}"));
    assert!(
        line.contains(&format!("trace_id={CALLERS_TRACE}")),
        "{line}"
    );
    assert!(
        line.contains(&format!("user_id={}", acme.owner_id)),
        "{line}"
    );
    assert!(line.contains(&format!("tenant_id={}", acme.id)), "{line}");
    assert!(line.contains("client=127.0.0.1"), "{line}");
    // The log went to pipes, not a terminal: no colour codes anywhere in it.
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape codes in the log:\n{log}"
    );
}

#[tokio::test]
async fn with_an_otlp_endpoint_request_spans_are_exported_over_http_protobuf() {
    let collector = OtlpCollector::start().await;
    let (server, app) = ServerProcess::start(
        TestDb::new().await,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url())],
    )
    .await;
    let response = app
        .http
        .get(app.url("/health"))
        .header("traceparent", TRACEPARENT)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(answered(&response).1, CALLERS_TRACE);
    // A SIGTERM sends what the batch still holds before the process exits.
    let log = server.stop().await;
    let exports = collector.received();
    let traces: Vec<_> = exports
        .iter()
        .filter(|export| export.method == "POST" && export.path == "/v1/traces")
        .collect();
    assert!(
        !traces.is_empty(),
        "nothing was exported: {exports:?}\n{log}"
    );
    for export in &traces {
        assert_eq!(export.content_type, "application/x-protobuf");
        assert!(!export.body.is_empty());
    }
    // Protobuf carries a span's trace id as its 16 raw bytes.
    let trace_id = hex::decode(CALLERS_TRACE).unwrap();
    assert!(
        traces
            .iter()
            .any(|export| export.body.windows(16).any(|window| window == trace_id)),
        "no exported span is of the caller's trace"
    );
}
