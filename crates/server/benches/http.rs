//! Serving throughput and latency, same run, same machine:
//!
//! 1. `fixture.sum` served by mote-server against a plain axum handler
//!    doing the same JSON work natively, both driven over loopback by the
//!    same keep-alive load generator;
//!    and the same gateway with its live console open: its figures
//!    polled ten times a second (the console's own page polls every
//!    3 s), to show an open console costs the served calls nothing
//!    measurable;
//! 3. (below 2) the same five-step flow with its steps placed on
//!    another host, as `mote up --placement` runs it: every step a
//!    loopback HTTP call whose answer is checked on return;
//! 2. a five-step flow composed in-process against the same five steps as
//!    separate HTTP calls chained over loopback: what composing costs,
//!    beyond the steps' own work, in each;
//! 4. the flow's steps on another host's peer address: plain HTTP,
//!    mutual TLS over kept-alive connections, and mutual TLS with a
//!    handshake for every step.
//!
//! Run: `cargo bench -p mote-server --bench http`
//! (`MOTE_BENCH_SERVING_ONLY=1`: the first part only, for profiles).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that fails should stop

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use hyper::body::Bytes;
use mote_runtime::{Runtime, RuntimeConfig};
use mote_server::{Gateway, ServerConfig};
use serde::{Deserialize, Serialize};
use support::{CONNECTIONS, ROUND, Serving, connect, load, median_round, post_json, serve};

mod support;

/// The allocator the `mote` binary uses, for both servers alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUNDS: usize = 7;
const CHAIN_SAMPLES: usize = 3_000;

#[derive(Deserialize)]
struct Input {
    a: i64,
    b: i64,
}

#[derive(Serialize)]
struct Output {
    sum: i64,
}

/// The plain axum baseline: parse, check the range the contract allows,
/// add, serialize.
async fn native_sum(body: Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    match serde_json::from_slice::<Input>(&body) {
        Ok(input) if input.a.abs() <= 1_000_000 && input.b.abs() <= 1_000_000 => {
            axum::Json(Output {
                sum: input.a + input.b,
            })
            .into_response()
        }
        _ => (axum::http::StatusCode::BAD_REQUEST, "invalid input").into_response(),
    }
}

const FLOW: &str = r#"
[service]
name = "bench.flow"
version = "1.0.0"
summary = "Five dependent sums."
visibility = "public"

[input]
type = "object"
required = ["a", "b"]
additionalProperties = false
properties.a = { type = "integer", minimum = 0, maximum = 1000 }
properties.b = { type = "integer", minimum = 0, maximum = 1000 }

[output]
type = "object"
required = ["total"]
additionalProperties = false
properties.total = { type = "integer" }

[[error]]
code = "negative"
summary = "A step refused a negative number."

[flow]
steps = [
  { id = "s1", call = "fixture.sum@^1", input = "{'a': input.a, 'b': input.b}" },
  { id = "s2", call = "fixture.sum@^1", input = "{'a': s1.sum, 'b': 1}" },
  { id = "s3", call = "fixture.sum@^1", input = "{'a': s2.sum, 'b': 1}" },
  { id = "s4", call = "fixture.sum@^1", input = "{'a': s3.sum, 'b': 1}" },
  { id = "s5", call = "fixture.sum@^1", input = "{'a': s4.sum, 'b': 1}" },
]
output = "{'total': s5.sum}"
on_error = { "fixture.sum/negative" = "negative" }
"#;

fn runtime() -> Runtime {
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/sum");
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tmp/fixtures");
    mote_build::ensure_wasm_target().unwrap();
    let source = mote_build::discover(&app).unwrap().remove(0);
    let wasm = mote_build::build(&source, &target).unwrap().unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    runtime
        .load_file(mote_contract::load(&source.contract).unwrap(), &wasm)
        .unwrap();
    let checked = mote_contract::check_source(mote_contract::SourceFile::new("flow.toml", FLOW));
    runtime.load_flow(checked.contract.unwrap()).unwrap();
    runtime
}

