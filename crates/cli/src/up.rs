//! `mote up`: build, verify and serve a whole app over HTTP.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use mote_app::{BuiltService, InProcess, LoadedService};
use mote_runtime::{CompiledCode, Runtime, RuntimeConfig};
use mote_server::{Audience, Gateway, ServerConfig, Verification};
use mote_verify::Options;
use mote_verify::attest::{self, KeyPair};

use crate::exit;

/// The arguments of `mote up`.
#[derive(Debug, clap::Args)]
pub struct Request {
    /// The app folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The public address: it serves the services whose contract says
    /// `visibility = "public"`, and their catalog and OpenAPI. Port 0
    /// picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// The admin address, for operators: every service (internal ones
    /// too), the full catalog and OpenAPI, /metrics, and the live console
    /// at /console/ (figures, last failures with call ids, try-it with
    /// traces). Keep it on loopback or a private network. Port 0 picks a
    /// free port.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub admin_addr: SocketAddr,
    /// Where build output goes (default: DIR/target).
    #[arg(long, value_name = "TARGET_DIR")]
    pub target_dir: Option<PathBuf>,
    /// Serve only services covered by a valid attestation signed by a
    /// trusted key; name every other one and refuse to start.
    #[arg(long, requires = "trusted_keys")]
    pub require_attestation: bool,
    /// A public key whose attestations are trusted (repeatable).
    #[arg(long = "trusted-key", value_name = "PUBLIC_KEY")]
    pub trusted_keys: Vec<PathBuf>,
    /// Sign an attestation for each service verified at startup, so the
    /// next start skips it (its public half is trusted too).
    #[arg(long, value_name = "SECRET_KEY")]
    pub key: Option<PathBuf>,
    /// Where attestations are read and written (default:
    /// TARGET_DIR/mote-attestations).
    #[arg(long, value_name = "DIR")]
    pub attest_dir: Option<PathBuf>,
    /// Serve without verifying services that have no valid attestation
    /// (they are listed as unverified).
    #[arg(long, conflicts_with = "require_attestation")]
    pub no_verify: bool,
    /// Generated cases per service when verifying at startup.
    #[arg(long, default_value_t = 1000)]
    pub cases: u32,
    /// The verification seed (default: derived from the contract's and
    /// the component's hashes, so a start is reproducible). A pass is
    /// remembered under TARGET_DIR/mote-verified, and an unchanged service
    /// is not verified again at the next start (unless --seed or --key is
    /// given).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Largest accepted request body, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Calls served at once; more are answered 503 with Retry-After.
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
    /// The deadline of one request at the edge, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub request_timeout_ms: u64,
    /// How long a client may take to send a request's headers, in
    /// milliseconds (also how long a kept-alive connection may sit idle).
    #[arg(long, default_value_t = 5_000)]
    pub header_timeout_ms: u64,
    /// How long a client may take to send a request's body, in
    /// milliseconds; slower ones get 408.
    #[arg(long, default_value_t = 5_000)]
    pub body_timeout_ms: u64,
    /// Connections open at once; more wait until one closes.
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,
    /// Threads that run guest calls [default: two per core].
    #[arg(long)]
    pub call_threads: Option<usize>,
    /// Requests per second one client (IP address) may send to the public
    /// address, with bursts of as many; more get 429 with `Retry-After`.
    /// Default: no limit. The admin address is not limited.
    #[arg(long, value_name = "PER_SECOND")]
    pub rate_limit: Option<std::num::NonZeroU32>,
    /// A header in which the ingress in front of mote names the end user
    /// (e.g. x-forwarded-user; repeatable). Its value is recorded on each
    /// call's trace span as `client_identity`; it never reaches a guest.
    /// mote does not authenticate end users: the ingress does.
    #[arg(long = "identity-header", value_name = "NAME")]
    pub identity_headers: Vec<String>,
    /// A host name the admin address answers to, besides IP addresses
    /// and localhost (repeatable); requests naming any other host get
    /// 421, which keeps a web page that re-points its name at this
    /// machine (DNS rebinding) away from the admin side.
    #[arg(long = "admin-host", value_name = "NAME")]
    pub admin_hosts: Vec<String>,
    /// Where stateful services keep their stores: `sqlite:PATH`,
    /// `postgres://USER:PASSWORD@HOST/DATABASE` (which the hosts of a
    /// placement may share), or `memory` (lost when mote stops). Default:
    /// DIR/.mote/state.sqlite. A call's writes are committed before its
    /// answer is sent.
    #[arg(long, value_name = "STORE")]
    pub store: Option<String>,
    /// Serve one host's share of the app, as this placement file places
    /// it (see `mote check --placement`): only the services placed on
    /// --host are built and served; calls to the others go over HTTP to
    /// the hosts that serve them, and their answers are checked here
    /// against their contracts.
    #[arg(long, value_name = "FILE", requires = "host")]
    pub placement: Option<PathBuf>,
    /// Which host of the placement this process is.
    #[arg(long, value_name = "NAME", requires = "placement")]
    pub host: Option<String>,
    /// Where the other hosts reach this one: every service it serves,
    /// internal ones too, each to a calling service (named in
    /// x-mote-caller) whose contract declares the call [default:
    /// 127.0.0.1 and the port of this host's URL in the placement]. With
    /// https:// URLs it speaks mutual TLS and takes a caller only from
    /// the host it is placed on; with http:// URLs it must be a loopback
    /// address, since nothing proves who calls.
    #[arg(long, value_name = "ADDR", requires = "placement")]
    pub peer_addr: Option<SocketAddr>,
    /// The app's TLS folder, made by `mote keygen --app`: the authority's
    /// certificate (ca.pem) and this host's certificate and key
    /// (HOST.pem, HOST.key). Needed when the placement's URLs are
    /// https://.
    #[arg(long, value_name = "DIR", requires = "placement")]
    pub tls: Option<PathBuf>,
}

