//! A corpus of deliberately wrong implementations of the shop's `tax.vat`
//! (written as in-process targets): each must be caught by the right
//! oracle with a shrunk counterexample; the correct twin must pass, with
//! full coverage, over several seeds.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use std::cell::Cell;
use std::path::Path;

use mote_contract::Contract;
use mote_verify::oracle::Oracle;
use mote_verify::{Answer, Options, Report, verify};
use serde_json::{Value, json};

fn vat_contract() -> Contract {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop/tax-vat/contract.toml");
    mote_contract::load(&path).unwrap()
}

/// `tax.vat` without its examples, so that generation (not an example)
/// finds the bug and shrinks it; `extra` is inserted under [behavior].
fn vat_without_examples(extra: &str) -> Contract {
    let text = std::fs::read_to_string(vat_contract().path).unwrap();
    let start = text.find("[[example]]").unwrap();
    let end = text.find("[limits]").unwrap();
    let text = format!("{}{}", &text[..start], &text[end..])
        .replace("[behavior]", &format!("[behavior]\n{extra}"));
    mote_contract::check_source(mote_contract::SourceFile::new("c.toml", text))
        .contract
        .expect("a valid contract")
}

fn net(input: &Value) -> i64 {
    input["net_cents"].as_i64().unwrap()
}

fn rate(input: &Value) -> i64 {
    if input["country"] == "DE" { 19 } else { 21 }
}

fn correct(input: &Value) -> Answer {
    if net(input) == 0 {
        return Answer::Error {
            code: "zero_amount".into(),
            message: "nothing to tax".into(),
        };
    }
    Answer::Output(Ok(json!({
        "vat_cents": (net(input) * rate(input) + 50) / 100,
        "rate_pct": rate(input),
    })))
}

fn run(target: &dyn Fn(&Value) -> Answer, seed: u64) -> Report {
    run_on(&vat_contract(), target, seed)
}

fn run_on(contract: &Contract, target: &dyn Fn(&Value) -> Answer, seed: u64) -> Report {
    let options = Options {
        seed,
        cases: 400,
        ..Options::default()
    };
    verify(contract, &target, &options)
}

fn caught(report: &Report, oracle: Oracle) -> Value {
    assert!(!report.passed(), "the bug went unnoticed: {report:?}");
    let counterexample = report.counterexample.as_ref().expect("a counterexample");
    assert_eq!(
        counterexample.violation.oracle, oracle,
        "{counterexample:?}"
    );
    counterexample.input.clone()
}

#[test]
fn the_correct_implementation_passes_with_full_coverage_over_several_seeds() {
    for seed in 1..=5 {
        let report = run(&correct, seed);
        assert!(report.passed(), "seed {seed}: {report:?}");
        assert_eq!(report.cases, 400);
        assert!(report.coverage["success"] > 0);
        assert!(
            report.coverage["zero_amount"] > 0,
            "the boundary 0 was never generated"
        );
    }
}

#[test]
fn an_off_by_one_above_a_threshold_shrinks_to_the_threshold() {
    let buggy = |input: &Value| match correct(input) {
        Answer::Output(Ok(mut out)) if net(input) >= 5000 => {
            out["vat_cents"] = json!(out["vat_cents"].as_i64().unwrap() + 1);
            Answer::Output(Ok(out))
        }
        other => other,
    };
    let input = caught(&run(&buggy, 1), Oracle::Ensures);
    assert_eq!(net(&input), 5000, "not shrunk: {input}");
}

#[test]
fn wrong_rounding_shrinks_to_a_small_amount() {
    let truncating = |input: &Value| match correct(input) {
        Answer::Output(Ok(_)) => Answer::Output(Ok(json!({
            "vat_cents": net(input) * rate(input) / 100,
            "rate_pct": rate(input),
        }))),
        other => other,
    };
    let report = run_on(&vat_without_examples(""), &truncating, 2);
    let input = caught(&report, Oracle::Ensures);
    assert!(net(&input) <= 10, "not shrunk: {input}");
    let violation = &report.counterexample.unwrap().violation;
    assert!(
        violation.message.contains("output.vat_cents =="),
        "{}",
        violation.message
    );
}

