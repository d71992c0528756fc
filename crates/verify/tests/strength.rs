//! Contract strength on the two contracts of `examples/strength`, with
//! their implementation written in-process: the pinned contract rejects
//! every mutant, the weak one lets exactly its holes through.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use std::path::Path;

use mote_contract::Contract;
use mote_verify::Answer;
use mote_verify::strength::{StrengthOptions, StrengthReport, strength};
use serde_json::{Value, json};

fn example(kind: &str) -> Contract {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/strength")
        .join(kind)
        .join("contract.toml");
    mote_contract::load(&path).unwrap()
}

/// What both example services compute (their Rust guests do the same).
fn order_line(input: &Value) -> Answer {
    let qty = input["qty"].as_i64().unwrap();
    let unit = input["unit_cents"].as_i64().unwrap();
    let error = |code: &str| Answer::Error {
        code: code.into(),
        message: String::new(),
    };
    if qty > 50 {
        return error("too_many");
    }
    if qty > 40 {
        return error("bulk");
    }
    Answer::Output(Ok(
        json!({"total_cents": qty * unit, "label": format!("{qty} × {unit}")}),
    ))
}

fn run(kind: &str, seed: u64) -> StrengthReport {
    strength(
        &example(kind),
        &order_line,
        &StrengthOptions { seed, inputs: 300 },
    )
}

#[test]
fn a_contract_that_pins_everything_scores_one() {
    for seed in [1, 2, 3] {
        let report = run("pinned", seed);
        assert_eq!(report.broken, 0);
        assert_eq!(report.inputs, 300);
        assert!(report.mutants > 1000, "{}", report.mutants);
        assert_eq!(report.survivors, vec![], "seed {seed}");
        assert_eq!(report.score(), 1.0);
        assert_eq!(report.overlaps, vec![]);
        assert!(report.free_paths().is_empty());
        for path in ["output", "output.total_cents", "output.label", "outcome"] {
            let (killed, made) = report.paths[path];
            assert!(made > 0 && killed == made, "{path}: {killed}/{made}");
        }
    }
}

#[test]
fn a_weak_contract_names_each_hole_with_an_input() {
    let report = run("weak", 1);
    assert_eq!(report.broken, 0);
    let holes: Vec<(&str, &str)> = report
        .survivors
        .iter()
        .map(|s| (s.path.as_str(), s.mutation.as_str()))
        .collect();
    assert_eq!(
        holes,
        vec![
            ("output.label", "changed"),
            ("output.label", "emptied"),
            ("output.total_cents", "+1"),
            ("output.total_cents", "doubled"),
        ]
    );
    let plus_one = &report.survivors[2];
    let input = &plus_one.input;
    let total = input["qty"].as_i64().unwrap() * input["unit_cents"].as_i64().unwrap();
    assert_eq!(
        plus_one.original,
        format!("success {}", order_line(input).output())
    );
    assert!(
        plus_one
            .mutant
            .contains(&format!("\"total_cents\":{}", total + 1))
    );
    // total_cents -1 is caught (the lower bound is exact); the label is
    // never caught; everything else is.
    let (killed, made) = report.paths["output.total_cents"];
    assert!(killed > 0 && killed < made, "{killed}/{made}");
    let (killed, made) = report.paths["output.label"];
    assert_eq!(killed, 0, "{killed}/{made}");
    assert_eq!(report.free_paths(), vec!["output.label"]);
    assert!(
        report.score() > 0.5 && report.score() < 0.9,
        "{}",
        report.score()
    );
    assert_eq!(report.overlaps.len(), 1);
    assert_eq!(report.overlaps[0].0, vec!["too_many", "bulk"]);
    assert!(report.overlaps[0].1["qty"].as_i64().unwrap() > 50);
}

#[test]
fn answers_that_break_the_contract_are_not_mutated() {
    let report = strength(
        &example("pinned"),
        &|input: &Value| match order_line(input) {
            Answer::Output(Ok(mut output)) => {
                output["total_cents"] = json!(output["total_cents"].as_i64().unwrap() + 1);
                Answer::Output(Ok(output))
            }
            other => other,
        },
        &StrengthOptions {
            seed: 4,
            inputs: 50,
        },
    );
    assert!(report.broken > 0);
}

trait OutputOf {
    fn output(&self) -> Value;
}

impl OutputOf for Answer {
    fn output(&self) -> Value {
        match self {
            Answer::Output(Ok(v)) => v.clone(),
            other => panic!("{other:?}"),
        }
    }
}
