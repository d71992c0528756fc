//! `mote new`, `mote build` and `mote call` as a user runs them. Guest
//! builds share one target folder with the runtime's fixture builds, so
//! their dependencies compile once per test run.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shared_target() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixtures")
}

fn mote(args: &[&str]) -> Output {
    mote_with_stdin(args, "")
}

fn mote_with_stdin(args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mote"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the mote binary runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("mote finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&output.stdout)))
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_new_service_checks_builds_and_answers_unchanged() {
    let app = fresh_dir("new-app");
    let app_arg = app.to_str().unwrap();
    let target = shared_target();
    let target_arg = target.to_str().unwrap();

    let out = mote(&["new", "demo.adder", "--dir", app_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(app.join("demo-adder/contract.toml").is_file());
    assert!(app.join("demo-adder/src/lib.rs").is_file());

    let out = mote(&["check", app_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    let out = mote(&["build", app_arg, "--target-dir", target_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Ready demo.adder 0.1.0"),
        "{}",
        text(&out.stderr)
    );

    // Unchanged: built again, the host finds the compiled artefact cached.
    let out = mote(&["build", app_arg, "--target-dir", target_arg]);
    assert!(
        text(&out.stderr).contains("(cached,"),
        "{}",
        text(&out.stderr)
    );

    let out = mote(&[
        "call",
        app_arg,
        "demo.adder",
        r#"{"a": 2, "b": 40}"#,
        "--target-dir",
        target_arg,
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out), serde_json::json!({"sum": 42}));

    let out = mote(&[
        "call",
        app_arg,
        "demo.adder",
        r#"{"a": 0, "b": 0}"#,
        "--target-dir",
        target_arg,
    ]);
    assert_eq!(out.status.code(), Some(1), "a declared error exits 1");
    assert_eq!(json(&out)["code"], "both_zero");

    let out = mote_with_stdin(
        &["call", app_arg, "demo.adder", "--target-dir", target_arg],
        r#"{"a": 1}"#,
    );
    assert_eq!(out.status.code(), Some(3), "a platform failure exits 3");
    assert_eq!(json(&out)["code"], "invalid_input");

    let out = mote(&["call", app_arg, "no.such", "{}", "--target-dir", target_arg]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(json(&out)["code"], "unknown_service");
    let _ = std::fs::remove_dir_all(&app);
}

#[test]
fn new_refuses_bad_names_and_existing_folders() {
    let app = fresh_dir("new-refusals");
    let app_arg = app.to_str().unwrap();
    let out = mote(&["new", "Bad..Name", "--dir", app_arg]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid service name"));

    assert_eq!(
        mote(&["new", "a.b", "--dir", app_arg]).status.code(),
        Some(0)
    );
    let before = std::fs::read_to_string(app.join("a-b/contract.toml")).unwrap();
    let out = mote(&["new", "a.b", "--dir", app_arg]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("already exists"));
    assert_eq!(
        std::fs::read_to_string(app.join("a-b/contract.toml")).unwrap(),
        before
    );
    let _ = std::fs::remove_dir_all(&app);
}

#[test]
fn a_new_service_is_internal_unless_asked_to_be_public() {
    let app = fresh_dir("new-visibility");
    let app_arg = app.to_str().unwrap();
    assert_eq!(
        mote(&["new", "a.inner", "--dir", app_arg]).status.code(),
        Some(0)
    );
    assert_eq!(
        mote(&["new", "a.entry", "--dir", app_arg, "--public"])
            .status
            .code(),
        Some(0)
    );
    let inner = mote_contract::load(&app.join("a-inner/contract.toml")).unwrap();
    let entry = mote_contract::load(&app.join("a-entry/contract.toml")).unwrap();
    assert_eq!(
        inner.service.visibility,
        mote_contract::Visibility::Internal
    );
    assert_eq!(entry.service.visibility, mote_contract::Visibility::Public);
    let _ = std::fs::remove_dir_all(&app);
}

#[test]
fn a_failed_build_names_the_service_and_shows_the_compiler() {
    let app = fresh_dir("broken-app");
    let app_arg = app.to_str().unwrap();
    assert_eq!(
        mote(&["new", "demo.broken", "--dir", app_arg])
            .status
            .code(),
        Some(0)
    );
    let lib = app.join("demo-broken/src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(
        &lib,
        source.replace("input.a + input.b", "input.a + undefined_thing"),
    )
    .unwrap();
    let target = shared_target();
    let out = mote(&["build", app_arg, "--target-dir", target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("demo-broken"), "{stderr}");
    assert!(stderr.contains("undefined_thing"), "{stderr}");
    let _ = std::fs::remove_dir_all(&app);
}

#[test]
fn the_shop_answers_through_the_call_path() {
    let target = shared_target();
    let target_arg = target.to_str().unwrap();
    let out = mote(&[
        "call",
        "examples/shop",
        "tax.vat@1",
        r#"{"net_cents": 1000, "country": "DE"}"#,
        "--target-dir",
        target_arg,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        json(&out),
        serde_json::json!({"vat_cents": 190, "rate_pct": 19})
    );
    // The name alone is the newest major the app holds.
    let out = mote(&[
        "call",
        "examples/shop",
        "tax.vat",
        r#"{"net_cents": 1000, "country": "DE", "category": "reduced"}"#,
        "--target-dir",
        target_arg,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        json(&out),
        serde_json::json!({"vat_cents": 70, "rate_bp": 700})
    );

    let out = mote(&[
        "call",
        "examples/shop",
        "cart.discount",
        r#"{"code": "VIP20", "subtotal_cents": 4999}"#,
        "--target-dir",
        target_arg,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["code"], "below_minimum");
}

/// Writes a service folder `dir` of `app` with a contract of `name` at
/// `version` and a Cargo.toml naming the package `package`.
fn versioned_service(app: &Path, dir: &str, name: &str, version: &str, package: &str) {
    let folder = app.join(dir);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("contract.toml"),
        format!(
            "[service]\nname = \"{name}\"\nversion = \"{version}\"\nsummary = \"Echoes.\"\nvisibility = \"public\"\n\n[input]\ntype = \"integer\"\n\n[output]\ntype = \"integer\"\n\n[behavior]\nensures = [\"output == input\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(
        folder.join("Cargo.toml"),
        format!("[package]\nname = \"{package}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n"),
    )
    .unwrap();
}

#[test]
fn two_versions_in_one_series_or_two_services_of_one_package_are_refused_before_building() {
    let app = fresh_dir("same-series");
    versioned_service(&app, "echo", "demo.echo", "1.0.0", "demo-echo");
    versioned_service(&app, "echo-next", "demo.echo", "1.3.0", "demo-echo-next");
    let out = mote(&["build", app.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("two services are `demo.echo` in series 1"),
        "{stderr}"
    );

    let app = fresh_dir("same-package");
    versioned_service(&app, "echo", "demo.echo", "1.0.0", "demo-echo");
    versioned_service(&app, "echo-two", "demo.echo", "2.0.0", "demo-echo");
    let out = mote(&["build", app.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("are both the cargo package `demo-echo`"),
        "{stderr}"
    );
    for name in ["same-series", "same-package"] {
        let _ = std::fs::remove_dir_all(fresh_dir(name));
    }
}

#[test]
fn build_of_a_folder_without_services_is_an_error() {
    let empty = fresh_dir("no-services");
    std::fs::create_dir_all(&empty).unwrap();
    let out = mote(&["build", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no contract.toml"));
    let _ = std::fs::remove_dir_all(&empty);
}

#[test]
fn the_shop_verifies_with_full_coverage() {
    let target = shared_target();
    let out = mote(&[
        "verify",
        "examples/shop",
        "--seed",
        "3",
        "--cases",
        "150",
        "--format",
        "json",
        "--target-dir",
        target.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let report = json(&out);
    let reports = report["reports"].as_array().unwrap();
    assert_eq!(
        reports.len(),
        10,
        "every service is verified, the checkout flow too"
    );
    let names: Vec<&str> = reports
        .iter()
        .map(|r| r["service"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"tax.vat@1") && names.contains(&"tax.vat@2"),
        "each major is reported by its series: {names:?}"
    );
    let checkout = reports
        .iter()
        .find(|r| r["service"] == "shop.checkout")
        .unwrap();
    let doubles = &checkout["doubles"];
    assert!(doubles["outputs"].as_u64().unwrap() > 0, "{doubles}");
    assert!(doubles["errors"].as_u64().unwrap() > 0, "{doubles}");
    assert_eq!(
        doubles["declined"], 0,
        "every callee answer was made up: {doubles}"
    );
    for r in reports {
        assert_eq!(r["passed"], true, "{r}");
        assert!(
            r["coverage"]
                .as_object()
                .unwrap()
                .values()
                .all(|n| n.as_u64().unwrap() > 0),
            "{r}"
        );
    }
}

#[test]
fn a_wrong_implementation_fails_verification_with_a_shrunk_counterexample() {
    let app = fresh_dir("wrong-app");
    let app_arg = app.to_str().unwrap();
    assert_eq!(
        mote(&["new", "demo.wrong", "--dir", app_arg]).status.code(),
        Some(0)
    );
    let lib = app.join("demo-wrong/src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    let broken = source.replace(
        "sum: input.a + input.b,",
        "sum: input.a + input.b + i64::from(input.a > 5),",
    );
    assert_ne!(source, broken);
    std::fs::write(&lib, broken).unwrap();
    let target = shared_target();
    let target_arg = target.to_str().unwrap();

    let out = mote(&[
        "verify",
        app_arg,
        "--seed",
        "9",
        "--cases",
        "300",
        "--target-dir",
        target_arg,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("FAIL  demo.wrong"), "{stdout}");
    assert!(stdout.contains("ensures"), "{stdout}");
    assert!(
        stdout.contains("--seed 9"),
        "the replay command is printed: {stdout}"
    );

    let junit = app.join("report.xml");
    let out = mote(&[
        "verify",
        app_arg,
        "--seed",
        "9",
        "--cases",
        "300",
        "--format",
        "json",
        "--target-dir",
        target_arg,
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"<testsuite name="mote verify" tests="1" failures="1">"#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testcase classname="mote.verify" name="demo.wrong 0.1.0">"#),
        "{xml}"
    );
    assert!(xml.contains(r#"<failure message="ensures: "#), "{xml}");
    assert!(
        xml.contains(r#"input:    {&quot;a&quot;:6,&quot;b&quot;:0}"#),
        "{xml}"
    );
    let report = json(&out);
    let counterexample = &report["reports"][0]["counterexample"];
    assert_eq!(counterexample["oracle"], "ensures");
    assert_eq!(
        counterexample["input"],
        serde_json::json!({"a": 6, "b": 0}),
        "shrunk to the smallest failing input"
    );
    let _ = std::fs::remove_dir_all(&app);
}

#[test]
fn verify_signs_attestations_that_break_when_anything_changes() {
    let app = fresh_dir("attested-app");
    let app_arg = app.to_str().unwrap();
    let keys = app.join("keys");
    let target = shared_target();
    let target_arg = target.to_str().unwrap();
    assert_eq!(
        mote(&["new", "demo.signed", "--dir", app_arg])
            .status
            .code(),
        Some(0)
    );
    let out = mote(&["keygen", "--out", keys.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = mote(&["keygen", "--out", keys.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "keygen never overwrites a key");

    let attestations = app.join("attestations");
    let out = mote(&[
        "verify",
        app_arg,
        "--seed",
        "5",
        "--cases",
        "100",
        "--target-dir",
        target_arg,
        "--key",
        keys.join("mote-key.secret").to_str().unwrap(),
        "--attest-dir",
        attestations.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let attestation = attestations.join("demo.signed.json");
    assert!(attestation.is_file());

    let contract = app.join("demo-signed/contract.toml");
    let wasm = target.join("mote-components/demo_signed.wasm");
    let public = keys.join("mote-key.pub");
    let check = |extra: &[&str]| {
        let mut args = vec![
            "attest",
            "check",
            attestation.to_str().unwrap(),
            "--trusted-key",
            public.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        mote(&args)
    };
    let out = check(&[
        "--contract",
        contract.to_str().unwrap(),
        "--artefact",
        wasm.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // A change of meaning in the contract invalidates it.
    let original = std::fs::read_to_string(&contract).unwrap();
    std::fs::write(
        &contract,
        original.replace("timeout_ms = 100", "timeout_ms = 200"),
    )
    .unwrap();
    let out = check(&["--contract", contract.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("contract changed"),
        "{}",
        text(&out.stdout)
    );

    // So does any change to the artefact.
    let other = app.join("other.wasm");
    std::fs::write(&other, b"\0asm not the same").unwrap();
    let out = check(&["--artefact", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("artefact changed"),
        "{}",
        text(&out.stdout)
    );

    // And an edited attestation no longer verifies.
    let edited = std::fs::read_to_string(&attestation)
        .unwrap()
        .replace("\"cases\": 100", "\"cases\": 100000");
    std::fs::write(&attestation, edited).unwrap();
    let out = check(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("signature"),
        "{}",
        text(&out.stdout)
    );
    let _ = std::fs::remove_dir_all(&app);
}

#[test]
fn strength_scores_a_pinned_contract_full_and_names_the_holes_of_a_weak_one() {
    let target = shared_target();
    let target_arg = target.to_str().unwrap();
    let out = mote(&[
        "strength",
        "examples/strength",
        "--inputs",
        "300",
        "--format",
        "json",
        "--target-dir",
        target_arg,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = json(&out);
    let by_name = |name: &str| {
        report["reports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["service"] == name)
            .unwrap()
            .clone()
    };
    let pinned = by_name("order.pinned");
    assert_eq!(pinned["score"], 1.0, "{pinned}");
    assert_eq!(pinned["survivors"], serde_json::json!([]));
    let weak = by_name("order.weak");
    let holes: Vec<String> = weak["survivors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["path"].as_str().unwrap(),
                s["mutation"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        holes,
        [
            "output.label changed",
            "output.label emptied",
            "output.total_cents +1",
            "output.total_cents doubled"
        ]
    );
    assert_eq!(
        weak["overlaps"][0]["codes"],
        serde_json::json!(["too_many", "bulk"])
    );

    // The same figure gates verification.
    let out = mote(&[
        "verify",
        "examples/strength",
        "--seed",
        "1",
        "--cases",
        "200",
        "--min-strength",
        "0.9",
        "--format",
        "json",
        "--target-dir",
        target_arg,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = json(&out);
    for r in report["reports"].as_array().unwrap() {
        let strong = r["service"] == "order.pinned";
        assert_eq!(r["passed"], strong, "{r}");
        assert_eq!(
            r["strength"]["score"].as_f64().unwrap() == 1.0,
            strong,
            "{r}"
        );
    }
}

#[test]
fn each_wrong_guest_is_caught_with_its_smallest_counterexample() {
    // Wrong twins of the shop's tax.vat, as real components
    // (tests/wrong-guests); the correct one passes in
    // `the_shop_verifies_with_full_coverage`.
    let target = shared_target();
    let expected = [
        (
            "wrong.off-by-one",
            "ensures",
            serde_json::json!({"country": "NL", "net_cents": 5000}),
        ),
        (
            "wrong.rounding",
            "ensures",
            serde_json::json!({"country": "NL", "net_cents": 3}),
        ),
        (
            "wrong.wrong-code",
            "declared-codes",
            serde_json::json!({"country": "NL", "net_cents": 0}),
        ),
        (
            "wrong.early-error",
            "error-partition",
            serde_json::json!({"country": "NL", "net_cents": 1}),
        ),
        (
            "wrong.missing-field",
            "output-schema",
            serde_json::json!({"country": "BE", "net_cents": 1}),
        ),
        (
            "wrong.slow",
            "limits",
            serde_json::json!({"country": "DE", "net_cents": 1}),
        ),
    ];
    for seed in ["1", "2"] {
        let out = mote(&[
            "verify",
            "crates/cli/tests/wrong-guests",
            "--seed",
            seed,
            "--cases",
            "300",
            "--format",
            "json",
            "--target-dir",
            target.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let report = json(&out);
        let reports = report["reports"].as_array().unwrap();
        assert_eq!(reports.len(), expected.len());
        for (service, oracle, input) in &expected {
            let r = reports.iter().find(|r| r["service"] == *service).unwrap();
            assert_eq!(r["passed"], false, "{r}");
            let counterexample = &r["counterexample"];
            assert_eq!(
                counterexample["oracle"], *oracle,
                "{service}, seed {seed}: {r}"
            );
            assert_eq!(
                counterexample["input"], *input,
                "{service}, seed {seed}: {r}"
            );
        }
    }
}

#[test]
fn verify_url_refuses_a_stateful_service_and_says_why() {
    let out = mote(&[
        "verify",
        "examples/shop/inventory-reserve",
        "--url",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("keeps state in store `stock`") && stderr.contains("in process"),
        "{stderr}"
    );
}
