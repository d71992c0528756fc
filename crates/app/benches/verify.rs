//! Verification throughput: generated cases per second against a trivial
//! service in-process, with a native Rust target as the same-run baseline.
//!
//! Run: `cargo bench -p mote-app --bench verify`

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that fails should stop

use std::path::Path;
use std::time::Instant;

use mote_app::InProcess;
use mote_runtime::RuntimeConfig;
use mote_verify::{Answer, Options, verify};
use serde_json::{Value, json};

const CASES: u32 = 5_000;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let fixtures = root.join("crates/runtime/tests/fixtures");
    let target_dir = root.join("target/tmp/fixtures");
    let sum = mote_build::discover(&fixtures)
        .expect("fixtures")
        .into_iter()
        .find(|s| s.package.as_deref() == Some("fixture-sum"))
        .expect("the sum fixture");
    let wasm = mote_build::build(&sum, &target_dir)
        .expect("builds")
        .expect("a package");
    let contract = mote_contract::load(&sum.contract).expect("valid");
    let runtime = mote_runtime::Runtime::new(RuntimeConfig::default()).expect("engine");
    runtime
        .load_file(mote_contract::load(&sum.contract).expect("valid"), &wasm)
        .expect("loads");
    let options = Options {
        seed: 1,
        cases: CASES,
        ..Options::default()
    };

    let native = |input: &Value| {
        let (a, b) = (input["a"].as_i64().unwrap(), input["b"].as_i64().unwrap());
        if a < 0 {
            Answer::Error {
                code: "negative".into(),
                message: "a is negative".into(),
            }
        } else {
            Answer::Output(Ok(json!({"sum": a + b})))
        }
    };
    println!(
        "mote verify throughput, {CASES} generated cases (each pure case calls twice, for determinism)"
    );
    let start = Instant::now();
    let report = verify(&contract, &native, &options);
    let elapsed = start.elapsed();
    assert!(report.passed());
    println!(
        "{:<46} {:>8.0} cases/s ({elapsed:.2?})",
        "native Rust target (generation + oracles only)",
        f64::from(report.cases) / elapsed.as_secs_f64()
    );

    let target = InProcess::new(&runtime, "fixture.sum");
    let start = Instant::now();
    let report = verify(&contract, &target, &options);
    let elapsed = start.elapsed();
    assert!(report.passed(), "{report:?}");
    println!(
        "{:<46} {:>8.0} cases/s ({elapsed:.2?})",
        "fixture.sum in-process, fresh instance per call",
        f64::from(report.cases) / elapsed.as_secs_f64()
    );

    // A service with one callee: fixture.caller calls fixture.sum. Its
    // contract is narrowed to the inputs on which it behaves (the fixture
    // misbehaves on -99 on purpose) and states its output.
    let caller = mote_build::discover(&fixtures)
        .expect("fixtures")
        .into_iter()
        .find(|s| s.package.as_deref() == Some("fixture-caller"))
        .expect("the caller fixture");
    let caller_wasm = mote_build::build(&caller, &target_dir)
        .expect("builds")
        .expect("a package");
    let narrowed = std::fs::read_to_string(&caller.contract)
        .expect("readable")
        .replace(
            "[input]\ntype = \"integer\"",
            "[input]\ntype = \"integer\"\nminimum = 0\nmaximum = 100000",
        )
        .replace(
            "[effects]",
            "[behavior]\nensures = [\"output == 4 * input\"]\n\n[effects]",
        );
    let load = || {
        mote_contract::check_source(mote_contract::SourceFile::new(
            "caller.toml",
            narrowed.clone(),
        ))
        .contract
        .expect("valid")
    };
    runtime.load_file(load(), &caller_wasm).expect("loads");
    let caller_contract = load();
    let options = Options {
        allow_unreached: vec!["negative".into()],
        jobs: None,
        check_refusals: false,
        ..options
    };
    for (name, target) in [
        (
            "fixture.caller, its call answered by a double",
            InProcess::isolated(&runtime, "fixture.caller", 1),
        ),
        (
            "fixture.caller, its call reaching fixture.sum",
            InProcess::new(&runtime, "fixture.caller"),
        ),
    ] {
        let start = Instant::now();
        let report = verify(&caller_contract, &target, &options);
        let elapsed = start.elapsed();
        assert!(report.passed(), "{report:?}");
        println!(
            "{name:<46} {:>8.0} cases/s ({elapsed:.2?})",
            f64::from(report.cases) / elapsed.as_secs_f64()
        );
    }
}
