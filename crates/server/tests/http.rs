//! The gateway end to end over real HTTP on 127.0.0.1: the fixtures of
//! mote-runtime (well-behaved and hostile guests) behind a real server,
//! reached by a plain TCP client so that malformed requests can be sent
//! too.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mote_runtime::{Runtime, RuntimeConfig};
use mote_server::{Gateway, ServerConfig, Verification};
use serde_json::{Value, json};

/// Contract and component of every fixture, by service name, built once
/// per run into the directory mote-runtime's tests use too.
fn fixtures() -> &'static HashMap<String, (PathBuf, PathBuf)> {
    static BUILT: OnceLock<HashMap<String, (PathBuf, PathBuf)>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures");
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
        mote_build::ensure_wasm_target().expect("the guest target is available");
        let mut built = HashMap::new();
        for service in mote_build::discover(&app).expect("fixtures are readable") {
            let wasm = mote_build::build(&service, &target)
                .unwrap_or_else(|e| panic!("{e}"))
                .expect("every fixture is a cargo package");
            let contract = mote_contract::load(&service.contract).expect("valid");
            built.insert(
                contract.service.name.to_string(),
                (service.contract.clone(), wasm),
            );
        }
        built
    })
}

/// A runtime holding the named fixtures.
fn runtime_of(names: &[&str]) -> Runtime {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    for name in names {
        let (contract, wasm) = &fixtures()[*name];
        runtime
            .load_file(mote_contract::load(contract).unwrap(), wasm)
            .unwrap();
    }
    runtime
}

/// A gateway serving the named fixtures on a free port, stopped (gracefully)
/// when dropped.
struct Server {
    addr: SocketAddr,
    /// The admin address: every service, and metrics.
    admin: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(names: &[&str], config: ServerConfig) -> Server {
        Server::serve(runtime_of(names), config)
    }