/// `fixture.sum`'s input for the load generator's `i`th request.
fn sum_input(i: usize) -> String {
    format!(r#"{{"a": {}, "b": 7}}"#, i % 1000)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let runtime = runtime();
    let gateway =
        Arc::new(Gateway::new(runtime.clone(), BTreeMap::new(), ServerConfig::default()).unwrap());
    let mote = serve("mote-server", Serving::Mote(gateway));
    let watched_gateway =
        Arc::new(Gateway::new(runtime.clone(), BTreeMap::new(), ServerConfig::default()).unwrap());
    let watched = serve("mote-console", Serving::MoteWithConsole(watched_gateway));
    let native = serve(
        "plain-server",
        Serving::Plain(axum::Router::new().route("/v1/fixture.sum", post(native_sum))),
    );
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("load-generator")
        .enable_all()
        .build()
        .unwrap();

    println!(
        "== serving a trivial service ({CONNECTIONS} keep-alive connections, median of {ROUNDS} alternating rounds of {ROUND:?}, loopback)"
    );
    client.block_on(async {
        let mut a = connect(mote).await;
        let mut b = connect(native).await;
        let mut c = connect(watched).await;
        for i in 0..2000 {
            post_json(&mut a, "/v1/fixture.sum", format!(r#"{{"a":{i},"b":1}}"#)).await;
            post_json(&mut b, "/v1/fixture.sum", format!(r#"{{"a":{i},"b":1}}"#)).await;
            post_json(&mut c, "/v1/fixture.sum", format!(r#"{{"a":{i},"b":1}}"#)).await;
        }
    });
    // Alternating short rounds, so that a neighbour's burst on this shared
    // machine lands on both servers alike; each side reports its median
    // round.
    let mut plain_rounds = Vec::new();
    let mut served_rounds = Vec::new();
    let mut watched_rounds = Vec::new();
    for _ in 0..ROUNDS {
        plain_rounds.push(client.block_on(load(native, "/v1/fixture.sum", sum_input)));
        served_rounds.push(client.block_on(load(mote, "/v1/fixture.sum", sum_input)));
        watched_rounds.push(client.block_on(load(watched, "/v1/fixture.sum", sum_input)));
    }
    let total = |rounds: &[support::Load]| rounds.iter().map(|r| r.requests).sum::<usize>();
    let totals = [
        total(&plain_rounds),
        total(&served_rounds),
        total(&watched_rounds),
    ];
    let plain = median_round(plain_rounds);
    let served = median_round(served_rounds);
    let watched = median_round(watched_rounds);
    for (name, l) in [
        ("plain axum, native handler", &plain),
        ("mote up, fixture.sum", &served),
        ("mote up, console polled", &watched),
    ] {
        println!(
            "{name:<28} {:>9.0} req/s   p50 {:>7.1} µs   p99 {:>7.1} µs",
            l.requests_per_second,
            l.p50.as_secs_f64() * 1e6,
            l.p99.as_secs_f64() * 1e6
        );
    }
    println!(
        "mote / plain throughput: {:.0} %",
        100.0 * served.requests_per_second / plain.requests_per_second
    );
    println!(
        "console polled / not: throughput {:.1} %, p50 {:.1} %",
        100.0 * watched.requests_per_second / served.requests_per_second,
        100.0 * watched.p50.as_secs_f64() / served.p50.as_secs_f64()
    );
    // For dividing a profile's samples per thread by the requests each
    // server answered: `MOTE_BENCH_SERVING_ONLY=1 perf record ...` stops
    // here, so that no later part reuses these threads' names.
    println!(
        "requests answered in all rounds: plain {}, mote {}, console polled {}",
        totals[0], totals[1], totals[2]
    );
    if std::env::var_os("MOTE_BENCH_SERVING_ONLY").is_some() {
        return;
    }

    println!("\n== composing five steps (median of {CHAIN_SAMPLES}, one at a time)");
    let input = r#"{"a": 3, "b": 4}"#;
    for _ in 0..500 {
        runtime.call("bench.flow", input).unwrap();
    }
    let steps: Vec<Duration> = (0..CHAIN_SAMPLES)
        .map(|_| {
            let start = Instant::now();
            let mut value = 7;
            for _ in 0..5 {
                let output = runtime
                    .call("fixture.sum", &format!(r#"{{"a": {value}, "b": 1}}"#))
                    .unwrap();
                value = output["sum"].as_i64().unwrap();
            }
            start.elapsed()
        })
        .collect();
    let flow: Vec<Duration> = (0..CHAIN_SAMPLES)
        .map(|_| {
            let start = Instant::now();
            runtime.call("bench.flow", input).unwrap();
            start.elapsed()
        })
        .collect();
    let (chain, flow_over_http) = client.block_on(async {
        let mut sender = connect(mote).await;
        let mut chain = Vec::new();
        for _ in 0..CHAIN_SAMPLES {
            let start = Instant::now();
            let mut value = 7;
            for _ in 0..5 {
                let body = post_json(
                    &mut sender,
                    "/v1/fixture.sum",
                    format!(r#"{{"a": {value}, "b": 1}}"#),
                )
                .await;
                let output: serde_json::Value = serde_json::from_slice(&body).unwrap();
                value = output["sum"].as_i64().unwrap();
            }
            chain.push(start.elapsed());
        }
        let mut flow = Vec::new();
        for _ in 0..CHAIN_SAMPLES {
            let start = Instant::now();
            post_json(&mut sender, "/v1/bench.flow", input.to_string()).await;
            flow.push(start.elapsed());
        }
        (chain, flow)
    });
    let steps = median(steps);
    let flow = median(flow);
    let chain = median(chain);
    let flow_over_http = median(flow_over_http);
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "five direct in-process calls (the steps' own work) {:>8.1} µs",
        micros(steps)
    );
    println!(
        "the five-step flow, in-process                      {:>8.1} µs",
        micros(flow)
    );
    println!(
        "the five steps chained over loopback HTTP           {:>8.1} µs",
        micros(chain)
    );
    println!(
        "the flow called once over loopback HTTP             {:>8.1} µs",
        micros(flow_over_http)
    );
    // The steps on another host: the mote server above, reached as a
    // placement reaches it.
    let hosts = mote_server::RemoteHosts::start(None).unwrap();
    let placed_flow = time_placed_flow(
        &runtime,
        hosts.host("back", &format!("http://{mote}")).unwrap(),
        input,
    );
    println!(
        "the flow, its five steps on another host (placement) {:>8.1} µs",
        micros(placed_flow)
    );
    println!(
        "placement / one process: {:.1}×",
        placed_flow.as_secs_f64() / flow.as_secs_f64()
    );
    let flow_added = flow.saturating_sub(steps);
    let chain_added = chain.saturating_sub(steps);
    println!(
        "added by composing: flow {:.1} µs, chain {:.1} µs; flow / chain = {:.3}",
        micros(flow_added),
        micros(chain_added),
        flow_added.as_secs_f64() / chain_added.as_secs_f64()
    );
    mutual_tls(&runtime, input);
}

/// The five-step flow in a runtime of its own whose `fixture.sum` is
/// reached through `remote`: the median call.
fn time_placed_flow(
    runtime: &Runtime,
    remote: Arc<dyn mote_runtime::RemoteService>,
    input: &str,
) -> Duration {
    let placed = Runtime::new(RuntimeConfig::default()).unwrap();
    let sum = runtime.contract("fixture.sum").unwrap().shared();
    placed.load_remote(sum, remote).unwrap();
    let checked = mote_contract::check_source(mote_contract::SourceFile::new("flow.toml", FLOW));
    placed.load_flow(checked.contract.unwrap()).unwrap();
    for _ in 0..500 {
        placed.call("bench.flow", input).unwrap();
    }
    median(
        (0..CHAIN_SAMPLES)
            .map(|_| {
                let start = Instant::now();
                placed.call("bench.flow", input).unwrap();
                start.elapsed()
            })
            .collect(),
    )
}

/// Steps on another host over its peer address: plain HTTP against
/// mutual TLS, both with kept-alive connections, and mutual TLS with a
/// new connection (and handshake) for every step.
fn mutual_tls(runtime: &Runtime, input: &str) {
    let certificates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tmp/bench-tls");
    let _ = std::fs::remove_dir_all(&certificates);
    mote_tls::issue(&certificates, &["front", "back"]).unwrap();
    let tls = |host: &str| mote_tls::PeerTls::load(&certificates, host).unwrap();
    let host_of = BTreeMap::from([
        ("fixture.sum".to_string(), "back".to_string()),
        ("bench.flow".to_string(), "front".to_string()),
    ]);
    let peer = |peers: Option<mote_server::PeerAccess>| {
        let config = ServerConfig {
            peers,
            ..ServerConfig::default()
        };
        let gateway = Arc::new(Gateway::new(runtime.clone(), BTreeMap::new(), config).unwrap());
        serve("mote-peer", Serving::Peer(gateway))
    };
    let plain = peer(None);
    let secured = peer(Some(mote_server::PeerAccess {
        tls: tls("back"),
        host_of,
    }));
    let plain_hosts = mote_server::RemoteHosts::start(None).unwrap();
    let tls_hosts = mote_server::RemoteHosts::start(Some(tls("front"))).unwrap();
    let over_plain = time_placed_flow(
        runtime,
        plain_hosts
            .host("back", &format!("http://{plain}"))
            .unwrap(),
        input,
    );
    let over_tls = time_placed_flow(
        runtime,
        tls_hosts
            .host("back", &format!("https://{secured}"))
            .unwrap(),
        input,
    );
    let fresh = Arc::new(FreshConnections {
        hosts: tls_hosts,
        url: format!("https://{secured}"),
    });
    let over_fresh_tls = time_placed_flow(runtime, fresh, input);
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    println!("== the five-step flow, its steps on another host's peer address");
    println!(
        "plain HTTP, kept-alive connections             {:>8.1} µs",
        micros(over_plain)
    );
    println!(
        "mutual TLS, kept-alive connections             {:>8.1} µs  ({:.2}× plain)",
        micros(over_tls),
        over_tls.as_secs_f64() / over_plain.as_secs_f64()
    );
    println!(
        "mutual TLS, a new connection for every step    {:>8.1} µs  ({:.2}× plain)",
        micros(over_fresh_tls),
        over_fresh_tls.as_secs_f64() / over_plain.as_secs_f64()
    );
}

/// A way to the other host that opens a new connection for every call:
/// what not reusing connections would cost.
struct FreshConnections {
    hosts: Arc<mote_server::RemoteHosts>,
    url: String,
}

impl mote_runtime::RemoteService for FreshConnections {
    fn call(
        &self,
        call: &mote_runtime::RemoteCall<'_>,
    ) -> Result<mote_runtime::RemoteAnswer, mote_runtime::Failure> {
        self.hosts.host("back", &self.url).unwrap().call(call)
    }
}