/// This process's share of a placement.
struct Share {
    placement: mote_placement::Placement,
    host: mote_placement::Host,
    peer_addr: SocketAddr,
    /// This host's certificate, when the hosts speak mutual TLS.
    tls: Option<mote_tls::PeerTls>,
}

impl Share {
    /// Whether `service` is served here.
    fn serves(&self, service: &str) -> bool {
        self.placement
            .host_of(service)
            .is_some_and(|h| h.name == self.host.name)
    }
}

/// The share of the placement `request` names, if it names one.
fn share(request: &Request) -> Result<Option<Share>, ExitCode> {
    let (Some(file), Some(name)) = (&request.placement, &request.host) else {
        return Ok(None);
    };
    let placement = mote_placement::Placement::load(file).map_err(|problems| {
        for problem in &problems {
            eprintln!("{}", crate::check::render(problem));
        }
        ExitCode::from(exit::PROBLEMS)
    })?;
    let Some(host) = placement.host(name).cloned() else {
        eprintln!(
            "error: {} places no host named `{name}`; its hosts: {}",
            file.display(),
            placement
                .hosts
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Err(ExitCode::from(exit::USAGE));
    };
    let peer_addr = match request.peer_addr {
        Some(addr) => addr,
        None => {
            let port = host
                .url
                .trim_end_matches('/')
                .rsplit_once(':')
                .and_then(|(_, port)| port.parse::<u16>().ok())
                .unwrap_or(80);
            SocketAddr::from(([127, 0, 0, 1], port))
        }
    };
    let tls = match (placement.mutual_tls(), &request.tls) {
        (true, Some(dir)) => match mote_tls::PeerTls::load(dir, &host.name) {
            Ok(tls) => Some(tls),
            Err(e) => {
                eprintln!("error: {e}");
                return Err(ExitCode::from(exit::USAGE));
            }
        },
        (true, None) => {
            eprintln!(
                "error: the hosts of {} are https:// URLs, so they call each other over mutual TLS: give --tls DIR, a folder made by `mote keygen --app --placement {} --out DIR`",
                file.display(),
                file.display()
            );
            return Err(ExitCode::from(exit::USAGE));
        }
        (false, Some(_)) => {
            eprintln!(
                "error: --tls is for a placement whose hosts are https:// URLs; those of {} are http://",
                file.display()
            );
            return Err(ExitCode::from(exit::USAGE));
        }
        (false, None) if !peer_addr.ip().is_loopback() => {
            eprintln!(
                "error: the hosts of {} are http:// URLs, and plain HTTP proves nothing about who calls: the peer address must be on loopback, not {peer_addr}; for hosts on a network, use https:// URLs and `mote keygen --app`",
                file.display()
            );
            return Err(ExitCode::from(exit::USAGE));
        }
        (false, None) => None,
    };
    Ok(Some(Share {
        placement,
        host,
        peer_addr,
        tls,
    }))
}

pub fn run(request: Request) -> ExitCode {
    if !request.dir.is_dir() {
        eprintln!("error: {} is not a folder", request.dir.display());
        return ExitCode::from(exit::USAGE);
    }
    let target_dir = request
        .target_dir
        .clone()
        .unwrap_or_else(|| mote_app::default_target_dir(&request.dir));
    let attest_dir = request
        .attest_dir
        .clone()
        .unwrap_or_else(|| target_dir.join("mote-attestations"));
    let key = match request
        .key
        .as_deref()
        .map(crate::attest::read_key)
        .transpose()
    {
        Ok(key) => key,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let mut trusted = Vec::new();
    for path in &request.trusted_keys {
        match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| attest::public_key_from_hex(&t).map_err(|e| e.to_string()))
        {
            Ok(public) => trusted.push(public),
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::from(exit::USAGE);
            }
        }
    }
    if let Some(key) = &key
        && let Ok(public) = attest::public_key_from_hex(&key.public_hex())
    {
        trusted.push(public);
    }

    let store_choice =
        match crate::stores::StoreChoice::parse(&request.dir, request.store.as_deref()) {
            Ok(choice) => choice,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(exit::USAGE);
            }
        };
    let share = match share(&request) {
        Ok(share) => share,
        Err(code) => return code,
    };
    let here = |service: &str| share.as_ref().is_none_or(|s| s.serves(service));
    let mut progress = crate::run::report_progress;
    // A host that serves only attested artefacts never builds: building
    // runs the services' build scripts and macros on this machine.
    let split = if request.require_attestation {
        mote_app::locate_where(&request.dir, &target_dir, &here)
    } else {
        mote_app::build_where(&request.dir, &target_dir, &mut progress, &here)
    };
    let mote_app::Split {
        here: built,
        elsewhere,
    } = match split {
        Ok(split) => split,
        Err(e) => {
            crate::run::render_app_error(&e);
            return ExitCode::from(exit::PROBLEMS);
        }
    };
    let mut peers = None;
    if let Some(share) = &share {
        let names: Vec<&str> = built
            .iter()
            .map(|b| b.contract.service.name.as_str())
            .chain(elsewhere.iter().map(|c| c.service.name.as_str()))
            .collect();
        let mut problems = share.placement.check(names.iter().copied());
        // A store in one host's SQLite file must have its services on that
        // host; PostgreSQL is shared by all.
        if !store_choice.is_shared() {
            let contracts = built
                .iter()
                .map(|b| &*b.contract)
                .chain(elsewhere.iter().map(|c| &**c));
            problems.extend(
                share
                    .placement
                    .check_stores(&crate::check::store_users(contracts)),
            );
        }
        if !problems.is_empty() {
            for problem in &problems {
                eprintln!("{}", crate::check::render(problem));
            }
            return ExitCode::from(exit::PROBLEMS);
        }
        peers = share.tls.clone().map(|tls| mote_server::PeerAccess {
            tls,
            host_of: names
                .iter()
                .filter_map(|name| {
                    let host = share.placement.host_of(name)?;
                    Some((name.to_string(), host.name.clone()))
                })
                .collect(),
        });
    }
    // Attestations are checked before loading, so that an attested
    // component runs exactly the compiled code its attestation binds (or
    // code compiled afresh), never whatever the cache holds.
    let mut attested: BTreeMap<String, Result<String, String>> = BTreeMap::new();
    let mut code_for = |service: &BuiltService, component_sha256: &str| {
        let verdict = attestation(service, component_sha256, &trusted, &attest_dir);
        let code = match &verdict {
            Ok(found) => match &found.precompiled {
                Some(hash) => CompiledCode::Expect(hash.clone()),
                None => CompiledCode::Fresh,
            },
            Err(_) => CompiledCode::Cached,
        };
        attested.insert(service.key.clone(), verdict.map(|found| found.public_key));
        code
    };
    let loaded = mote_app::load_built(
        built,
        &target_dir,
        RuntimeConfig::default(),
        &mut progress,
        &mut code_for,
    );
    let (runtime, loaded) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            crate::run::render_app_error(&e);
            return ExitCode::from(exit::PROBLEMS);
        }
    };
    let stores = store_choice.open(loaded.iter().map(|l| l.contract()));
    match stores {
        Ok(Some((backend, described))) => {
            eprintln!("      Stores {described}");
            runtime.use_state_backend(backend);
        }
        Ok(None) => {}
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::USAGE);
        }
    }
    if let Some(share) = &share
        && let Err(code) = load_elsewhere(&runtime, share, elsewhere)
    {
        return code;
    }

    let verification = match decide(
        &request,
        &loaded,
        &runtime,
        &attested,
        key.as_ref(),
        &target_dir,
        &attest_dir,
    ) {
        Ok(verification) => verification,
        Err(code) => return code,
    };
    let config = ServerConfig {
        max_body_bytes: request.max_body_bytes,
        max_in_flight: request.max_in_flight.max(1),
        request_timeout: Duration::from_millis(request.request_timeout_ms.max(1)),
        header_timeout: Duration::from_millis(request.header_timeout_ms.max(1)),
        body_timeout: Duration::from_millis(request.body_timeout_ms.max(1)),
        max_connections: request.max_connections.max(1),
        call_threads: request
            .call_threads
            .unwrap_or_else(mote_server::default_call_threads)
            .max(1),
        rate_limit: request.rate_limit,
        identity_headers: request
            .identity_headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        app_name: crate::docs::app_title(&request.dir),
        admin_hosts: request.admin_hosts.clone(),
        peers,
    };
    let gateway = match Gateway::new(runtime, verification, config) {
        Ok(gateway) => Arc::new(gateway),
        Err(error) => {
            eprintln!("error: cannot start the threads that run calls: {error}");
            return ExitCode::from(exit::USAGE);
        }
    };
    serve(&request, gateway, &loaded, share.as_ref())
}