    fn serve(runtime: Runtime, config: ServerConfig) -> Server {
        let verification = BTreeMap::from([(
            "fixture.sum".to_string(),
            Verification::Verified {
                seed: 7,
                cases: 1000,
            },
        )]);
        let gateway = Arc::new(Gateway::new(runtime, verification, config).unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, bound) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let tokio = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            tokio.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                ready
                    .send((listener.local_addr().unwrap(), admin.local_addr().unwrap()))
                    .unwrap();
                let (both, _) = tokio::sync::watch::channel(false);
                let both = Arc::new(both);
                let until = |both: Arc<tokio::sync::watch::Sender<bool>>| async move {
                    let _ = both.subscribe().wait_for(|stop| *stop).await;
                };
                let admin_side = tokio::spawn(mote_server::serve_to(
                    admin,
                    Arc::clone(&gateway),
                    mote_server::Audience::Admin,
                    until(Arc::clone(&both)),
                ));
                let public_side = mote_server::serve(listener, gateway, until(Arc::clone(&both)));
                let stopper = async {
                    let _ = stopped.await;
                    let _ = both.send(true);
                };
                let (served, ()) = tokio::join!(public_side, stopper);
                served.unwrap();
                admin_side.await.unwrap().unwrap();
            });
        });
        let (addr, admin) = bound.recv().unwrap();
        Server {
            addr,
            admin,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// GETs `path` from the admin address.
    fn admin_get(&self, path: &str) -> Response {
        self.admin_get_as("127.0.0.1", path)
    }

    /// GETs `path` from the admin address, naming `host` in the Host
    /// header.
    fn admin_get_as(&self, host: &str, path: &str) -> Response {
        let mut stream = TcpStream::connect(self.admin).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        Response::parse(&bytes)
    }

    /// POSTs JSON `body` to `path` on the admin address.
    fn admin_post(&self, path: &str, body: &str) -> Response {
        post_from("127.0.0.1", self.admin, path, body)
    }

    /// Sends raw bytes, returns the response.
    fn raw(&self, request: &[u8]) -> Response {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.write_all(request).unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        Response::parse(&bytes)
    }

    fn post(&self, path: &str, body: &str) -> Response {
        self.raw(
            format!(
                "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    }

    fn get(&self, path: &str) -> Response {
        self.raw(
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
    }

    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

impl Response {
    fn parse(bytes: &[u8]) -> Response {
        let text = String::from_utf8_lossy(bytes);
        let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Response {
            status,
            headers,
            body: body.to_string(),
        }
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// Asserts an RFC 9457 problem with this status and code.
    fn assert_problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(
            self.headers.get("content-type").map(String::as_str),
            Some("application/problem+json"),
            "{self:?}"
        );
        let problem = self.json();
        assert_eq!(problem["code"], code, "{problem}");
        assert_eq!(problem["status"], status, "{problem}");
        for member in ["type", "title", "detail"] {
            assert!(problem[member].is_string(), "{member} missing: {problem}");
        }
        problem
    }
}

const ALL: &[&str] = &[
    "fixture.sum",
    "fixture.spin",
    "fixture.memory-bomb",
    "fixture.panic",
    "fixture.bad-output",
    "fixture.bad-code",
    "fixture.caller",
];

#[test]
fn a_call_answers_with_the_output_as_json() {
    let server = Server::start(ALL, ServerConfig::default());
    let response = server.post("/v1/fixture.sum", r#"{"a": 2, "b": 3}"#);
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    assert_eq!(response.json(), json!({"sum": 5}));
    // Calls between services stay in the process.
    assert_eq!(server.post("/v1/fixture.caller", "3").json(), json!(12));
}

#[test]
fn a_declared_error_travels_with_its_contract_status_and_code() {
    let server = Server::start(ALL, ServerConfig::default());
    let problem = server
        .post("/v1/fixture.sum", r#"{"a": -1, "b": 3}"#)
        .assert_problem(400, "negative");
    assert_eq!(problem["title"], "The first number is negative.");
    // The contract's words, not the guest's ("a is negative").
    assert_eq!(problem["detail"], "The first number is negative.");
    assert_eq!(problem["service"], "fixture.sum");
    assert!(problem["call_id"].is_string(), "{problem}");
}

#[test]
fn no_text_a_guest_wrote_reaches_a_client() {
    let server = Server::start(ALL, ServerConfig::default());
    let cases = [
        ("fixture.panic", "1", 500, "trap", "SECRET-7f3a9c"),
        (
            "fixture.bad-code",
            "7",
            502,
            "contract_violation",
            "nobody declared",
        ),
        ("fixture.bad-code", "-7", 422, "too_small", "below zero"),
        (
            "fixture.sum",
            r#"{"a": -1, "b": 3}"#,
            400,
            "negative",
            "a is negative",
        ),
        (
            "fixture.bad-output",
            "123456789",
            502,
            "contract_violation",
            "123456789",
        ),
    ];
    for (service, input, status, code, secret) in cases {
        let response = server.post(&format!("/v1/{service}"), input);
        let problem = response.assert_problem(status, code);
        assert!(
            !response.body.contains(secret),
            "{service}: {}",
            response.body
        );
        let call_id = problem["call_id"].as_str().unwrap();
        assert_eq!(
            response.headers.get("x-mote-call-id"),
            Some(&call_id.to_string())
        );
    }
    // Each call has its own id.
    let first = server.post("/v1/fixture.panic", "1").json();
    let second = server.post("/v1/fixture.panic", "1").json();
    assert_ne!(first["call_id"], second["call_id"]);
}

#[test]
fn hostile_guests_are_contained_and_the_others_are_served_at_normal_latency() {
    let server = Arc::new(Server::start(
        &[
            "fixture.sum",
            "fixture.sleeper",
            "fixture.spin",
            "fixture.flooder",
            "fixture.memory-bomb",
            "fixture.panic",
            "fixture.big-answer",
            "fixture.escape",
            "fixture.looper",
        ],
        ServerConfig::default(),
    ));
    let big = (RuntimeConfig::default().max_answer_bytes + 1).to_string();
    let hostile: Vec<(&str, String, u16, &str)> = vec![
        ("fixture.sleeper", "1".into(), 500, "trap"),
        ("fixture.sleeper", "2".into(), 500, "trap"),
        ("fixture.sleeper", "3".into(), 500, "trap"),
        ("fixture.sleeper", "4".into(), 500, "trap"),
        ("fixture.sleeper", "5".into(), 500, "trap"),
        ("fixture.sleeper", "6".into(), 500, "trap"),
        ("fixture.spin", "1".into(), 504, "timeout"),
        ("fixture.spin", "2".into(), 504, "timeout"),
        ("fixture.looper", "1".into(), 504, "timeout"),
        ("fixture.memory-bomb", "1".into(), 500, "resource_exhausted"),
        ("fixture.panic", "1".into(), 500, "trap"),
        ("fixture.big-answer", big, 500, "resource_exhausted"),
    ];
    let attackers: Vec<_> = hostile
        .into_iter()
        .map(|(service, input, status, code)| {
            let server = Arc::clone(&server);
            std::thread::spawn(move || {
                server
                    .post(&format!("/v1/{service}"), &input)
                    .assert_problem(status, code);
            })
        })
        .collect();
    let flood = {
        let server = Arc::clone(&server);
        std::thread::spawn(move || server.post("/v1/fixture.flooder", "100000"))
    };
    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        let started = std::time::Instant::now();
        let answer = server.post("/v1/fixture.sum", &format!(r#"{{"a": {i}, "b": 1}}"#));
        slowest = slowest.max(started.elapsed());
        assert_eq!(answer.json(), json!({"sum": i + 1}));
    }
    for attacker in attackers {
        attacker.join().unwrap();
    }
    assert_eq!(flood.join().unwrap().json(), json!(100000));
    assert_eq!(
        server.post("/v1/fixture.escape", "22").json(),
        json!({"file": false, "env": false, "net": false, "thread": false})
    );
    // A quick call waits at most for a spinning guest's own deadline
    // (50 ms here, 300 ms for the looper), never for a sleeping one.
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");
}

#[test]
fn every_platform_failure_has_its_code_and_status() {
    let server = Server::start(ALL, ServerConfig::default());
    let cases = [
        ("fixture.sum", r#"{"a": "two"}"#, 400, "invalid_input"),
        ("fixture.sum", r#"{"a": 1, "b""#, 400, "invalid_input"),
        ("fixture.spin", "1", 504, "timeout"),
        ("fixture.memory-bomb", "1", 500, "resource_exhausted"),
        ("fixture.panic", "1", 500, "trap"),
        ("fixture.bad-output", "7", 502, "contract_violation"),
        ("fixture.caller", "-99", 500, "undeclared_call"),
        ("fixture.nothing", "1", 404, "unknown_service"),
    ];
    for (service, input, status, code) in cases {
        server
            .post(&format!("/v1/{service}"), input)
            .assert_problem(status, code);
    }
    // The host still serves after each of them.
    assert_eq!(
        server.post("/v1/fixture.sum", r#"{"a": 1, "b": 1}"#).json(),
        json!({"sum": 2})
    );
}

/// The resident memory of this process, in KiB.
fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A connection that sent `head` and keeps its socket open.
fn hold(addr: SocketAddr, head: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

#[test]
fn trickling_clients_do_not_starve_a_normal_request() {
    let config = ServerConfig {
        max_in_flight: 16,
        body_timeout: Duration::from_millis(1500),
        header_timeout: Duration::from_millis(1500),
        ..ServerConfig::default()
    };
    let server = Server::start(&["fixture.sum"], config);
    // 300 clients send their headers and one byte of a 1,000-byte body;
    // 50 more never finish their headers.
    let body_head = "POST /v1/fixture.sum HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{";
    let trickling: Vec<TcpStream> = (0..300).map(|_| hold(server.addr, body_head)).collect();
    let half_headers: Vec<TcpStream> = (0..50)
        .map(|_| hold(server.addr, "POST /v1/fixture.sum HTTP/1.1\r\nHost:"))
        .collect();
    let started = std::time::Instant::now();
    let answer = server.post("/v1/fixture.sum", r#"{"a": 1, "b": 2}"#);
    assert_eq!(answer.json(), json!({"sum": 3}));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // The slow ones are cut off: a 408 for a body, a closed connection for
    // headers, each within its deadline and a little grace.
    let mut first = trickling.into_iter().next().unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut bytes = Vec::new();
    let _ = first.read_to_end(&mut bytes);
    Response::parse(&bytes).assert_problem(408, "invalid_input");
    let mut header_only = half_headers.into_iter().next().unwrap();
    header_only
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let cut_off = std::time::Instant::now();
    let mut rest = Vec::new();
    let _ = header_only.read_to_end(&mut rest);
    assert!(
        cut_off.elapsed() < Duration::from_secs(5),
        "{:?}",
        cut_off.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn ten_thousand_dropped_connections_leave_the_server_serving_in_bounded_memory() {
    let server = Server::start(&["fixture.sum"], ServerConfig::default());
    assert_eq!(
        server.post("/v1/fixture.sum", r#"{"a":1,"b":1}"#).status,
        200
    );
    let before = resident_kib();
    for i in 0..10_000 {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        if i % 3 == 0 {
            let _ = stream.write_all(b"POST /v1/fixture.sum HTTP/1.1\r\nContent-Len");
        }
    }
    assert_eq!(
        server.post("/v1/fixture.sum", r#"{"a":1,"b":1}"#).status,
        200
    );
    let grown = resident_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "grew by {grown} KiB");
}

#[test]
fn hostile_bodies_are_refused_and_the_server_carries_on() {
    let server = Server::start(&["fixture.sum"], ServerConfig::default());
    // A body announced at 10 GB is refused before a byte of it is read.
    server
        .raw(b"POST /v1/fixture.sum HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\nConnection: close\r\n\r\n")
        .assert_problem(413, "invalid_input");
    // A body cut short.
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .write_all(b"POST /v1/fixture.sum HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\": 1")
        .unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 400"),
        "{text}"
    );
    // Not JSON, nested 100,000 deep, a long string.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let long = format!(r#"{{"a": 1, "b": 2, "c": "{}"}}"#, "x".repeat(900_000));
    for body in [
        "not json at all",
        "{\"a\": 1,",
        deep.as_str(),
        long.as_str(),
    ] {
        server
            .post("/v1/fixture.sum", body)
            .assert_problem(400, "invalid_input");
    }
    assert_eq!(
        server.post("/v1/fixture.sum", r#"{"a":1,"b":1}"#).json(),
        json!({"sum": 2})
    );
}

#[test]
fn the_edge_refuses_oversized_bodies_and_non_json_content() {
    let config = ServerConfig {
        max_body_bytes: 64,
        ..ServerConfig::default()
    };
    let server = Server::start(&["fixture.sum"], config);
    let big = format!(r#"{{"a": 1, "b": 2, "pad": "{}"}}"#, "x".repeat(100));
    server
        .post("/v1/fixture.sum", &big)
        .assert_problem(413, "invalid_input");
    // A chunked body gives no length up front; it is cut off while read.
    let chunk = "x".repeat(200);
    let chunked = format!(
        "POST /v1/fixture.sum HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    server
        .raw(chunked.as_bytes())
        .assert_problem(413, "invalid_input");
    let form = "POST /v1/fixture.sum HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    server
        .raw(form.as_bytes())
        .assert_problem(415, "invalid_input");
    assert_eq!(
        server.post("/v1/fixture.sum", r#"{"a":1,"b":1}"#).status,
        200
    );
}

#[test]
fn malformed_http_is_refused_and_the_server_carries_on() {
    let server = Server::start(&["fixture.sum"], ServerConfig::default());
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"\x00\x01GARBAGE / NOT-HTTP\r\n\r\n")
        .unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 400"),
        "{text}"
    );
    assert_eq!(server.get("/v1/services").status, 200);
    server.get("/nowhere").assert_problem(404, "not_found");
    assert_eq!(server.get("/v1/fixture.sum").status, 405);
}

#[test]
fn calls_beyond_the_in_flight_limit_get_503_with_retry_after() {
    let config = ServerConfig {
        max_in_flight: 1,
        ..ServerConfig::default()
    };
    let (server, busy) = serve_with_a_spin_in_flight(config);
    let refused = server.post("/v1/fixture.sum", r#"{"a":1,"b":1}"#);
    refused.assert_problem(503, "overloaded");
    assert_eq!(
        refused.headers.get("retry-after").map(String::as_str),
        Some("1")
    );
    busy.join().unwrap().assert_problem(504, "timeout");
    assert_eq!(
        server.post("/v1/fixture.sum", r#"{"a":1,"b":1}"#).status,
        200
    );
}

#[test]
fn a_call_running_to_its_deadline_holds_up_neither_other_calls_nor_health() {
    let config = ServerConfig {
        call_threads: 2,
        ..ServerConfig::default()
    };
    let (server, busy) = serve_with_a_spin_in_flight(config);
    assert_eq!(server.get("/healthz").status, 200);
    assert_eq!(
        server.post("/v1/fixture.sum", r#"{"a":1,"b":1}"#).status,
        200
    );
    // The quick call was answered while the slow one still ran.
    let series = r#"mote_calls_in_flight{service="fixture.spin"}"#;
    assert_eq!(
        scrape(&server.admin_get("/metrics").body).get(series),
        Some(&1.0)
    );
    busy.join().unwrap().assert_problem(504, "timeout");
}

/// Serves `slow_spin_and_sum` and starts a call of fixture.spin, returning
/// once it is in flight; the handle answers when the call does.
fn serve_with_a_spin_in_flight(
    config: ServerConfig,
) -> (Arc<Server>, std::thread::JoinHandle<Response>) {
    let server = Arc::new(Server::serve(slow_spin_and_sum(), config));
    let busy = {
        let server = Arc::clone(&server);
        std::thread::spawn(move || server.post("/v1/fixture.spin", "1"))
    };
    wait_until_in_flight(&server, "fixture.spin");
    (server, busy)
}

/// fixture.sum, and fixture.spin with a one-second deadline: a spinning
/// call stays in flight long enough to observe whatever the machine's load.
fn slow_spin_and_sum() -> Runtime {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let (contract, wasm) = &fixtures()["fixture.spin"];
    let text = std::fs::read_to_string(contract).unwrap().replace(
        "timeout_ms = 50",
        "timeout_ms = 1000\nfuel = 1000000000000000",
    );
    let checked = mote_contract::check_source(mote_contract::SourceFile::new("spin.toml", text));
    runtime.load_file(checked.contract.unwrap(), wasm).unwrap();
    let (contract, wasm) = &fixtures()["fixture.sum"];
    runtime
        .load_file(mote_contract::load(contract).unwrap(), wasm)
        .unwrap();
    runtime
}

/// Waits until the runtime is running a call of `service`.
fn wait_until_in_flight(server: &Server, service: &str) {
    let series = format!(r#"mote_calls_in_flight{{service="{service}"}}"#);
    let started = std::time::Instant::now();
    while scrape(&server.admin_get("/metrics").body).get(&series) != Some(&1.0) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{service} never came in flight"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn the_catalog_and_each_contract_are_served() {
    let server = Server::start(&["fixture.sum", "fixture.caller"], ServerConfig::default());
    let catalog = server.get("/v1/services").json();
    let services = catalog["services"].as_array().unwrap();
    assert_eq!(services.len(), 2);
    let sum = services
        .iter()
        .find(|s| s["name"] == "fixture.sum")
        .unwrap();
    assert_eq!(sum["version"], "1.0.0");
    assert_eq!(sum["endpoint"], "/v1/fixture.sum");
    assert_eq!(sum["verification"]["status"], "verified");
    assert_eq!(sum["errors"][0]["code"], "negative");
    let caller = services
        .iter()
        .find(|s| s["name"] == "fixture.caller")
        .unwrap();
    assert_eq!(caller["effects"]["calls"], json!(["fixture.sum@^1"]));
    assert_eq!(caller["verification"]["status"], "unverified");

    let contract = server.get("/v1/services/fixture.sum").json();
    assert_eq!(contract["contract"]["input"]["required"], json!(["a", "b"]));
    assert!(
        contract["contract_sha256"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    server
        .get("/v1/services/fixture.none")
        .assert_problem(404, "unknown_service");
}

#[test]
fn the_openapi_document_is_valid_openapi_3_1_with_examples_and_errors() {
    let server = Server::start(ALL, ServerConfig::default());
    let document = server.get("/openapi.json").json();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/openapi-3.1.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The validator really does reject what is not OpenAPI 3.1.
    assert!(!validator.is_valid(&json!({"openapi": "3.0.0", "paths": {}})));
    assert_every_ref_resolves(&document);

    let sum = &document["paths"]["/v1/fixture.sum"]["post"];
    assert_eq!(sum["operationId"], "fixture.sum");
    let request = &sum["requestBody"]["content"]["application/json"];
    assert_eq!(request["schema"]["required"], json!(["a", "b"]));
    assert_eq!(
        request["examples"]["example-1"]["value"],
        json!({"a": 2, "b": 3})
    );
    let ok = &sum["responses"]["200"]["content"]["application/json"];
    assert_eq!(ok["examples"]["example-1"]["value"], json!({"sum": 5}));
    let declared = &sum["responses"]["400"]["content"]["application/problem+json"];
    let codes = &declared["schema"]["allOf"][1]["properties"]["code"]["enum"];
    assert!(
        codes.as_array().unwrap().contains(&json!("negative")),
        "{codes}"
    );
    assert!(
        codes.as_array().unwrap().contains(&json!("invalid_input")),
        "{codes}"
    );
    assert_eq!(
        declared["examples"]["example-2"]["value"]["code"],
        "negative"
    );
    for status in ["500", "502", "503", "504"] {
        assert!(sum["responses"][status].is_object(), "no {status} response");
    }
}

/// Every `$ref` in `document` points at something in it.
fn assert_every_ref_resolves(document: &Value) {
    fn walk(value: &Value, document: &Value, found: &mut usize) {
        match value {
            Value::Object(members) => {
                for (key, child) in members {
                    if key == "$ref" {
                        let reference = child.as_str().unwrap();
                        let pointer = reference.strip_prefix('#').unwrap();
                        assert!(
                            document.pointer(pointer).is_some(),
                            "{reference} points nowhere"
                        );
                        *found += 1;
                    } else if !matches!(key.as_str(), "const" | "enum" | "examples" | "example") {
                        walk(child, document, found);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, document, found)),
            _ => {}
        }
    }
    let mut found = 0;
    walk(document, document, &mut found);
    assert!(found > 0, "no $ref at all");
}

/// Parses the Prometheus text format: `name{labels} value` per sample.
fn scrape(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        samples.insert(series.to_string(), value);
    }
    samples
}

#[test]
fn metrics_count_calls_outcomes_violations_and_latency() {
    let server = Server::start(
        &["fixture.sum", "fixture.bad-output"],
        ServerConfig::default(),
    );
    server.post("/v1/fixture.sum", r#"{"a":1,"b":1}"#);
    server.post("/v1/fixture.sum", r#"{"a":2,"b":1}"#);
    server.post("/v1/fixture.sum", r#"{"a":-2,"b":1}"#);
    server.post("/v1/fixture.bad-output", "7");
    let response = server.admin_get("/metrics");
    assert_eq!(response.status, 200);
    assert!(response.headers["content-type"].starts_with("text/plain; version=0.0.4"));
    let samples = scrape(&response.body);
    let sample = |series: &str| {
        *samples
            .get(series)
            .unwrap_or_else(|| panic!("no {series} in\n{}", response.body))
    };
    assert_eq!(
        sample(r#"mote_calls_total{service="fixture.sum",outcome="success"}"#),
        2.0
    );
    assert_eq!(
        sample(r#"mote_calls_total{service="fixture.sum",outcome="negative"}"#),
        1.0
    );
    assert_eq!(
        sample(r#"mote_errors_total{service="fixture.sum",code="negative"}"#),
        1.0
    );
    assert_eq!(
        sample(r#"mote_contract_violations_total{service="fixture.bad-output"}"#),
        1.0
    );
    assert_eq!(
        sample(r#"mote_contract_violations_total{service="fixture.sum"}"#),
        0.0
    );
    assert_eq!(
        sample(r#"mote_call_duration_seconds_count{service="fixture.sum"}"#),
        3.0
    );
    assert_eq!(
        sample(r#"mote_calls_in_flight{service="fixture.sum"}"#),
        0.0
    );
    assert!(sample(r#"mote_call_duration_seconds_sum{service="fixture.sum"}"#) > 0.0);
}

#[test]
fn health_readiness_and_graceful_shutdown() {
    let mut server = Server::serve(slow_spin_and_sum(), ServerConfig::default());
    assert_eq!(server.get("/healthz").status, 200);
    assert_eq!(server.get("/readyz").status, 200);
    // A call in flight when shutdown begins still gets its answer.
    let addr = server.addr;
    let in_flight = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"POST /v1/fixture.spin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1\r\nConnection: close\r\n\r\n1")
            .unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        Response::parse(&bytes)
    });
    wait_until_in_flight(&server, "fixture.spin");
    server.stop();
    in_flight.join().unwrap().assert_problem(504, "timeout");
    assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
}

/// Serves `router` on a free port until the test process ends.
fn serve_router(router: axum::Router) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, router).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

fn sum_contract() -> mote_contract::Contract {
    mote_contract::load(&fixtures()["fixture.sum"].0).unwrap()
}

fn verify_url(url: &str, seed: u64) -> mote_verify::Report {
    let contract = sum_contract();
    let target = mote_server::HttpTarget::new(url, &contract, Duration::from_secs(5)).unwrap();
    let options = mote_verify::Options {
        seed,
        cases: 300,
        allow_unreached: Vec::new(),
        jobs: None,
        check_refusals: true,
    };
    mote_verify::verify(&contract, &target, &options)
}

/// A JSON integer as JSON Schema reads one: `40.0` is 40.
fn integer(value: &Value) -> Option<i64> {
    let n = value.as_f64().filter(|n| n.fract() == 0.0)?;
    value.as_i64().or(Some(n as i64))
}

/// fixture.sum's operands, if its input schema accepts `input`.
fn sum_operands(input: &Value) -> Option<(i64, i64)> {
    let members = input.as_object()?;
    if members.keys().any(|k| k != "a" && k != "b") {
        return None;
    }
    let a = integer(&input["a"]).filter(|a| a.unsigned_abs() <= 1_000_000)?;
    let b = integer(&input["b"]).filter(|b| b.unsigned_abs() <= 1_000_000)?;
    Some((a, b))
}

/// fixture.sum written natively behind axum, with `wrong` deciding how it
/// breaks the contract: the answer for (a, b), as status and JSON body.
fn native_sum(wrong: fn(i64, i64) -> Option<(u16, Value)>) -> axum::Router {
    axum::Router::new().route(
        "/sum",
        axum::routing::post(move |axum::Json(input): axum::Json<Value>| async move {
            let (status, body) = match sum_operands(&input) {
                None => (400, json!({"type": "urn:x", "title": "invalid", "status": 400, "code": "invalid_input"})),
                Some((a, b)) => wrong(a, b).unwrap_or(if a < 0 {
                (400, json!({"type": "urn:x", "title": "negative", "status": 400, "code": "negative"}))
            } else {
                (200, json!({"sum": a + b}))
            }),
            };
            let media = if status == 200 {
                "application/json"
            } else {
                "application/problem+json"
            };
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [(axum::http::header::CONTENT_TYPE, media)],
                body.to_string(),
            )
        }),
    )
}

#[test]
fn verify_over_http_passes_the_served_fixture_and_a_correct_native_twin() {
    let server = Server::start(&["fixture.sum"], ServerConfig::default());
    for seed in [1, 2] {
        let report = verify_url(&format!("http://{}/v1/fixture.sum", server.addr), seed);
        assert!(report.passed(), "{report:#?}");
        assert!(report.coverage["negative"] > 0 && report.coverage["success"] > 0);
    }
    let native = serve_router(native_sum(|_, _| None));
    let report = verify_url(&format!("http://{native}/sum"), 3);
    assert!(report.passed(), "{report:#?}");
}

#[test]
fn verify_over_http_shrinks_a_wrong_native_service_to_its_smallest_failure() {
    let native = serve_router(native_sum(|a, b| {
        (a > 5).then(|| (200, json!({"sum": a + b + 1})))
    }));
    let report = verify_url(&format!("http://{native}/sum"), 4);
    let counterexample = report.counterexample.expect("the wrong sum is caught");
    assert_eq!(
        counterexample.violation.oracle,
        mote_verify::oracle::Oracle::Ensures
    );
    assert_eq!(counterexample.input, json!({"a": 6, "b": 0}));
}

#[test]
fn verify_over_http_holds_errors_to_their_declared_status_and_problem_body() {
    let wrong_status = serve_router(native_sum(|a, _| {
        (a < 0).then(|| {
            (
                422,
                json!({"type": "urn:x", "title": "n", "status": 422, "code": "negative"}),
            )
        })
    }));
    let report = verify_url(&format!("http://{wrong_status}/sum"), 5);
    let counterexample = report.counterexample.expect("the wrong status is caught");
    assert_eq!(
        counterexample.violation.oracle,
        mote_verify::oracle::Oracle::Protocol
    );
    assert!(
        counterexample
            .violation
            .message
            .contains("status 422; the contract gives it 400"),
        "{}",
        counterexample.violation.message
    );
    // The contract's own example is the first input to show it.
    assert_eq!(counterexample.input, json!({"a": -1, "b": 3}));

    let bare = serve_router(native_sum(|a, _| (a < 0).then(|| (400, json!("no")))));
    let report = verify_url(&format!("http://{bare}/sum"), 6);
    let counterexample = report.counterexample.expect("a bare error is caught");
    assert_eq!(
        counterexample.violation.oracle,
        mote_verify::oracle::Oracle::Protocol
    );

    let nowhere = verify_url("http://127.0.0.1:9/sum", 7);
    assert!(!nowhere.passed());
}

#[test]
fn verify_over_http_reports_an_endpoint_slower_than_its_deadline_as_timeout() {
    let slow = serve_router(axum::Router::new().route(
        "/sum",
        axum::routing::post(|| async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            axum::Json(json!({"sum": 0}))
        }),
    ));
    let contract = sum_contract();
    let target = mote_server::HttpTarget::new(
        &format!("http://{slow}/sum"),
        &contract,
        Duration::from_millis(50),
    )
    .unwrap();
    use mote_verify::Target;
    match target.call(&json!({"a": 1, "b": 2})) {
        mote_verify::Answer::Platform { code, .. } => assert_eq!(code, "timeout"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        mote_server::HttpTarget::new("ftp://x/sum", &contract, Duration::from_secs(1)),
        Err(mote_server::UrlError::Invalid { .. })
    ));
}

#[test]
fn verify_over_http_judges_latency_against_the_contract_and_names_the_slowest_input() {
    // Correct answers, but 300 ms late whenever `a` exceeds 500, under a
    // contract that allows 100 ms.
    let slow = serve_router(axum::Router::new().route(
        "/sum",
        axum::routing::post(|axum::Json(input): axum::Json<Value>| async move {
            let (a, b) = sum_operands(&input).unwrap();
            if a > 500 {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let (status, body) = if a < 0 {
                (400, json!({"type": "urn:x", "title": "negative", "status": 400, "code": "negative"}))
            } else {
                (200, json!({"sum": a + b}))
            };
            let media = if status == 200 { "application/json" } else { "application/problem+json" };
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [(axum::http::header::CONTENT_TYPE, media)],
                body.to_string(),
            )
        }),
    ));
    let text = std::fs::read_to_string(&fixtures()["fixture.sum"].0).unwrap();
    let contract = mote_contract::check_source(mote_contract::SourceFile::new(
        "sum.toml",
        format!("{text}\n[limits]\ntimeout_ms = 100\n"),
    ))
    .contract
    .unwrap();
    let target = mote_server::HttpTarget::new(
        &format!("http://{slow}/sum"),
        &contract,
        Duration::from_secs(5),
    )
    .unwrap()
    .with_latency_allowance(Duration::from_millis(50));
    let options = mote_verify::Options {
        seed: 11,
        cases: 100,
        allow_unreached: Vec::new(),
        jobs: None,
        check_refusals: true,
    };
    let report = mote_verify::verify(&contract, &target, &options);
    let counterexample = report.counterexample.expect("the slow class is caught");
    assert_eq!(
        counterexample.violation.oracle,
        mote_verify::oracle::Oracle::Limits
    );
    assert!(
        counterexample
            .violation
            .message
            .contains("the contract allows 100 ms"),
        "{}",
        counterexample.violation.message
    );
    assert_eq!(counterexample.input["a"], json!(501));
    let (took, input) = target.slowest().expect("calls were made");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(input.contains("\"a\""), "{input}");
}

#[test]
fn verify_over_http_with_jobs_sends_cases_at_once_and_finds_what_one_at_a_time_finds() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (now, peak) = (in_flight.clone(), most.clone());
    let counted = native_sum(|a, b| (a > 5).then(|| (200, json!({"sum": a + b + 1})))).layer(
        axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let (now, peak) = (now.clone(), peak.clone());
                async move {
                    let here = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(here, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    let response = next.run(request).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    response
                }
            },
        ),
    );
    let native = serve_router(counted);
    let contract = sum_contract();
    let report = |jobs| {
        let target = mote_server::HttpTarget::new(
            &format!("http://{native}/sum"),
            &contract,
            Duration::from_secs(5),
        )
        .unwrap();
        let options = mote_verify::Options {
            seed: 4,
            cases: 300,
            allow_unreached: Vec::new(),
            jobs: Some(jobs),
            check_refusals: true,
        };
        mote_verify::verify(&contract, &target, &options)
    };
    let alone = report(1);
    assert_eq!(most.load(Ordering::SeqCst), 1, "one at a time");
    let together = report(8);
    assert!(most.load(Ordering::SeqCst) > 1, "cases went one at a time");
    assert_eq!(together, alone);
    let counterexample = together.counterexample.expect("the wrong sum is caught");
    assert_eq!(counterexample.input, json!({"a": 6, "b": 0}));
}

#[test]
fn verify_over_http_requires_every_input_the_contract_refuses_to_be_refused() {
    // Correct on every valid input, but it takes members the schema
    // forbids and numbers out of range.
    let lenient = serve_router(axum::Router::new().route(
        "/sum",
        axum::routing::post(|axum::Json(input): axum::Json<Value>| async move {
            let (a, b) = (
                input["a"].as_f64().unwrap_or(0.0) as i64,
                input["b"].as_f64().unwrap_or(0.0) as i64,
            );
            if a < 0 {
                return (
                    axum::http::StatusCode::BAD_REQUEST,
                    [(axum::http::header::CONTENT_TYPE, "application/problem+json")],
                    json!({"type": "urn:x", "title": "negative", "status": 400, "code": "negative"}).to_string(),
                );
            }
            (
                axum::http::StatusCode::OK,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                json!({"sum": a + b}).to_string(),
            )
        }),
    ));
    let report = verify_url(&format!("http://{lenient}/sum"), 8);
    let counterexample = report
        .counterexample
        .expect("the lenient service is caught");
    assert_eq!(
        counterexample.violation.oracle,
        mote_verify::oracle::Oracle::Refusal
    );
    assert!(
        !sum_contract().input.is_valid(&counterexample.input),
        "{}",
        counterexample.input
    );
    assert!(report.refusals > 0);

    // mote's host refuses them for its guest.
    let server = Server::start(&["fixture.sum"], ServerConfig::default());
    let report = verify_url(&format!("http://{}/v1/fixture.sum", server.addr), 8);
    assert!(report.passed(), "{report:#?}");
    assert!(report.refusals >= 16, "{}", report.refusals);
}

/// POSTs `body` to `path` at `server` from the source address `from`.
fn post_from(from: &str, server: SocketAddr, path: &str, body: &str) -> Response {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = tokio.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        socket.connect(server).await.unwrap()
    });
    let mut stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    Response::parse(&bytes)
}

#[test]
fn a_flooding_client_is_rate_limited_while_another_is_served() {
    let config = ServerConfig {
        rate_limit: std::num::NonZeroU32::new(1),
        ..ServerConfig::default()
    };
    let server = Server::start(&["fixture.sum"], config);
    let body = r#"{"a": 1, "b": 2}"#;
    let statuses: Vec<Response> = (0..40)
        .map(|_| post_from("127.0.0.1", server.addr, "/v1/fixture.sum", body))
        .collect();
    let served = statuses.iter().filter(|r| r.status == 200).count();
    let limited: Vec<&Response> = statuses.iter().filter(|r| r.status == 429).collect();
    // One a second: the first, and one more per second the flood lasts.
    assert!((1..40).contains(&served), "{served} served");
    assert_eq!(served + limited.len(), 40);
    let problem: Value = serde_json::from_str(&limited[0].body).unwrap();
    assert_eq!(problem["code"], "rate_limited");
    let wait: u64 = limited[0].headers["retry-after"].parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    // Another client is served meanwhile, and so is the flooding one on
    // the admin address, which has no limit.
    assert_eq!(
        post_from("127.0.0.2", server.addr, "/v1/fixture.sum", body).status,
        200
    );
    assert_eq!(
        post_from("127.0.0.1", server.admin, "/v1/fixture.sum", body).status,
        200
    );
}

#[test]
fn the_console_shows_each_service_s_last_minute_and_last_failures_on_the_admin_address() {
    let server = Server::start(&["fixture.sum", "fixture.caller"], ServerConfig::default());
    for _ in 0..5 {
        assert_eq!(
            server.post("/v1/fixture.sum", r#"{"a": 1, "b": 2}"#).status,
            200
        );
    }
    let refused = server.post("/v1/fixture.sum", r#"{"a": -1, "b": 2}"#);
    let refused_id = refused.headers["x-mote-call-id"].clone();
    assert_eq!(server.post("/v1/fixture.sum", "[").status, 400);
    let live = server.admin_get("/console/api/live");
    assert_eq!(live.status, 200, "{live:?}");
    assert_eq!(
        live.headers.get("cache-control").map(String::as_str),
        Some("no-store")
    );
    let sum = &live.json()["services"]["fixture.sum"];
    assert_eq!(sum["calls"], 7, "{sum}");
    assert_eq!(sum["errors"]["negative"], 1, "{sum}");
    assert_eq!(sum["errors"]["invalid_input"], 1, "{sum}");
    assert!(sum["p50_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{sum}");
    assert!(sum["p99_ms"].as_f64() >= sum["p50_ms"].as_f64(), "{sum}");
    assert!(
        sum["calls_per_second"].as_f64().is_some_and(|r| r > 0.0),
        "{sum}"
    );
    let last = &sum["last_failures"];
    assert_eq!(last[1]["call_id"], refused_id.as_str(), "{last}");
    assert_eq!(last[1]["code"], "negative", "{last}");
    assert_eq!(last[0]["code"], "invalid_input", "{last}");
    assert!(
        last[0]["at"].as_str().is_some_and(|at| at.ends_with('Z')),
        "{last}"
    );
    assert_eq!(live.json()["services"]["fixture.caller"]["calls"], 0);
}

#[test]
fn the_console_pages_are_the_contract_pages_with_live_places_and_a_try_form() {
    let server = Server::start(&["fixture.sum"], ServerConfig::default());
    let index = server.admin_get("/console/");
    assert_eq!(index.status, 200, "{index:?}");
    assert!(
        index.headers["content-type"].starts_with("text/html"),
        "{index:?}"
    );
    assert!(index.headers["content-security-policy"].contains("script-src 'self'"));
    assert!(
        index.body.contains("services/fixture.sum.html"),
        "{}",
        index.body
    );
    assert!(index.body.contains(r#"data-live="p99""#), "{}", index.body);
    assert!(index.body.contains("console.js"), "{}", index.body);
    let page = server.admin_get("/console/services/fixture.sum.html");
    assert_eq!(page.status, 200);
    for place in [
        r#"id="try-form""#,
        r#"data-field="a""#,
        r#"data-kind="integer""#,
        r#"id="failures""#,
    ] {
        assert!(page.body.contains(place), "{place} missing from the page");
    }
    let script = server.admin_get("/console/console.js");
    assert_eq!(script.status, 200);
    assert!(script.headers["content-type"].starts_with("text/javascript"));
    assert_eq!(
        server.admin_get("/console/services/nobody.html").status,
        404
    );
    assert_eq!(server.admin_get("/console").status, 308);
}

#[test]
fn trying_a_service_answers_with_its_status_body_and_trace() {
    let server = Server::start(
        &["fixture.sum", "fixture.caller", "fixture.counter"],
        ServerConfig::default(),
    );
    let tried = server.admin_post("/console/api/try/fixture.caller", "3");
    assert_eq!(tried.status, 200, "{tried:?}");
    let tried = tried.json();
    assert_eq!(tried["status"], 200, "{tried}");
    assert_eq!(tried["body"], 12, "{tried}");
    let spans = tried["trace"]["spans"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(spans[0]["service"], "fixture.caller", "{tried}");
    assert_eq!(spans[0]["depth"], 0);
    assert!(
        spans
            .iter()
            .any(|s| s["service"] == "fixture.sum" && s["depth"] == 1),
        "{tried}"
    );
    // A declared error comes back as its problem, and counts as a call.
    let refused = server
        .admin_post("/console/api/try/fixture.sum", r#"{"a": -1, "b": 0}"#)
        .json();
    assert_eq!(refused["status"], 400, "{refused}");
    assert_eq!(refused["body"]["code"], "negative", "{refused}");
    assert_eq!(refused["body"]["call_id"], refused["call_id"], "{refused}");
    let live = server.admin_get("/console/api/live").json();
    assert_eq!(
        live["services"]["fixture.sum"]["last_failures"][0]["call_id"],
        refused["call_id"]
    );
    // A service that does not exist has no trace, only its problem.
    let unknown = server.admin_post("/console/api/try/nobody", "{}").json();
    assert_eq!(unknown["status"], 404, "{unknown}");
    assert_eq!(unknown["trace"], Value::Null, "{unknown}");
}

#[test]
fn the_public_address_serves_no_console_figures_or_traces() {
    let server = Server::start(&["fixture.sum"], ServerConfig::default());
    assert_eq!(
        server
            .post("/v1/fixture.sum", r#"{"a": -1, "b": 2}"#)
            .status,
        400
    );
    for path in [
        "/console",
        "/console/",
        "/console/index.html",
        "/console/console.js",
        "/console/api/live",
    ] {
        let response = server.get(path);
        assert_eq!(response.status, 404, "{path}: {response:?}");
        assert!(!response.body.contains("last_failures"), "{path}");
    }
    let tried = server.post("/console/api/try/fixture.sum", r#"{"a": 1, "b": 2}"#);
    assert_eq!(tried.status, 404, "{tried:?}");
    assert!(!tried.body.contains("trace"), "{tried:?}");
}

/// A host that answers a remote `fixture.sum` by the value of `a`: what a
/// broken or hostile host of a placement could send back.
fn hostile_host() -> SocketAddr {
    async fn answer(body: axum::body::Bytes) -> axum::response::Response {
        use axum::response::IntoResponse;
        let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let problem = |status: u16, code: &str| {
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/problem+json")],
                json!({"type": "x", "title": "t", "status": status, "detail": "d", "code": code})
                    .to_string(),
            )
                .into_response()
        };
        match input["a"].as_i64() {
            Some(1) => "not json at all".into_response(),
            Some(2) => problem(400, "invalid_input"),
            Some(3) => problem(503, "overloaded"),
            Some(4) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
            Some(5) => problem(400, "negative"),
            Some(6) => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late".into_response()
            }
            _ => axum::Json(json!({"sum": 0})).into_response(),
        }
    }
    // One host names another's service with its series, whatever that
    // host holds.
    serve_router(axum::Router::new().route("/v1/fixture.sum@1", axum::routing::post(answer)))
}

#[test]
fn what_another_host_answers_is_judged_here_and_a_dead_host_is_unavailable() {
    let hosts = mote_server::RemoteHosts::start(None).unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let addr = hostile_host();
    runtime
        .load_remote(
            sum_contract(),
            hosts.host("other", &format!("http://{addr}")).unwrap(),
        )
        .unwrap();
    let code = |a: i64| {
        runtime
            .call("fixture.sum", &json!({"a": a, "b": 0}).to_string())
            .map_err(|f| f.code().to_string())
    };
    // Not JSON, a refusal of what this host admitted, a bare 500: the
    // other host broke the contract.
    assert_eq!(code(1), Err("contract_violation".into()));
    assert_eq!(code(2), Err("contract_violation".into()));
    assert_eq!(code(4), Err("contract_violation".into()));
    // Its platform failures pass through; its declared errors are
    // checked like a guest's (`negative` is due only for a < 0).
    assert_eq!(code(3), Err("overloaded".into()));
    assert_eq!(code(5), Err("contract_violation".into()));
    // A host that never answers is cut at the callee's deadline.
    let started = std::time::Instant::now();
    assert_eq!(code(6), Err("timeout".into()));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // A well-formed answer is held to `ensures`: 7 + 0 is not 0.
    assert_eq!(code(0), Ok(json!({"sum": 0})));
    assert_eq!(code(7), Err("contract_violation".into()));
    // Nobody listening: unavailable, at once.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gone = Runtime::new(RuntimeConfig::default()).unwrap();
    gone.load_remote(
        sum_contract(),
        hosts.host("gone", &format!("http://{dead}")).unwrap(),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let failure = gone.call("fixture.sum", r#"{"a": 1, "b": 2}"#).unwrap_err();
    assert_eq!(failure.code(), "unavailable");
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// A fresh folder under the test's temporary directory.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Serves `runtime` on a peer address of 127.0.0.1 with `peers`, for the
/// rest of the test run.
fn serve_peer(runtime: Runtime, peers: mote_server::PeerAccess) -> SocketAddr {
    let config = ServerConfig {
        peers: Some(peers),
        ..ServerConfig::default()
    };
    let gateway = Arc::new(Gateway::new(runtime, BTreeMap::new(), config).unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        tokio.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            mote_server::serve_to(
                listener,
                gateway,
                mote_server::Audience::Peer,
                std::future::pending(),
            )
            .await
            .unwrap();
        });
    });
    rx.recv().unwrap()
}

/// POSTs `body` to `fixture.sum` at `addr` over TLS with `connector`,
/// naming `caller`; the raw response, or why none came.
fn tls_post(
    connector: tokio_rustls::TlsConnector,
    server: &str,
    addr: SocketAddr,
    caller: &str,
    body: &str,
) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = mote_tls::server_name(server).unwrap();
        let mut stream = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let request = format!(
            "POST /v1/fixture.sum HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nx-mote-caller: {caller}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .map_err(|_| "no answer in 10 s".to_string())?
            .map_err(|e| format!("read: {e}"))?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    })
}

/// A TLS client that trusts the authority in `dir` but shows no
/// certificate of its own.
fn anonymous_client(dir: &Path) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(dir.join("ca.pem")).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(mote_tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[test]
fn hosts_call_each_other_over_mutual_tls_and_nobody_else_gets_in() {
    let app = scratch_dir("mtls-app");
    mote_tls::issue(&app, &["front", "back", "other"]).unwrap();
    let stranger = scratch_dir("mtls-stranger");
    mote_tls::issue(&stranger, &["front"]).unwrap();
    let tls = |dir: &Path, host: &str| mote_tls::PeerTls::load(dir, host).unwrap();
    let host_of = BTreeMap::from([
        ("fixture.sum".to_string(), "back".to_string()),
        ("fixture.caller".to_string(), "front".to_string()),
        ("fixture.spin".to_string(), "other".to_string()),
    ]);
    let caller_contract = || mote_contract::load(&fixtures()["fixture.caller"].0).unwrap();

    // Host `back` serves fixture.sum; it knows fixture.caller, placed on
    // `front`, by its contract.
    let back_runtime = runtime_of(&["fixture.sum"]);
    let back_hosts = mote_server::RemoteHosts::start(Some(tls(&app, "back"))).unwrap();
    back_runtime
        .load_remote(
            caller_contract(),
            back_hosts.host("front", "https://127.0.0.1:1").unwrap(),
        )
        .unwrap();
    let back = serve_peer(
        back_runtime,
        mote_server::PeerAccess {
            tls: tls(&app, "back"),
            host_of: host_of.clone(),
        },
    );

    // Host `front` runs fixture.caller, whose call to fixture.sum crosses
    // to `back` over mutual TLS.
    let front_runtime = runtime_of(&["fixture.caller"]);
    let front_hosts = mote_server::RemoteHosts::start(Some(tls(&app, "front"))).unwrap();
    front_runtime
        .load_remote(
            sum_contract(),
            front_hosts
                .host("back", &format!("https://{back}"))
                .unwrap(),
        )
        .unwrap();
    let local = runtime_of(&["fixture.caller", "fixture.sum"]);
    for n in [0, 7, 1000] {
        assert_eq!(
            front_runtime.call("fixture.caller", &n.to_string()),
            local.call("fixture.caller", &n.to_string()),
            "split over hosts, {n} is answered as in one process"
        );
    }

    let body = r#"{"a": 1, "b": 2}"#;
    let front_tls = tls(&app, "front").connector();
    // The same request, from front's certificate, is served: the
    // refusals below are the certificates', not the client's.
    let served = tls_post(front_tls, "back", back, "fixture.caller", body).unwrap();
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
    // No certificate, or one from another app's authority: no HTTP at all.
    for (who, connector) in [
        ("no certificate", anonymous_client(&app)),
        ("another authority", tls(&stranger, "front").connector()),
    ] {
        let refused = tls_post(connector, "back", back, "fixture.caller", body);
        assert!(
            !matches!(&refused, Ok(text) if text.starts_with("HTTP/")),
            "{who}: {refused:?}"
        );
    }
    // Plain HTTP to the TLS address: no HTTP answer either.
    let mut plain = TcpStream::connect(back).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(
            format!(
                "POST /v1/fixture.sum HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nx-mote-caller: fixture.caller\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP got an answer: {}",
        String::from_utf8_lossy(&answer)
    );
    // Host `other` holds a good certificate, but fixture.caller is not
    // placed on it: it cannot speak for it.
    let forged = tls_post(
        tls(&app, "other").connector(),
        "back",
        back,
        "fixture.caller",
        body,
    )
    .unwrap();
    assert!(forged.starts_with("HTTP/1.1 403"), "{forged}");
    assert!(forged.contains("undeclared_call"), "{forged}");
    assert!(
        forged.contains("served by host `front`") && forged.contains("host `other`'s"),
        "{forged}"
    );
    // And a host that answers with another host's certificate is not the
    // host the caller meant to reach.
    let impostor = serve_peer(
        runtime_of(&["fixture.sum"]),
        mote_server::PeerAccess {
            tls: tls(&app, "other"),
            host_of,
        },
    );
    let fooled = runtime_of(&["fixture.caller"]);
    fooled
        .load_remote(
            sum_contract(),
            front_hosts
                .host("back", &format!("https://{impostor}"))
                .unwrap(),
        )
        .unwrap();
    let failure = fooled.call("fixture.caller", "7").unwrap_err();
    assert_eq!(failure.code(), "unavailable", "{}", failure.message());
    assert!(
        failure.message().contains("TLS handshake"),
        "{}",
        failure.message()
    );
}

#[test]
fn the_admin_address_refuses_host_names_it_was_not_given() {
    let server = Server::start(
        &["fixture.sum"],
        ServerConfig {
            admin_hosts: vec!["ops.internal".into()],
            ..ServerConfig::default()
        },
    );
    // A page at evil.example whose name now resolves to 127.0.0.1 (DNS
    // rebinding): its browser sends its own name.
    for path in ["/console/", "/v1/services", "/metrics"] {
        let refused = server.admin_get_as("evil.example:8081", path);
        assert_eq!(refused.status, 421, "{path}: {}", refused.body);
        assert!(refused.body.contains("unknown_host"), "{}", refused.body);
    }
    for host in [
        "127.0.0.1:8081",
        "localhost",
        "ops.internal:8081",
        "[::1]:8081",
    ] {
        assert_eq!(
            server.admin_get_as(host, "/v1/services").status,
            200,
            "{host}"
        );
    }
    // The public address answers to any name: it is meant to be reached
    // through one.
    let public =
        server.raw(b"GET /v1/services HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n");
    assert_eq!(public.status, 200);
}

/// `fixture.sum` 2.0.0, internal: the same component under a contract
/// whose input is narrower (`a` at most 10), so which series answered
/// shows.
fn sum_v2_internal() -> mote_contract::Contract {
    let text = std::fs::read_to_string(&fixtures()["fixture.sum"].0).unwrap();
    let changed = text
        .replacen("version = \"1.0.0\"", "version = \"2.0.0\"", 1)
        .replacen("visibility = \"public\"", "visibility = \"internal\"", 1)
        .replacen(
            "minimum = -1000000, maximum = 1000000",
            "minimum = -1000000, maximum = 10",
            1,
        );
    let checked = mote_contract::check_source(mote_contract::SourceFile::new("v2.toml", changed));
    checked
        .contract
        .unwrap_or_else(|| panic!("{:#?}", checked.diagnostics))
}

#[test]
fn two_series_are_served_side_by_side_and_the_bare_name_is_the_newest_each_side_may_see() {
    let runtime = runtime_of(&["fixture.sum"]);
    runtime
        .load_file(sum_v2_internal(), &fixtures()["fixture.sum"].1)
        .unwrap();
    let server = Server::serve(runtime, ServerConfig::default());
    let big = r#"{"a": 100, "b": 1}"#;
    // The admin side: the name alone is 2.x, which refuses a = 100.
    server
        .admin_post("/v1/fixture.sum", big)
        .assert_problem(400, "invalid_input");
    assert_eq!(
        server.admin_post("/v1/fixture.sum@1", big).json(),
        json!({"sum": 101})
    );
    let small = server.admin_post("/v1/fixture.sum@2", r#"{"a": 1, "b": 1}"#);
    assert_eq!(small.json(), json!({"sum": 2}));
    // The public side sees 1.x only: the name alone is the newest public
    // series, and 2.x is as missing as a name that does not exist.
    assert_eq!(
        server.post("/v1/fixture.sum", big).json(),
        json!({"sum": 101})
    );
    assert_eq!(
        server.post("/v1/fixture.sum@1", big).json(),
        json!({"sum": 101})
    );
    server
        .post("/v1/fixture.sum@2", r#"{"a": 1, "b": 1}"#)
        .assert_problem(404, "unknown_service");

    // The catalogs list each series by its key, with which is the newest.
    let listed = |catalog: Value| -> Vec<(String, String, bool)> {
        catalog["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_string(),
                    s["series"].as_str().unwrap().to_string(),
                    s["newest"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        listed(server.admin_get("/v1/services").json()),
        [
            ("fixture.sum@1".to_string(), "1".to_string(), false),
            ("fixture.sum@2".to_string(), "2".to_string(), true),
        ]
    );
    assert_eq!(
        listed(server.get("/v1/services").json()),
        [("fixture.sum@1".to_string(), "1".to_string(), true)]
    );
    assert_eq!(
        server.admin_get("/v1/services/fixture.sum").json()["name"],
        "fixture.sum@2"
    );
    // OpenAPI: an operation per series, and one for the name alone that
    // says which it stands for.
    let paths = |document: Value| -> Vec<String> {
        document["paths"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let admin_openapi = server.admin_get("/openapi.json").json();
    assert_eq!(
        paths(admin_openapi.clone()),
        ["/v1/fixture.sum", "/v1/fixture.sum@1", "/v1/fixture.sum@2"]
    );
    let bare = admin_openapi["paths"]["/v1/fixture.sum"]["post"]["description"]
        .as_str()
        .unwrap();
    assert!(bare.contains("the same as `/v1/fixture.sum@2`"), "{bare}");
    assert_eq!(
        paths(server.get("/openapi.json").json()),
        ["/v1/fixture.sum", "/v1/fixture.sum@1"]
    );
    // Metrics count each series apart, a call by the bare name under the
    // series it reached.
    let metrics = scrape(&server.admin_get("/metrics").body);
    assert_eq!(
        metrics.get(r#"mote_calls_total{service="fixture.sum@1",outcome="success"}"#),
        Some(&3.0)
    );
    assert_eq!(
        metrics.get(r#"mote_calls_total{service="fixture.sum@2",outcome="invalid_input"}"#),
        Some(&1.0)
    );
}
