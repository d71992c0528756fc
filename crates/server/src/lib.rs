//! The HTTP gateway: one process serves every service of an app.
//!
//! `POST /v1/{service}` takes the JSON input and answers with the JSON
//! output, or with an `application/problem+json` body (RFC 9457) carrying
//! the failure's `code`: the contract's status for declared errors, a
//! fitting one for each platform failure. Around it: the catalog
//! (`/v1/services`), each contract as JSON, OpenAPI 3.1 generated from the
//! contracts (`/openapi.json`), `/healthz`, `/readyz`, and Prometheus
//! `/metrics`; on the admin address, the live console (`/console/`). At the edge: a body size limit, a limit on calls in flight
//! answered with 503 and `Retry-After`, a per-request deadline, and
//! graceful shutdown that lets calls in flight finish.
//!
//! The same protocol from the client side is [`HttpTarget`]: a service
//! behind a URL as a verification target (`mote verify --url`).
//!
//! Architecture invariant: the gateway translates between HTTP and the
//! runtime's call path and measures it; it never judges an answer itself.
//! Every check of a call happens in mote-runtime.

mod call_pool;
mod client;
mod connections;
mod console;
mod gateway;
mod live;
mod metrics;
mod openapi;
mod problem;
mod remote;
mod routes;
mod trace_context;

pub use client::{HttpTarget, UrlError};
pub use gateway::{
    Audience, Gateway, PeerAccess, ServerConfig, Verification, default_call_threads,
};
pub use openapi::openapi;
pub use problem::platform_status;
pub use remote::{CALLER_HEADER, RemoteHosts};
pub use routes::{router, serve, serve_to};
pub use trace_context::{TRACEPARENT, TraceContext, install_trace_context};
