//! `mote up` as a user runs it: build, verify, serve the shop over HTTP,
//! stop on SIGTERM; and `--require-attestation` refusing what no trusted
//! key signed.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shared_target() -> String {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("fixtures")
        .to_str()
        .unwrap()
        .to_string()
}

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mote"));
    command.args(args).current_dir(root()).env("NO_COLOR", "1");
    command
}

fn mote(args: &[&str]) -> Output {
    command(args).output().unwrap()
}

/// A running `mote up`, its service lines and the address it listens on.
struct Up {
    child: Child,
    lines: Vec<String>,
    addr: String,
    admin: String,
}

impl Up {
    /// Starts `mote ARGS`, with the admin address on a free port.
    fn start(args: &[&str]) -> Up {
        let mut args = args.to_vec();
        args.extend(["--admin-addr", "127.0.0.1:0"]);
        Up::spawn(command(&args))
    }

    /// Runs `command` (a `mote up`) until it listens.
    fn spawn(mut command: Command) -> Up {
        let child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut up = Up {
            child,
            lines: Vec::new(),
            addr: String::new(),
            admin: String::new(),
        };
        up.wait_until_listening();
        up
    }

    /// Reads the service lines until the one naming the address.
    fn wait_until_listening(&mut self) {
        let stdout = BufReader::new(self.child.stdout.take().unwrap());
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("listening on http://") {
                self.addr = rest.split_whitespace().next().unwrap().to_string();
                return;
            }
            if let Some(rest) = line.strip_prefix("admin on http://") {
                self.admin = rest.split_whitespace().next().unwrap().to_string();
                continue;
            }
            self.lines.push(line);
        }
        let _ = self.child.wait();
        let mut stderr = String::new();
        let _ = self
            .child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr);
        panic!(
            "mote up stopped before listening:\n{}\n{stderr}",
            self.lines.join("\n")
        );
    }

    /// POSTs JSON to the public address; the status and the body as JSON.
    fn post(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        request(&self.addr, "POST", path, body)
    }

    /// POSTs JSON to the admin address.
    fn post_admin(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        request(&self.admin, "POST", path, body)
    }

    /// GETs `path` from the public or the admin address.
    fn get(&self, admin: bool, path: &str) -> (u16, serde_json::Value) {
        request(
            if admin { &self.admin } else { &self.addr },
            "GET",
            path,
            "",
        )
    }

    /// Sends SIGTERM and waits: the exit status and standard error.
    fn terminate(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (status.code(), stderr)
    }
}

/// One HTTP request on a fresh connection: the status and the body as
/// JSON.
fn request(addr: &str, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    request_with(addr, method, path, "", body)
}

/// [`request`] with extra header lines (each ending in `\r\n`).
fn request_with(
    addr: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (
        status,
        serde_json::from_str(body).unwrap_or_else(|_| serde_json::Value::String(body.to_string())),
    )
}

/// A failed assertion must not leave a server running.
impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_shop_is_verified_served_and_stopped() {
    let target = shared_target();
    let up = Up::start(&[
        "up",
        "examples/shop",
        "--addr",
        "127.0.0.1:0",
        "--cases",
        "100",
        "--seed",
        "3",
        "--target-dir",
        &target,
    ]);
    assert_eq!(up.lines.len(), 10, "{:#?}", up.lines);
    assert!(
        up.lines.iter().all(|l| l.contains("verified")),
        "{:#?}",
        up.lines
    );
    assert!(
        up.lines.iter().any(|l| l.contains("shop.checkout")
            && l.contains("(flow)")
            && l.contains("/v1/shop.checkout")),
        "{:#?}",
        up.lines
    );
    let (status, body) = up.post(
        "/v1/shop.checkout",
        r#"{"items":[{"sku":"MUG-001","unit_cents":1299,"qty":2}],"country":"NL","weight_grams":800}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"net_cents": 2598, "vat_cents": 546, "shipping_cents": 595, "gross_cents": 3739})
    );
    let (status, body) = up.post(
        "/v1/shop.checkout",
        r#"{"items":[],"country":"DE","weight_grams":100}"#,
    );
    assert_eq!(
        (status, &body["code"]),
        (422, &serde_json::json!("empty_cart")),
        "{body}"
    );
    let (code, stderr) = up.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
}

