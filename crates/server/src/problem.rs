//! Failures as RFC 9457 problem details: `type`, `title`, `status`,
//! `detail`, plus `code` (what clients and `mote verify --url` match on)
//! and `service`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mote_contract::Contract;
use mote_runtime::{Failure, PlatformFailure};

/// The media type of problem details.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// The HTTP status a platform failure travels with.
///
/// The caller's fault is 4xx (`invalid_input` 400, `unknown_service` 404);
/// an implementation answering against its contract is 502, as a gateway
/// reports a bad upstream; capacity is 503, deadlines 504; the guest
/// crashing or breaking its limits is 500.
pub fn platform_status(kind: PlatformFailure) -> u16 {
    match kind {
        PlatformFailure::InvalidInput => 400,
        PlatformFailure::UnknownService => 404,
        PlatformFailure::ContractViolation => 502,
        PlatformFailure::Overloaded => 503,
        PlatformFailure::Timeout => 504,
        PlatformFailure::ResourceExhausted
        | PlatformFailure::Trap
        | PlatformFailure::UndeclaredCall => 500,
    }
}

/// A one-line title for a platform failure.
pub(crate) fn platform_title(kind: PlatformFailure) -> &'static str {
    match kind {
        PlatformFailure::InvalidInput => "The input does not satisfy the service's contract",
        PlatformFailure::ContractViolation => "The service answered against its contract",
        PlatformFailure::Timeout => "The service did not answer in time",
        PlatformFailure::ResourceExhausted => "The service ran out of its resources",
        PlatformFailure::Trap => "The service crashed",
        PlatformFailure::UndeclaredCall => "The service made a call its contract does not declare",
        PlatformFailure::UnknownService => "No such service",
        PlatformFailure::Overloaded => "The host is at capacity; try again",
    }
}

/// The problem-details response for a failed call of `service`.
pub(crate) fn failure_response(
    service: &str,
    contract: Option<&Contract>,
    failure: &Failure,
) -> Response {
    match failure {
        Failure::Declared {
            code,
            message,
            status,
        } => {
            let title = contract
                .and_then(|c| c.error(code))
                .map_or_else(|| code.clone(), |e| e.summary.clone());
            problem(
                *status,
                &format!("urn:mote:error:{service}:{code}"),
                &title,
                message,
                code,
                Some(service),
            )
        }
        Failure::Platform { kind, message } => platform_problem(*kind, message, Some(service)),
    }
}

/// The problem-details response for a platform failure.
pub(crate) fn platform_problem(
    kind: PlatformFailure,
    detail: &str,
    service: Option<&str>,
) -> Response {
    let mut response = problem(
        platform_status(kind),
        &format!("urn:mote:platform:{}", kind.code()),
        platform_title(kind),
        detail,
        kind.code(),
        service,
    );
    if kind == PlatformFailure::Overloaded {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

pub(crate) fn problem(
    status: u16,
    kind: &str,
    title: &str,
    detail: &str,
    code: &str,
    service: Option<&str>,
) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    let mut body = serde_json::json!({
        "type": kind,
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
    });
    if let (Some(service), Some(members)) = (service, body.as_object_mut()) {
        members.insert("service".into(), service.into());
    }
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
        body.to_string(),
    )
        .into_response()
}