#[test]
fn the_wrong_error_code_is_caught_at_zero() {
    let wrong_code = |input: &Value| match correct(input) {
        Answer::Error { .. } => Answer::Error {
            code: "zero".into(),
            message: "nothing".into(),
        },
        other => other,
    };
    // The contract's own example (net 0) already catches it.
    let report = run(&wrong_code, 3);
    let counterexample = report.counterexample.expect("caught");
    assert!(counterexample.from_example);
    assert_eq!(counterexample.violation.oracle, Oracle::Examples);
    assert_eq!(net(&counterexample.input), 0);
}

#[test]
fn an_error_where_success_is_due_shrinks_to_the_smallest_such_input() {
    let too_eager = |input: &Value| {
        if net(input) < 10 {
            Answer::Error {
                code: "zero_amount".into(),
                message: "too small".into(),
            }
        } else {
            correct(input)
        }
    };
    let input = caught(&run(&too_eager, 4), Oracle::ErrorPartition);
    assert_eq!(net(&input), 1, "not shrunk: {input}");
}

#[test]
fn a_field_missing_from_some_outputs_is_caught() {
    let forgetful = |input: &Value| match correct(input) {
        Answer::Output(Ok(mut out)) if input["country"] == "BE" => {
            out.as_object_mut().unwrap().remove("rate_pct");
            Answer::Output(Ok(out))
        }
        other => other,
    };
    let input = caught(&run(&forgetful, 5), Oracle::OutputSchema);
    assert_eq!(input["country"], "BE");
    assert_eq!(net(&input), 1, "not shrunk: {input}");
}

#[test]
fn nondeterminism_in_a_pure_service_is_caught() {
    let calls = Cell::new(0u64);
    let flaky = |input: &Value| {
        calls.set(calls.get() + 1);
        // Every second call for Germany claims the other rate: each answer
        // alone could pass a weak check; the two together differ.
        match correct(input) {
            Answer::Output(Ok(mut out))
                if calls.get().is_multiple_of(2) && input["country"] == "DE" =>
            {
                out["rate_pct"] = json!(21);
                Answer::Output(Ok(out))
            }
            other => other,
        }
    };
    let report = run_on(&vat_without_examples(""), &flaky, 6);
    assert_eq!(
        report.counterexample.unwrap().violation.oracle,
        Oracle::Determinism
    );
}

#[test]
fn being_too_slow_on_one_class_of_input_is_caught() {
    let slow_for_germany = |input: &Value| {
        if input["country"] == "DE" && net(input) > 0 {
            Answer::Platform {
                code: "timeout".into(),
                message: "did not finish within 20 ms".into(),
            }
        } else {
            correct(input)
        }
    };
    let report = run(&slow_for_germany, 7);
    let counterexample = report.counterexample.expect("caught");
    // The contract's first example is German, so it fails there first.
    assert_eq!(counterexample.input["country"], "DE");
    assert!(counterexample.violation.actual.contains("timeout"));
}

#[test]
fn an_outcome_never_reached_fails_unless_allowed() {
    let never_fails = |input: &Value| {
        if net(input) == 0 {
            // Pretend the zero input never comes: answer as the contract
            // wants, but make coverage see no zero_amount by filtering.
            return correct(input);
        }
        correct(input)
    };
    let contract = vat_contract();
    // A requires that excludes zero makes `zero_amount` unreachable.
    let text = std::fs::read_to_string(&contract.path)
        .unwrap()
        .replace(
            "[behavior]",
            "[behavior]\nrequires = [\"input.net_cents > 0\"]",
        )
        .replace(
            "[[example]]\ninput = { net_cents = 0, country = \"NL\" }\nerror = \"zero_amount\"\n",
            "",
        );
    let unreachable = mote_contract::check_source(mote_contract::SourceFile::new("c.toml", text))
        .contract
        .expect("still a valid contract");
    let report = verify(
        &unreachable,
        &never_fails,
        &Options {
            seed: 1,
            cases: 200,
            ..Options::default()
        },
    );
    assert_eq!(report.unreached, vec!["zero_amount".to_string()]);
    assert!(!report.passed());
    let allowed = Options {
        seed: 1,
        cases: 200,
        allow_unreached: vec!["zero_amount".into()],
        jobs: None,
        check_refusals: false,
    };
    assert!(verify(&unreachable, &never_fails, &allowed).passed());
}