#[test]
fn require_attestation_serves_only_what_a_trusted_key_signed() {
    let app =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("up-attested-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&app);
    let app_arg = app.to_str().unwrap();
    let keys = app.join("keys");
    let target = shared_target();
    let attestations = app.join("attestations");
    let public = keys.join("mote-key.pub");
    assert_eq!(
        mote(&["new", "demo.served", "--dir", app_arg])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        mote(&["keygen", "--out", keys.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    let strict = [
        "up",
        app_arg,
        "--addr",
        "127.0.0.1:0",
        "--target-dir",
        &target,
        "--attest-dir",
        attestations.to_str().unwrap(),
        "--require-attestation",
        "--trusted-key",
        public.to_str().unwrap(),
    ];

    // Nothing built yet: a strict host never builds, so it says so.
    let _ = std::fs::remove_file(Path::new(&target).join("mote-components/demo_served.wasm"));
    let out = mote(&strict);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("run `mote build` first"), "{stderr}");

    assert_eq!(
        mote(&["build", app_arg, "--target-dir", &target])
            .status
            .code(),
        Some(0)
    );
    let out = mote(&strict);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("demo.served"), "{stderr}");
    assert!(stderr.contains("no attestation"), "{stderr}");

    let out = mote(&[
        "verify",
        app_arg,
        "--cases",
        "50",
        "--seed",
        "1",
        "--target-dir",
        &target,
        "--key",
        keys.join("mote-key.secret").to_str().unwrap(),
        "--attest-dir",
        attestations.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let attested: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(attestations.join("demo.served.json")).unwrap(),
    )
    .unwrap();
    assert!(attested["strength"].as_f64().is_some(), "{attested}");
    let bound = attested["precompiled"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();

    // An attacker swaps the cached compiled code for another service's,
    // and breaks the source so that any build would fail.
    let cache = Path::new(&target).join("mote-cache");
    let (ours, other) = swap_candidates(&cache, &bound);
    std::fs::copy(&other, &ours).unwrap();
    let source = app.join("demo-served/src/lib.rs");
    let mut text = std::fs::read_to_string(&source).unwrap();
    text.push_str("\ncompile_error!(\"a strict host must never build\");\n");
    std::fs::write(&source, text).unwrap();

    let up = Up::start(&strict);
    assert_eq!(up.lines.len(), 1);
    assert!(
        up.lines[0].contains("demo.served") && up.lines[0].contains("attested"),
        "{:?}",
        up.lines
    );
    // The attested code runs, not the swapped one.
    let (status, body) = up.post_admin("/v1/demo.served", r#"{"a": 2, "b": 3}"#);
    assert_eq!((status, body), (200, serde_json::json!({"sum": 5})));
    let (code, stderr) = up.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    std::fs::write(
        &source,
        std::fs::read_to_string(&source)
            .unwrap()
            .replace("compile_error!(\"a strict host must never build\");", ""),
    )
    .unwrap();

    // `mote up --key` signs what it verified at startup, strength included.
    let signed_at_startup = app.join("signed-at-startup");
    let up = Up::start(&[
        "up",
        app_arg,
        "--addr",
        "127.0.0.1:0",
        "--target-dir",
        &target,
        "--cases",
        "50",
        "--key",
        keys.join("mote-key.secret").to_str().unwrap(),
        "--attest-dir",
        signed_at_startup.to_str().unwrap(),
    ]);
    assert!(up.lines[0].contains("verified"), "{:?}", up.lines);
    let (code, stderr) = up.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    let attested: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(signed_at_startup.join("demo.served.json")).unwrap(),
    )
    .unwrap();
    assert!(attested["strength"].as_f64().is_some(), "{attested}");
    let _ = std::fs::remove_dir_all(&app);
}

/// In the compile cache: the file holding the compiled code with sha-256
/// `bound` (found by content), and some other service's compiled code.
fn swap_candidates(cache: &Path, bound: &str) -> (PathBuf, PathBuf) {
    use sha2::{Digest, Sha256};
    let mut ours = None;
    let mut other = None;
    for entry in std::fs::read_dir(cache).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "cwasm") {
            continue;
        }
        let digest = Sha256::digest(std::fs::read(&path).unwrap());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        if format!("sha256:{hex}") == bound {
            ours = Some(path);
        } else {
            other = Some(path);
        }
    }
    (
        ours.expect("the attested code is in the cache"),
        other.expect("some other compiled code is in the cache"),
    )
}

/// A stand-in OTLP/HTTP collector: answers every request with an empty
/// protobuf message and hands each (path, body) to the test.
fn collector() -> (String, std::sync::mpsc::Receiver<(String, Vec<u8>)>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
            let mut length = 0;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            let _ = tx.send((path, body));
        }
    });
    (format!("http://{addr}"), rx)
}

