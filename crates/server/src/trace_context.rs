//! W3C Trace Context across hosts: a call's trace continues the trace of
//! the request that carried a `traceparent`, and a call to another host
//! carries the caller's, so that one trace spans every host a call
//! crosses.
//!
//! The gateway only moves the header; what a trace context is belongs to
//! whichever tracing layer the binary installs (OpenTelemetry in `mote`),
//! through [`install_trace_context`]. Without one, nothing is read or
//! sent.

use std::sync::OnceLock;

use axum::http::HeaderMap;

/// The W3C Trace Context header.
pub const TRACEPARENT: &str = "traceparent";

/// Turns spans into `traceparent` values and back.
pub trait TraceContext: Send + Sync {
    /// The `traceparent` naming `span`, if it is part of a recorded trace.
    fn traceparent(&self, span: &tracing::Span) -> Option<String>;
    /// Makes `span` a child of the remote span `traceparent` names.
    fn continue_trace(&self, span: &tracing::Span, traceparent: &str);
}

static INSTALLED: OnceLock<Box<dyn TraceContext>> = OnceLock::new();

/// Installs the process's trace context, once (with the tracing layer it
/// belongs to); `false` if one was installed already.
pub fn install_trace_context(context: Box<dyn TraceContext>) -> bool {
    INSTALLED.set(context).is_ok()
}

/// The `traceparent` of the current span, for a call to another host.
pub(crate) fn outgoing() -> Option<String> {
    INSTALLED.get()?.traceparent(&tracing::Span::current())
}

/// Continues the trace a request's `traceparent` names in `span`.
pub(crate) fn incoming(span: &tracing::Span, headers: &HeaderMap) {
    let Some(context) = INSTALLED.get() else {
        return;
    };
    if let Some(value) = headers.get(TRACEPARENT).and_then(|v| v.to_str().ok()) {
        context.continue_trace(span, value);
    }
}
