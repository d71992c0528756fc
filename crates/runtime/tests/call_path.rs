//! The call path against real components: well-behaved and hostile guests
//! from `tests/fixtures`, built once per test run.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use mote_runtime::{Failure, LoadError, PlatformFailure, Runtime, RuntimeConfig};
use mote_state::{Backend, Commit, Entry, MemoryBackend, SqliteBackend, StateError};
use serde_json::json;

/// Contract and component of every fixture, by service name.
fn fixtures() -> &'static HashMap<String, (PathBuf, PathBuf)> {
    static BUILT: OnceLock<HashMap<String, (PathBuf, PathBuf)>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
        mote_build::ensure_wasm_target().expect("the guest target is available");
        let mut built = HashMap::new();
        for service in mote_build::discover(&app).expect("fixtures are readable") {
            let wasm = mote_build::build(&service, &target)
                .unwrap_or_else(|e| panic!("{e}"))
                .expect("every fixture is a cargo package");
            let contract =
                mote_contract::load(&service.contract).expect("fixture contracts are valid");
            built.insert(
                contract.service.name.to_string(),
                (service.contract.clone(), wasm),
            );
        }
        built
    })
}

fn load(runtime: &Runtime, name: &str) -> Result<mote_runtime::LoadedArtefact, LoadError> {
    let (contract, wasm) = &fixtures()[name];
    runtime.load_file(mote_contract::load(contract).expect("valid"), wasm)
}

