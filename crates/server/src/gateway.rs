//! What the routes share: the runtime, what is known about each service,
//! the metrics and the edge limits.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mote_contract::{Contract, Visibility};
use mote_runtime::{Runtime, ServiceContract};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::call_pool::CallPool;
use crate::live::Live;
use crate::metrics::Metrics;

/// Limits applied at the edge, before a call reaches the runtime.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest accepted request body, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// Calls served at once; more get 503 with `Retry-After`. A request
    /// takes its place only once its body has arrived, so slow clients
    /// cannot hold the places.
    pub max_in_flight: usize,
    /// Longest a call may take once its request has arrived; longer ones
    /// get 504.
    pub request_timeout: Duration,
    /// Longest a client may take to send a request's headers (also the
    /// longest a kept-alive connection may sit idle); then the connection
    /// is closed.
    pub header_timeout: Duration,
    /// Longest a client may take to send a request's body; then it gets
    /// 408 and the connection is closed.
    pub body_timeout: Duration,
    /// Connections open at once; more wait in the kernel's backlog until
    /// one closes.
    pub max_connections: usize,
    /// Threads that run guest calls, apart from the threads serving
    /// connections.
    pub call_threads: usize,
    /// Requests per second one client (one IP address) may send to the
    /// public address, with bursts of as many; more get 429 with
    /// `Retry-After`. `None`: no limit. The admin address is not limited.
    pub rate_limit: Option<NonZeroU32>,
    /// Headers (lowercase names) in which the ingress in front of mote
    /// says who the end user is, e.g. `x-forwarded-user`. Their values
    /// are recorded on each call's span (`client_identity`), for traces;
    /// they never reach a guest.
    pub identity_headers: Vec<String>,
    /// The app's name, as the console titles its pages.
    pub app_name: String,
    /// Host names, besides IP addresses and `localhost`, that the admin
    /// address answers to; any other Host header gets 421, so that a page
    /// re-pointing its own name at this machine (DNS rebinding) cannot
    /// reach the admin side from a browser.
    pub admin_hosts: Vec<String>,
    /// Mutual TLS on the peer address, under a placement with `https://`
    /// hosts. `None`: the peer address speaks plain HTTP and takes the
    /// calling service a request names on trust.
    pub peers: Option<PeerAccess>,
}

/// Who may call the peer address: hosts holding a certificate of the
/// app's authority, each only for the services the placement puts on it.
#[derive(Debug, Clone)]
pub struct PeerAccess {
    /// This host's certificate and the authority it trusts.
    pub tls: mote_tls::PeerTls,
    /// The host that serves each service of the app, by service name.
    pub host_of: BTreeMap<String, String>,
}

impl PeerAccess {
    /// Every host name of the placement, once.
    pub(crate) fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self.host_of.values().cloned().collect();
        hosts.sort();
        hosts.dedup();
        hosts
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 1024 * 1024,
            max_in_flight: 256,
            request_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(5),
            max_connections: 4096,
            call_threads: default_call_threads(),
            rate_limit: None,
            identity_headers: Vec::new(),
            app_name: "mote".to_string(),
            admin_hosts: Vec::new(),
            peers: None,
        }
    }
}

/// Two call threads per core: calls are CPU work, so more would only
/// take turns, while a second thread per core lets quick calls pass one
/// that runs to its deadline.
pub fn default_call_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().saturating_mul(2))
}

/// How a served service earned its place, as the catalog reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// A valid attestation signed by the named key covers this contract
    /// and artefact.
    Attested {
        /// The signer's public key, hex.
        public_key: String,
    },
    /// `mote verify` passed in this process, with this seed and these
    /// many generated cases.
    Verified {
        /// The seed.
        seed: u64,
        /// Generated cases.
        cases: u32,
    },
    /// Served without verification.
    Unverified,
}

impl Verification {
    /// One word for the catalog and the startup lines.
    pub fn label(&self) -> &'static str {
        match self {
            Verification::Attested { .. } => "attested",
            Verification::Verified { .. } => "verified",
            Verification::Unverified => "unverified",
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Verification::Attested { public_key } => {
                serde_json::json!({"status": "attested", "public_key": public_key})
            }
            Verification::Verified { seed, cases } => {
                serde_json::json!({"status": "verified", "seed": seed, "cases": cases})
            }
            Verification::Unverified => serde_json::json!({"status": "unverified"}),
        }
    }
}

/// One served service.
pub(crate) struct Served {
    pub(crate) contract: ServiceContract,
    pub(crate) verification: Verification,
}

