//! `mote diff` as a user runs it: on the bundled app against itself, on
//! a changed copy of it, in JSON for CI, and on bad paths.

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

/// A copy of the shop's contracts (only the contracts) with `edit`
/// applied to `service`'s.
fn changed_shop(name: &str, service: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let copy = std::env::temp_dir().join(format!("mote-diff-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&copy);
    for entry in std::fs::read_dir(root().join("examples/shop")).unwrap() {
        let folder = entry.unwrap().path();
        let contract = folder.join("contract.toml");
        if !contract.is_file() {
            continue;
        }
        let target = copy.join(folder.file_name().unwrap());
        std::fs::create_dir_all(&target).unwrap();
        let mut text = std::fs::read_to_string(&contract).unwrap();
        if folder.file_name().unwrap() == service {
            text = edit(text);
        }
        std::fs::write(target.join("contract.toml"), text).unwrap();
    }
    copy
}

#[test]
fn the_bundled_app_against_itself_has_no_change() {
    let out = mote(&["diff", "examples/shop", "examples/shop"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert_eq!(text.matches("no change in meaning").count(), 10, "{text}");
}

#[test]
fn a_breaking_change_fails_with_its_witness_and_the_bump_it_needs() {
    let new = changed_shop("break", "tax-vat", |t| {
        t.replace("maximum = 100000000", "maximum = 99999999")
    });
    let out = mote(&["diff", "examples/shop", new.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("tax.vat 1.0.0 → 1.0.0: 1 breaking, 0 for review, 0 compatible; FAIL: needs a major bump, at least 2.0.0"),
        "{text}"
    );
    assert!(
        text.contains("upper bound ≤ 100000000 → ≤ 99999999"),
        "{text}"
    );
    assert!(text.contains(r#"witness: {"country":"#), "{text}");

    let out = mote(&[
        "diff",
        "examples/shop",
        new.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false);
    let vat = json["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "tax.vat")
        .unwrap();
    assert_eq!(vat["required_bump"], "major");
    assert_eq!(vat["changes"][0]["class"], "breaking");
    assert_eq!(vat["changes"][0]["basis"], "structural");
    assert_eq!(vat["changes"][0]["witness"]["net_cents"], 100_000_000);
    let _ = std::fs::remove_dir_all(new);
}

#[test]
fn a_removed_error_is_compatible_and_names_the_flows_that_still_map_it() {
    let new = changed_shop("removed", "tax-vat", |t| {
        let start = t.find("[[error]]").unwrap();
        let end = t.find("[behavior]").unwrap();
        let example = t.rfind("[[example]]\ninput = { net_cents = 0").unwrap();
        let limits = t.find("[limits]").unwrap();
        format!("{}{}{}", &t[..start], &t[end..example], &t[limits..])
            .replace("version = \"1.0.0\"", "version = \"1.1.0\"")
    });
    let out = mote(&["diff", "examples/shop", new.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("`zero_amount` removed"), "{text}");
    assert!(
        text.contains("still mapped in `on_error` by: shop.checkout"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(new);
}

#[test]
fn a_missing_path_or_a_broken_contract_cannot_run() {
    let out = mote(&["diff", "examples/shop", "no/such/folder"]);
    assert_eq!(out.status.code(), Some(2));
    let out = mote(&[
        "diff",
        "examples/shop/tax-vat/contract.toml",
        "crates/contract/tests/malformed/unknown_key_service.toml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mote check"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
