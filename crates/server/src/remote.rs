//! Calls to services that another host of the app serves, under a
//! placement: `POST /v1/{service}` to that host's peer address, the same
//! protocol as any client's, within the caller's deadline. The runtime
//! checks the answer against the callee's contract, as it checks a
//! guest's.

use std::sync::Arc;
use std::time::Instant;

use mote_runtime::{Failure, PlatformFailure, RemoteAnswer, RemoteCall, RemoteService};

use crate::connections::{Connections, SendError, Tls};

/// The header in which a call that crosses hosts names its calling
/// service; the peer address serves a call only to a caller that
/// declares it.
pub const CALLER_HEADER: &str = "x-mote-caller";

/// Threads driving the connections to other hosts.
const CLIENT_THREADS: usize = 1;

/// The I/O of every call to other hosts: its own small tokio runtime, so
/// that call threads (plain threads, outside any async context) can wait
/// on an exchange.
pub struct RemoteHosts {
    /// `None` only while dropping.
    tokio: Option<tokio::runtime::Runtime>,
    /// This host's certificate, for hosts reached at `https://` URLs.
    tls: Option<mote_tls::PeerTls>,
}

impl Drop for RemoteHosts {
    /// The last holder may be a task of the serving runtime, where a
    /// runtime must not be dropped in the blocking way.
    fn drop(&mut self) {
        if let Some(tokio) = self.tokio.take() {
            tokio.shutdown_background();
        }
    }
}

impl RemoteHosts {
    /// Starts the threads that carry calls to other hosts; with `tls`,
    /// hosts at `https://` URLs are called over mutual TLS with it.
    pub fn start(tls: Option<mote_tls::PeerTls>) -> std::io::Result<Arc<Self>> {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(CLIENT_THREADS)
            .thread_name("mote-remote")
            .enable_all()
            .build()?;
        Ok(Arc::new(RemoteHosts {
            tokio: Some(tokio),
            tls,
        }))
    }

    /// The host `name` at `url` (`http://host:port`, or `https://host:port`
    /// for a host that must show a certificate naming it), as the
    /// runtime's way to the services placed there.
    pub fn host(
        self: &Arc<Self>,
        name: &str,
        url: &str,
    ) -> Result<Arc<dyn RemoteService>, mote_tls::TlsError> {
        let (authority, tls) = match url.strip_prefix("https://") {
            Some(authority) => {
                let Some(tls) = &self.tls else {
                    return Err(mote_tls::TlsError::Config(format!(
                        "host `{name}` is reached at {url}, and this host has no certificate to call it with"
                    )));
                };
                let tls = Tls {
                    connector: tls.connector(),
                    server_name: mote_tls::server_name(name)?,
                };
                (authority, Some(tls))
            }
            None => (url.trim_start_matches("http://"), None),
        };
        Ok(Arc::new(RemoteHost {
            name: name.to_string(),
            connections: Connections::with_tls(authority.trim_end_matches('/').to_string(), tls),
            hosts: Arc::clone(self),
        }))
    }
}

/// One other host.
struct RemoteHost {
    name: String,
    connections: Connections,
    hosts: Arc<RemoteHosts>,
}

impl RemoteHost {
    fn unavailable(&self, why: &str) -> Failure {
        Failure::platform(
            PlatformFailure::Unavailable,
            format!(
                "host `{}` ({}) cannot be reached: {why}",
                self.name,
                self.connections.authority()
            ),
        )
    }
}

impl RemoteService for RemoteHost {
    fn call(&self, call: &RemoteCall<'_>) -> Result<RemoteAnswer, Failure> {
        let remaining = call.deadline.saturating_duration_since(Instant::now());
        let timeout = || {
            Failure::platform(
                PlatformFailure::Timeout,
                format!(
                    "host `{}` did not answer `{}` within {} ms",
                    self.name,
                    call.service,
                    remaining.as_millis()
                ),
            )
        };
        if remaining.is_zero() {
            return Err(timeout());
        }
        let path = format!("/v1/{}", call.service);
        let traceparent = crate::trace_context::outgoing();
        let headers: Vec<(&str, &str)> = traceparent
            .as_deref()
            .map(|value| (crate::trace_context::TRACEPARENT, value))
            .into_iter()
            .chain(call.caller.map(|caller| (CALLER_HEADER, caller)))
            .collect();
        let Some(tokio) = &self.hosts.tokio else {
            return Err(self.unavailable("this host is shutting down"));
        };
        // The timer is made inside the runtime, whose clock it needs.
        let exchange = tokio.block_on(async {
            tokio::time::timeout(
                remaining,
                self.connections.post(&path, &headers, call.input),
            )
            .await
        });
        let answer = match exchange {
            Err(_) => return Err(timeout()),
            Ok(Err(SendError::Connect(why) | SendError::Exchange(why))) => {
                return Err(self.unavailable(&why));
            }
            Ok(Ok(answer)) => answer,
        };
        if answer.status == 200 {
            return String::from_utf8(answer.body.to_vec())
                .map(Ok)
                .map_err(|_| self.violation(call.service, "an answer that is not UTF-8 text"));
        }
        let Some((code, message)) =
            crate::connections::problem(answer.media.as_deref(), &answer.body)
        else {
            return Err(self.violation(
                call.service,
                &format!("status {} without a problem carrying a code", answer.status),
            ));
        };
        match PlatformFailure::from_code(&code) {
            // This host admitted the input: a refusal there means the hosts
            // run different contracts for the service.
            Some(PlatformFailure::InvalidInput) => Err(self.violation(
                call.service,
                "a refusal of an input this host admitted (do both hosts run the same contract?)",
            )),
            Some(kind) => Err(Failure::platform(
                kind,
                format!(
                    "host `{}` answered `{}` with {code}: {message}",
                    self.name, call.service
                ),
            )),
            None => Ok(Err((code, message))),
        }
    }
}

impl RemoteHost {
    fn violation(&self, service: &str, what: &str) -> Failure {
        Failure::platform(
            PlatformFailure::ContractViolation,
            format!("host `{}` answered `{service}` with {what}", self.name),
        )
    }
}
