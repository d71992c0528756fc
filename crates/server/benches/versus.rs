//! `mote verify --url` against Schemathesis, on the same services behind
//! the same server: the six wrong twins of the shop's `tax.vat` (as in
//! `crates/cli/tests/wrong-guests`), a lenient one that takes inputs its
//! schema forbids, and a correct one, written natively behind axum so that
//! nothing but the verifier judges them. For each verifier: whether it
//! caught each bug, how, in what time, and requests answered per second
//! (counted at the server).
//!
//! Run: `cargo bench -p mote-server --bench versus` (Schemathesis from PyPI
//! on the PATH: `pip install schemathesis==4.32.5`; without it, only mote
//! runs).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that fails should stop

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::Path as Segment;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The allocator the `mote` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Generated cases each verifier is asked for.
const CASES: u32 = 1_000;

/// The variants, by route name, with the bug each carries.
const VARIANTS: [(&str, &str); 8] = [
    ("correct", "none"),
    ("off-by-one", "one cent too much from 50.00 on"),
    ("rounding", "rounds down instead of half up"),
    ("wrong-code", "an undeclared error code"),
    ("early-error", "`zero_amount` below 0.10, not only at 0"),
    ("missing-field", "no `rate_pct` for BE"),
    ("slow", "takes 200 ms for DE (the contract allows 20)"),
    ("lenient", "accepts properties the schema forbids"),
];

fn problem(status: u16, code: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [(header::CONTENT_TYPE, "application/problem+json")],
        json!({"type": format!("urn:x:{code}"), "title": code, "status": status, "code": code})
            .to_string(),
    )
        .into_response()
}

async fn vat(Segment(variant): Segment<String>, body: axum::body::Bytes) -> Response {
    ANSWERED.fetch_add(1, Ordering::SeqCst);
    // The correct twin with 2 ms of work or distance per request: what
    // `--jobs` is for.
    if variant == "distant" {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let Ok(input) = serde_json::from_slice::<Value>(&body) else {
        return problem(400, "invalid_input");
    };
    // `additionalProperties = false`: only the lenient twin lets extras in.
    let extra = input
        .as_object()
        .is_none_or(|o| o.keys().any(|k| k != "net_cents" && k != "country"));
    if extra && variant != "lenient" {
        return problem(400, "invalid_input");
    }
    // JSON Schema counts `1000.0` as the integer 1000, as mote's host does.
    let net = input["net_cents"]
        .as_f64()
        .filter(|n| n.fract() == 0.0 && n.abs() < 1e15)
        .map(|n| n as i64);
    let (Some(net), Some(country)) = (net, input["country"].as_str()) else {
        return problem(400, "invalid_input");
    };
    if !(0..=100_000_000).contains(&net) || !["NL", "DE", "BE"].contains(&country) {
        return problem(400, "invalid_input");
    }
    let zero = match variant.as_str() {
        "early-error" => net < 10,
        _ => net == 0,
    };
    if zero {
        let code = if variant == "wrong-code" {
            "nothing"
        } else {
            "zero_amount"
        };
        return problem(422, code);
    }
    let rate = if country == "DE" { 19 } else { 21 };
    let mut vat = (net * rate + 50) / 100;
    match variant.as_str() {
        "off-by-one" if net >= 5000 => vat += 1,
        "rounding" => vat = net * rate / 100,
        "slow" if country == "DE" => tokio::time::sleep(Duration::from_millis(200)).await,
        _ => {}
    }
    let output = if variant == "missing-field" && country == "BE" {
        json!({"vat_cents": vat})
    } else {
        json!({"vat_cents": vat, "rate_pct": rate})
    };
    axum::Json(output).into_response()
}

fn serve(openapi: Value) -> SocketAddr {
    let router = axum::Router::new()
        .route("/v1/{variant}", axum::routing::post(vat))
        .route(
            "/openapi/{variant}",
            axum::routing::get(move |Segment(variant): Segment<String>| {
                let mut document = openapi.clone();
                let operation = document["paths"]["/v1/wrong.off-by-one"].take();
                document["paths"] = json!({ format!("/v1/{variant}"): operation });
                async move { axum::Json(document) }
            }),
        );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(listener, router).await.unwrap();
            });
    });
    rx.recv().unwrap()
}

/// Requests the twins have answered, counted at the server.
static ANSWERED: AtomicU64 = AtomicU64::new(0);

