//! Logging: `tracing` with a text or JSON formatter, the request id that every
//! response and every log line of a request carries, and, when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the export of request spans by OTLP
//! (http/protobuf) to a collector.

use std::{
    io::IsTerminal,
    sync::atomic::{AtomicBool, Ordering},
};

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*};

use crate::config::LogFormat;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Set once spans are exported: the edge then takes a request's trace id from its
/// exported span, so that the log and the collector agree.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// What [`init_exporting`] started; [`Telemetry::shutdown`] sends what is pending.
#[must_use = "shut it down at exit, or the last spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans not yet sent (a batch waits up to five seconds) and stops.
    /// Call it outside the async runtime: the exporter's client blocks.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            eprintln!("rowguard: exporting the last spans: {error}");
        }
    }
}

/// Installs the global subscriber. `RUST_LOG` overrides the default level (info).
pub fn init(format: LogFormat) {
    install(format, None);
}

/// Installs the global subscriber, exporting spans to the OTLP collector at
/// `endpoint` (its base URL: spans go to `{endpoint}/v1/traces`) when given. Refuses
/// an endpoint that is not an http(s) URL.
pub fn init_exporting(format: LogFormat, endpoint: Option<&str>) -> anyhow::Result<Telemetry> {
    let provider = endpoint
        .map(str::trim)
        .filter(|endpoint| !endpoint.is_empty())
        .map(tracer_provider)
        .transpose()?;
    install(format, provider.clone());
    EXPORTING.store(provider.is_some(), Ordering::Relaxed);
    Ok(Telemetry { provider })
}

fn tracer_provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        anyhow::bail!(
            "OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL (the collector's OTLP/HTTP base, \
             e.g. http://localhost:4318)"
        );
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()
        .context("building the OTLP span exporter")?;
    // OTEL_SERVICE_NAME, when set, names the service (the resource's detectors read it).
    let resource = if std::env::var_os("OTEL_SERVICE_NAME").is_some() {
        Resource::builder().build()
    } else {
        Resource::builder().with_service_name("rowguard").build()
    };
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

fn install(format: LogFormat, provider: Option<SdkTracerProvider>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let exported = provider.map(|provider| {
        tracing_opentelemetry::layer().with_tracer(provider.tracer(env!("CARGO_PKG_NAME")))
    });
    // Colour codes only for a person at a terminal: in a file, a pipe or a log
    // collector they are noise around every field.
    let ansi = std::io::stdout().is_terminal();
    let formatted = match format {
        LogFormat::Text => fmt::layer().with_ansi(ansi).boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(exported)
        .with(formatted)
        .try_init();
}

/// Whether spans are exported (OTLP) by this process.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Runs `future` with `id` as the current request id.
pub async fn with_request_id<F: Future>(id: String, future: F) -> F::Output {
    REQUEST_ID.scope(id, future).await
}

/// The id of the request being served on this task, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Names the caller on the current request's span (and so on its log lines): the
/// bearer scheme knows them from the token, an API key's request once its row is read.
pub fn record_principal(tenant_id: Option<uuid::Uuid>, user_id: Option<uuid::Uuid>) {
    let span = tracing::Span::current();
    if let Some(tenant_id) = tenant_id {
        span.record("tenant_id", tracing::field::display(tenant_id));
    }
    if let Some(user_id) = user_id {
        span.record("user_id", tracing::field::display(user_id));
    }
}
