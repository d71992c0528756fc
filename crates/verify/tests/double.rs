//! Callee doubles answer in the callee's name exactly as its contract
//! allows, and replay exactly from their seed.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use std::path::Path;

use mote_contract::{Bindings, Contract};
use mote_verify::double::{DoubleAnswer, Doubles};
use mote_verify::generate::sample;
use serde_json::{Value, json};

fn shop(service: &str) -> Contract {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/shop")
        .join(service)
        .join("contract.toml");
    mote_contract::load(&path).unwrap()
}

fn compile(text: &str) -> Contract {
    let checked = mote_contract::check_source(mote_contract::SourceFile::new("c.toml", text));
    checked
        .contract
        .unwrap_or_else(|| panic!("{:#?}", checked.diagnostics))
}

fn ensures_hold(contract: &Contract, input: &Value, output: &Value) -> bool {
    let bindings = Bindings::new().with("input", input).with("output", output);
    contract.output.is_valid(output)
        && contract
            .behavior
            .ensures
            .iter()
            .all(|e| e.eval_bool(&bindings) == Ok(true))
}

#[test]
fn outputs_pinned_by_ensures_are_solved_and_errors_follow_the_partition() {
    let vat = shop("tax-vat");
    let doubles = Doubles::new(11);
    let mut successes = 0;
    for input in sample(&vat.input, 1, 300) {
        match doubles.answer(&vat, &input) {
            DoubleAnswer::Output(output) => {
                assert!(ensures_hold(&vat, &input, &output), "{input} -> {output}");
                assert_ne!(input["net_cents"], 0);
                successes += 1;
            }
            DoubleAnswer::Error { code, .. } => {
                assert_eq!(code, "zero_amount");
                assert_eq!(input["net_cents"], 0, "only where its `when` holds");
            }
            other => panic!("{input}: {other:?}"),
        }
    }
    assert!(successes > 200, "{successes}");
    assert_eq!(
        doubles.answer(&vat, &json!({"net_cents": 1000, "country": "DE"})),
        DoubleAnswer::Output(json!({"vat_cents": 190, "rate_pct": 19}))
    );
}

#[test]
fn inputs_the_callee_refuses_are_refused() {
    let vat = shop("tax-vat");
    let doubles = Doubles::new(1);
    assert!(matches!(
        doubles.answer(&vat, &json!({"net_cents": -5, "country": "DE"})),
        DoubleAnswer::InvalidInput(message) if message.contains("tax.vat")
    ));
}

const FLAKY: &str = r#"
[service]
name = "store.lookup"
version = "1.0.0"
summary = "A lookup with effects: it may be unavailable at any time."

[input]
type = "object"
required = ["key"]
properties.key = { type = "string", minLength = 1, maxLength = 8 }

[output]
type = "object"
required = ["value", "length"]
additionalProperties = false
properties.value = { type = "string", maxLength = 8 }
properties.length = { type = "integer", minimum = 0 }

[[error]]
code = "store_down"
summary = "The store did not answer."
status = 503

[[error]]
code = "missing"
summary = "No such key."
status = 404
when = "input.key == 'none'"

[behavior]
ensures = ["output.length == size(output.value)"]

[effects]
clock = true
"#;

#[test]
fn errors_without_when_are_injected_sometimes_and_replay_exactly() {
    let lookup = compile(FLAKY);
    let inputs = sample(&lookup.input, 2, 300);
    let answers = |seed| -> Vec<DoubleAnswer> {
        let doubles = Doubles::new(seed);
        inputs.iter().map(|i| doubles.answer(&lookup, i)).collect()
    };
    let first = answers(5);
    assert_eq!(first, answers(5), "the same seed gives the same answers");
    assert_ne!(first, answers(6), "another seed gives other answers");
    let injected = first
        .iter()
        .filter(|a| matches!(a, DoubleAnswer::Error { code, .. } if code == "store_down"))
        .count();
    assert!(
        (50..150).contains(&injected),
        "about one in three: {injected}"
    );
    for (input, answer) in inputs.iter().zip(&first) {
        match answer {
            DoubleAnswer::Output(output) => assert!(ensures_hold(&lookup, input, output)),
            DoubleAnswer::Error { code, .. } if code == "missing" => {
                assert_eq!(input["key"], "none")
            }
            DoubleAnswer::Error { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        Doubles::new(5).answer(&lookup, &json!({"key": "none"})),
        DoubleAnswer::Error { code, .. } if code == "missing"
    ));
}

#[test]
fn a_double_declines_when_no_output_can_satisfy_the_ensures() {
    let impossible = compile(
        &FLAKY
            .replace("[[error]]\ncode = \"store_down\"\nsummary = \"The store did not answer.\"\nstatus = 503\n", "")
            .replace(
                r#"ensures = ["output.length == size(output.value)"]"#,
                r#"ensures = ["output.length > 3", "output.length < 2"]"#,
            ),
    );
    assert_eq!(
        Doubles::new(1).answer(&impossible, &json!({"key": "k"})),
        DoubleAnswer::Declined
    );
}