/// Loads the services other hosts serve, each reached at its host's URL.
fn load_elsewhere(
    runtime: &Runtime,
    share: &Share,
    elsewhere: Vec<Arc<mote_contract::Contract>>,
) -> Result<(), ExitCode> {
    if elsewhere.is_empty() {
        return Ok(());
    }
    let hosts = mote_server::RemoteHosts::start(share.tls.clone()).map_err(|e| {
        eprintln!("error: cannot start the threads that call other hosts: {e}");
        ExitCode::from(exit::PLATFORM)
    })?;
    let mut reach = BTreeMap::new();
    for contract in elsewhere {
        let name = contract.service.name.to_string();
        let Some(host) = share.placement.host_of(&name) else {
            continue;
        };
        let remote = match reach.get(&host.name) {
            Some(remote) => remote,
            None => {
                let remote = hosts.host(&host.name, &host.url).map_err(|e| {
                    eprintln!("error: {e}");
                    ExitCode::from(exit::USAGE)
                })?;
                reach.entry(host.name.clone()).or_insert(remote)
            }
        };
        eprintln!(
            "      Remote {name} {} (host {}, {})",
            contract.service.version, host.name, host.url
        );
        if let Err(e) = runtime.load_remote(contract, Arc::clone(remote)) {
            eprintln!("error: {e}");
            return Err(ExitCode::from(exit::PROBLEMS));
        }
    }
    Ok(())
}