/// Who a listener serves: which services it calls, lists and describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Any client: only the services whose contract says `visibility =
    /// "public"`. An internal service is answered exactly as a name that
    /// does not exist, so its existence does not leak; metrics, which
    /// name every service, are not served.
    Public,
    /// Operators (the admin address, on loopback by default): every
    /// service, the full catalog and OpenAPI, metrics and the console.
    Admin,
    /// The other hosts of the app, under a placement (the peer address):
    /// every service this host serves, internal ones too, so that their
    /// callers elsewhere reach them; no metrics, no console. Each call
    /// names its calling service, which must declare the call; with
    /// [`ServerConfig::peers`], connections are mutual TLS and the caller
    /// must be a service of the host whose certificate the connection
    /// showed.
    Peer,
}

/// Everything the HTTP routes share.
pub struct Gateway {
    pub(crate) runtime: Runtime,
    /// The served services by key (a name, or `name@SERIES` for a name
    /// served in several series).
    pub(crate) services: BTreeMap<String, Served>,
    /// The key each reference names on the admin and peer sides: every
    /// key, every `name@SERIES`, and each bare name for its newest series.
    references: HashMap<String, String>,
    /// The same for the public side, over public services only: a bare
    /// name names the newest public series.
    public_references: HashMap<String, String>,
    pub(crate) metrics: Metrics,
    /// The last minutes per service, for the console.
    pub(crate) live: Live,
    /// The console's pages, rendered on first request.
    pub(crate) console: std::sync::OnceLock<crate::console::Pages>,
    pub(crate) openapi: Value,
    pub(crate) public_openapi: Value,
    pub(crate) in_flight: Arc<Semaphore>,
    pub(crate) config: ServerConfig,
    pub(crate) calls: CallPool,
    pub(crate) call_ids: CallIds,
    pub(crate) limiter: Option<ClientLimiter>,
    ready: AtomicBool,
}

/// The public address's per-client rate limit: a token bucket per IP
/// address (governor's GCRA), forgetting idle clients now and then so
/// that many distinct clients cannot grow it without bound.
pub(crate) struct ClientLimiter {
    buckets: governor::DefaultKeyedRateLimiter<IpAddr>,
    checks: AtomicU64,
}

/// Checks between two sweeps of idle clients.
const SWEEP_EVERY: u64 = 4096;

impl ClientLimiter {
    fn new(per_second: NonZeroU32) -> Self {
        ClientLimiter {
            buckets: governor::RateLimiter::keyed(governor::Quota::per_second(per_second)),
            checks: AtomicU64::new(0),
        }
    }

    /// `Ok` when `client` may send one more request now; otherwise how
    /// long it should wait.
    pub(crate) fn check(&self, client: IpAddr) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.buckets.retain_recent();
            self.buckets.shrink_to_fit();
        }
        self.buckets.check_key(&client).map_err(|not_until| {
            not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ))
        })
    }
}

/// Names each call, so that a client holding a failure's call id and an
/// operator reading the log can find the same call.
pub(crate) struct CallIds {
    prefix: u32,
    next: AtomicU64,
}

impl CallIds {
    fn new() -> Self {
        // Different each start, so ids from two runs do not collide in
        // one log.
        let prefix = getrandom::u32().unwrap_or_else(|_| std::process::id());
        CallIds {
            prefix,
            next: AtomicU64::new(0),
        }
    }

    /// A fresh id, 24 hex digits.
    pub(crate) fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}{n:016x}", self.prefix)
    }
}

impl Gateway {
    /// A gateway over every service loaded in `runtime`, each with how it
    /// was verified (a service missing from `verification` is reported as
    /// unverified). Fails only if the call threads cannot be started.
    pub fn new(
        runtime: Runtime,
        mut verification: BTreeMap<String, Verification>,
        config: ServerConfig,
    ) -> std::io::Result<Self> {
        // Services placed on other hosts are called from here, not served.
        let services: BTreeMap<String, Served> = runtime
            .services()
            .into_iter()
            .filter(|name| !runtime.is_remote(name))
            .filter_map(|name| {
                let contract = runtime.contract(&name)?;
                let verification = verification
                    .remove(&name)
                    .unwrap_or(Verification::Unverified);
                Some((
                    name,
                    Served {
                        contract,
                        verification,
                    },
                ))
            })
            .collect();
        let references = references_to(&services, |_| true);
        let public_references = references_to(&services, |contract| {
            contract.service.visibility == Visibility::Public
        });
        let openapi = crate::openapi::openapi(operations(&services, &references));
        let public_openapi = crate::openapi::openapi(operations(&services, &public_references));
        let metrics = Metrics::new(services.keys().map(String::as_str), runtime.clone());
        let live = Live::new(services.iter().map(|(name, served)| {
            let codes = served
                .contract
                .errors
                .iter()
                .map(|e| e.code.to_string())
                .chain(
                    mote_runtime::PlatformFailure::ALL
                        .iter()
                        .map(|f| f.code().to_string()),
                )
                .collect();
            (name.as_str(), codes)
        }));
        Ok(Gateway {
            runtime,
            services,
            references,
            public_references,
            metrics,
            live,
            console: std::sync::OnceLock::new(),
            openapi,
            public_openapi,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            calls: CallPool::new(config.call_threads)?,
            call_ids: CallIds::new(),
            limiter: config.rate_limit.map(ClientLimiter::new),
            config,
            ready: AtomicBool::new(true),
        })
    }

