//! Every file in `tests/malformed/` is a broken contract that ends with the
//! diagnostics it must produce, one `# expect: KIND LINE:COLUMN` line each.
//! The errors reported must be exactly those: none missing, none extra.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use std::path::Path;

use mote_contract::{SourceFile, check_source};

fn expectations(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn each_malformed_contract_reports_exactly_its_expected_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/malformed");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the corpus folder exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "the corpus has {} contracts, want at least 30",
        files.len()
    );

    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("readable contract");
        let expected = expectations(&text);
        assert!(
            !expected.is_empty(),
            "{} has no `# expect:` line",
            path.display()
        );
        let checked = check_source(SourceFile::new(path, text));
        assert!(
            checked.contract.is_none(),
            "{} was accepted",
            path.display()
        );
        let mut actual: Vec<String> = checked
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| {
                let at = d.start().expect("every contract error points somewhere");
                format!("{} {}:{}", d.kind(), at.line, at.column)
            })
            .collect();
        let mut expected_sorted = expected.clone();
        expected_sorted.sort();
        actual.sort();
        if actual != expected_sorted {
            let messages: Vec<String> = checked
                .diagnostics
                .iter()
                .map(|d| format!("  {}: {}", d.kind(), d.message()))
                .collect();
            failures.push(format!(
                "{}\n  expected: {expected_sorted:?}\n  actual:   {actual:?}\n{}",
                path.file_name().unwrap_or_default().to_string_lossy(),
                messages.join("\n")
            ));
        }
        for d in &checked.diagnostics {
            assert!(!d.message().is_empty());
        }
    }
    assert!(
        failures.is_empty(),
        "{} contract(s) misreported:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_corpus_covers_every_kind_of_contract_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/malformed");
    let mut kinds = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("the corpus folder exists") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("readable");
        for e in expectations(&text) {
            kinds.insert(e.split(' ').next().unwrap_or_default().to_string());
        }
    }
    for kind in [
        "toml-syntax",
        "unknown-key",
        "missing-key",
        "wrong-type",
        "invalid-value",
        "invalid-name",
        "invalid-version",
        "invalid-call",
        "schema-unsupported",
        "schema-invalid",
        "cel-syntax",
        "cel-unknown-variable",
        "cel-unknown-function",
        "cel-evaluation",
        "duplicate-error-code",
        "missing-when",
        "example-input",
        "example-output",
        "example-ensures",
        "example-error",
        "example-not-success",
        "invalid-flow",
    ] {
        assert!(
            kinds.contains(kind),
            "no malformed contract exercises `{kind}`"
        );
    }
}