/// How each service earns its place: a valid attestation, a remembered
/// pass of exactly this contract and code, or verification now. `Err` is
/// the exit code when something may not be served.
fn decide(
    request: &Request,
    loaded: &[LoadedService],
    runtime: &Runtime,
    attested: &BTreeMap<String, Result<String, String>>,
    key: Option<&KeyPair>,
    target_dir: &Path,
    attest_dir: &Path,
) -> Result<BTreeMap<String, Verification>, ExitCode> {
    let mut verification = BTreeMap::new();
    let mut refused = Vec::new();
    for service in loaded {
        let name = service.key().to_string();
        match attested.get(&name) {
            Some(Ok(public_key)) => {
                verification.insert(
                    name,
                    Verification::Attested {
                        public_key: public_key.clone(),
                    },
                );
                continue;
            }
            Some(Err(why)) if request.require_attestation => {
                refused.push(format!("{name}: {why}"));
                continue;
            }
            _ if request.require_attestation => {
                refused.push(format!("{name}: no attestation was checked"));
                continue;
            }
            _ => {}
        }
        if request.no_verify {
            verification.insert(name, Verification::Unverified);
            continue;
        }
        // Reproducible: the seed follows from what is verified, unless
        // one is given.
        let seed = request
            .seed
            .unwrap_or_else(|| mote_app::startup_seed(service));
        if request.seed.is_none()
            && key.is_none()
            && let Some((seed, cases)) =
                mote_app::remembered_pass(target_dir, service, request.cases)
        {
            eprintln!(
                "  Remembered {name}: passed {cases} cases with seed {seed} (unchanged since)"
            );
            verification.insert(name, Verification::Verified { seed, cases });
            continue;
        }
        let contract = service.contract();
        eprintln!("   Verifying {name} ({} cases, seed {seed})", request.cases);
        let options = Options {
            seed,
            cases: request.cases,
            allow_unreached: Vec::new(),
            jobs: None,
            check_refusals: true,
        };
        let target = InProcess::alone(runtime, contract, seed);
        let bar = crate::verify::progress_bar(&name, request.cases, crate::Format::Human);
        let mut report = mote_verify::verify_with_progress(contract, &target, &options, &|n| {
            bar.set_position(u64::from(n))
        });
        bar.finish_and_clear();
        report.service = name.clone();
        if !report.passed() {
            crate::verify::print_human(
                &report,
                &contract.service.version.to_string(),
                &crate::verify::replay_command(&request.dir, &name, seed, request.cases),
            );
            eprintln!(
                "error: {name} does not keep its contract; not serving the app (fix it, or start with --no-verify to serve it unverified)"
            );
            return Err(ExitCode::from(exit::PROBLEMS));
        }
        if let Err(e) = mote_app::remember_pass(target_dir, service, seed, report.cases) {
            eprintln!("warning: cannot remember that {name} passed: {e}");
        }
        if let Some(key) = key {
            // An attestation carries the contract's strength, as one from
            // `mote verify --key` does.
            let strength = mote_verify::strength::strength(
                contract,
                &target,
                &mote_verify::strength::StrengthOptions {
                    seed,
                    inputs: request.cases.clamp(1, 1000),
                },
            );
            if let Err(e) = crate::verify::write_attestation(
                &report,
                Some(strength.score()),
                service,
                key,
                attest_dir,
            ) {
                eprintln!("warning: cannot write the attestation of {name}: {e}");
            }
        }
        verification.insert(
            name,
            Verification::Verified {
                seed,
                cases: report.cases,
            },
        );
    }
    if !refused.is_empty() {
        eprintln!(
            "error: --require-attestation: these services have no valid attestation from a trusted key:"
        );
        for line in refused {
            eprintln!("  - {line}");
        }
        return Err(ExitCode::from(exit::PROBLEMS));
    }
    Ok(verification)
}