    /// The service `reference` names (a key, a bare name or
    /// `name@SERIES`) as `audience` may see it, with its key: `None` when
    /// it does not exist or is not for that audience.
    pub(crate) fn served(&self, reference: &str, audience: Audience) -> Option<(&str, &Served)> {
        let references = match audience {
            Audience::Public => &self.public_references,
            Audience::Admin | Audience::Peer => &self.references,
        };
        let key = references.get(reference)?;
        self.services
            .get_key_value(key)
            .map(|(key, served)| (key.as_str(), served))
    }

    /// The OpenAPI document of what `audience` may call.
    pub(crate) fn openapi_for(&self, audience: Audience) -> &Value {
        match audience {
            Audience::Public => &self.public_openapi,
            Audience::Admin | Audience::Peer => &self.openapi,
        }
    }

    /// The catalog entry of every service `audience` may call: what
    /// `GET /v1/services` lists there.
    pub fn catalog(&self, audience: Audience) -> Value {
        let services: Vec<Value> = self
            .services
            .iter()
            .filter(|(key, _)| self.served(key, audience).is_some())
            .map(|(key, served)| {
                let contract = &served.contract;
                let name = contract.service.name.as_str();
                let newest = self
                    .served(name, audience)
                    .is_some_and(|(newest, _)| newest == key);
                serde_json::json!({
                    "name": key,
                    "service": name,
                    "version": contract.service.version.to_string(),
                    "series": mote_contract::versions::series(&contract.service.version),
                    "newest": newest,
                    "summary": contract.service.summary,
                    "kind": if contract.flow.is_some() { "flow" } else { "component" },
                    "visibility": contract.service.visibility.as_str(),
                    "endpoint": format!("/v1/{key}"),
                    "contract_sha256": contract.hash.to_string(),
                    "effects": contract.json.get("effects").cloned().unwrap_or(Value::Null),
                    "errors": contract.errors.iter().map(|e| serde_json::json!({
                        "code": e.code, "status": e.status, "summary": e.summary,
                    })).collect::<Vec<_>>(),
                    "verification": served.verification.to_json(),
                })
            })
            .collect();
        serde_json::json!({ "services": services })
    }

    /// Whether `/readyz` says yes: true until shutdown begins.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Marks the gateway as draining: `/readyz` answers 503 so a load
    /// balancer stops sending work, while calls in flight finish.
    pub fn begin_shutdown(&self) {
        self.ready.store(false, Ordering::Relaxed);
    }
}

/// What each reference names among the services `shown` lets through:
/// every key and every `name@SERIES` names its service, and a bare name
/// the newest series shown.
fn references_to(
    services: &BTreeMap<String, Served>,
    shown: impl Fn(&Contract) -> bool,
) -> HashMap<String, String> {
    let mut references = HashMap::new();
    let mut newest: BTreeMap<&str, (&mote_contract::semver::Version, &str)> = BTreeMap::new();
    for (key, served) in services.iter().filter(|(_, s)| shown(&s.contract)) {
        let service = &served.contract.service;
        references.insert(key.clone(), key.clone());
        references.insert(
            mote_contract::versions::qualified(service.name.as_str(), &service.version),
            key.clone(),
        );
        let entry = newest
            .entry(service.name.as_str())
            .or_insert((&service.version, key));
        if service.version > *entry.0 {
            *entry = (&service.version, key);
        }
    }
    for (name, (_, key)) in newest {
        references.insert(name.to_string(), key.to_string());
    }
    references
}

/// What OpenAPI lists on one side: each service by its key, and each bare
/// name that stands for the newest of several series.
fn operations<'a>(
    services: &'a BTreeMap<String, Served>,
    references: &'a HashMap<String, String>,
) -> Vec<(&'a str, &'a Contract)> {
    let mut listed: Vec<(&str, &Contract)> = references
        .iter()
        .filter(|(reference, key)| *reference == *key || !reference.contains('@'))
        .filter_map(|(reference, key)| {
            services
                .get(key)
                .map(|served| (reference.as_str(), &*served.contract))
        })
        .collect();
    listed.sort_by_key(|(reference, _)| *reference);
    listed
}
