//! Contract strength analysis of a service with a ten-field output over
//! 1,000 inputs, against a native target (so the time is the analysis:
//! generating, mutating and judging), next to plain verification of the
//! same service as the same-run baseline.
//!
//! Run: `cargo bench -p mote-verify --bench strength`

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that fails should stop

use std::time::Instant;

use mote_verify::strength::{StrengthOptions, strength};
use mote_verify::{Answer, Options, verify};
use serde_json::{Value, json};

const CONTRACT: &str = r#"
[service]
name = "bench.invoice"
version = "1.0.0"
summary = "An invoice line with ten output fields."

[input]
type = "object"
required = ["qty", "unit_cents", "vat_pct", "sku"]
additionalProperties = false
properties.qty = { type = "integer", minimum = 1, maximum = 1000 }
properties.unit_cents = { type = "integer", minimum = 0, maximum = 100000 }
properties.vat_pct = { enum = [0, 9, 21] }
properties.sku = { type = "string", pattern = "^[A-Z]{3}-[0-9]{3}$" }

[output]
type = "object"
required = ["sku", "qty", "unit_cents", "net_cents", "vat_pct", "vat_cents", "gross_cents", "discounted", "label", "tags"]
additionalProperties = false
properties.sku = { type = "string" }
properties.qty = { type = "integer" }
properties.unit_cents = { type = "integer" }
properties.net_cents = { type = "integer", minimum = 0 }
properties.vat_pct = { type = "integer" }
properties.vat_cents = { type = "integer", minimum = 0 }
properties.gross_cents = { type = "integer", minimum = 0 }
properties.discounted = { type = "boolean" }
properties.label = { type = "string" }
properties.tags = { type = "array", items = { type = "string" }, maxItems = 3 }

[[error]]
code = "too_many"
summary = "More than 500 units."
when = "input.qty > 500"

[behavior]
ensures = [
  "output.sku == input.sku",
  "output.qty == input.qty",
  "output.unit_cents == input.unit_cents",
  "output.net_cents == input.qty * input.unit_cents",
  "output.vat_pct == input.vat_pct",
  "output.vat_cents == (output.net_cents * input.vat_pct + 50) / 100",
  "output.gross_cents == output.net_cents + output.vat_cents",
  "output.discounted == (input.qty >= 100)",
]
"#;

fn invoice(input: &Value) -> Answer {
    let qty = input["qty"].as_i64().unwrap();
    if qty > 500 {
        return Answer::Error {
            code: "too_many".into(),
            message: String::new(),
        };
    }
    let unit = input["unit_cents"].as_i64().unwrap();
    let vat_pct = input["vat_pct"].as_i64().unwrap();
    let net = qty * unit;
    let vat = (net * vat_pct + 50) / 100;
    Answer::Output(Ok(json!({
        "sku": input["sku"],
        "qty": qty,
        "unit_cents": unit,
        "net_cents": net,
        "vat_pct": vat_pct,
        "vat_cents": vat,
        "gross_cents": net + vat,
        "discounted": qty >= 100,
        "label": format!("{qty} × {}", input["sku"].as_str().unwrap()),
        "tags": ["invoice", "line"],
    })))
}

fn main() {
    let contract =
        mote_contract::check_source(mote_contract::SourceFile::new("invoice.toml", CONTRACT))
            .contract
            .expect("a valid contract");

    let start = Instant::now();
    let verified = verify(
        &contract,
        &invoice,
        &Options {
            seed: 1,
            cases: 1000,
            ..Options::default()
        },
    );
    let verify_time = start.elapsed();
    assert!(verified.passed(), "{verified:?}");

    let start = Instant::now();
    let report = strength(
        &contract,
        &invoice,
        &StrengthOptions {
            seed: 1,
            inputs: 1000,
        },
    );
    let strength_time = start.elapsed();
    assert_eq!(report.inputs, 1000);

    println!("strength of a ten-field output, 1,000 inputs, native target");
    println!(
        "{:<44} {verify_time:>10.2?}",
        "mote verify, 1,000 cases (baseline)"
    );
    println!(
        "{:<44} {strength_time:>10.2?}  ({} mutants, {:.1} % rejected, {} holes)",
        "mote strength, 1,000 inputs",
        report.mutants,
        report.score() * 100.0,
        report.survivors.len()
    );
}
