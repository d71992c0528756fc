//! `mote docs` as a user runs it: the bundled app's site, and a broken
//! contract that must not leave a half-written site.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mote(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mote"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .expect("the mote binary runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mote-docs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn the_bundled_app_becomes_a_site_with_a_page_per_service() {
    let out = scratch("shop");
    let run = mote(&["docs", "examples/shop", "--out", out.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(text.contains("10 services"), "{text}");
    for file in [
        "index.html",
        "style.css",
        "search.js",
        "services/shop.checkout.html",
        "services/tax.vat@1.html",
        "services/tax.vat@2.html",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(index.contains("services/cart.discount.html"));
    // The checkout's page links the series its call reaches.
    let checkout = std::fs::read_to_string(out.join("services/shop.checkout.html")).unwrap();
    assert!(checkout.contains(r#"href="tax.vat@1.html""#), "{checkout}");
    assert!(!checkout.contains(r#"href="tax.vat@2.html""#), "{checkout}");
    // Each series' page links the others.
    let older = std::fs::read_to_string(out.join("services/tax.vat@1.html")).unwrap();
    assert!(older.contains(r#"href="tax.vat@2.html""#), "{older}");
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn a_contract_that_does_not_check_writes_nothing() {
    let app = scratch("broken-app");
    std::fs::create_dir_all(app.join("bad")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../contract/tests/malformed/unknown_key_service.toml"),
        app.join("bad/contract.toml"),
    )
    .unwrap();
    let out = scratch("broken-site");
    let run = mote(&[
        "docs",
        app.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("no site written"));
    assert!(!out.exists());
    let run = mote(&["docs", "no/such/app", "--out", out.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(app);
}