#[test]
fn call_spans_are_exported_over_otlp_when_an_endpoint_is_set() {
    let (endpoint, received) = collector();
    let target = shared_target();
    let mut up = command(&[
        "up",
        "examples/shop",
        "--addr",
        "127.0.0.1:0",
        "--no-verify",
        "--target-dir",
        &target,
        "--admin-addr",
        "127.0.0.1:0",
        "--identity-header",
        "X-Forwarded-User",
    ]);
    up.env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint);
    let up = Up::spawn(up);
    let body = r#"{"items":[{"sku":"MUG-001","unit_cents":1299,"qty":2}],"country":"NL","weight_grams":800}"#;
    let (status, answer) = request_with(
        &up.addr,
        "POST",
        "/v1/shop.checkout",
        "X-Forwarded-User: alice@example.test\r\n",
        body,
    );
    assert_eq!(status, 200, "{answer}");
    // Stopping flushes the batch.
    let (code, stderr) = up.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    let (path, body) = received
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the collector received spans");
    assert_eq!(path, "/v1/traces");
    let body = String::from_utf8_lossy(&body);
    for expected in [
        "shop.checkout",
        "cart.total",
        "tax.vat",
        "shipping.quote",
        "success",
        "client_identity",
        "x-forwarded-user=alice@example.test",
    ] {
        assert!(
            body.contains(expected),
            "no {expected} in the exported spans"
        );
    }
}

#[test]
fn nothing_is_exported_without_an_endpoint() {
    // The same server with no OTLP variables: it starts, answers and
    // stops without trying to reach a collector (which would print a
    // warning on standard error).
    let target = shared_target();
    let up = Up::start(&[
        "up",
        "examples/shop",
        "--addr",
        "127.0.0.1:0",
        "--no-verify",
        "--target-dir",
        &target,
    ]);
    assert_eq!(
        up.post_admin("/v1/tax.vat@1", r#"{"net_cents":100,"country":"NL"}"#)
            .0,
        200
    );
    let (code, stderr) = up.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.to_lowercase().contains("otlp"), "{stderr}");
    assert!(!stderr.to_lowercase().contains("export"), "{stderr}");
}

#[test]
fn internal_services_are_invisible_from_the_public_address_and_reachable_from_the_admin_one() {
    let target = shared_target();
    let up = Up::start(&[
        "up",
        "examples/shop",
        "--addr",
        "127.0.0.1:0",
        "--no-verify",
        "--target-dir",
        &target,
    ]);
    let vat = r#"{"net_cents":100,"country":"NL"}"#;
    // An internal service answers exactly as a name that does not exist.
    let (status, internal) = up.post("/v1/tax.vat@1", vat);
    let (missing_status, missing) = up.post("/v1/no.such", vat);
    assert_eq!((status, missing_status), (404, 404));
    assert_eq!(internal["code"], "unknown_service");
    assert_eq!(internal["code"], missing["code"]);
    assert_eq!(internal["title"], missing["title"]);
    assert_eq!(
        internal["detail"]
            .as_str()
            .unwrap()
            .replace("tax.vat@1", "X"),
        missing["detail"].as_str().unwrap().replace("no.such", "X")
    );
    assert_eq!(up.get(false, "/v1/services/tax.vat@1").0, 404);
    // The name alone is the newest public series there: 2.x, public, while
    // 1.x is internal.
    let (status, newest) = up.post(
        "/v1/tax.vat",
        r#"{"net_cents":100,"country":"NL","category":"standard"}"#,
    );
    assert_eq!(status, 200, "{newest}");
    assert_eq!(newest["rate_bp"], 2100);
    // The public catalog and OpenAPI list the entry points only.
    let (_, catalog) = up.get(false, "/v1/services");
    let names: Vec<&str> = catalog["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "inventory.reserve",
            "inventory.restock",
            "shop.checkout",
            "tax.vat@2"
        ]
    );
    let (_, openapi) = up.get(false, "/openapi.json");
    let paths: Vec<&String> = openapi["paths"].as_object().unwrap().keys().collect();
    assert_eq!(
        paths,
        [
            "/v1/inventory.reserve",
            "/v1/inventory.restock",
            "/v1/shop.checkout",
            "/v1/tax.vat",
            "/v1/tax.vat@2"
        ]
    );
    assert_eq!(
        up.get(false, "/metrics").0,
        404,
        "metrics name every service"
    );
    // The public flow still reaches its internal callees.
    let (status, body) = up.post(
        "/v1/shop.checkout",
        r#"{"items":[{"sku":"MUG-001","unit_cents":1299,"qty":2}],"country":"NL","weight_grams":800}"#,
    );
    assert_eq!(status, 200, "{body}");
    // The admin address serves and lists everything.
    assert_eq!(up.post_admin("/v1/tax.vat@1", vat).0, 200);
    let (_, catalog) = up.get(true, "/v1/services");
    assert_eq!(catalog["services"].as_array().unwrap().len(), 10);
    let (status, metrics) = up.get(true, "/metrics");
    assert_eq!(status, 200);
    assert!(metrics.as_str().unwrap().contains("tax.vat"));
    let (code, stderr) = up.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}

