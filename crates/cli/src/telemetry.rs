//! Where the binary's diagnostics go: log lines to standard error
//! (filtered by MOTE_LOG), and, when OTEL_EXPORTER_OTLP_ENDPOINT or
//! OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, the spans of calls and flow
//! steps exported over OTLP (HTTP, protobuf). Nothing is exported otherwise.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The spans worth exporting: one per call (mote-server) and one per flow
/// step (mote-runtime).
const EXPORTED: &str = "mote_server=info,mote_runtime=info";

/// Keeps the exporter alive; dropping it flushes the spans not yet sent.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Installs the global subscriber. `default_filter` applies to the log
/// lines when MOTE_LOG is not set.
pub fn init(default_filter: &str) -> Telemetry {
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(
            EnvFilter::try_from_env("MOTE_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter)),
        );
    let wanted = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    if !wanted {
        tracing_subscriber::registry().with(log).init();
        return Telemetry { provider: None };
    }
    let exporter = crate::otlp_http::OtlpHttpClient::new()
        .map_err(|e| e.to_string())
        .and_then(|client| {
            SpanExporter::builder()
                .with_http()
                .with_http_client(client)
                .with_protocol(Protocol::HttpBinary)
                .build()
                .map_err(|e| e.to_string())
        });
    match exporter {
        Ok(exporter) => {
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(Resource::builder().with_service_name("mote").build())
                .build();
            let spans = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("mote"))
                .with_filter(EnvFilter::new(EXPORTED));
            tracing_subscriber::registry().with(log).with(spans).init();
            mote_server::install_trace_context(Box::new(W3cTraceContext));
            Telemetry {
                provider: Some(provider),
            }
        }
        Err(e) => {
            tracing_subscriber::registry().with(log).init();
            eprintln!(
                "warning: OTLP export is configured but cannot start: {e}; no traces are exported"
            );
            Telemetry { provider: None }
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("warning: some traces were not exported: {e}");
        }
    }
}

/// W3C Trace Context for the spans the OpenTelemetry layer records, so
/// that a trace continues across hosts (see `mote_server::TraceContext`).
struct W3cTraceContext;

impl mote_server::TraceContext for W3cTraceContext {
    fn traceparent(&self, span: &tracing::Span) -> Option<String> {
        use opentelemetry::propagation::TextMapPropagator as _;
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        let mut carrier = std::collections::HashMap::new();
        opentelemetry_sdk::propagation::TraceContextPropagator::new()
            .inject_context(&span.context(), &mut carrier);
        carrier.remove(mote_server::TRACEPARENT)
    }

    fn continue_trace(&self, span: &tracing::Span, traceparent: &str) {
        use opentelemetry::propagation::TextMapPropagator as _;
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        let carrier = std::collections::HashMap::from([(
            mote_server::TRACEPARENT.to_string(),
            traceparent.to_string(),
        )]);
        let parent =
            opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&carrier);
        // A malformed header leaves the call as the root of its own trace.
        let _ = span.set_parent(parent);
    }
}