#[test]
fn a_requires_that_rejects_most_inputs_is_named() {
    let starving =
        vat_without_examples("requires = [\"input.net_cents == 1000 || input.net_cents == 0\"]");
    let report = verify(
        &starving,
        &correct,
        &Options {
            seed: 1,
            cases: 400,
            ..Options::default()
        },
    );
    assert!(!report.passed());
    let why = report.starved.expect("starvation reported");
    assert!(why.contains("input.net_cents == 1000"), "{why}");
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let buggy = |input: &Value| {
        if net(input) % 7 == 3 {
            Answer::Error {
                code: "zero_amount".into(),
                message: "odd".into(),
            }
        } else {
            correct(input)
        }
    };
    assert_eq!(run(&buggy, 11), run(&buggy, 11));
}

#[test]
fn a_rare_conjunction_is_reached_by_directed_generation() {
    let text = r#"
[service]
name = "demo.pair"
version = "1.0.0"
summary = "Adds a pair; both zero is an error."

[input]
type = "object"
required = ["a", "b"]
additionalProperties = false
properties.a = { type = "integer", minimum = -1000000, maximum = 1000000 }
properties.b = { type = "integer", minimum = -1000000, maximum = 1000000 }

[output]
type = "integer"

[[error]]
code = "both_zero"
summary = "Nothing to add."
when = "input.a == 0 && input.b == 0"

[behavior]
ensures = ["output == input.a + input.b"]
"#;
    let contract = mote_contract::check_source(mote_contract::SourceFile::new("c.toml", text))
        .contract
        .expect("valid");
    let pair = |input: &Value| {
        let (a, b) = (input["a"].as_i64().unwrap(), input["b"].as_i64().unwrap());
        if a == 0 && b == 0 {
            Answer::Error {
                code: "both_zero".into(),
                message: "nothing".into(),
            }
        } else {
            Answer::Output(Ok(json!(a + b)))
        }
    };
    let report = verify(
        &contract,
        &pair,
        &Options {
            seed: 4,
            cases: 50,
            ..Options::default()
        },
    );
    assert!(report.passed(), "{report:?}");
    assert!(report.coverage["both_zero"] > 0);

    // And a service that gets that rare case wrong is caught there.
    let wrong = |input: &Value| match pair(input) {
        Answer::Error { .. } => Answer::Output(Ok(json!(0))),
        other => other,
    };
    let report = verify(
        &contract,
        &wrong,
        &Options {
            seed: 4,
            cases: 50,
            ..Options::default()
        },
    );
    let counterexample = report.counterexample.expect("caught");
    assert_eq!(counterexample.input, json!({"a": 0, "b": 0}));
    assert_eq!(counterexample.violation.oracle, Oracle::ErrorPartition);
}

/// A contract over two bounded integers and a tag.
fn pair_contract() -> Contract {
    let text = r#"
[service]
name = "pair.sum"
version = "1.0.0"
summary = "Adds two bounded numbers."

[input]
type = "object"
required = ["a", "b", "tag"]
additionalProperties = false
properties.a = { type = "integer", minimum = 0, maximum = 1000000 }
properties.b = { type = "integer", minimum = -1000000, maximum = 1000000 }
properties.tag = { type = "string", pattern = "^[a-z]{1,8}$" }

[output]
type = "integer"

[behavior]
ensures = ["output == input.a + input.b"]
"#;
    mote_contract::check_source(mote_contract::SourceFile::new("pair.toml", text))
        .contract
        .expect("a valid contract")
}

