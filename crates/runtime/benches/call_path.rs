//! Per-call latency through the full call path, against a native Rust
//! baseline doing the same JSON work, and the cost of loading 1,000
//! services from the compiled cache.
//!
//! Run: `cargo bench -p mote-runtime --bench call_path`

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that fails should stop

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use mote_runtime::{Runtime, RuntimeConfig};
use serde::{Deserialize, Serialize};
use wasmtime::Store;
use wasmtime::component::{Component, ComponentType, Lift, Linker};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CALLS: usize = 20_000;
const WARMUP: usize = 2_000;
const SERVICES: usize = 1_000;

#[derive(Deserialize)]
struct Input {
    a: i64,
    b: i64,
}

#[derive(Serialize)]
struct Output {
    sum: i64,
}

/// What the guest does, natively: parse, add, serialize.
fn native(input: &str) -> String {
    let input: Input = serde_json::from_str(input).unwrap();
    serde_json::to_string(&Output {
        sum: input.a + input.b,
    })
    .unwrap()
}

/// The guest's declared error, as the component hands it over.
#[derive(ComponentType, Lift)]
#[component(record)]
#[allow(dead_code)] // lifted, never read
struct GuestFailure {
    code: String,
    message: String,
}

/// wasmtime alone, under the runtime's own engine settings: for each call
/// a store with fuel and an epoch deadline, the component instantiated
/// from its `InstancePre`, `handle` called, the store dropped. No
/// admission, no JSON on the host, no checks: the floor under mote's
/// call path with a fresh instance per call.
fn wasmtime_alone(runtime: &Runtime, wasm: &[u8]) -> impl FnMut(&str) -> String {
    let engine = runtime.engine().clone();
    let component = Component::new(&engine, wasm).expect("compiles");
    let mut linker = Linker::<()>::new(&engine);
    linker
        .root()
        .instance("mote:service/host@0.1.0")
        .expect("the host interface")
        .func_new("log", |_, _, _, _| Ok(()))
        .expect("log");
    let pre = linker.instantiate_pre(&component).expect("links");
    let handle = component
        .get_export_index(None, "handle")
        .expect("exports handle");
    move |input: &str| {
        let mut store = Store::new(&engine, ());
        store.set_fuel(u64::MAX / 2).expect("fuel");
        store.set_epoch_deadline(1_000_000);
        store.epoch_deadline_trap();
        let instance = pre.instantiate(&mut store).expect("instantiates");
        let handle = instance
            .get_typed_func::<(&str,), (Result<String, GuestFailure>,)>(&mut store, &handle)
            .expect("handle's type");
        let (answer,) = handle.call(&mut store, (input,)).expect("answers");
        answer.ok().expect("a success")
    }
}

