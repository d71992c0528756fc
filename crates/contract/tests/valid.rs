//! Valid contracts load, compile and evaluate; their hash ignores form and
//! follows meaning.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use std::path::{Path, PathBuf};

use mote_contract::{Bindings, Expected, SourceFile, check_source, load};
use serde_json::json;

fn shop() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop")
}

const VAT: &str = r#"
[service]
name = "tax.vat"
version = "1.0.0"
summary = "VAT in cents for a net amount, by country; rounded half up."

[input]
type = "object"
required = ["net_cents", "country"]
additionalProperties = false
properties.net_cents = { type = "integer", minimum = 0, maximum = 100000000 }
properties.country = { enum = ["NL", "DE", "BE"] }

[output]
type = "object"
required = ["vat_cents", "rate_pct"]
additionalProperties = false
properties.vat_cents = { type = "integer", minimum = 0 }
properties.rate_pct = { type = "integer" }

[[error]]
code = "zero_amount"
summary = "Nothing to tax."
when = "input.net_cents == 0"

[behavior]
ensures = [
  "output.rate_pct == (input.country == 'DE' ? 19 : 21)",
  "output.vat_cents == (input.net_cents * output.rate_pct + 50) / 100",
]

[[example]]
input = { net_cents = 1000, country = "DE" }
output = { vat_cents = 190, rate_pct = 19 }
"#;

/// The same contract, reformatted: sections and keys reordered, inline
/// tables expanded, comments added, the default status spelled out.
const VAT_REFORMATTED: &str = r#"
# Value added tax.
[[example]]
output = { rate_pct = 19, vat_cents = 190 }
input = { country = "DE", net_cents = 1000 }

[behavior]
ensures = ["output.rate_pct == (input.country == 'DE' ? 19 : 21)", "output.vat_cents == (input.net_cents * output.rate_pct + 50) / 100"]

[output]
additionalProperties = false
required = ["vat_cents", "rate_pct"]
type = "object"
[output.properties.rate_pct]
type = "integer"
[output.properties.vat_cents]
minimum = 0
type = "integer"

[service]
summary = "VAT in cents for a net amount, by country; rounded half up."
version = "1.0.0"
name = "tax.vat"

[[error]]
status = 422
when = "  input.net_cents == 0  "
summary = "Nothing to tax."
code = "zero_amount"

[input]
type = "object"
required = ["net_cents", "country"]
additionalProperties = false
properties = { country = { enum = ["NL", "DE", "BE"] }, net_cents = { type = "integer", minimum = 0, maximum = 100000000.0 } }
"#;

fn hash_of(text: &str) -> String {
    let checked = check_source(SourceFile::new("contract.toml", text));
    let messages: Vec<_> = checked
        .diagnostics
        .iter()
        .map(|d| d.message().to_string())
        .collect();
    checked
        .contract
        .unwrap_or_else(|| panic!("contract should be valid: {messages:?}"))
        .hash
        .to_string()
}

#[test]
fn every_bundled_example_contract_loads() {
    let mut count = 0;
    for entry in std::fs::read_dir(shop()).expect("examples/shop exists") {
        let path = entry.expect("entry").path().join("contract.toml");
        if path.exists() {
            let contract = load(&path).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
            assert!(
                !contract.examples.is_empty(),
                "{} has no examples",
                path.display()
            );
            count += 1;
        }
    }
    assert!(count >= 7, "found {count} contracts in examples/shop");
}

#[test]
fn the_hash_ignores_formatting_order_comments_and_spelled_out_defaults() {
    assert_eq!(hash_of(VAT), hash_of(VAT_REFORMATTED));
}

#[test]
fn the_hash_changes_with_any_change_of_meaning() {
    let base = hash_of(VAT);
    let changes = [
        ("version = \"1.0.0\"", "version = \"1.0.1\""),
        ("maximum = 100000000", "maximum = 100000001"),
        ("\"NL\", \"DE\", \"BE\"", "\"NL\", \"DE\""),
        ("input.net_cents == 0\"", "input.net_cents <= 0\""),
        (
            "summary = \"Nothing to tax.\"",
            "summary = \"Nothing to tax.\"\nstatus = 400",
        ),
        ("'DE' ? 19 : 21", "'DE' ? 19 : 20"),
        (
            "output = { vat_cents = 190",
            "name = \"germany\"\noutput = { vat_cents = 190",
        ),
    ];
    for (from, to) in changes {
        assert!(VAT.contains(from), "{from}");
        let changed = VAT.replacen(from, to, 1);
        let checked = check_source(SourceFile::new("c.toml", changed.clone()));
        if let Some(contract) = checked.contract {
            assert_ne!(
                contract.hash.to_string(),
                base,
                "changing {from:?} to {to:?} kept the hash"
            );
        } else {
            // A change that breaks the contract is not a hash question; the
            // list above is meant to hold only valid edits.
            panic!("edit {from:?} -> {to:?} made the contract invalid");
        }
    }
}

#[test]
fn a_loaded_contract_evaluates_its_conditions() {
    let contract = load(&shop().join("tax-vat/contract.toml")).expect("valid");
    assert!(contract.is_pure());
    assert_eq!(contract.errors[0].code, "zero_amount");
    assert_eq!(contract.errors[0].status, 422);
    let input = json!({"net_cents": 0, "country": "NL"});
    let when = contract.errors[0]
        .when
        .as_ref()
        .expect("pure services have when");
    assert!(
        when.eval_bool(&Bindings::new().with("input", &input))
            .expect("evaluates")
    );

    let input = json!({"net_cents": 1000, "country": "NL"});
    let wrong = json!({"vat_cents": 200, "rate_pct": 21});
    let bindings = Bindings::new().with("input", &input).with("output", &wrong);
    let held: Vec<bool> = contract
        .behavior
        .ensures
        .iter()
        .map(|e| e.eval_bool(&bindings).expect("evaluates"))
        .collect();
    assert_eq!(held, vec![true, false]);
    assert!(matches!(contract.examples[2].expected, Expected::Error(ref c) if c == "zero_amount"));
    assert!(
        !contract
            .input
            .is_valid(&json!({"net_cents": 1, "country": "FR"}))
    );
    assert_eq!(contract.limits.timeout_ms, Some(20));
}

#[test]
fn a_flow_knows_which_steps_each_step_waits_for() {
    let contract = load(&shop().join("checkout/contract.toml")).expect("valid");
    assert!(!contract.is_pure());
    let flow = contract.flow.as_ref().expect("checkout is a flow");
    let waits: Vec<(&str, Vec<&str>)> = flow
        .steps
        .iter()
        .map(|s| {
            (
                s.id.as_str(),
                s.depends_on.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        waits,
        vec![("net", vec![]), ("vat", vec!["net"]), ("ship", vec![])]
    );
    assert_eq!(flow.on_error.len(), 3);
    let out = flow
        .output
        .eval_json(
            &Bindings::new()
                .with("input", &json!({}))
                .with("net", &json!({"total_cents": 100}))
                .with("vat", &json!({"vat_cents": 21}))
                .with("ship", &json!({"shipping_cents": 495})),
        )
        .expect("evaluates");
    assert_eq!(out["gross_cents"], json!(616));
}

#[test]
fn an_unreadable_file_is_a_diagnostic_not_a_panic() {
    let checked = mote_contract::check_file(Path::new("/nonexistent/contract.toml"));
    assert!(checked.contract.is_none());
    assert_eq!(
        checked.diagnostics[0].kind(),
        mote_contract::DiagnosticKind::Io
    );
}