/// Ports free right now, for a placement file that must name them.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// Writes a placement file (`tag` names its folder) giving each host a
/// free port and its `services = [...]` or `rest = true` line; the file's
/// path and the ports, in order.
fn write_placement(tag: &str, hosts: &[(&str, &str)]) -> (String, Vec<u16>) {
    write_placement_over("http", tag, hosts)
}

/// [`write_placement`] with `scheme` (`http` or `https`) URLs.
fn write_placement_over(scheme: &str, tag: &str, hosts: &[(&str, &str)]) -> (String, Vec<u16>) {
    let ports = free_ports(hosts.len());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text: String = hosts
        .iter()
        .zip(&ports)
        .map(|((name, placed), port)| {
            format!("[host.{name}]\nurl = \"{scheme}://127.0.0.1:{port}\"\n{placed}\n\n")
        })
        .collect();
    let path = dir.join("placement.toml");
    std::fs::write(&path, text).unwrap();
    (path.to_string_lossy().into_owned(), ports)
}

/// Starts host `host` of `placement` for the shop.
fn start_host(placement: &str, host: &str, target: &str) -> Up {
    Up::spawn(host_command(placement, host, target))
}

/// `mote up` for host `host` of `placement`, both addresses on free
/// ports, verifying 100 cases a service.
fn host_command(placement: &str, host: &str, target: &str) -> Command {
    command(&[
        "up",
        "examples/shop",
        "--placement",
        placement,
        "--host",
        host,
        "--addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
        "--cases",
        "100",
        "--target-dir",
        target,
    ])
}

/// The whole shop in one process, to compare a split with.
fn one_process(target: &str) -> Up {
    Up::start(&[
        "up",
        "examples/shop",
        "--addr",
        "127.0.0.1:0",
        "--cases",
        "100",
        "--target-dir",
        target,
    ])
}

/// Checkouts that succeed, fail a step, or fail the flow's own check.
const CHECKOUTS: [&str; 6] = [
    r#"{"items":[{"sku":"MUG-001","unit_cents":1299,"qty":2}],"country":"NL","weight_grams":800}"#,
    r#"{"items":[{"sku":"TEA-042","unit_cents":450,"qty":3},{"sku":"MUG-001","unit_cents":1299,"qty":1}],"country":"DE","weight_grams":1200}"#,
    r#"{"items":[{"sku":"MUG-001","unit_cents":1299,"qty":2}],"country":"BE","weight_grams":29000}"#,
    r#"{"items":[{"sku":"MUG-001","unit_cents":0,"qty":2}],"country":"NL","weight_grams":800}"#,
    r#"{"items":[],"country":"DE","weight_grams":100}"#,
    r#"{"items":[],"country":"XX","weight_grams":100}"#,
];

