//! Soak: `mote up`'s serving loop held at 80 % of its measured maximum
//! throughput for a long time, with the process's resident memory sampled.
//! It must stay flat, and nothing may fail but the declared errors the
//! inputs ask for (one input in ten has a negative `a`: `negative`, 400).
//!
//! Run: `cargo bench -p mote-server --bench soak`
//! (`MOTE_SOAK_SECONDS`, default 600; `MOTE_SOAK_FRACTION`, default 0.8).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that fails should stop

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use mote_runtime::{Runtime, RuntimeConfig};
use mote_server::{Gateway, ServerConfig};
use support::{CONNECTIONS, Sender, connect};

mod support;

/// The allocator the `mote` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PROBE: Duration = Duration::from_secs(5);
const SAMPLE_EVERY: Duration = Duration::from_secs(30);

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn serve() -> SocketAddr {
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/sum");
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tmp/fixtures");
    mote_build::ensure_wasm_target().unwrap();
    let source = mote_build::discover(&app).unwrap().remove(0);
    let wasm = mote_build::build(&source, &target).unwrap().unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    runtime
        .load_file(mote_contract::load(&source.contract).unwrap(), &wasm)
        .unwrap();
    let gateway =
        Arc::new(Gateway::new(runtime, BTreeMap::new(), ServerConfig::default()).unwrap());
    support::spawn_server("mote-server", move |listener| async move {
        mote_server::serve(listener, gateway, std::future::pending())
            .await
            .unwrap();
    })
}

/// What came back, counted.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    declared: AtomicU64,
    other: AtomicU64,
}

/// One request; input `i` has a negative `a` one time in ten.
async fn request(sender: &mut Sender, addr: &str, i: u64, tally: &Tally) {
    let a = if i.is_multiple_of(10) {
        -1
    } else {
        (i % 1000) as i64
    };
    let body = format!(r#"{{"a": {a}, "b": 7}}"#);
    if sender.ready().await.is_err() {
        tally.other.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let request = hyper::Request::post("/v1/fixture.sum")
        .header("host", addr)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let outcome = match sender.send_request(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let ok = response.into_body().collect().await.is_ok();
            match (ok, status, a < 0) {
                (true, 200, false) => &tally.ok,
                (true, 400, true) => &tally.declared,
                _ => &tally.other,
            }
        }
        Err(_) => &tally.other,
    };
    outcome.fetch_add(1, Ordering::Relaxed);
}

fn main() {
    let seconds: u64 = std::env::var("MOTE_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let fraction: f64 = std::env::var("MOTE_SOAK_FRACTION")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.8);
    let addr = serve();
    let host = addr.to_string();
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("load-generator")
        .enable_all()
        .build()
        .unwrap();

    // The maximum: every connection sends as fast as it is answered.
    let probe = Arc::new(Tally::default());
    client.block_on(async {
        let deadline = Instant::now() + PROBE;
        let mut tasks = Vec::new();
        for c in 0..CONNECTIONS {
            let (probe, host) = (Arc::clone(&probe), host.clone());
            tasks.push(tokio::spawn(async move {
                let mut sender = connect(addr).await;
                let mut i = c as u64;
                while Instant::now() < deadline {
                    request(&mut sender, &host, i, &probe).await;
                    i += CONNECTIONS as u64;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
    let done = probe.ok.load(Ordering::Relaxed) + probe.declared.load(Ordering::Relaxed);
    let maximum = done as f64 / PROBE.as_secs_f64();
    let rate = maximum * fraction;
    println!(
        "maximum {maximum:.0} req/s over {PROBE:?}; soaking at {:.0} % of it ({rate:.0} req/s) for {seconds} s, {CONNECTIONS} connections",
        fraction * 100.0
    );
    println!(
        "{:>8} {:>10} {:>10} {:>10} {:>10}",
        "t (s)", "req/s", "RSS MiB", "declared", "other"
    );

    // The soak: each connection sends on its own schedule, at rate/CONNECTIONS.
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);
    let per_connection = Duration::from_secs_f64(CONNECTIONS as f64 / rate);
    let load = {
        let (tally, host) = (Arc::clone(&tally), host.clone());
        client.spawn(async move {
            let mut tasks = Vec::new();
            for c in 0..CONNECTIONS {
                let (tally, host) = (Arc::clone(&tally), host.clone());
                tasks.push(tokio::spawn(async move {
                    let mut sender = connect(addr).await;
                    let mut ticks = tokio::time::interval(per_connection);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    let mut i = c as u64;
                    while Instant::now() < end {
                        ticks.tick().await;
                        request(&mut sender, &host, i, &tally).await;
                        i += CONNECTIONS as u64;
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
        })
    };
    let mut samples: Vec<f64> = vec![rss_mib()];
    let mut last_done = 0;
    let mut last_time = started;
    while Instant::now() < end {
        std::thread::sleep(SAMPLE_EVERY.min(end.saturating_duration_since(Instant::now())));
        let now = Instant::now();
        let done = tally.ok.load(Ordering::Relaxed) + tally.declared.load(Ordering::Relaxed);
        let rss = rss_mib();
        samples.push(rss);
        println!(
            "{:>8.0} {:>10.0} {:>10.1} {:>10} {:>10}",
            now.duration_since(started).as_secs_f64(),
            (done - last_done) as f64 / now.duration_since(last_time).as_secs_f64(),
            rss,
            tally.declared.load(Ordering::Relaxed),
            tally.other.load(Ordering::Relaxed)
        );
        last_done = done;
        last_time = now;
    }
    client.block_on(load).unwrap();
    let ok = tally.ok.load(Ordering::Relaxed);
    let declared = tally.declared.load(Ordering::Relaxed);
    let other = tally.other.load(Ordering::Relaxed);
    // Flat: the second half's largest sample against the first minute's.
    let settled = samples[samples.len().min(3) - 1];
    let peak = samples.iter().copied().fold(0.0, f64::max);
    println!(
        "served {} ({} successes, {declared} declared errors, {other} other failures); RSS {:.1} MiB after the first minute, peak {:.1} MiB, last {:.1} MiB",
        ok + declared,
        ok,
        settled,
        peak,
        samples.last().copied().unwrap_or_default()
    );
    assert_eq!(other, 0, "only declared errors may fail");
}
