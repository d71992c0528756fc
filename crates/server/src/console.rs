//! The live console on the admin address: the contract pages of
//! `mote docs`, served with what the host knows now (calls per second,
//! failures by code, latency percentiles, the last failures with their
//! call ids) and a form to try each service and see its trace.
//!
//! Only the admin router has these routes: the console shows call ids
//! and traces, which lead to guest log text, and that must never reach a
//! caller of a service.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::gateway::{Audience, Gateway, Verification};
use crate::routes::{TraceSlot, answer};

/// The console's files, by path under `/console/`.
pub(crate) struct Pages {
    files: HashMap<String, String>,
}

/// The largest answer the console relays from a try: the runtime caps
/// answers at a few MiB, and a problem is far smaller.
const MAX_RELAYED_BYTES: usize = 16 * 1024 * 1024;

impl Pages {
    fn render(gateway: &Gateway) -> Self {
        let statuses: Vec<mote_docs::Status> = gateway
            .services
            .values()
            .map(|served| status(&served.verification))
            .collect();
        let docs: Vec<mote_docs::ServiceDoc<'_>> = gateway
            .services
            .iter()
            .zip(&statuses)
            .map(|((key, served), status)| mote_docs::ServiceDoc {
                key,
                contract: &served.contract,
                status,
            })
            .collect();
        let site = mote_docs::console(&gateway.config.app_name, &docs);
        let files = site
            .files
            .into_iter()
            .map(|(path, text)| (path.to_string_lossy().replace('\\', "/"), text))
            .collect();
        Pages { files }
    }
}

/// How the docs pages show a served service's verification.
fn status(verification: &Verification) -> mote_docs::Status {
    match verification {
        Verification::Attested { public_key } => mote_docs::Status::Verified {
            signer: public_key.chars().take(16).collect(),
            date: None,
            strength: None,
        },
        Verification::Verified { seed, cases } => mote_docs::Status::Verified {
            signer: format!("this host (seed {seed}, {cases} cases)"),
            date: None,
            strength: None,
        },
        Verification::Unverified => mote_docs::Status::NotVerified,
    }
}

/// `routes` with the console's added.
pub(crate) fn routes(routes: Router<Arc<Gateway>>) -> Router<Arc<Gateway>> {
    routes
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/", get(index))
        .route("/console/api/live", get(live))
        .route("/console/api/try/{service}", post(try_call))
        .route("/console/{*path}", get(file))
}

async fn index(State(gateway): State<Arc<Gateway>>) -> Response {
    serve_file(&gateway, "index.html")
}

async fn file(State(gateway): State<Arc<Gateway>>, Path(path): Path<String>) -> Response {
    serve_file(&gateway, &path)
}

fn serve_file(gateway: &Gateway, path: &str) -> Response {
    let pages = gateway.console.get_or_init(|| Pages::render(gateway));
    let Some(text) = pages.files.get(path) else {
        return (StatusCode::NOT_FOUND, "no such console page\n").into_response();
    };
    let kind = match path.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        _ => "text/html; charset=utf-8",
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'self'; style-src 'self'; \
                     connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'",
                ),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        text.clone(),
    )
        .into_response()
}

async fn live(State(gateway): State<Arc<Gateway>>) -> Response {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(gateway.live.snapshot()),
    )
        .into_response()
}

/// Calls a service as `POST /v1/{service}` on the admin address does,
/// tracing it, and answers with the status, the body and the trace.
async fn try_call(
    State(gateway): State<Arc<Gateway>>,
    Path(service): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let call_id = gateway.call_ids.next();
    let slot = TraceSlot::default();
    let response = answer(
        &gateway,
        Audience::Admin,
        &service,
        &call_id,
        started,
        &headers,
        body,
        Some(Arc::clone(&slot)),
    )
    .await;
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), MAX_RELAYED_BYTES)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let trace = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
    Json(json!({
        "status": status,
        "call_id": call_id,
        "body": body,
        "trace": trace.map(|t| trace_json(&t)),
    }))
    .into_response()
}

fn trace_json(trace: &mote_runtime::Trace) -> Value {
    let millis = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    json!({
        "spans": trace.spans.iter().map(|s| json!({
            "service": s.service,
            "step": s.step,
            "depth": s.depth,
            "start_ms": millis(s.start),
            "duration_ms": millis(s.duration),
            "outcome": s.outcome,
        })).collect::<Vec<_>>(),
        "dropped": trace.dropped,
    })
}
