//! The client side of mote's HTTP protocol: a service behind a URL as a
//! verification target, so that `mote verify --url` judges services in
//! any language, deployed anywhere, by the same oracles.
//!
//! The protocol: POST the JSON input; a success is a 2xx with the JSON
//! output; a failure is `application/problem+json` whose `code` is the
//! contract's error code (under the contract's status) or a platform code.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::Uri;
use mote_contract::Contract;
use mote_runtime::{PlatformFailure, ResolvedLimits};
use mote_verify::{Answer, Target};

use crate::connections::Connections;
use serde_json::Value;

/// Why a URL cannot be a target.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// Not a URL this client speaks.
    #[error("`{url}` is not an http:// URL with a host: {why}")]
    Invalid {
        /// The URL given.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// The async runtime could not start.
    #[error("cannot start the HTTP client: {0}")]
    Runtime(std::io::Error),
}

/// The network time allowed on top of a contract's `timeout_ms` by
/// default, for each answer over HTTP.
pub const DEFAULT_LATENCY_ALLOWANCE: Duration = Duration::from_millis(50);

/// A service behind an HTTP endpoint, judged as a [`Target`]. Besides the
/// answer's content, each answer's latency is judged against the
/// contract's `timeout_ms` plus a network allowance: a slower answer is a
/// `timeout`, whatever it says.
pub struct HttpTarget {
    uri: Uri,
    statuses: HashMap<String, u16>,
    timeout: Duration,
    /// The contract's deadline for one call.
    deadline: Duration,
    allowance: Duration,
    tokio: tokio::runtime::Runtime,
    connections: Connections,
    slowest: Mutex<Option<(Duration, String)>>,
}

impl HttpTarget {
    /// The endpoint `url` (e.g. `http://127.0.0.1:8080/v1/tax.vat`) of a
    /// service with `contract`; each call waits at most `timeout`.
    pub fn new(url: &str, contract: &Contract, timeout: Duration) -> Result<Self, UrlError> {
        let invalid = |why: &str| UrlError::Invalid {
            url: url.to_string(),
            why: why.to_string(),
        };
        let uri: Uri = url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| invalid(&e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(invalid(
                    "https is not supported yet; verify through a plain-HTTP address or a local proxy",
                ));
            }
            _ => return Err(invalid("the scheme must be http")),
        }
        let authority = uri
            .authority()
            .map(|a| a.to_string())
            .ok_or_else(|| invalid("it has no host"))?;
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(UrlError::Runtime)?;
        Ok(HttpTarget {
            uri,
            statuses: contract
                .errors
                .iter()
                .map(|e| (e.code.clone(), e.status))
                .collect(),
            timeout,
            deadline: ResolvedLimits::resolve(&contract.limits, &ResolvedLimits::default()).timeout,
            allowance: DEFAULT_LATENCY_ALLOWANCE,
            tokio,
            connections: Connections::new(authority),
            slowest: Mutex::new(None),
        })
    }

    /// Allows `allowance` of network time on top of the contract's
    /// `timeout_ms` (default [`DEFAULT_LATENCY_ALLOWANCE`]).
    pub fn with_latency_allowance(mut self, allowance: Duration) -> Self {
        self.allowance = allowance;
        self
    }

    /// The slowest answer so far: how long it took, and the input text.
    pub fn slowest(&self) -> Option<(Duration, String)> {
        self.slowest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Reads one HTTP answer as the protocol defines it.
    fn answer(&self, status: u16, media: Option<&str>, body: &[u8]) -> Answer {
        let text = String::from_utf8_lossy(body).into_owned();
        if (200..300).contains(&status) {
            return Answer::Output(serde_json::from_str(&text).map_err(|_| text));
        }
        let Some((code, message)) = crate::connections::problem(media, body) else {
            return Answer::Protocol {
                message: format!(
                    "status {status} without an application/problem+json body carrying `code` (content type {}, body {})",
                    media.unwrap_or("none"),
                    truncate(&text)
                ),
            };
        };
        let code = code.as_str();
        if let Some(&declared) = self.statuses.get(code) {
            if declared != status {
                return Answer::Protocol {
                    message: format!(
                        "declared error `{code}` came with status {status}; the contract gives it {declared}"
                    ),
                };
            }
            return Answer::Error {
                code: code.to_string(),
                message,
            };
        }
        if PlatformFailure::from_code(code).is_some() {
            return Answer::Platform {
                code: code.to_string(),
                message,
            };
        }
        Answer::Error {
            code: code.to_string(),
            message,
        }
    }
}

fn truncate(text: &str) -> String {
    const MAX: usize = 200;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{:?}…", &text[..end]),
        None => format!("{text:?}"),
    }
}

impl HttpTarget {
    /// One exchange on a connection of its own, judged for latency.
    async fn exchange(&self, text: &str) -> Answer {
        let path = self.uri.path_and_query().map_or("/", |p| p.as_str());
        let started = Instant::now();
        let exchange =
            tokio::time::timeout(self.timeout, self.connections.post(path, &[], text)).await;
        let took = started.elapsed();
        {
            let mut slowest = self
                .slowest
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if slowest.as_ref().is_none_or(|(longest, _)| took > *longest) {
                *slowest = Some((took, text.to_string()));
            }
        }
        let limit = self.deadline + self.allowance;
        match exchange {
            Ok(Ok(_)) if took > limit => Answer::Platform {
                code: PlatformFailure::Timeout.code().into(),
                message: format!(
                    "answered in {} ms; the contract allows {} ms, plus {} ms for the network",
                    took.as_millis(),
                    self.deadline.as_millis(),
                    self.allowance.as_millis()
                ),
            },
            Ok(Ok(answer)) => self.answer(answer.status, answer.media.as_deref(), &answer.body),
            Ok(Err(error)) => Answer::Platform {
                code: "unreachable".into(),
                message: error.to_string(),
            },
            Err(_) => Answer::Platform {
                code: PlatformFailure::Timeout.code().into(),
                message: format!("no answer within {} ms", self.timeout.as_millis()),
            },
        }
    }
}

impl Target for HttpTarget {
    fn call(&self, input: &Value) -> Answer {
        self.call_text(&input.to_string())
    }

    fn call_text(&self, text: &str) -> Answer {
        self.tokio.block_on(self.exchange(text))
    }

    /// Sends every input at once, each on its own connection (kept alive
    /// for the next batch).
    fn call_many(&self, inputs: &[Value]) -> Vec<Answer> {
        let texts: Vec<String> = inputs.iter().map(Value::to_string).collect();
        self.tokio.block_on(futures_util::future::join_all(
            texts.iter().map(|text| self.exchange(text)),
        ))
    }
}