/// A runtime with the named fixtures loaded.
fn runtime(names: &[&str]) -> Runtime {
    let runtime = Runtime::new(RuntimeConfig::default()).expect("engine starts");
    for name in names {
        load(&runtime, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    runtime
}

fn platform(result: Result<serde_json::Value, Failure>) -> (PlatformFailure, String) {
    match result {
        Err(Failure::Platform { kind, message }) => (kind, message),
        other => panic!("expected a platform failure, got {other:?}"),
    }
}

fn assert_still_serves(runtime: &Runtime) {
    assert_eq!(
        runtime.call("fixture.sum", r#"{"a": 20, "b": 22}"#),
        Ok(json!({"sum": 42}))
    );
}

#[test]
fn a_well_behaved_service_answers() {
    let rt = runtime(&["fixture.sum"]);
    assert_eq!(
        rt.call("fixture.sum", r#"{"a": 2, "b": 3}"#),
        Ok(json!({"sum": 5}))
    );
}

#[test]
fn a_declared_error_comes_back_with_its_status() {
    let rt = runtime(&["fixture.sum"]);
    assert_eq!(
        rt.call("fixture.sum", r#"{"a": -1, "b": 3}"#),
        Err(Failure::Declared {
            code: "negative".into(),
            message: "a is negative".into(),
            status: 400
        })
    );
}

#[test]
fn bad_input_is_refused_before_the_guest_runs() {
    let rt = runtime(&["fixture.sum"]);
    for (input, why) in [
        ("{not json", "not JSON"),
        (r#"{"a": 1}"#, "input schema"),
        (r#"{"a": 1, "b": 2, "c": 3}"#, "input schema"),
        (r#"{"a": "1", "b": 2}"#, "input schema"),
        (r#"{"a": 1, "b": 99999999}"#, "input schema"),
    ] {
        let (kind, message) = platform(rt.call("fixture.sum", input));
        assert_eq!(kind, PlatformFailure::InvalidInput, "{input}");
        assert!(message.contains(why), "{input}: {message}");
    }
    let huge = format!(
        r#"{{"a": 1, "b": 2, "pad": "{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let (kind, message) = platform(rt.call("fixture.sum", &huge));
    assert_eq!(kind, PlatformFailure::InvalidInput);
    assert!(message.contains("limit"), "{message}");
}

#[test]
fn an_infinite_loop_times_out_and_the_host_serves_on() {
    let rt = runtime(&["fixture.spin", "fixture.sum"]);
    let started = std::time::Instant::now();
    let (kind, message) = platform(rt.call("fixture.spin", "1"));
    assert_eq!(kind, PlatformFailure::Timeout, "{message}");
    // A call from outside ran out of its own time, not a caller's.
    assert!(message.contains("did not finish within"), "{message}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_still_serves(&rt);
}

#[test]
fn a_memory_bomb_is_resource_exhausted_and_the_host_serves_on() {
    let rt = runtime(&["fixture.memory-bomb", "fixture.sum"]);
    let (kind, message) = platform(rt.call("fixture.memory-bomb", "1"));
    assert_eq!(kind, PlatformFailure::ResourceExhausted, "{message}");
    assert!(message.contains("16 MiB"), "{message}");
    assert_still_serves(&rt);
}

thread_local! {
    /// Where this thread's log lines go while a test captures them.
    static CAPTURED: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
}

/// Writes to the capturing thread's buffer, or nowhere.
struct ThreadBuffer;

impl std::io::Write for ThreadBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        CAPTURED.with(|captured| {
            if let Some(buffer) = captured.borrow_mut().as_mut() {
                buffer.extend_from_slice(bytes);
            }
        });
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the runtime logs while `f` runs on this thread. One subscriber
/// serves the whole test binary (scoped ones race with tracing's shared
/// per-callsite interest when tests run side by side); each thread's lines
/// go to that thread's capture.
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| ThreadBuffer)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
    CAPTURED.with(|captured| *captured.borrow_mut() = Some(Vec::new()));
    let result = f();
    let bytes = CAPTURED.with(|captured| captured.borrow_mut().take().unwrap_or_default());
    (result, String::from_utf8_lossy(&bytes).into_owned())
}

#[test]
fn a_panic_is_a_trap_whose_message_goes_to_the_log_not_the_failure() {
    let rt = runtime(&["fixture.panic", "fixture.sum"]);
    let (result, log) = logged(|| rt.call("fixture.panic", "1"));
    let (kind, message) = platform(result);
    assert_eq!(kind, PlatformFailure::Trap);
    assert!(!message.contains("SECRET"), "{message}");
    assert!(
        log.contains("the guest gave up on 1: SECRET-7f3a9c"),
        "{log}"
    );
    assert_still_serves(&rt);
    assert_eq!(rt.call("fixture.panic", "-1"), Ok(json!(-1)));
}

#[test]
fn a_guest_that_overflows_its_stack_traps_and_the_next_call_is_clean() {
    let rt = runtime(&["fixture.deep", "fixture.sum"]);
    // Each level keeps 1 KiB on the stack in linear memory; 100,000 levels
    // are far past Rust's 1 MiB stack for this target.
    assert_eq!(rt.call("fixture.deep", "64"), Ok(json!(65)));
    let (kind, message) = platform(rt.call("fixture.deep", "100000"));
    assert_eq!(kind, PlatformFailure::Trap, "{message}");
    // The stack sits below everything else in memory: the overflow ran off
    // the bottom of memory, not into the guest's data, and the next
    // instance starts clean and answers.
    assert_eq!(rt.call("fixture.deep", "64"), Ok(json!(65)));
    assert_still_serves(&rt);
}

#[test]
fn a_sleeping_guest_traps_at_once_and_holds_nothing() {
    let rt = runtime(&["fixture.sleeper", "fixture.sum"]);
    let started = std::time::Instant::now();
    let (kind, message) = platform(rt.call("fixture.sleeper", "1"));
    assert_eq!(kind, PlatformFailure::Trap, "{message}");
    // No host function sleeps: std's sleep has nothing to call.
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_still_serves(&rt);
}

#[test]
fn a_guest_that_floods_the_log_is_capped_and_still_answers() {
    let rt = runtime(&["fixture.flooder"]);
    let (result, log) = logged(|| rt.call("fixture.flooder", "100000"));
    assert_eq!(result, Ok(json!(100000)));
    let cap = RuntimeConfig::default();
    let kept = log.lines().filter(|l| l.contains("xxxxxxxx")).count();
    assert!(kept <= cap.max_log_lines_per_call, "{kept} lines kept");
    assert!(
        log.len() < cap.max_log_bytes_per_call * 2,
        "{} bytes logged",
        log.len()
    );
    assert!(log.contains("dropped_lines="), "{log}");
}

#[test]
fn an_answer_over_the_host_s_size_limit_is_resource_exhausted() {
    let rt = runtime(&["fixture.big-answer"]);
    assert_eq!(rt.call("fixture.big-answer", "3"), Ok(json!("yyy")));
    let over = RuntimeConfig::default().max_answer_bytes + 1;
    let (kind, message) = platform(rt.call("fixture.big-answer", &over.to_string()));
    assert_eq!(kind, PlatformFailure::ResourceExhausted, "{message}");
}

#[test]
fn a_guest_looping_over_calls_is_stopped_at_its_own_deadline() {
    let rt = runtime(&["fixture.looper", "fixture.spin", "fixture.sum"]);
    let started = std::time::Instant::now();
    let (kind, message) = platform(rt.call("fixture.looper", "1"));
    assert_eq!(kind, PlatformFailure::Timeout, "{message}");
    // 300 ms of its own; no nested call may outlive it.
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_still_serves(&rt);
}

#[test]
fn no_way_out_of_the_sandbox_works() {
    let rt = runtime(&["fixture.escape"]);
    let (result, log) = logged(|| rt.call("fixture.escape", "22"));
    assert_eq!(
        result,
        Ok(json!({"file": false, "env": false, "net": false, "thread": false})),
        "{log}"
    );
}

#[test]
fn an_integer_written_as_a_float_reaches_the_guest_as_an_integer() {
    let rt = runtime(&["fixture.sum"]);
    for input in [
        r#"{"a": 2.0, "b": 3}"#,
        r#"{"b": 3e0, "a": 2}"#,
        r#"{"a": 2, "\u0062": 3}"#,
    ] {
        assert_eq!(
            rt.call("fixture.sum", input),
            Ok(json!({"sum": 5})),
            "{input}"
        );
    }
}

#[test]
fn output_breaking_the_schema_is_a_contract_violation() {
    let rt = runtime(&["fixture.bad-output", "fixture.sum"]);
    let (kind, message) = platform(rt.call("fixture.bad-output", "7"));
    assert_eq!(kind, PlatformFailure::ContractViolation);
    assert!(message.contains("output schema"), "{message}");
    assert_still_serves(&rt);
}

#[test]
fn an_undeclared_error_code_is_a_contract_violation() {
    let rt = runtime(&["fixture.bad-code", "fixture.sum"]);
    let (kind, message) = platform(rt.call("fixture.bad-code", "7"));
    assert_eq!(kind, PlatformFailure::ContractViolation);
    assert!(message.contains("surprise"), "{message}");
    assert_eq!(
        rt.call("fixture.bad-code", "-7").unwrap_err().code(),
        "too_small"
    );
    assert_still_serves(&rt);
}

#[test]
fn ensures_and_the_error_partition_are_enforced_on_every_call() {
    let rt = runtime(&["fixture.off-by-one"]);
    assert_eq!(rt.call("fixture.off-by-one", "7"), Ok(json!(8)));
    let (kind, message) = platform(rt.call("fixture.off-by-one", "60"));
    assert_eq!(kind, PlatformFailure::ContractViolation);
    assert!(message.contains("output == input + 1"), "{message}");
    let (kind, message) = platform(rt.call("fixture.off-by-one", "0"));
    assert_eq!(kind, PlatformFailure::ContractViolation);
    assert!(message.contains("`zero`"), "{message}");
}

#[test]
fn with_postconditions_off_only_the_output_schema_is_checked() {
    let rt = Runtime::new(RuntimeConfig {
        check_postconditions: false,
        ..RuntimeConfig::default()
    })
    .expect("engine starts");
    load(&rt, "fixture.off-by-one").expect("loads");
    assert_eq!(rt.call("fixture.off-by-one", "60"), Ok(json!(62)));
}

#[test]
fn a_component_importing_wasi_is_refused_at_load_naming_it() {
    let rt = Runtime::new(RuntimeConfig::default()).expect("engine starts");
    let contract = mote_contract::load(&fixtures()["fixture.sum"].0).expect("valid");
    let wasi = br#"(component
        (import "wasi:sockets/tcp@0.2.3" (instance))
        (import "wasi:cli/environment@0.2.3" (instance))
    )"#;
    // wasmtime reads the component's text form here (its `wat` feature).
    match rt.load(contract, wasi) {
        Err(LoadError::RefusedImports { service, refused }) => {
            assert_eq!(service, "fixture.sum");
            let names: Vec<&str> = refused.iter().map(|r| r.import.as_str()).collect();
            assert_eq!(
                names,
                ["wasi:sockets/tcp@0.2.3", "wasi:cli/environment@0.2.3"]
            );
            assert!(
                refused.iter().all(|r| r.reason.contains("no WASI")),
                "{refused:?}"
            );
        }
        other => panic!("expected a WASI component to be refused, got {other:?}"),
    }
    assert!(rt.services().is_empty());
}

#[test]
fn a_clock_or_random_source_used_without_its_declaration_is_refused_at_load() {
    let rt = Runtime::new(RuntimeConfig::default()).expect("engine starts");
    let (_, wasm) = &fixtures()["fixture.entropy"];
    let undeclared = std::fs::read_to_string(&fixtures()["fixture.entropy"].0)
        .unwrap()
        .replace("clock = true\nrandom = true\n", "");
    let checked =
        mote_contract::check_source(mote_contract::SourceFile::new("contract.toml", undeclared));
    let contract = checked.contract.expect("still a valid contract");
    assert!(contract.effects.is_empty());
    match rt.load_file(contract, wasm) {
        Err(LoadError::RefusedImports { refused, .. }) => {
            let reasons: Vec<&str> = refused.iter().map(|r| r.reason.as_str()).collect();
            assert_eq!(refused.len(), 2, "{refused:?}");
            assert!(reasons[0].contains("`clock = true`"), "{reasons:?}");
            assert!(reasons[1].contains("`random = true`"), "{reasons:?}");
        }
        other => panic!("expected the undeclared clock to be refused, got {other:?}"),
    }
}

#[test]
fn a_declared_call_stays_in_process_and_an_undeclared_one_fails() {
    let rt = runtime(&["fixture.caller", "fixture.sum", "fixture.counter"]);
    assert_eq!(rt.call("fixture.caller", "3"), Ok(json!(12)));
    // The callee's declared error reaches the caller, which passes it on.
    assert_eq!(
        rt.call("fixture.caller", "-5").unwrap_err().code(),
        "negative"
    );
    let (kind, message) = platform(rt.call("fixture.caller", "-99"));
    assert_eq!(kind, PlatformFailure::UndeclaredCall, "{message}");
    assert!(message.contains("fixture.counter"), "{message}");
    assert_eq!(rt.call("fixture.caller", "4"), Ok(json!(16)));
}

#[test]
fn a_call_to_a_service_that_is_not_loaded_is_unknown_service() {
    let rt = runtime(&["fixture.caller"]);
    assert_eq!(
        rt.call("fixture.caller", "3").unwrap_err().code(),
        "unknown_service"
    );
    assert_eq!(
        rt.call("no.such.service", "3").unwrap_err().code(),
        "unknown_service"
    );
}

#[test]
fn state_kept_in_a_static_never_survives_a_call() {
    let rt = runtime(&["fixture.counter"]);
    for _ in 0..5 {
        assert_eq!(rt.call("fixture.counter", "0"), Ok(json!(1)));
    }
}

#[test]
fn a_declared_clock_and_random_source_are_real() {
    let rt = runtime(&["fixture.entropy"]);
    let first = rt.call("fixture.entropy", "1").expect("answers");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let read = first["unix_nanos"].as_u64().unwrap();
    assert!(now.abs_diff(read) < 60_000_000_000, "{read} vs {now}");
    let second = rt.call("fixture.entropy", "1").expect("answers");
    assert_ne!(first["random"], second["random"]);
}

#[test]
fn loading_the_same_service_twice_is_refused() {
    let rt = runtime(&["fixture.sum"]);
    assert!(matches!(
        load(&rt, "fixture.sum"),
        Err(LoadError::Duplicate { .. })
    ));
}

/// `fixture.sum` 2.0.0: the same component under a contract whose input
/// is narrower (`a` at most 10), so which version admitted a call shows.
fn sum_v2() -> mote_contract::Contract {
    let (contract, _) = &fixtures()["fixture.sum"];
    let text = std::fs::read_to_string(contract).unwrap();
    let narrowed = text
        .replacen("version = \"1.0.0\"", "version = \"2.0.0\"", 1)
        .replacen(
            "minimum = -1000000, maximum = 1000000",
            "minimum = -1000000, maximum = 10",
            1,
        );
    assert_ne!(narrowed, text);
    let checked = mote_contract::check_source(mote_contract::SourceFile::new("v2.toml", narrowed));
    checked
        .contract
        .unwrap_or_else(|| panic!("{:#?}", checked.diagnostics))
}

#[test]
fn two_series_of_a_service_run_side_by_side_and_each_caller_reaches_its_range() {
    let rt = runtime(&["fixture.sum", "fixture.caller"]);
    let (_, wasm) = &fixtures()["fixture.sum"];
    rt.load_file(sum_v2(), wasm).unwrap();
    assert_eq!(
        rt.services(),
        ["fixture.caller", "fixture.sum@1", "fixture.sum@2"]
    );
    let big = r#"{"a": 100, "b": 1}"#;
    // A bare name is the newest series; `@SERIES` names one.
    assert_eq!(
        rt.call("fixture.sum", big).unwrap_err().code(),
        "invalid_input"
    );
    assert_eq!(
        rt.call("fixture.sum@2", big).unwrap_err().code(),
        "invalid_input"
    );
    assert_eq!(rt.call("fixture.sum@1", big), Ok(json!({"sum": 101})));
    assert_eq!(
        rt.call("fixture.sum@3", big).unwrap_err().code(),
        "unknown_service"
    );
    assert_eq!(rt.key_of("fixture.sum").as_deref(), Some("fixture.sum@2"));
    assert_eq!(rt.key_of("fixture.sum@1").as_deref(), Some("fixture.sum@1"));
    assert_eq!(
        rt.key_of("fixture.caller").as_deref(),
        Some("fixture.caller")
    );
    assert_eq!(
        rt.key_of("fixture.caller@1").as_deref(),
        Some("fixture.caller")
    );
    // The guest declares `fixture.sum@^1`: its call reaches 1.x, which
    // takes 50 where 2.x would refuse it.
    assert_eq!(rt.call("fixture.caller", "50"), Ok(json!(200)));
    // A flow's steps reach the newest series their range accepts.
    rt.load_flow(flow(TWO_WAVES, NEGATIVE)).unwrap();
    assert_eq!(
        rt.call("fixture.flow", r#"{"a": 100, "b": 3}"#),
        Ok(json!({"total": 206}))
    );
    // A trace names the series each step reached.
    let (_, trace) = rt.call_traced("fixture.flow", r#"{"a": 100, "b": 3}"#);
    assert!(
        trace.spans[1..]
            .iter()
            .all(|span| span.service == "fixture.sum@1"),
        "{:?}",
        trace.spans
    );
    let on_two = TWO_WAVES.replace("fixture.sum@^1", "fixture.sum@^2");
    let rt2 = runtime(&["fixture.sum"]);
    rt2.load_file(sum_v2(), wasm).unwrap();
    rt2.load_flow(flow(&on_two, NEGATIVE)).unwrap();
    assert_eq!(
        rt2.call("fixture.flow", r#"{"a": 100, "b": 3}"#)
            .unwrap_err()
            .code(),
        "contract_violation",
        "2.x refuses the step's input, which is the flow's doing"
    );
    // A range no loaded version meets names what is loaded.
    let on_three = TWO_WAVES.replace("fixture.sum@^1", "fixture.sum@^3");
    let rt3 = runtime(&["fixture.sum"]);
    rt3.load_flow(flow(&on_three, NEGATIVE)).unwrap();
    let (kind, message) = platform(rt3.call("fixture.flow", r#"{"a": 1, "b": 3}"#));
    assert_eq!(kind, PlatformFailure::UnknownService, "{message}");
    assert!(
        message.contains("loaded at 1.0.0, outside the declared range ^3"),
        "{message}"
    );
}

#[test]
fn a_second_version_in_one_series_is_refused() {
    let rt = runtime(&["fixture.sum"]);
    let (contract, wasm) = &fixtures()["fixture.sum"];
    let text = std::fs::read_to_string(contract).unwrap().replacen(
        "version = \"1.0.0\"",
        "version = \"1.4.0\"",
        1,
    );
    let minor = mote_contract::check_source(mote_contract::SourceFile::new("v1.4.toml", text))
        .contract
        .unwrap();
    let refused = rt.load_file(minor, wasm).unwrap_err();
    assert!(
        matches!(&refused, LoadError::Duplicate { series, .. } if series == "1"),
        "{refused}"
    );
    assert_eq!(rt.services(), ["fixture.sum"]);
}

/// What `fixture.allocs` must answer for `n`, computed natively.
fn allocs_expected(n: usize) -> serde_json::Value {
    let sum: i64 = (0..n as i64).sum();
    let interleaved = 3 * n.min(5000) as i64;
    let mut map = std::collections::BTreeMap::new();
    for i in 0..n.min(20000) {
        map.insert(i, i * 3);
        if i % 3 == 0 {
            map.remove(&(i / 2));
        }
    }
    let map: i64 = map.values().map(|v| *v as i64).sum();
    json!({
        "sum": sum,
        "interleaved": interleaved,
        "zeroed": true,
        "map": map,
        "big": (600 * 1024 + n) as i64,
    })
}

#[test]
fn the_guest_allocator_gets_every_pattern_right_in_the_arena_and_beyond_it() {
    let rt = runtime(&["fixture.allocs"]);
    // From nothing to past the arena: vectors growing in place, strings
    // moved, a zeroed block where a dirty one was, a map, a big block.
    for n in [0, 1, 7, 1000, 40_000, 200_000] {
        assert_eq!(
            rt.call("fixture.allocs", &n.to_string()),
            Ok(allocs_expected(n)),
            "n = {n}"
        );
    }
    // Each call starts from a clean arena again.
    assert_eq!(rt.call("fixture.allocs", "3"), Ok(allocs_expected(3)));
}

#[test]
fn calls_from_many_threads_at_once_are_independent() {
    let rt = runtime(&["fixture.sum", "fixture.counter"]);
    std::thread::scope(|scope| {
        for t in 0..4_i64 {
            let rt = rt.clone();
            scope.spawn(move || {
                for i in 0..25_i64 {
                    let input = json!({"a": t, "b": i}).to_string();
                    assert_eq!(rt.call("fixture.sum", &input), Ok(json!({"sum": t + i})));
                    assert_eq!(rt.call("fixture.counter", "0"), Ok(json!(1)));
                }
            });
        }
    });
}

#[test]
fn compiled_components_are_cached_by_content() {
    let cache =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let config = RuntimeConfig {
        cache_dir: Some(cache.clone()),
        ..RuntimeConfig::default()
    };
    let rt = Runtime::new(config).expect("engine starts");
    let wasm = std::fs::read(&fixtures()["fixture.sum"].1).expect("built");
    let first = rt.precompile("fixture.sum", &wasm).expect("compiles");
    assert!(first.compiled);
    let second = rt.precompile("fixture.sum", &wasm).expect("cached");
    assert!(!second.compiled);
    assert_eq!(first.path, second.path);
    load(&rt, "fixture.sum").expect("loads from the cache");
    assert_still_serves(&rt);
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn garbage_bytes_are_a_compile_error_not_a_crash() {
    let rt = Runtime::new(RuntimeConfig::default()).expect("engine starts");
    let contract = mote_contract::load(&fixtures()["fixture.sum"].0).expect("valid");
    assert!(matches!(
        rt.load(contract, b"\0asm garbage"),
        Err(LoadError::Compile { .. })
    ));
}

#[test]
fn running_out_of_fuel_is_resource_exhausted() {
    let mut config = RuntimeConfig::default();
    config.default_limits.fuel = 1_000_000;
    let rt = Runtime::new(config).expect("engine starts");
    load(&rt, "fixture.spin").expect("loads");
    load(&rt, "fixture.sum").expect("loads");
    let (kind, message) = platform(rt.call("fixture.spin", "1"));
    assert_eq!(kind, PlatformFailure::ResourceExhausted, "{message}");
    assert!(message.contains("fuel"), "{message}");
    assert_still_serves(&rt);
}

#[test]
fn no_free_instance_slot_is_overloaded() {
    // One slot: the caller holds it, so its nested call finds none free.
    let rt = Runtime::new(RuntimeConfig {
        max_concurrent_instances: 1,
        ..RuntimeConfig::default()
    })
    .expect("engine starts");
    for name in ["fixture.caller", "fixture.sum"] {
        load(&rt, name).expect("loads");
    }
    let (kind, message) = platform(rt.call("fixture.caller", "3"));
    assert_eq!(kind, PlatformFailure::Overloaded, "{message}");
    assert_still_serves(&rt);
}

/// A flow contract over the fixtures, with `body` as its `[flow]` and
/// `extra` after it (errors, behaviour).
fn flow(body: &str, extra: &str) -> mote_contract::Contract {
    let text = format!(
        r#"
[service]
name = "fixture.flow"
version = "1.0.0"
summary = "Sums twice, in two waves."

[input]
type = "object"
required = ["a", "b"]
additionalProperties = false
properties.a = {{ type = "integer", minimum = -1000, maximum = 1000 }}
properties.b = {{ type = "integer", minimum = -1000, maximum = 1000 }}

[output]
type = "object"
required = ["total"]
additionalProperties = false
properties.total = {{ type = "integer" }}

{extra}

[flow]
{body}
"#
    );
    let checked = mote_contract::check_source(mote_contract::SourceFile::new("flow.toml", text));
    checked
        .contract
        .unwrap_or_else(|| panic!("{:#?}", checked.diagnostics))
}

const TWO_WAVES: &str = r#"
steps = [
  { id = "x", call = "fixture.sum@^1", input = "{'a': input.a, 'b': input.b}" },
  { id = "y", call = "fixture.sum@^1", input = "{'a': input.b, 'b': input.a}" },
  { id = "z", call = "fixture.sum@^1", input = "{'a': x.sum, 'b': y.sum}" },
]
output = "{'total': z.sum}"
on_error = { "fixture.sum/negative" = "negative" }
"#;

const NEGATIVE: &str = r#"
[[error]]
code = "negative"
summary = "A step refused a negative number."
status = 409
"#;

#[test]
fn a_flow_composes_its_steps_in_process() {
    let rt = runtime(&["fixture.sum"]);
    rt.load_flow(flow(TWO_WAVES, NEGATIVE)).unwrap();
    assert_eq!(
        rt.call("fixture.flow", r#"{"a": 2, "b": 3}"#),
        Ok(json!({"total": 10}))
    );
    assert_eq!(
        rt.services(),
        vec!["fixture.flow".to_string(), "fixture.sum".to_string()]
    );
}

#[test]
fn a_step_error_becomes_the_flow_error_on_error_names() {
    let rt = runtime(&["fixture.sum"]);
    rt.load_flow(flow(TWO_WAVES, NEGATIVE)).unwrap();
    assert_eq!(
        rt.call("fixture.flow", r#"{"a": -1, "b": 3}"#),
        Err(Failure::Declared {
            code: "negative".into(),
            message: "a is negative".into(),
            status: 409,
        })
    );
}

#[test]
fn an_unmapped_step_error_is_the_flow_breaking_its_contract() {
    let rt = runtime(&["fixture.sum"]);
    let body = TWO_WAVES.replace(r#"on_error = { "fixture.sum/negative" = "negative" }"#, "");
    rt.load_flow(flow(&body, "")).unwrap();
    let (kind, message) = platform(rt.call("fixture.flow", r#"{"a": -1, "b": 3}"#));
    assert_eq!(kind, PlatformFailure::ContractViolation);
    assert!(message.contains("step `x`"), "{message}");
    assert!(message.contains("`negative`"), "{message}");
}

#[test]
fn a_step_input_the_callee_refuses_is_the_flow_s_fault() {
    let rt = runtime(&["fixture.sum"]);
    let body = r#"
steps = [{ id = "x", call = "fixture.sum@^1", input = "{'a': input.a}" }]
output = "{'total': x.sum}"
"#;
    rt.load_flow(flow(body, "")).unwrap();
    let (kind, message) = platform(rt.call("fixture.flow", r#"{"a": 1, "b": 3}"#));
    assert_eq!(kind, PlatformFailure::ContractViolation);
    assert!(
        message.contains("gave fixture.sum an input it refuses"),
        "{message}"
    );
}

#[test]
fn a_flow_output_outside_its_schema_is_a_contract_violation() {
    let rt = runtime(&["fixture.sum"]);
    let body = r#"
steps = [{ id = "x", call = "fixture.sum@^1", input = "input" }]
output = "{'total': string(x.sum)}"
"#;
    rt.load_flow(flow(body, "")).unwrap();
    let (kind, message) = platform(rt.call("fixture.flow", r#"{"a": 1, "b": 3}"#));
    assert_eq!(kind, PlatformFailure::ContractViolation);
    assert!(message.contains("output schema"), "{message}");
}

#[test]
fn a_step_s_platform_failure_passes_through_the_flow() {
    let rt = runtime(&["fixture.spin", "fixture.sum"]);
    let body = r#"
steps = [
  { id = "x", call = "fixture.sum@^1", input = "input" },
  { id = "s", call = "fixture.spin@^1", input = "input.a" },
]
output = "{'total': x.sum}"
"#;
    rt.load_flow(flow(body, "")).unwrap();
    let (kind, _) = platform(rt.call("fixture.flow", r#"{"a": 1, "b": 3}"#));
    assert_eq!(kind, PlatformFailure::Timeout);
    assert_still_serves(&rt);
}

#[test]
fn a_flow_calling_a_missing_service_fails_as_unknown_service() {
    let rt = runtime(&[]);
    rt.load_flow(flow(TWO_WAVES, NEGATIVE)).unwrap();
    let (kind, message) = platform(rt.call("fixture.flow", r#"{"a": 1, "b": 3}"#));
    assert_eq!(kind, PlatformFailure::UnknownService);
    assert!(message.contains("fixture.sum"), "{message}");
}

#[test]
fn load_and_load_flow_refuse_the_other_kind() {
    let rt = runtime(&[]);
    let (contract, _) = &fixtures()["fixture.sum"];
    assert!(matches!(
        rt.load_flow(mote_contract::load(contract).unwrap()),
        Err(LoadError::NotAFlow { .. })
    ));
    assert!(matches!(
        rt.load(flow(TWO_WAVES, NEGATIVE), b""),
        Err(LoadError::Flow { .. })
    ));
}

#[test]
fn a_traced_flow_records_each_step_under_the_call_in_start_order() {
    let rt = runtime(&["fixture.sum"]);
    rt.load_flow(flow(TWO_WAVES, NEGATIVE)).unwrap();
    let (answer, trace) = rt.call_traced("fixture.flow", r#"{"a": 2, "b": 3}"#);
    assert_eq!(answer, Ok(json!({"total": 10})));
    assert_eq!(trace.dropped, 0);
    let shape: Vec<(&str, Option<&str>, u32, &str)> = trace
        .spans
        .iter()
        .map(|s| {
            (
                s.service.as_str(),
                s.step.as_deref(),
                s.depth,
                s.outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(shape[0], ("fixture.flow", None, 0, "ok"));
    let mut steps: Vec<&str> = shape[1..].iter().filter_map(|s| s.1).collect();
    steps.sort_unstable();
    assert_eq!(steps, ["x", "y", "z"]);
    assert!(shape[1..].iter().all(|s| s.0 == "fixture.sum" && s.2 == 1));
    let root = &trace.spans[0];
    let z = trace
        .spans
        .iter()
        .find(|s| s.step.as_deref() == Some("z"))
        .unwrap();
    let x = trace
        .spans
        .iter()
        .find(|s| s.step.as_deref() == Some("x"))
        .unwrap();
    assert!(z.start >= x.start + x.duration, "z waits for x: {trace:?}");
    assert!(z.start + z.duration <= root.duration, "{trace:?}");
}

#[test]
fn a_traced_failure_names_its_code_where_it_happened() {
    let rt = runtime(&["fixture.sum"]);
    rt.load_flow(flow(TWO_WAVES, NEGATIVE)).unwrap();
    let (answer, trace) = rt.call_traced("fixture.flow", r#"{"a": -1, "b": 3}"#);
    assert!(answer.is_err());
    assert_eq!(trace.spans[0].outcome, "negative");
    let x = trace
        .spans
        .iter()
        .find(|s| s.step.as_deref() == Some("x"))
        .unwrap();
    assert_eq!(x.outcome, "negative");
}

#[test]
fn a_guest_s_own_calls_are_traced_at_their_depth() {
    let rt = runtime(&["fixture.caller", "fixture.sum", "fixture.counter"]);
    let (answer, trace) = rt.call_traced("fixture.caller", "3");
    assert_eq!(answer, rt.call("fixture.caller", "3"));
    assert_eq!(trace.spans[0].service, "fixture.caller");
    assert!(
        trace.spans[1..]
            .iter()
            .any(|s| s.service == "fixture.sum" && s.step.is_none() && s.depth == 1),
        "{trace:?}"
    );
}

/// Another host, as the runtime sees it: answers with `answer` (given
/// the input text) and records each call.
struct FakeHost {
    answer: fn(&str) -> Result<mote_runtime::RemoteAnswer, Failure>,
    calls: std::sync::Mutex<Vec<(String, String, std::time::Duration)>>,
    callers: std::sync::Mutex<Vec<Option<String>>>,
}

impl mote_runtime::RemoteService for FakeHost {
    fn call(
        &self,
        call: &mote_runtime::RemoteCall<'_>,
    ) -> Result<mote_runtime::RemoteAnswer, Failure> {
        self.callers
            .lock()
            .unwrap()
            .push(call.caller.map(str::to_string));
        self.calls.lock().unwrap().push((
            call.service.to_string(),
            call.input.to_string(),
            call.deadline
                .saturating_duration_since(std::time::Instant::now()),
        ));
        (self.answer)(call.input)
    }
}

fn remote_sum(
    answer: fn(&str) -> Result<mote_runtime::RemoteAnswer, Failure>,
) -> (Runtime, std::sync::Arc<FakeHost>) {
    let rt = Runtime::new(RuntimeConfig::default()).expect("engine starts");
    let host = std::sync::Arc::new(FakeHost {
        answer,
        calls: std::sync::Mutex::new(Vec::new()),
        callers: std::sync::Mutex::new(Vec::new()),
    });
    let (contract, _) = &fixtures()["fixture.sum"];
    rt.load_remote(mote_contract::load(contract).unwrap(), host.clone())
        .unwrap();
    (rt, host)
}

fn honest_sum(input: &str) -> Result<mote_runtime::RemoteAnswer, Failure> {
    let input: serde_json::Value = serde_json::from_str(input).unwrap();
    let (a, b) = (input["a"].as_i64().unwrap(), input["b"].as_i64().unwrap());
    Ok(if a < 0 {
        Err(("negative".into(), "a is negative".into()))
    } else {
        Ok(json!({"sum": a + b}).to_string())
    })
}

#[test]
fn a_remote_service_is_called_with_the_admitted_input_and_its_answers_are_checked() {
    let (rt, host) = remote_sum(honest_sum);
    assert!(rt.is_remote("fixture.sum"));
    assert_eq!(
        rt.call("fixture.sum", r#"{"a": 2.0, "b": 3}"#),
        Ok(json!({"sum": 5}))
    );
    assert_eq!(
        rt.call("fixture.sum", r#"{"a": -1, "b": 3}"#)
            .unwrap_err()
            .code(),
        "negative"
    );
    // Refused before the other host is asked.
    assert_eq!(
        rt.call("fixture.sum", r#"{"a": "x", "b": 3}"#)
            .unwrap_err()
            .code(),
        "invalid_input"
    );
    let calls = host.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(
        host.callers.lock().unwrap()[0],
        None,
        "a call from outside has no caller"
    );
    assert_eq!(
        calls[0].0, "fixture.sum@1",
        "the callee travels with its series, which names it on any host"
    );
    assert_eq!(
        calls[0].1, r#"{"a":2,"b":3}"#,
        "the canonical input travels"
    );
    assert!(
        calls[0].2 <= std::time::Duration::from_secs(10) && calls[0].2 > std::time::Duration::ZERO
    );
}

#[test]
fn a_remote_host_answering_against_the_contract_is_a_contract_violation_here() {
    let (rt, _) = remote_sum(|_| Ok(Ok(r#"{"sum": "five"}"#.into())));
    assert_eq!(
        platform(rt.call("fixture.sum", r#"{"a": 2, "b": 3}"#)).0,
        PlatformFailure::ContractViolation
    );
    let (rt, _) = remote_sum(|_| Ok(Ok(r#"{"sum": 6}"#.into())));
    assert_eq!(
        platform(rt.call("fixture.sum", r#"{"a": 2, "b": 3}"#)).0,
        PlatformFailure::ContractViolation
    );
    let (rt, _) = remote_sum(|_| Ok(Err(("made_up".into(), "?".into()))));
    assert_eq!(
        platform(rt.call("fixture.sum", r#"{"a": 2, "b": 3}"#)).0,
        PlatformFailure::ContractViolation
    );
}

#[test]
fn an_unreachable_host_is_unavailable_and_a_flow_over_it_passes_that_on() {
    let (rt, _) = remote_sum(|_| {
        Err(Failure::platform(
            PlatformFailure::Unavailable,
            "host back refused the connection",
        ))
    });
    assert_eq!(
        platform(rt.call("fixture.sum", r#"{"a": 2, "b": 3}"#)).0,
        PlatformFailure::Unavailable
    );
    rt.load_flow(flow(TWO_WAVES, NEGATIVE)).unwrap();
    assert!(!rt.is_remote("fixture.flow"));
    let (kind, _) = platform(rt.call("fixture.flow", r#"{"a": 2, "b": 3}"#));
    assert_eq!(kind, PlatformFailure::Unavailable);
}

#[test]
fn a_flow_composes_remote_steps_as_it_composes_local_ones() {
    let (rt, host) = remote_sum(honest_sum);
    rt.load_flow(flow(TWO_WAVES, NEGATIVE)).unwrap();
    assert_eq!(
        rt.call("fixture.flow", r#"{"a": 2, "b": 3}"#),
        Ok(json!({"total": 10}))
    );
    assert_eq!(host.calls.lock().unwrap().len(), 3);
    // Each step names the flow as its caller to the other host.
    assert_eq!(
        host.callers.lock().unwrap().clone(),
        vec![Some("fixture.flow@1".to_string()); 3]
    );
    assert_eq!(
        rt.call("fixture.flow", r#"{"a": -1, "b": 3}"#)
            .unwrap_err()
            .code(),
        "negative"
    );
}

fn ledger(action: &str, key: &str, by: u64) -> String {
    json!({"action": action, "key": key, "by": by}).to_string()
}

fn count(state: &Arc<dyn Backend>, key: &str) -> Option<String> {
    state.read("counts", key).unwrap().map(|e| e.value)
}

#[test]
fn a_stateful_call_commits_only_what_passes_the_contract() {
    let rt = runtime(&["fixture.ledger"]);
    let state: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    rt.use_state_backend(Arc::clone(&state));
    assert_eq!(
        rt.call("fixture.ledger", &ledger("add", "a", 5)),
        Ok(json!({"count": 5}))
    );
    assert_eq!(
        rt.call("fixture.ledger", &ledger("add", "a", 2)),
        Ok(json!({"count": 7}))
    );
    assert_eq!(count(&state, "a").as_deref(), Some("7"));

    // A declared error writes nothing, even what the guest wrote first.
    let refused = rt
        .call("fixture.ledger", &ledger("add_then_fail", "a", 1))
        .unwrap_err();
    assert_eq!(refused.code(), "refused");
    assert_eq!(count(&state, "a").as_deref(), Some("7"));

    // An answer against `ensures` over `after` is a violation, unwritten.
    let (kind, message) = platform(rt.call("fixture.ledger", &ledger("lie", "a", 1)));
    assert_eq!(kind, PlatformFailure::ContractViolation, "{message}");
    assert!(message.contains("after.counts"), "{message}");
    assert_eq!(count(&state, "a").as_deref(), Some("7"));

    // The rules of stores, each a violation that writes nothing.
    for (action, says) in [
        ("bad_value", "breaks the store's `value` schema"),
        ("undeclared", "does not declare"),
        ("readonly_write", "declares `read`"),
    ] {
        let (kind, message) = platform(rt.call("fixture.ledger", &ledger(action, "a", 1)));
        assert_eq!(
            kind,
            PlatformFailure::ContractViolation,
            "{action}: {message}"
        );
        assert!(message.contains(says), "{action}: {message}");
        assert_eq!(count(&state, "a").as_deref(), Some("7"), "{action}");
    }

    // A guest cannot make the host buffer without bound.
    for (action, says) in [
        ("flood", "at most 10000 keys"),
        ("long_key", "a key is at most 4096 bytes"),
    ] {
        let (kind, message) = platform(rt.call("fixture.ledger", &ledger(action, "a", 1)));
        assert_eq!(
            kind,
            PlatformFailure::ResourceExhausted,
            "{action}: {message}"
        );
        assert!(message.contains(says), "{action}: {message}");
        assert_eq!(count(&state, "a").as_deref(), Some("7"), "{action}");
    }
    assert_eq!(count(&state, "aaaa"), None, "nothing of the flood was kept");

    // Listing and compare-and-swap see the call's own store.
    rt.call("fixture.ledger", &ledger("add", "b", 1)).unwrap();
    assert_eq!(
        rt.call("fixture.ledger", &ledger("list", "a", 0)),
        Ok(json!({"count": 2}))
    );
    assert_eq!(
        rt.call("fixture.ledger", &ledger("swap", "b", 4)),
        Ok(json!({"count": 5}))
    );
    assert_eq!(count(&state, "b").as_deref(), Some("5"));

    // A call given stores of its own leaves the runtime's alone.
    let own: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    assert_eq!(
        rt.call_in("fixture.ledger", &ledger("add", "a", 1), Arc::clone(&own)),
        Ok(json!({"count": 1}))
    );
    assert_eq!(count(&own, "a").as_deref(), Some("1"));
    assert_eq!(count(&state, "a").as_deref(), Some("7"));
}

#[test]
fn each_step_of_a_flow_is_its_own_transaction() {
    let rt = runtime(&["fixture.ledger"]);
    let state: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    rt.use_state_backend(Arc::clone(&state));
    let steps = r#"
steps = [
  { id = "first", call = "fixture.ledger@^1", input = "{'action': 'add', 'key': 'f', 'by': input.a}" },
  { id = "second", call = "fixture.ledger@^1", input = "{'action': 'add_then_fail', 'key': 'f', 'by': first.count}" },
]
output = "{'total': second.count}"
on_error = { "fixture.ledger/refused" = "refused" }
"#;
    let refused = r#"
[[error]]
code = "refused"
summary = "The second step refused."
status = 409
"#;
    rt.load_flow(flow(steps, refused)).unwrap();
    let answer = rt.call("fixture.flow", r#"{"a": 3, "b": 0}"#).unwrap_err();
    assert_eq!(answer.code(), "refused");
    // The first step committed; the failed second one wrote nothing.
    assert_eq!(count(&state, "f").as_deref(), Some("3"));
}

/// Stores in memory whose commits always conflict (or whose reads fail).
#[derive(Debug, Default)]
struct Unlucky {
    stores: MemoryBackend,
    reads_fail: bool,
    commits: std::sync::atomic::AtomicU32,
}

impl Backend for Unlucky {
    fn read(&self, store: &str, key: &str) -> Result<Option<Entry>, StateError> {
        if self.reads_fail {
            return Err(StateError::Backend("the disk is gone".into()));
        }
        self.stores.read(store, key)
    }
    fn list(
        &self,
        store: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Entry)>, StateError> {
        self.stores.list(store, prefix, limit)
    }
    fn commit(&self, _: &Commit) -> Result<(), StateError> {
        self.commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Err(StateError::Conflict)
    }
    fn kind(&self) -> &'static str {
        "unlucky"
    }
}

#[test]
fn a_call_that_always_conflicts_gives_up_and_a_failing_backend_is_unavailable() {
    let rt = runtime(&["fixture.ledger"]);
    let unlucky = Arc::new(Unlucky::default());
    rt.use_state_backend(Arc::clone(&unlucky) as Arc<dyn Backend>);
    let (kind, message) = platform(rt.call("fixture.ledger", &ledger("add", "a", 1)));
    assert_eq!(kind, PlatformFailure::Conflict, "{message}");
    // The first run and every re-run the runtime allows, then no more.
    let runs = RuntimeConfig::default().max_conflict_reruns + 1;
    assert_eq!(
        unlucky.commits.load(std::sync::atomic::Ordering::Relaxed),
        runs
    );
    assert!(message.contains(&format!("{runs} times")), "{message}");
    assert_eq!(rt.store_counts()["counts"].conflicts, u64::from(runs));

    let broken = Arc::new(Unlucky {
        reads_fail: true,
        ..Unlucky::default()
    });
    rt.use_state_backend(broken as Arc<dyn Backend>);
    let (kind, message) = platform(rt.call("fixture.ledger", &ledger("add", "a", 1)));
    assert_eq!(kind, PlatformFailure::Unavailable, "{message}");
    assert!(
        !message.contains("disk"),
        "the backend's words stay in the log: {message}"
    );
}

#[test]
fn concurrent_calls_on_one_key_lose_no_update() {
    let rt = runtime(&["fixture.ledger"]);
    let state: Arc<dyn Backend> = Arc::new(SqliteBackend::in_memory().unwrap());
    rt.use_state_backend(Arc::clone(&state));
    const THREADS: usize = 4;
    const EACH: usize = 20;
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            let rt = rt.clone();
            scope.spawn(move || {
                for _ in 0..EACH {
                    rt.call("fixture.ledger", &ledger("add", "n", 1)).unwrap();
                }
            });
        }
    });
    assert_eq!(count(&state, "n"), Some((THREADS * EACH).to_string()));
}

#[test]
fn a_component_that_writes_needs_a_store_it_may_write() {
    let (contract, wasm) = &fixtures()["fixture.ledger"];
    let text = std::fs::read_to_string(contract)
        .unwrap()
        .replace("access = \"read-write\"", "access = \"read\"");
    let checked =
        mote_contract::check_source(mote_contract::SourceFile::new("contract.toml", &text));
    let read_only = checked
        .contract
        .expect("a read-only store declaration checks");
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let refused = runtime
        .load(read_only, &std::fs::read(wasm).unwrap())
        .unwrap_err();
    assert!(
        matches!(&refused, LoadError::RefusedImports { refused, .. }
            if refused.len() == 1 && refused[0].import.starts_with("mote:service/store-write")),
        "{refused}"
    );
    assert!(refused.to_string().contains("read-write"), "{refused}");
}