/// Asserts that `split` answers every checkout as `one` does, call ids
/// and details (which may name hosts) aside.
fn answers_as(split: &Up, one: &Up) {
    let without_id = |(status, mut body): (u16, serde_json::Value)| {
        if let Some(problem) = body.as_object_mut() {
            problem.remove("call_id");
            problem.remove("detail");
        }
        (status, body)
    };
    for input in CHECKOUTS {
        let expected = without_id(one.post("/v1/shop.checkout", input));
        assert_eq!(
            without_id(split.post("/v1/shop.checkout", input)),
            expected,
            "{input}"
        );
    }
}

#[test]
fn the_shop_split_over_hosts_speaking_mutual_tls_answers_as_one_process_does() {
    let target = shared_target();
    let (placement, ports) = write_placement_over(
        "https",
        "placed-tls",
        &[
            ("front", r#"services = ["shop.checkout"]"#),
            ("back", "rest = true"),
        ],
    );
    let tls = Path::new(&placement).with_file_name("tls");
    let tls = tls.to_str().unwrap();
    let made = mote(&["keygen", "--app", "--placement", &placement, "--out", tls]);
    assert!(made.status.success(), "{made:?}");
    for file in [
        "ca.pem",
        "ca.key",
        "front.pem",
        "front.key",
        "back.pem",
        "back.key",
    ] {
        assert!(
            Path::new(tls).join(file).is_file(),
            "{file} was not written"
        );
    }
    // Without the certificates, a host of an https placement does not start.
    let refused = mote(&[
        "up",
        "examples/shop",
        "--placement",
        &placement,
        "--host",
        "back",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("give --tls DIR"),
        "{refused:?}"
    );

    let host = |name: &str| {
        let mut command = host_command(&placement, name, &target);
        command.args(["--tls", tls]);
        Up::spawn(command)
    };
    let back = host("back");
    let front = host("front");
    assert!(
        front
            .lines
            .iter()
            .any(|l| l.starts_with("peer on https://127.0.0.1:") && l.contains("mutual TLS")),
        "{:#?}",
        front.lines
    );
    let one = one_process(&target);
    answers_as(&front, &one);
    // The peer address speaks nothing but TLS.
    let mut plain = TcpStream::connect(format!("127.0.0.1:{}", ports[1])).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    drop(front);
    drop(back);
}

#[test]
fn plain_http_between_hosts_stays_on_loopback() {
    let (placement, _) = write_placement(
        "placed-loopback",
        &[
            ("front", r#"services = ["shop.checkout"]"#),
            ("back", "rest = true"),
        ],
    );
    let refused = mote(&[
        "up",
        "examples/shop",
        "--placement",
        &placement,
        "--host",
        "back",
        "--peer-addr",
        "0.0.0.0:0",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("must be on loopback") && stderr.contains("mote keygen --app"),
        "{stderr}"
    );
}

#[test]
fn a_host_refuses_a_placement_that_splits_a_store() {
    let target = shared_target();
    let (placement, _) = write_placement(
        "placed-store-split",
        &[
            (
                "front",
                r#"services = ["shop.checkout", "inventory.restock"]"#,
            ),
            ("back", "rest = true"),
        ],
    );
    let refused = host_command(&placement, "back", &target).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("store-split") && stderr.contains("stock"),
        "{stderr}"
    );
}

#[test]
fn the_shop_split_over_three_hosts_answers_as_one_process_does_and_outlives_a_host() {
    let target = shared_target();
    // The flow on one host, its steps over the two others.
    let (placement, ports) = write_placement(
        "placed",
        &[
            ("front", r#"services = ["shop.checkout"]"#),
            ("middle", r#"services = ["cart.total", "tax.vat"]"#),
            ("back", "rest = true"),
        ],
    );
    let one = one_process(&target);
    let back = start_host(&placement, "back", &target);
    let middle = start_host(&placement, "middle", &target);
    let front = start_host(&placement, "front", &target);
    assert_eq!(
        front.lines.len(),
        2,
        "the front serves the flow alone: {:#?}",
        front.lines
    );
    assert!(
        front
            .lines
            .iter()
            .any(|l| l.starts_with("peer on http://127.0.0.1:"))
    );
    let inputs = CHECKOUTS;
    answers_as(&front, &one);
    // An internal service is served to the other hosts at the peer
    // address, to a caller that declares the call, and still not on the
    // public address.
    let peer = format!("127.0.0.1:{}", ports[1]);
    let vat = r#"{"net_cents":1000,"country":"NL"}"#;
    let as_caller = |caller: &str| {
        request_with(
            &peer,
            "POST",
            "/v1/tax.vat@1",
            &format!("x-mote-caller: {caller}\r\n"),
            vat,
        )
    };
    let (status, body) = as_caller("shop.checkout");
    assert_eq!(status, 200, "{body}");
    // The caller declares `tax.vat@^1`: 2.x is not for it.
    let (status, body) = request_with(
        &peer,
        "POST",
        "/v1/tax.vat@2",
        "x-mote-caller: shop.checkout@1\r\n",
        r#"{"net_cents":1000,"country":"NL","category":"standard"}"#,
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("does not declare a call to `tax.vat` 2.0.0"),
        "{body}"
    );
    for (caller, why) in [
        ("cart.total", "does not declare a call to `tax.vat`"),
        ("no.such", "no service `no.such`"),
    ] {
        let (status, body) = as_caller(caller);
        assert_eq!(
            (status, &body["code"]),
            (403, &serde_json::json!("undeclared_call")),
            "{body}"
        );
        assert!(
            body["detail"].as_str().unwrap_or_default().contains(why),
            "{body}"
        );
    }
    let (status, body) = request(&peer, "POST", "/v1/tax.vat@1", vat);
    assert_eq!(
        (status, &body["code"]),
        (403, &serde_json::json!("undeclared_call")),
        "{body}"
    );
    assert_eq!(
        middle
            .post("/v1/tax.vat@1", r#"{"net_cents":1000,"country":"NL"}"#)
            .0,
        404
    );

    // A host down: a prompt `unavailable`, naming no host to the client.
    drop(middle);
    let started = std::time::Instant::now();
    let (status, body) = front.post("/v1/shop.checkout", inputs[0]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        (status, &body["code"]),
        (503, &serde_json::json!("unavailable")),
        "{body}"
    );
    assert!(
        !body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("127.0.0.1"),
        "{body}"
    );
    // Back again: calls recover without restarting the others.
    let _middle = start_host(&placement, "middle", &target);
    let (status, body) = front.post("/v1/shop.checkout", inputs[0]);
    assert_eq!(status, 200, "{body}");
    drop(back);
}

/// `mote up` for host `host` of `placement`, exporting spans to `endpoint`.
fn start_traced_host(placement: &str, host: &str, target: &str, endpoint: &str) -> Up {
    let mut up = host_command(placement, host, target);
    up.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
    Up::spawn(up)
}

#[test]
fn one_trace_spans_the_hosts_a_call_crosses() {
    let (endpoint, received) = collector();
    let target = shared_target();
    let (placement, _) = write_placement(
        "traced",
        &[
            ("front", r#"services = ["shop.checkout"]"#),
            ("back", "rest = true"),
        ],
    );
    let back = start_traced_host(&placement, "back", &target, &endpoint);
    let front = start_traced_host(&placement, "front", &target, &endpoint);
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let (status, answer) = request_with(
        &front.addr,
        "POST",
        "/v1/shop.checkout",
        &format!("traceparent: 00-{trace_id}-00f067aa0ba902b7-01\r\n"),
        r#"{"items":[{"sku":"MUG-001","unit_cents":1299,"qty":2}],"country":"NL","weight_grams":800}"#,
    );
    assert_eq!(status, 200, "{answer}");
    let id: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    // Each host flushes its spans as it stops: the front's first, then
    // the back's, both in the client's trace.
    for (host, up) in [("front", front), ("back", back)] {
        let (code, stderr) = up.terminate();
        assert_eq!(code, Some(0), "{stderr}");
        let (_, body) = received
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("host {host} exported no spans"));
        assert!(
            body.windows(16).any(|w| w == id.as_slice()),
            "host {host}'s spans are not in the client's trace"
        );
        let text = String::from_utf8_lossy(&body);
        let called = if host == "front" {
            "shop.checkout"
        } else {
            "tax.vat"
        };
        assert!(
            text.contains(called),
            "host {host} exported no span of {called}"
        );
    }
}

/// A folder for one test's files under the shared test directory.
fn scratch(tag: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start_with_store(target: &str, store: &str) -> Up {
    Up::start(&[
        "up",
        "examples/shop",
        "--addr",
        "127.0.0.1:0",
        "--cases",
        "30",
        "--seed",
        "5",
        "--target-dir",
        target,
        "--store",
        store,
    ])
}

#[test]
fn racing_reservations_never_oversell_and_answered_writes_survive_a_kill() {
    let dir = scratch("stores");
    let store = format!("sqlite:{}", dir.join("state.sqlite").display());
    races_and_survives(&store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same over PostgreSQL, in a schema of its own, when the environment
/// names a database (`.ci/run` starts one and sets `MOTE_TEST_POSTGRES`).
#[test]
fn racing_reservations_over_postgres_never_oversell_either() {
    let Ok(url) = std::env::var("MOTE_TEST_POSTGRES") else {
        eprintln!("MOTE_TEST_POSTGRES is not set: the PostgreSQL run is skipped");
        return;
    };
    let schema = format!("mote_up_{}", std::process::id());
    mote_state::PostgresBackend::open_in_schema(&url, &schema).unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    races_and_survives(&format!(
        "{url}{separator}options=-c%20search_path%3D{schema}"
    ));
}

/// 150 clients reserve one unit each of 100 at once; then an answered
/// write must survive `kill -9` and a restart on the same `store`.
fn races_and_survives(store: &str) {
    let target = shared_target();
    let up = start_with_store(&target, store);
    let (status, body) = up.post("/v1/inventory.restock", r#"{"sku":"MUG-001","qty":100}"#);
    assert_eq!(
        (status, &body["on_hand"]),
        (200, &serde_json::json!(100)),
        "{body}"
    );

    // 150 clients at once, one unit each, for 100 units.
    let barrier = std::sync::Barrier::new(150);
    let statuses: Vec<(u16, serde_json::Value)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..150)
            .map(|_| {
                let (addr, barrier) = (&up.addr, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    request(
                        addr,
                        "POST",
                        "/v1/inventory.reserve",
                        r#"{"sku":"MUG-001","qty":1}"#,
                    )
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let reserved = statuses.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<_> = statuses
        .iter()
        .filter(|(s, b)| *s == 409 && b["code"] == "insufficient_stock")
        .collect();
    assert_eq!((reserved, refused.len()), (100, 50), "{statuses:?}");
    // Every success saw its own unit: the stock left after each is unique.
    let mut left: Vec<i64> = statuses
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b["on_hand"].as_i64().unwrap())
        .collect();
    left.sort_unstable();
    assert_eq!(left, (0..100).collect::<Vec<_>>());
    // The store's figures: the restock and 100 reservations wrote it; the
    // 50 refusals committed their reads only.
    let (_, metrics) = up.get(true, "/metrics");
    let metrics = metrics.as_str().unwrap();
    let figure = |name: &str| -> u64 {
        let line = format!("mote_{name}_total{{store=\"stock\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("no {line} in {metrics}"))
            .parse()
            .unwrap()
    };
    assert_eq!(figure("store_writes"), 101, "{metrics}");
    assert_eq!(figure("store_commits"), 151, "{metrics}");
    assert!(figure("store_reads") >= 151, "{metrics}");
    let _ = figure("store_conflicts");

    // An answered write is on disk: kill -9 right after the answer.
    let (status, body) = up.post("/v1/inventory.restock", r#"{"sku":"TEE-002","qty":7}"#);
    assert_eq!(status, 200, "{body}");
    let mut up = up;
    up.child.kill().unwrap();
    up.child.wait().unwrap();
    let again = start_with_store(&target, store);
    let (status, body) = again.post("/v1/inventory.reserve", r#"{"sku":"TEE-002","qty":7}"#);
    assert_eq!(
        (status, &body["on_hand"]),
        (200, &serde_json::json!(0)),
        "{body}"
    );
    let (status, body) = again.post("/v1/inventory.reserve", r#"{"sku":"MUG-001","qty":1}"#);
    assert_eq!(
        (status, &body["code"]),
        (409, &serde_json::json!("insufficient_stock")),
        "{body}"
    );
}