fn pair_sum(input: &Value) -> i64 {
    input["a"].as_i64().unwrap() + input["b"].as_i64().unwrap()
}

#[test]
fn a_bug_that_needs_two_fields_at_their_edges_together_is_found_on_every_seed() {
    // Wrong only when `a` is at its minimum and `b` at its maximum at once.
    let wrong = |input: &Value| {
        let edge = input["a"] == json!(0) && input["b"] == json!(1000000);
        Answer::Output(Ok(json!(pair_sum(input) + i64::from(edge))))
    };
    for seed in 0..10 {
        let report = run_on(&pair_contract(), &wrong, seed);
        let input = caught(&report, Oracle::Ensures);
        assert_eq!((&input["a"], &input["b"]), (&json!(0), &json!(1000000)));
    }
    let right = |input: &Value| Answer::Output(Ok(json!(pair_sum(input))));
    let report = run_on(&pair_contract(), &right, 1);
    assert!(report.passed(), "{report:?}");
    // a: 0, 1, 999999, 1000000; b: five edges; tag has a pattern: none.
    assert_eq!(report.edge_combinations, 20);
}

/// A service that takes text and decodes it strictly, as a typed decoder
/// behind HTTP does: an integer written `40.0` is refused.
struct StrictDecoder;

impl mote_verify::Target for StrictDecoder {
    fn call(&self, input: &Value) -> Answer {
        self.call_text(&input.to_string())
    }

    fn call_text(&self, text: &str) -> Answer {
        let input: Value = serde_json::from_str(text).unwrap();
        match (input["a"].as_i64(), input["b"].as_i64()) {
            (Some(a), Some(b)) => Answer::Output(Ok(json!(a + b))),
            _ => Answer::Error {
                code: "guest_decoding".into(),
                message: "invalid type: floating point, expected i64".into(),
            },
        }
    }
}

#[test]
fn a_decoder_that_refuses_40_0_for_an_integer_is_caught_by_the_encoding_oracle() {
    let options = Options {
        seed: 3,
        cases: 200,
        ..Options::default()
    };
    let report = verify(&pair_contract(), &StrictDecoder, &options);
    caught(&report, Oracle::Encoding);
    assert!(report.encodings > 0);
    let message = &report.counterexample.unwrap().violation.message;
    assert!(message.contains("40.0"), "{message}");
}

fn run_in_batches(contract: &Contract, target: &dyn Fn(&Value) -> Answer, jobs: usize) -> Report {
    let options = Options {
        seed: 21,
        cases: 400,
        jobs: Some(jobs),
        check_refusals: false,
        ..Options::default()
    };
    verify(contract, &target, &options)
}

#[test]
fn in_batches_the_report_depends_on_the_seed_alone_not_on_the_batch_size() {
    let threshold = |input: &Value| match correct(input) {
        Answer::Output(Ok(mut out)) if net(input) >= 5000 => {
            out["vat_cents"] = json!(out["vat_cents"].as_i64().unwrap() + 1);
            Answer::Output(Ok(out))
        }
        other => other,
    };
    let contract = vat_without_examples("");
    let one = run_in_batches(&contract, &threshold, 1);
    let input = caught(&one, Oracle::Ensures);
    assert_eq!(net(&input), 5000, "not shrunk: {input}");
    for jobs in [2, 7, 64] {
        assert_eq!(
            run_in_batches(&contract, &threshold, jobs),
            one,
            "jobs {jobs}"
        );
    }
    let passing = run_in_batches(&contract, &correct, 1);
    assert!(passing.passed(), "{passing:?}");
    assert!(passing.cases >= 400, "{passing:?}");
    for jobs in [3, 16] {
        assert_eq!(
            run_in_batches(&contract, &correct, jobs),
            passing,
            "jobs {jobs}"
        );
    }
}