/// A valid attestation: who signed it, and which compiled code it binds.
struct Attested {
    public_key: String,
    precompiled: Option<String>,
}

/// The valid attestation for exactly this contract and component, or why
/// there is none.
fn attestation(
    service: &BuiltService,
    component_sha256: &str,
    trusted: &[attest::VerifyingKey],
    attest_dir: &Path,
) -> Result<Attested, String> {
    if trusted.is_empty() {
        return Err("no trusted key was given".into());
    }
    let path = crate::verify::attestation_file(
        attest_dir,
        &service.key,
        service.contract.service.name.as_str(),
    );
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("no attestation at {} ({e})", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let artefact = if service.wasm.is_some() {
        component_sha256.to_string()
    } else {
        service.contract.hash.to_string()
    };
    attest::check(
        &value,
        trusted,
        Some(&service.contract.hash.to_string()),
        Some(&artefact),
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Attested {
        public_key: value
            .get("public_key")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string(),
        precompiled: attest::precompiled(&value).map(|p| p.sha256.to_string()),
    })
}

fn serve(
    request: &Request,
    gateway: Arc<Gateway>,
    loaded: &[LoadedService],
    share: Option<&Share>,
) -> ExitCode {
    let tokio = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(tokio) => tokio,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    tokio.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(request.addr).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", request.addr);
                return ExitCode::from(exit::USAGE);
            }
        };
        let admin = match tokio::net::TcpListener::bind(request.admin_addr).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!(
                    "error: cannot listen on {} (the admin address; --admin-addr picks another): {e}",
                    request.admin_addr
                );
                return ExitCode::from(exit::USAGE);
            }
        };
        let peer = match share {
            Some(share) => match tokio::net::TcpListener::bind(share.peer_addr).await {
                Ok(listener) => Some(listener),
                Err(e) => {
                    eprintln!(
                        "error: cannot listen on {} (the peer address of host `{}`; --peer-addr picks another): {e}",
                        share.peer_addr, share.host.name
                    );
                    return ExitCode::from(exit::USAGE);
                }
            },
            None => None,
        };
        let addr = listener.local_addr().unwrap_or(request.addr);
        let admin_addr = admin.local_addr().unwrap_or(request.admin_addr);
        let catalog = gateway.catalog(Audience::Admin);
        for entry in catalog["services"].as_array().into_iter().flatten() {
            let name = entry["name"].as_str().unwrap_or_default();
            let kind = if loaded
                .iter()
                .any(|service| service.key() == name && service.artefact.is_none())
            {
                " (flow)"
            } else {
                ""
            };
            let at = if entry["visibility"] == "public" {
                addr
            } else {
                admin_addr
            };
            println!(
                "  {name:<20} {:<8} {:<8} POST http://{at}/v1/{name:<20} {}{kind}",
                entry["version"].as_str().unwrap_or_default(),
                entry["visibility"].as_str().unwrap_or_default(),
                entry["verification"]["status"].as_str().unwrap_or_default(),
            );
        }
        // One signal stops both listeners.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let signal = shutdown_signal();
        tokio::spawn(async move {
            signal.await;
            let _ = stop.send(true);
        });
        let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        println!(
            "admin on http://{admin_addr}  (console /console/, every service, catalog /v1/services, OpenAPI /openapi.json, metrics /metrics)"
        );
        let peer_side = match (peer, share) {
            (Some(peer), Some(share)) => {
                let (scheme, how) = match share.tls {
                    Some(_) => ("https", "mutual TLS"),
                    None => ("http", "plain HTTP, loopback only"),
                };
                println!(
                    "peer on {scheme}://{}  (host `{}` of the placement: its services, for the other hosts; {how})",
                    peer.local_addr().unwrap_or(share.peer_addr),
                    share.host.name
                );
                Some(tokio::spawn(mote_server::serve_to(
                    peer,
                    Arc::clone(&gateway),
                    Audience::Peer,
                    until_stopped(stopped.clone()),
                )))
            }
            _ => None,
        };
        println!("listening on http://{addr}  (public services, catalog /v1/services, OpenAPI /openapi.json; Ctrl-C stops)");
        let admin_side = tokio::spawn(mote_server::serve_to(
            admin,
            Arc::clone(&gateway),
            Audience::Admin,
            until_stopped(stopped.clone()),
        ));
        let served = mote_server::serve_to(listener, gateway, Audience::Public, until_stopped(stopped)).await;
        let admin_served = admin_side.await.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        let peer_served = match peer_side {
            Some(side) => side.await.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            None => Ok(()),
        };
        match served.and(admin_served).and(peer_served) {
            Ok(()) => {
                eprintln!("stopped: calls in flight finished");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: the server failed: {e}");
                ExitCode::from(exit::PLATFORM)
            }
        }
    })
}

/// Starts listening for Ctrl-C and SIGTERM now, so that a signal sent as
/// soon as the "listening" line appears is not lost; the future completes
/// at the first of them.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    async fn received(signal: Option<Signal>) {
        match signal {
            Some(mut signal) => {
                signal.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    let interrupt = received(signal(SignalKind::interrupt()).ok());
    let terminate = received(signal(SignalKind::terminate()).ok());
    async move {
        tokio::select! {
            () = interrupt => {}
            () = terminate => {}
        }
    }
}

/// Completes on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
