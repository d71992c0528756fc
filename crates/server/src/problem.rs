//! Failures as RFC 9457 problem details: `type`, `title`, `status`,
//! `detail`, plus `code` (what clients and `mote verify --url` match on),
//! `service` and `call_id`.
//!
//! Nothing a guest wrote reaches a client. A declared error travels with
//! its contract's summary; a platform failure whose message may carry the
//! guest's text (a contract violation, a trap, an undeclared call) travels
//! with a fixed description and the call id, under which the log has the
//! full text.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mote_contract::Contract;
use mote_runtime::{Failure, PlatformFailure};
use serde_json::{Map, Value};

/// The media type of problem details.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// The response header that carries a call's id.
pub(crate) const CALL_ID_HEADER: &str = "x-mote-call-id";

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
        PlatformFailure::Overloaded | PlatformFailure::Unavailable | PlatformFailure::Conflict => {
            503
        }
        PlatformFailure::RateLimited => 429,
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
        PlatformFailure::RateLimited => "Too many requests from this client; try again later",
        PlatformFailure::Unavailable => "A host this call needs cannot be reached right now",
        PlatformFailure::Conflict => "Concurrent calls kept changing the same state; try again",
    }
}

/// One problem-details answer, built up and then turned into a response.
pub(crate) struct Problem {
    status: StatusCode,
    body: Map<String, Value>,
    /// Seconds for `Retry-After`, when the client should come back.
    retry_after: Option<u64>,
}

impl Problem {
    pub(crate) fn new(status: u16, kind: &str, title: &str, detail: &str, code: &str) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
        let mut body = Map::new();
        body.insert("type".into(), kind.into());
        body.insert("title".into(), title.into());
        body.insert("status".into(), status.as_u16().into());
        body.insert("detail".into(), detail.into());
        body.insert("code".into(), code.into());
        Problem {
            status,
            body,
            retry_after: None,
        }
    }

    /// A platform failure whose `detail` is the host's own words.
    pub(crate) fn platform(kind: PlatformFailure, detail: &str) -> Self {
        let mut problem = Problem::new(
            platform_status(kind),
            &format!("urn:mote:platform:{}", kind.code()),
            platform_title(kind),
            detail,
            kind.code(),
        );
        problem.retry_after = matches!(
            kind,
            PlatformFailure::Overloaded | PlatformFailure::Unavailable | PlatformFailure::Conflict
        )
        .then_some(1);
        problem
    }

    /// Asks the client to come back after `seconds` (`Retry-After`).
    pub(crate) fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// An `invalid_input` refusal at the edge, under its own status.
    pub(crate) fn invalid_input(status: u16, title: &str, detail: &str) -> Self {
        let code = PlatformFailure::InvalidInput.code();
        Problem::new(
            status,
            &format!("urn:mote:platform:{code}"),
            title,
            detail,
            code,
        )
    }

    pub(crate) fn service(mut self, service: &str) -> Self {
        self.body.insert("service".into(), service.into());
        self
    }

    pub(crate) fn call_id(mut self, call_id: &str) -> Self {
        self.body.insert("call_id".into(), call_id.into());
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            Value::Object(self.body).to_string(),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The problem-details response for a failed call of `service`.
pub(crate) fn failure_response(
    service: &str,
    call_id: &str,
    contract: &Contract,
    failure: &Failure,
) -> Response {
    let problem = match failure {
        Failure::Declared { code, status, .. } => {
            let summary = contract
                .error(code)
                .map_or_else(|| code.clone(), |e| e.summary.clone());
            Problem::new(
                *status,
                &format!("urn:mote:error:{service}:{code}"),
                &summary,
                &summary,
                code,
            )
        }
        Failure::Platform { kind, message } if kind.detail_is_public() => {
            Problem::platform(*kind, message)
        }
        Failure::Platform { kind, .. } => Problem::platform(
            *kind,
            &format!(
                "{}; the host's log has the details under call id {call_id}",
                platform_title(*kind)
            ),
        ),
    };
    problem.service(service).call_id(call_id).into_response()
}