#[test]
fn in_batches_every_oracle_still_applies_and_starvation_is_named() {
    let truncating = |input: &Value| match correct(input) {
        Answer::Output(Ok(_)) => Answer::Output(Ok(json!({
            "vat_cents": net(input) * rate(input) / 100,
            "rate_pct": rate(input),
        }))),
        other => other,
    };
    let report = run_in_batches(&vat_without_examples(""), &truncating, 8);
    let input = caught(&report, Oracle::Ensures);
    assert!(net(&input) <= 10, "not shrunk: {input}");

    let calls = Cell::new(0u32);
    let flaky = |input: &Value| {
        calls.set(calls.get() + 1);
        match correct(input) {
            Answer::Output(Ok(mut out)) if calls.get().is_multiple_of(2) => {
                out["rate_pct"] = json!(0);
                Answer::Output(Ok(out))
            }
            other => other,
        }
    };
    let report = run_in_batches(&vat_without_examples(""), &flaky, 4);
    assert!(!report.passed(), "nondeterminism went unnoticed");

    let starving =
        vat_without_examples("requires = [\"input.net_cents == 1000 || input.net_cents == 0\"]");
    let report = run_in_batches(&starving, &correct, 8);
    let why = report.starved.expect("starvation reported");
    assert!(why.contains("input.net_cents == 1000"), "{why}");
}

#[test]
fn inputs_the_contract_refuses_must_be_refused_when_asked() {
    let contract = vat_contract();
    let options = Options {
        seed: 5,
        cases: 200,
        check_refusals: true,
        ..Options::default()
    };
    let lenient = |input: &Value| {
        if input["net_cents"].as_i64().is_some() && input["country"].is_string() {
            correct(input)
        } else {
            Answer::Output(Ok(json!({"vat_cents": 0, "rate_pct": 21})))
        }
    };
    let report = verify(&contract, &lenient, &options);
    let input = caught(&report, Oracle::Refusal);
    assert!(!contract.input.is_valid(&input), "{input}");

    let guarded = |input: &Value| {
        if contract.input.is_valid(input) {
            correct(input)
        } else {
            Answer::Platform {
                code: "invalid_input".into(),
                message: "refused".into(),
            }
        }
    };
    let report = verify(&contract, &guarded, &options);
    assert!(report.passed(), "{report:?}");
    assert!(report.refusals >= 16, "{}", report.refusals);
    let unasked = verify(
        &contract,
        &lenient,
        &Options {
            check_refusals: false,
            ..options
        },
    );
    assert!(unasked.passed() && unasked.refusals == 0, "{unasked:?}");
}

#[test]
fn one_slow_answer_on_a_busy_machine_is_confirmed_before_it_counts() {
    // Every seventh call times out once, as a busy machine might make it;
    // the same input answers at once when asked again.
    let calls = Cell::new(0u32);
    let sometimes_slow = |input: &Value| {
        calls.set(calls.get() + 1);
        if calls.get().is_multiple_of(7) {
            return Answer::Platform {
                code: "timeout".into(),
                message: "the machine was busy".into(),
            };
        }
        correct(input)
    };
    let report = run(&sometimes_slow, 9);
    assert!(report.passed(), "{report:?}");
    let in_batches = run_in_batches(&vat_contract(), &sometimes_slow, 4);
    assert!(in_batches.passed(), "{in_batches:?}");
}

#[test]
fn a_failure_that_does_not_show_twice_still_fails_the_run() {
    // Wrong only the first time it sees `a` at its minimum and `b` at its
    // maximum together, which the edge phase is what finds: shrinking and
    // judging the input again see a right answer, yet the run must fail.
    for seed in 0..10 {
        let seen = std::cell::RefCell::new(std::collections::HashSet::new());
        let flaky = |input: &Value| {
            let edge = input["a"] == json!(0) && input["b"] == json!(1000000);
            let first = seen.borrow_mut().insert(input.to_string());
            Answer::Output(Ok(json!(pair_sum(input) + i64::from(edge && first))))
        };
        let report = run_on(&pair_contract(), &flaky, seed);
        assert!(!report.passed(), "seed {seed}: {report:?}");
    }
}
