//! Verification of a stateful service, against models of the shop's
//! `inventory.reserve` written as targets: the right one passes; one that
//! loses updates when calls race, one that writes although it fails, and
//! one that forgets to write are each caught by their oracle.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use std::path::Path;

use mote_contract::{Contract, MemoryStores};
use mote_verify::oracle::Oracle;
use mote_verify::state::StoreDraw;
use mote_verify::strength::{StrengthOptions, strength};
use mote_verify::{Answer, Options, Report, Target, verify};
use serde_json::{Value, json};

/// The shop's `inventory.reserve`, without its examples when `examples`
/// is false, so that generation (not an example) must find a flaw.
fn reserve_contract(examples: bool) -> Contract {
    reserve_contract_without(examples, "")
}

/// [`reserve_contract`] without the line `drop` (none when empty).
fn reserve_contract_without(examples: bool, drop: &str) -> Contract {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/shop/inventory-reserve/contract.toml");
    let mut text = std::fs::read_to_string(path).unwrap();
    if !drop.is_empty() {
        assert!(text.contains(drop), "{drop}");
        text = text.replace(drop, "");
    }
    if !examples {
        text.truncate(text.find("[[example]]").unwrap());
    }
    mote_contract::check_source(mote_contract::SourceFile::new("c.toml", text))
        .contract
        .expect("a valid contract")
}

#[derive(Clone, Copy, PartialEq)]
enum Flaw {
    None,
    LosesRacingUpdates,
    WritesOnError,
    ForgetsToWrite,
}

struct Reserve {
    draw: StoreDraw,
    flaw: Flaw,
}

impl Reserve {
    /// One call on `stores`: the answer, and the stores it leaves.
    fn run(&self, input: &Value, stores: &MemoryStores) -> (Answer, MemoryStores) {
        let sku = input["sku"].as_str().unwrap().to_string();
        let qty = input["qty"].as_i64().unwrap();
        let on_hand = stores
            .stores
            .get("stock")
            .and_then(|s| s.get(&sku))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let mut after = stores.clone();
        if on_hand < qty {
            if self.flaw == Flaw::WritesOnError {
                after
                    .stores
                    .entry("stock".into())
                    .or_default()
                    .insert(sku, json!(0));
            }
            let answer = Answer::Error {
                code: "insufficient_stock".into(),
                message: "not enough".into(),
            };
            return (answer, after);
        }
        if self.flaw != Flaw::ForgetsToWrite {
            after
                .stores
                .entry("stock".into())
                .or_default()
                .insert(sku.clone(), json!(on_hand - qty));
        }
        let output = json!({"sku": sku, "reserved": qty, "on_hand": on_hand - qty});
        (Answer::Output(Ok(output)), after)
    }
}

impl Target for Reserve {
    fn call(&self, input: &Value) -> Answer {
        self.call_from(input, &self.draw.before(input))
    }

    fn call_from(&self, input: &Value, before: &MemoryStores) -> Answer {
        let (answer, after) = self.run(input, before);
        Answer::Stateful {
            answer: Box::new(answer),
            before: before.clone(),
            after,
        }
    }

    fn call_sharing(
        &self,
        inputs: &[Value],
        before: &MemoryStores,
        together: bool,
    ) -> Option<(Vec<Answer>, MemoryStores)> {
        let mut stores = before.clone();
        let mut answers = Vec::new();
        for input in inputs {
            // The racy model reads what the batch started from and writes
            // its own key over whatever was written since.
            let read = if together && self.flaw == Flaw::LosesRacingUpdates {
                before
            } else {
                &stores
            };
            let (answer, after) = self.run(input, read);
            let sku = input["sku"].as_str().unwrap();
            if let Some(value) = after.stores.get("stock").and_then(|s| s.get(sku)) {
                stores
                    .stores
                    .entry("stock".into())
                    .or_default()
                    .insert(sku.to_string(), value.clone());
            }
            answers.push(answer);
        }
        Some((answers, stores))
    }
}

fn run(flaw: Flaw, seed: u64, examples: bool) -> Report {
    let contract = reserve_contract(examples);
    let target = Reserve {
        draw: StoreDraw::new(&contract, seed).unwrap(),
        flaw,
    };
    let options = Options {
        seed,
        cases: 200,
        ..Options::default()
    };
    verify(&contract, &target, &options)
}

#[test]
fn the_right_model_passes_with_both_outcomes_and_serial_batches() {
    for seed in [1, 2, 3, 4, 5] {
        let report = run(Flaw::None, seed, true);
        assert!(report.passed(), "seed {seed}: {report:#?}");
        assert!(report.coverage["success"] > 0 && report.coverage["insufficient_stock"] > 0);
        assert_eq!(report.concurrent_batches, 4, "seed {seed}");
    }
}

#[test]
fn each_flaw_is_caught_by_its_oracle() {
    for (flaw, examples, oracle) in [
        (Flaw::LosesRacingUpdates, true, Oracle::Serializable),
        (Flaw::WritesOnError, true, Oracle::Stores),
        (Flaw::WritesOnError, false, Oracle::Stores),
        (Flaw::ForgetsToWrite, true, Oracle::Examples),
        (Flaw::ForgetsToWrite, false, Oracle::Ensures),
    ] {
        for seed in [1, 2, 3] {
            let report = run(flaw, seed, examples);
            let found = report
                .counterexample
                .as_ref()
                .unwrap_or_else(|| panic!("seed {seed}: {oracle} missed: {report:#?}"));
            assert_eq!(found.violation.oracle, oracle, "seed {seed}: {found:#?}");
            assert!(found.violation.actual.contains("stock"), "{found:#?}");
        }
    }
}

#[test]
fn strength_reports_a_contract_that_does_not_pin_what_a_call_writes() {
    let strong = reserve_contract(true);
    let weak = reserve_contract_without(true, "  \"after.stock[input.sku] == output.on_hand\",\n");
    let options = StrengthOptions {
        seed: 1,
        inputs: 200,
    };
    let target = |contract: &Contract| Reserve {
        draw: StoreDraw::new(contract, 1).unwrap(),
        flaw: Flaw::None,
    };
    let pinned = strength(&strong, &target(&strong), &options);
    assert_eq!(pinned.survivors, Vec::new(), "{pinned:#?}");
    assert!(pinned.paths["after.stock[key]"].1 > 0, "{pinned:#?}");
    let loose = strength(&weak, &target(&weak), &options);
    assert_eq!(loose.free_paths(), ["after.stock[key]"], "{loose:#?}");
    assert!(
        loose
            .survivors
            .iter()
            .any(|s| s.path == "after.stock[key]" && s.mutation == "unwritten"),
        "{loose:#?}"
    );
}