struct Percentiles {
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

fn measure(mut f: impl FnMut(usize)) -> Percentiles {
    for i in 0..WARMUP {
        f(i);
    }
    let mut samples = Vec::with_capacity(CALLS);
    for i in 0..CALLS {
        let start = Instant::now();
        f(i);
        samples.push(start.elapsed());
    }
    samples.sort();
    let total: Duration = samples.iter().sum();
    Percentiles {
        p50: samples[CALLS / 2],
        p99: samples[CALLS * 99 / 100],
        mean: total / CALLS as u32,
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = root.join("../../target/tmp/fixtures");
    mote_build::ensure_wasm_target().expect("the guest target is available");
    let sum = mote_build::discover(&root.join("tests/fixtures"))
        .expect("fixtures")
        .into_iter()
        .find(|s| s.package.as_deref() == Some("fixture-sum"))
        .expect("the sum fixture");
    let wasm_path = mote_build::build(&sum, &target)
        .expect("builds")
        .expect("a package");
    let wasm = std::fs::read(&wasm_path).expect("built component");
    let contract_text = std::fs::read_to_string(&sum.contract).expect("contract");
    let contract = |name: &str| {
        mote_contract::check_source(mote_contract::SourceFile::new(
            "contract.toml",
            contract_text.replace("fixture.sum", name),
        ))
        .contract
        .expect("valid")
    };
    let inputs: Vec<String> = (0..64)
        .map(|i| format!(r#"{{"a": {i}, "b": {}}}"#, i * 7))
        .collect();

    // Under callgrind: only the full call path, N calls, on a small pool
    // (valgrind cannot reserve the address space of 128 slots). Compare
    // runs with N and 0 calls: the difference over N is one call.
    //   MOTE_BENCH_CALLS=5000 valgrind --tool=callgrind target/release/deps/call_path-*
    // With MOTE_BENCH_FLOOR=1, the calls go through wasmtime alone.
    if let Some(n) = std::env::var("MOTE_BENCH_CALLS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
    {
        let runtime = Runtime::new(RuntimeConfig {
            max_concurrent_instances: 4,
            ..RuntimeConfig::default()
        })
        .expect("engine");
        runtime.load(contract("fixture.sum"), &wasm).expect("loads");
        // MOTE_BENCH_FLOOR=1: the same N calls through wasmtime alone.
        if std::env::var_os("MOTE_BENCH_FLOOR").is_some() {
            let mut alone = wasmtime_alone(&runtime, &wasm);
            for i in 0..n {
                black_box(alone(&inputs[i % inputs.len()]));
            }
            return;
        }
        for i in 0..n {
            black_box(
                runtime
                    .call("fixture.sum", &inputs[i % inputs.len()])
                    .expect("answers"),
            );
        }
        return;
    }

    // Density first, in a process that has not yet allocated and freed
    // the call benchmarks' memory, so that RSS growth is what loading adds.
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tmp/bench-cache");
    let many = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache),
        ..RuntimeConfig::default()
    })
    .expect("engine");
    many.precompile("fixture.sum", &wasm).expect("precompiles");
    // 1,000 services sharing one component: the component is compiled and
    // kept once; each service adds its compiled contract.
    let rss_before = rss_kib();
    let start = Instant::now();
    let contracts: Vec<_> = (0..SERVICES)
        .map(|i| contract(&format!("bench.sum{i}")))
        .collect();
    let checked = start.elapsed();
    for c in contracts {
        many.load(c, &wasm).expect("loads");
    }
    let elapsed = start.elapsed();
    let rss_after = rss_kib();
    println!(
        "load {SERVICES} services from the compiled cache: {elapsed:.2?} in all ({:.2?} checking the contracts, {:.1?} per load), RSS +{} MiB ({} KiB each)",
        checked,
        (elapsed - checked) / SERVICES as u32,
        (rss_after.saturating_sub(rss_before)) / 1024,
        rss_after.saturating_sub(rss_before) / SERVICES as u64
    );
    assert_eq!(
        many.call("bench.sum999", r#"{"a": 1, "b": 2}"#)
            .expect("answers")["sum"],
        3
    );

    println!("mote-runtime call path, {CALLS} calls after {WARMUP} warm-up calls");
    println!("{:<44} {:>10} {:>10} {:>10}", "", "p50", "p99", "mean");
    let row = |label: &str, p: &Percentiles| {
        println!(
            "{label:<44} {:>10.2?} {:>10.2?} {:>10.2?}",
            p.p50, p.p99, p.mean
        );
    };

    let baseline = measure(|i| {
        black_box(native(black_box(&inputs[i % inputs.len()])));
    });
    row("native Rust (parse, add, serialize)", &baseline);

    let full = Runtime::new(RuntimeConfig::default()).expect("engine");
    full.load(contract("fixture.sum"), &wasm).expect("loads");
    let checked = measure(|i| {
        black_box(
            full.call("fixture.sum", &inputs[i % inputs.len()])
                .expect("answers"),
        );
    });
    row("full call path, fresh instance per call", &checked);

    let schema_only = Runtime::new(RuntimeConfig {
        check_postconditions: false,
        ..RuntimeConfig::default()
    })
    .expect("engine");
    schema_only
        .load(contract("fixture.sum"), &wasm)
        .expect("loads");
    let unchecked = measure(|i| {
        black_box(
            schema_only
                .call("fixture.sum", &inputs[i % inputs.len()])
                .expect("answers"),
        );
    });
    row("  same, without ensures/partition checks", &unchecked);

    let c = contract("fixture.sum");
    let value: serde_json::Value = serde_json::from_str(&inputs[0]).unwrap();
    let checks_only = measure(|i| {
        let input: serde_json::Value = serde_json::from_str(&inputs[i % inputs.len()]).unwrap();
        black_box(c.input.is_valid(&input));
        let bindings = mote_contract::Bindings::new()
            .with("input", &input)
            .with("output", &serde_json::json!({"sum": 1}));
        for e in &c.behavior.ensures {
            black_box(e.eval_bool(&bindings).ok());
        }
        black_box(&value);
    });
    row("  contract checks alone (schema + 1 ensures)", &checks_only);

    let mut alone = wasmtime_alone(&full, &wasm);
    // The floor does the guest's whole work: the same answer as natively.
    assert_eq!(alone(&inputs[3]), native(&inputs[3]));
    let floor = measure(|i| {
        black_box(alone(black_box(&inputs[i % inputs.len()])));
    });
    row("  wasmtime alone (store, instantiate, handle)", &floor);
    println!(
        "ratio full/native at p50: {:.0}x",
        checked.p50.as_secs_f64() / baseline.p50.as_secs_f64()
    );

    // The same calls from two threads at once (this machine has two
    // cores): how the call path scales when a server runs calls in
    // parallel.
    for threads in [1, 2] {
        let start = Instant::now();
        std::thread::scope(|scope| {
            for t in 0..threads {
                let full = &full;
                let inputs = &inputs;
                scope.spawn(move || {
                    for i in 0..CALLS {
                        black_box(
                            full.call("fixture.sum", &inputs[(i + t) % inputs.len()])
                                .expect("answers"),
                        );
                    }
                });
            }
        });
        let elapsed = start.elapsed();
        let calls = CALLS * threads;
        println!(
            "{threads} thread(s) calling at once: {:.0} calls/s, {:.2?} of wall time per call per thread",
            calls as f64 / elapsed.as_secs_f64(),
            elapsed / CALLS as u32
        );
    }
}