/// One verifier's run on one twin.
struct Run {
    verdict: String,
    seconds: f64,
    requests: u64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

fn mote(contract: &mote_contract::Contract, url: &str, jobs: usize) -> Run {
    let target = mote_server::HttpTarget::new(url, contract, Duration::from_secs(5)).unwrap();
    let options = mote_verify::Options {
        seed: 1,
        cases: CASES,
        allow_unreached: Vec::new(),
        jobs: Some(jobs),
        check_refusals: true,
    };
    let before = ANSWERED.load(Ordering::SeqCst);
    let started = Instant::now();
    let report = mote_verify::verify(contract, &target, &options);
    let seconds = started.elapsed().as_secs_f64();
    let verdict = match &report.counterexample {
        Some(c) => format!("caught ({})", c.violation.oracle.as_str()),
        None if report.passed() => "passed".into(),
        None => "failed (coverage)".into(),
    };
    Run {
        verdict,
        seconds,
        requests: ANSWERED.load(Ordering::SeqCst) - before,
    }
}

fn schemathesis(addr: SocketAddr, variant: &str) -> Run {
    let before = ANSWERED.load(Ordering::SeqCst);
    let started = Instant::now();
    // A folder of its own, so that no run replays failures that an
    // earlier run stored.
    let scratch =
        std::env::temp_dir().join(format!("mote-versus-{}-{variant}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let out = Command::new("schemathesis")
        .current_dir(&scratch)
        .args(["run", &format!("http://{addr}/openapi/{variant}")])
        .args(["--checks", "all"])
        .args(["--exclude-checks", "positive_data_acceptance"])
        .args(["--max-examples", &CASES.to_string()])
        .args(["--max-response-time", "0.07"])
        .args(["--generation-database", "none", "--seed", "1"])
        .output()
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&scratch);
    let text = String::from_utf8_lossy(&out.stdout);
    if std::env::var_os("MOTE_VERSUS_SHOW").is_some() {
        println!("{text}");
    }
    let verdict = if out.status.success() {
        "passed".to_string()
    } else {
        let check = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- "))
            .find(|l| l.starts_with("ST"))
            .unwrap_or("a failure");
        format!(
            "caught ({})",
            check.split_whitespace().next().unwrap_or(check)
        )
    };
    Run {
        verdict,
        seconds,
        requests: ANSWERED.load(Ordering::SeqCst) - before,
    }
}

fn main() {
    let contract_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cli/tests/wrong-guests/off-by-one/contract.toml");
    let contract = mote_contract::load(&contract_path).unwrap();
    let addr = serve(mote_server::openapi([(
        contract.service.name.as_str(),
        &contract,
    )]));
    let installed = Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok();
    println!(
        "== mote verify --url vs Schemathesis 4.32.5, seed 1, {CASES} cases each, tax.vat's twins on loopback"
    );
    println!(
        "{:<14} {:<44} {:<26} {:>7}   {:<26} {:>7}",
        "variant", "bug", "mote verify --url", "s", "schemathesis", "s"
    );
    let mut correct = None;
    for (variant, bug) in VARIANTS {
        let url = format!("http://{addr}/v1/{variant}");
        let ours = mote(&contract, &url, 1);
        let theirs = installed.then(|| schemathesis(addr, variant));
        println!(
            "{variant:<14} {bug:<44} {:<26} {:>7.2}   {:<26} {:>7}",
            ours.verdict,
            ours.seconds,
            theirs
                .as_ref()
                .map_or("not installed", |t| t.verdict.as_str()),
            theirs
                .as_ref()
                .map_or("-".into(), |t| format!("{:.2}", t.seconds)),
        );
        if variant == "correct" {
            correct = Some((ours, theirs));
        }
    }
    let Some((ours, theirs)) = correct else {
        return;
    };
    println!("== requests answered per second on the correct twin (counted at the server)");
    let line = |who: &str, run: &Run| {
        println!(
            "{who:<40} {:>6} requests in {:>6.2} s: {:>7.0}/s ({})",
            run.requests,
            run.seconds,
            run.rate(),
            run.verdict
        );
    };
    line("mote verify --url", &ours);
    if let Some(theirs) = &theirs {
        line("schemathesis", theirs);
    }
    let distant = format!("http://{addr}/v1/distant");
    for jobs in [1, 4, 16] {
        line(
            &format!("mote verify --url --jobs {jobs}, 2 ms away"),
            &mote(&contract, &distant, jobs),
        );
    }
}
