//! The HTTP routes and the server loop.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use mote_runtime::{Failure, PlatformFailure};
use tokio::net::TcpListener;

use crate::gateway::Gateway;
use crate::problem::{failure_response, platform_problem, problem};

/// The gateway's routes, ready to serve.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/v1/services", get(catalog))
        .route("/v1/services/{name}", get(contract))
        .route("/v1/{service}", post(call))
        .route("/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(gateway)
}

/// Serves the gateway on `listener` until `shutdown` completes; then
/// `/readyz` turns 503, no new connection is accepted, and the calls in
/// flight finish before this returns.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let draining = Arc::clone(&gateway);
    axum::serve(listener, router(gateway))
        .with_graceful_shutdown(async move {
            shutdown.await;
            draining.begin_shutdown();
        })
        .await
}

async fn call(
    State(gateway): State<Arc<Gateway>>,
    Path(service): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let Some(served) = gateway.services.get(&service) else {
        return platform_problem(
            PlatformFailure::UnknownService,
            &format!("no service named `{service}` is served here; see /v1/services"),
            Some(&service),
        );
    };
    let finish = |outcome: &str| {
        gateway
            .metrics
            .record(&service, outcome, started.elapsed().as_secs_f64());
    };
    let invalid = PlatformFailure::InvalidInput.code();
    if let Some(kind) = headers.get(header::CONTENT_TYPE)
        && !is_json(kind)
    {
        finish(invalid);
        return problem(
            415,
            "urn:mote:platform:invalid_input",
            "The request body must be JSON",
            &format!(
                "Content-Type is {:?}; send application/json",
                kind.to_str().unwrap_or("not text")
            ),
            invalid,
            Some(&service),
        );
    }
    let limit = gateway.config.max_body_bytes;
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        problem(
            413,
            "urn:mote:platform:invalid_input",
            "The request body is too large",
            &format!("this host accepts request bodies up to {limit} bytes"),
            invalid,
            Some(&service),
        )
    };
    if declared_length.is_some_and(|length| length > limit as u64) {
        finish(invalid);
        return too_large();
    }
    let Ok(permit) = Arc::clone(&gateway.in_flight).try_acquire_owned() else {
        finish(PlatformFailure::Overloaded.code());
        return platform_problem(
            PlatformFailure::Overloaded,
            &format!(
                "{} calls are in flight, the most this host serves at once",
                gateway.config.max_in_flight
            ),
            Some(&service),
        );
    };
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        finish(invalid);
        return too_large();
    };
    let Ok(input) = String::from_utf8(bytes.to_vec()) else {
        finish(invalid);
        return platform_problem(
            PlatformFailure::InvalidInput,
            "the request body is not UTF-8 text",
            Some(&service),
        );
    };

    let _in_flight = gateway.metrics.in_flight(&service);
    let span = tracing::info_span!(
        "call",
        service = service.as_str(),
        version = %served.contract.service.version,
        outcome = tracing::field::Empty,
    );
    let runtime = gateway.runtime.clone();
    let name = service.clone();
    let call_span = span.clone();
    // The permit travels with the call: a call the edge stopped waiting
    // for still counts until the runtime's own deadline ends it.
    let task = gateway.calls.run(move || {
        let _permit = permit;
        call_span.in_scope(|| runtime.call(&name, &input))
    });
    let timeout = gateway.config.request_timeout;
    let outcome = match tokio::time::timeout(timeout, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(Failure::Platform {
            kind: PlatformFailure::Trap,
            message: "the call's worker failed".into(),
        }),
        Err(_) => Err(Failure::Platform {
            kind: PlatformFailure::Timeout,
            message: format!("no answer within {} ms", timeout.as_millis()),
        }),
    };
    let code = match &outcome {
        Ok(_) => crate::metrics::SUCCESS,
        Err(failure) => failure.code(),
    };
    span.record("outcome", code);
    finish(code);
    match outcome {
        Ok(output) => Json(output).into_response(),
        Err(failure) => failure_response(&service, Some(&served.contract), &failure),
    }
}

fn is_json(content_type: &HeaderValue) -> bool {
    let Ok(text) = content_type.to_str() else {
        return false;
    };
    let essence = text.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5
            && essence[..essence.len() - 5].contains('/')
            && essence.to_ascii_lowercase().ends_with("+json"))
}

async fn catalog(State(gateway): State<Arc<Gateway>>) -> Json<serde_json::Value> {
    Json(gateway.catalog())
}

async fn contract(State(gateway): State<Arc<Gateway>>, Path(name): Path<String>) -> Response {
    match gateway.services.get(&name) {
        Some(served) => Json(serde_json::json!({
            "name": name,
            "version": served.contract.service.version.to_string(),
            "contract_sha256": served.contract.hash.to_string(),
            "verification": served.verification.label(),
            "contract": served.contract.json,
        }))
        .into_response(),
        None => platform_problem(
            PlatformFailure::UnknownService,
            &format!("no service named `{name}` is served here"),
            Some(&name),
        ),
    }
}

async fn openapi(State(gateway): State<Arc<Gateway>>) -> Json<serde_json::Value> {
    Json(gateway.openapi.clone())
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(gateway): State<Arc<Gateway>>) -> Response {
    if gateway.is_ready() {
        "ready\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    }
}

async fn metrics(State(gateway): State<Arc<Gateway>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        gateway.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> Response {
    problem(
        404,
        "urn:mote:platform:not_found",
        "No such route",
        "routes: POST /v1/{service}, GET /v1/services, GET /v1/services/{name}, GET /openapi.json, GET /healthz, GET /readyz, GET /metrics",
        "not_found",
        None,
    )
}
