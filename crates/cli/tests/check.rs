//! `mote check` as a user runs it: exit statuses, the human report and the
//! JSON report.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mote(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mote"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("the mote binary runs")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_bundled_example_app_checks_clean() {
    let out = mote(&["check", "examples/shop"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("ok    tax.vat 1.0.0"), "{text}");
    assert!(text.contains("ok    tax.vat 2.0.0"), "{text}");
    assert!(text.contains("10 ok, 0 with errors"), "{text}");
}

#[test]
fn a_broken_contract_fails_with_a_rendered_diagnostic() {
    let out = mote(&[
        "check",
        "crates/contract/tests/malformed/unknown_key_service.toml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("mote::unknown-key"), "{text}");
    assert!(
        text.contains("unknown key `verison` in [service]"),
        "{text}"
    );
    assert!(text.contains("did you mean `version`?"), "{text}");
    assert!(text.contains("unknown_key_service.toml:4:1"), "{text}");
    assert!(text.contains("FAIL"), "{text}");
}

#[test]
fn json_output_is_one_document_with_positions() {
    let out = mote(&[
        "check",
        "--format",
        "json",
        "examples/shop/tax-vat/contract.toml",
        "crates/contract/tests/malformed/cel_output_in_when.toml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let contracts = report["contracts"].as_array().expect("contracts array");
    assert_eq!(contracts.len(), 2);
    assert_eq!(contracts[0]["ok"], true);
    assert_eq!(contracts[0]["service"], "tax.vat");
    assert!(
        contracts[0]["hash"]
            .as_str()
            .is_some_and(|h| h.starts_with("sha256:"))
    );
    assert_eq!(contracts[1]["ok"], false);
    let diagnostic = &contracts[1]["diagnostics"][0];
    assert_eq!(diagnostic["kind"], "cel-unknown-variable");
    assert_eq!(diagnostic["line"], 22);
    assert_eq!(diagnostic["column"], 9);
    assert_eq!(report["errors"], 1);
}

#[test]
fn every_problem_in_every_file_is_reported() {
    let out = mote(&[
        "check",
        "--format",
        "json",
        "crates/contract/tests/malformed/unknown_key_error.toml",
        "crates/contract/tests/malformed/bad_name.toml",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(report["errors"], 3);
}

#[test]
fn a_missing_path_or_no_contracts_is_a_usage_error() {
    let out = mote(&["check", "no/such/dir"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/dir"));

    let empty = std::env::temp_dir().join(format!("mote-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).expect("temp dir");
    let out = mote(&["check", empty.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no contract.toml found"));
    let _ = std::fs::remove_dir_all(&empty);
}

#[test]
fn help_explains_the_command() {
    let out = mote(&["check", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("Exit status"), "{text}");
    assert!(text.contains("--format"), "{text}");
}

/// Writes an app of two services that call each other, and a third that
/// calls the second at a version outside its range.
fn cyclic_app() -> PathBuf {
    let app = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cyclic-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&app);
    for (name, version, calls) in [
        ("ping.a", "1.0.0", "ping.b@^2"),
        ("ping.b", "2.0.0", "ping.a@^1"),
        ("ping.c", "1.0.0", "ping.b@^1"),
    ] {
        let dir = app.join(name.replace('.', "-"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("contract.toml"),
            format!(
                r#"[service]
name = "{name}"
version = "{version}"
summary = "Calls the other one."

[input]
type = "object"

[output]
type = "object"

[effects]
calls = ["{calls}"]
"#
            ),
        )
        .unwrap();
    }
    app
}

#[test]
fn an_app_whose_calls_do_not_fit_together_fails_check_and_graph() {
    let app = cyclic_app();
    let app_arg = app.to_str().unwrap();
    let out = mote(&["check", app_arg]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "error[call-graph]: `ping.c` calls `ping.b@^1`, but the app has `ping.b` 2.0.0"
        ),
        "{text}"
    );
    assert!(
        text.contains("error[call-graph]: call cycle: ping.a -> ping.b -> ping.a"),
        "{text}"
    );
    // Each contract is fine on its own.
    let out = mote(&["check", &format!("{app_arg}/ping-a/contract.toml")]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    let out = mote(&["graph", app_arg, "--format", "dot"]);
    assert_eq!(out.status.code(), Some(1));
    let dot = stdout(&out);
    assert!(
        dot.contains(r#""ping.a" -> "ping.b" [label="^2"];"#),
        "{dot}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("call cycle"), "{stderr}");
    let _ = std::fs::remove_dir_all(&app);
}

/// Writes `contract` as `NAME/contract.toml` in a fresh folder.
fn scratch_contract(name: &str, contract: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("check-{name}-{}", std::process::id()))
        .join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("contract.toml");
    std::fs::write(&path, contract).unwrap();
    path
}

const HEADER: &str = r#"
[service]
name = "edge.case"
version = "1.0.0"
summary = "A schema at the edge of what mote accepts."

[output]
type = "integer"
"#;

#[test]
fn a_number_between_two_fractions_checks_and_verifies_without_a_crash() {
    let path = scratch_contract(
        "fractions",
        &format!("{HEADER}\n[input]\ntype = \"number\"\nminimum = 0.5\nmaximum = 0.7\n"),
    );
    let out = mote(&["check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // Against an endpoint that is not there: the run fails, it never panics.
    let out = mote(&[
        "verify",
        "--url",
        "http://127.0.0.1:9/x",
        path.to_str().unwrap(),
        "--cases",
        "20",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
}

#[test]
fn a_schema_no_value_satisfies_is_named_by_check_and_crashes_nothing() {
    let path = scratch_contract(
        "crossed",
        &format!(
            "{HEADER}\n[input]\nallOf = [{{ type = \"string\", minLength = 5 }}, {{ maxLength = 2 }}]\n"
        ),
    );
    let out = mote(&["check", path.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("schema-unsatisfiable"), "{text}");
    assert!(text.contains("`[input]`"), "{text}");
    let out = mote(&[
        "verify",
        "--url",
        "http://127.0.0.1:9/x",
        path.to_str().unwrap(),
        "--cases",
        "20",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
}

/// Runs git in `dir`, as a user with a name and an address.
fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=mote",
            "-c",
            "user.email=mote@example.invalid",
        ])
        .args(["-c", "commit.gpgsign=false", "-C"])
        .arg(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn against_a_revision_an_unannounced_break_fails_and_an_announced_one_passes() {
    let repo = std::env::temp_dir().join(format!("mote-against-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&repo);
    let service = repo.join("app/tax-vat");
    std::fs::create_dir_all(&service).unwrap();
    let original =
        std::fs::read_to_string(root().join("examples/shop/tax-vat/contract.toml")).unwrap();
    std::fs::write(service.join("contract.toml"), &original).unwrap();
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "tax.vat 1.0.0"]);
    let app = repo.join("app");
    let check = |against: &str| {
        Command::new(env!("CARGO_BIN_EXE_mote"))
            .args(["check", app.to_str().unwrap(), "--against", against])
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };

    let out = check("HEAD");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    let narrower = original.replace("maximum = 100000000", "maximum = 99999999");
    std::fs::write(service.join("contract.toml"), &narrower).unwrap();
    let out = check("HEAD");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("error[unannounced-change]"), "{text}");
    assert!(
        text.contains("1.0.0 → 1.0.0 needs a major bump, at least 2.0.0"),
        "{text}"
    );

    let announced = narrower.replace("version = \"1.0.0\"", "version = \"2.0.0\"");
    std::fs::write(service.join("contract.toml"), &announced).unwrap();
    let out = check("HEAD");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // A folder works as the reference too; a revision that does not exist
    // cannot run.
    let out = check(root().join("examples/shop/tax-vat").to_str().unwrap());
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = check("no-such-revision");
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));

    // The break in a folder of its own beside the old major, which stays
    // as it was: a new series is added, not a change to the old one.
    std::fs::write(service.join("contract.toml"), &original).unwrap();
    let beside = repo.join("app/tax-vat-v2");
    std::fs::create_dir_all(&beside).unwrap();
    std::fs::write(beside.join("contract.toml"), &announced).unwrap();
    let out = check("HEAD");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // Its own series changed without a bump is caught again.
    let unannounced = narrower;
    std::fs::write(service.join("contract.toml"), &unannounced).unwrap();
    let out = check("HEAD");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("tax-vat/contract.toml: `tax.vat` changed"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&repo);
}

#[test]
fn the_shop_s_placement_checks_and_its_graph_draws_the_hosts() {
    let out = mote(&[
        "check",
        "examples/shop",
        "--placement",
        "examples/shop/placement.toml",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = mote(&[
        "graph",
        "examples/shop",
        "--placement",
        "examples/shop/placement.toml",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("subgraph host_front[\"host front\"]"),
        "{text}"
    );
    assert!(
        text.contains("shop_checkout -.->|\"vat: ^1\"| tax_vat"),
        "{text}"
    );
    assert!(
        text.contains("shop_checkout -->|\"net: ^1\"| cart_total"),
        "{text}"
    );
    // The older major the checkout still calls is drawn apart and named.
    assert!(text.contains("class tax_vat_v1 older"), "{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "note: `tax.vat@1` is an older series than `tax.vat@2`; still called by `shop.checkout`"
        ),
        "{stderr}"
    );
}

#[test]
fn a_bad_placement_fails_check_naming_each_problem_with_its_line() {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("placement-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("placement.toml");
    std::fs::write(
        &file,
        "[host.front]\nurl = \"http://127.0.0.1:9001\"\nservices = [\"shop.checkout\", \"tax.vat\"]\n\n[host.back]\nurl = \"http://127.0.0.1:9002\"\nservices = [\"tax.vat\", \"no.such\"]\n",
    )
    .unwrap();
    let file = file.to_string_lossy().into_owned();
    let out = mote(&["check", "examples/shop", "--placement", &file]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("mote::placed-twice"), "{text}");
    assert!(
        text.contains("`tax.vat` is placed on hosts `front` and `back`"),
        "{text}"
    );
    assert!(text.contains("placement.toml:7:"), "{text}");
    assert!(text.contains("mote::unknown-service"), "{text}");
    assert!(text.contains("mote::unplaced"), "{text}");
    assert!(text.contains("`cart.discount`"), "{text}");
    let json = mote(&[
        "check",
        "examples/shop",
        "--format",
        "json",
        "--placement",
        &file,
    ]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let kinds: Vec<&str> = report["placement"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["placed-twice", "unknown-service", "unplaced"]);
    assert_eq!(report["placement"][0]["line"], 7);
    let graph = mote(&["graph", "examples/shop", "--placement", &file]);
    assert_eq!(graph.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&graph.stderr).contains("placed-twice"));
    let missing = mote(&[
        "check",
        "examples/shop",
        "--placement",
        "no/such/placement.toml",
    ]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stdout(&missing).contains("mote::io"),
        "{}",
        stdout(&missing)
    );
}

#[test]
fn a_store_split_across_hosts_fails_check_with_the_placement() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("stores-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (folder, name) in [
        ("restock", "inventory.restock"),
        ("reserve", "inventory.reserve"),
    ] {
        std::fs::create_dir_all(dir.join(folder)).unwrap();
        std::fs::write(
            dir.join(folder).join("contract.toml"),
            format!(
                "[service]\nname = \"{name}\"\nversion = \"1.0.0\"\nsummary = \"Stock.\"\nvisibility = \"public\"\n\n[input]\ntype = \"string\"\n\n[output]\ntype = \"integer\"\n\n[store.stock]\nkey = {{ type = \"string\" }}\nvalue = {{ type = \"integer\" }}\naccess = \"read-write\"\n"
            ),
        )
        .unwrap();
    }
    let placement = dir.join("placement.toml");
    std::fs::write(
        &placement,
        "[host.a]\nurl = \"http://127.0.0.1:9001\"\nservices = [\"inventory.restock\"]\n\n[host.b]\nurl = \"http://127.0.0.1:9002\"\nrest = true\n",
    )
    .unwrap();
    let app = dir.to_string_lossy().into_owned();
    let placement = placement.to_string_lossy().into_owned();
    let out = mote(&["check", &app, "--placement", &placement]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("mote::store-split"), "{text}");
    assert!(text.contains("store `stock`"), "{text}");
    // Together on one host, the same app checks clean.
    let together = mote(&["check", &app]);
    assert_eq!(together.status.code(), Some(0), "{}", stdout(&together));
}
