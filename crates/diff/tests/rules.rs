//! Pairs of contracts, one per rule, each with the verdict and the witness
//! `mote diff` must give: the shop's `tax.vat` changed one way at a time,
//! and a contract with a `pattern` that only sampling can judge.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use std::path::Path;

use mote_contract::Contract;
use mote_diff::{Area, Basis, Bump, Change, Class, ContractDiff, Options, diff};
use serde_json::json;

fn vat_text() -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop/tax-vat/contract.toml");
    std::fs::read_to_string(path).unwrap()
}

fn contract(text: &str) -> Contract {
    let checked =
        mote_contract::check_source(mote_contract::SourceFile::new("c.toml", text.to_string()));
    match checked.contract {
        Some(contract) => contract,
        None => panic!("not a valid contract: {:?}\n{text}", checked.diagnostics),
    }
}

/// tax.vat with each `(from, to)` replaced (each must occur).
fn vat_with(edits: &[(&str, &str)]) -> Contract {
    let mut text = vat_text();
    for (from, to) in edits {
        assert!(text.contains(from), "`{from}` is not in tax.vat");
        text = text.replace(from, to);
    }
    contract(&text)
}

/// The diff under seed 7, after checking that five other seeds find the
/// same changes (a sampled verdict must not hang on a lucky seed).
fn compare(old: &Contract, new: &Contract) -> ContractDiff {
    let shape = |d: &ContractDiff| -> Vec<(Class, Area, String, bool)> {
        d.changes
            .iter()
            .map(|c| (c.class, c.area, c.what.clone(), c.witness.is_some()))
            .collect()
    };
    let chosen = diff(
        old,
        new,
        &Options {
            seed: 7,
            samples: 1_000,
        },
    );
    for seed in 100..105 {
        let other = diff(
            old,
            new,
            &Options {
                seed,
                samples: 1_000,
            },
        );
        assert_eq!(shape(&other), shape(&chosen), "seed {seed}");
    }
    chosen
}

/// The one change in `area` with `class`.
fn only(d: &ContractDiff, area: Area, class: Class) -> &Change {
    let found: Vec<&Change> = d
        .changes
        .iter()
        .filter(|c| c.area == area && c.class == class)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {class:?} change in {area:?}: {:#?}",
        d.changes
    );
    found[0]
}

#[test]
fn a_contract_against_itself_and_a_reformatted_copy_has_no_change() {
    let old = contract(&vat_text());
    let same = compare(&old, &contract(&vat_text()));
    assert!(same.changes.is_empty(), "{:#?}", same.changes);
    assert_eq!(same.required, Bump::None);
    assert!(same.version_ok());
    let reformatted = vat_text()
        .replace("summary = \"Nothing to tax.\"", "summary = \"Nothing to tax at all.\"  # reworded")
        .replace("properties.net_cents = { type = \"integer\", minimum = 0, maximum = 100000000 }",
            "[input.properties.net_cents]\ntype = \"integer\"\nmaximum = 100000000\nminimum = 0\n\n[input.properties.country]\nenum = [\"NL\", \"DE\", \"BE\"]\n\n")
        .replace("properties.country = { enum = [\"NL\", \"DE\", \"BE\"] }\n", "");
    let reformatted = contract(&reformatted);
    let d = compare(&old, &reformatted);
    assert!(d.changes.is_empty(), "{:#?}", d.changes);
}

#[test]
fn a_narrower_input_range_is_breaking_with_the_old_bound_as_witness() {
    let new = vat_with(&[("maximum = 100000000", "maximum = 99999999")]);
    let d = compare(&contract(&vat_text()), &new);
    let change = only(&d, Area::Input, Class::Breaking);
    assert_eq!(change.basis, Basis::Structural);
    assert!(change.what.contains("input.net_cents"), "{}", change.what);
    assert_eq!(
        change.witness.as_ref().unwrap()["net_cents"],
        json!(100_000_000)
    );
    assert_eq!(d.required, Bump::Major);
    assert!(!d.version_ok(), "1.0.0 → 1.0.0 for a breaking change");
    assert_eq!(d.least_version().to_string(), "2.0.0");
}

#[test]
fn a_wider_input_enum_is_compatible_and_needs_a_minor_bump() {
    let new = vat_with(&[
        (
            "enum = [\"NL\", \"DE\", \"BE\"]",
            "enum = [\"NL\", \"DE\", \"BE\", \"FR\"]",
        ),
        ("version = \"1.0.0\"", "version = \"1.1.0\""),
    ]);
    let d = compare(&contract(&vat_text()), &new);
    assert!(!d.breaking(), "{:#?}", d.changes);
    let change = only(&d, Area::Input, Class::Compatible);
    assert_eq!(change.witness.as_ref().unwrap()["country"], json!("FR"));
    assert_eq!(d.required, Bump::Minor);
    assert!(d.version_ok());
}

#[test]
fn a_stronger_requires_is_breaking_and_found_by_sampling() {
    let new = vat_with(&[(
        "[behavior]\n",
        "[behavior]\nrequires = [\"input.net_cents < 50000000\"]\n",
    )]);
    let d = compare(&contract(&vat_text()), &new);
    let change = only(&d, Area::Requires, Class::Breaking);
    assert!(matches!(change.basis, Basis::Sampled { .. }));
    assert!(
        change.witness.as_ref().unwrap()["net_cents"]
            .as_i64()
            .unwrap()
            >= 50_000_000
    );
    let back = compare(&new, &contract(&vat_text()));
    only(&back, Area::Requires, Class::Compatible);
}

#[test]
fn an_output_member_no_longer_required_is_breaking_and_the_reverse_compatible() {
    let new = vat_with(&[
        (
            "required = [\"vat_cents\", \"rate_pct\"]",
            "required = [\"vat_cents\"]",
        ),
        (
            "  \"output.rate_pct == (input.country == 'DE' ? 19 : 21)\",\n",
            "",
        ),
        (
            "output.vat_cents == (input.net_cents * output.rate_pct + 50) / 100",
            "output.vat_cents >= 0",
        ),
    ]);
    let old = contract(&vat_text());
    let d = compare(&old, &new);
    let change = d
        .changes
        .iter()
        .find(|c| c.area == Area::Output && c.class == Class::Breaking)
        .expect("the output is wider");
    assert!(
        change.what.contains("`rate_pct` is no longer required"),
        "{}",
        change.what
    );
    assert!(
        change
            .witness
            .as_ref()
            .is_some_and(|w| w.get("rate_pct").is_none()),
        "{change:?}"
    );
    let back = compare(&new, &old);
    assert!(
        back.changes
            .iter()
            .any(|c| c.area == Area::Output && c.class == Class::Compatible)
    );
}

#[test]
fn a_weaker_ensures_is_breaking_with_an_answer_the_old_contract_ruled_out() {
    let new = vat_with(&[(
        "output.vat_cents == (input.net_cents * output.rate_pct + 50) / 100",
        "output.vat_cents <= input.net_cents",
    )]);
    let old = contract(&vat_text());
    let d = compare(&old, &new);
    let change = only(&d, Area::Ensures, Class::Breaking);
    let witness = change.witness.as_ref().unwrap();
    let (net, vat, rate) = (
        witness["input"]["net_cents"].as_i64().unwrap(),
        witness["output"]["vat_cents"].as_i64().unwrap(),
        witness["output"]["rate_pct"].as_i64().unwrap(),
    );
    assert_ne!(vat, (net * rate + 50) / 100, "{witness}");
    let back = compare(&new, &old);
    only(&back, Area::Ensures, Class::Compatible);
}

#[test]
fn a_new_error_due_where_the_service_used_to_succeed_is_breaking() {
    let new = vat_with(&[(
        "[behavior]",
        "[[error]]\ncode = \"too_large\"\nsummary = \"Too much.\"\nstatus = 422\nwhen = \"input.net_cents > 90000000\"\n\n[behavior]",
    )]);
    let d = compare(&contract(&vat_text()), &new);
    let change = only(&d, Area::Errors, Class::Breaking);
    assert!(
        change
            .what
            .contains("`too_large` is due on an input that used to succeed"),
        "{}",
        change.what
    );
    assert!(
        change.witness.as_ref().unwrap()["net_cents"]
            .as_i64()
            .unwrap()
            > 90_000_000
    );
}

#[test]
fn a_wider_when_is_breaking_and_a_changed_status_too() {
    let new = vat_with(&[
        (
            "when = \"input.net_cents == 0\"",
            "when = \"input.net_cents < 10\"",
        ),
        ("status = 422", "status = 409"),
    ]);
    let d = compare(&contract(&vat_text()), &new);
    let breaking: Vec<&Change> = d
        .changes
        .iter()
        .filter(|c| c.class == Class::Breaking)
        .collect();
    assert!(
        breaking
            .iter()
            .any(|c| c.what.contains("status 409 instead of 422")),
        "{breaking:#?}"
    );
    let wider = breaking
        .iter()
        .find(|c| c.what.contains("used to succeed"))
        .expect("a wider when");
    let net = wider.witness.as_ref().unwrap()["net_cents"]
        .as_i64()
        .unwrap();
    assert!((1..10).contains(&net), "{net}");
}

#[test]
fn a_removed_error_is_compatible() {
    let text = vat_text();
    let start = text.find("[[error]]").unwrap();
    let end = text.find("[behavior]").unwrap();
    let examples = text.rfind("[[example]]\ninput = { net_cents = 0").unwrap();
    let limits = text.find("[limits]").unwrap();
    let new = contract(
        &format!(
            "{}{}{}{}",
            &text[..start],
            &text[end..examples],
            &text[limits..],
            ""
        )
        .replace("version = \"1.0.0\"", "version = \"1.1.0\""),
    );
    let d = compare(&contract(&text), &new);
    assert!(!d.breaking(), "{:#?}", d.changes);
    assert!(
        d.changes
            .iter()
            .any(|c| c.area == Area::Errors && c.what.contains("`zero_amount` removed"))
    );
    assert!(d.version_ok());
}

#[test]
fn effects_are_for_review_and_a_lower_timeout_breaks() {
    let new = vat_with(&[(
        "[limits]\ntimeout_ms = 20",
        "[effects]\nclock = true\n\n[limits]\ntimeout_ms = 10",
    )]);
    let d = compare(&contract(&vat_text()), &new);
    only(&d, Area::Effects, Class::Review);
    let timeout = only(&d, Area::Limits, Class::Breaking);
    assert!(
        timeout.what.contains("timeout_ms 20 → 10"),
        "{}",
        timeout.what
    );
}

#[test]
fn a_new_or_changed_store_is_for_review_and_a_dropped_one_compatible() {
    let store = |value: &str, access: &str| {
        vat_with(&[(
            "[limits]\ntimeout_ms = 20",
            &format!(
                "[store.rates]\nkey = {{ type = \"string\" }}\nvalue = {{ type = \"{value}\" }}\naccess = \"{access}\"\n\n[limits]\ntimeout_ms = 20"
            ),
        )])
    };
    let plain = contract(&vat_text());
    let reads = store("integer", "read");
    let added = compare(&plain, &reads);
    assert!(
        only(&added, Area::Effects, Class::Review)
            .what
            .contains("keeps state in store `rates` (read)")
    );
    let writes = compare(&reads, &store("integer", "read-write"));
    assert!(
        only(&writes, Area::Effects, Class::Review)
            .what
            .contains("read-write instead of read")
    );
    let retyped = compare(&reads, &store("string", "read"));
    assert!(
        only(&retyped, Area::Effects, Class::Review)
            .what
            .contains("other key or value schemas")
    );
    let dropped = compare(&reads, &plain);
    only(&dropped, Area::Effects, Class::Compatible);
    assert!(
        compare(&reads, &store("integer", "read"))
            .changes
            .is_empty()
    );
}

fn sku_contract(pattern: &str, version: &str) -> Contract {
    contract(&format!(
        r#"[service]
name = "stock.level"
version = "{version}"
summary = "Units in stock for a SKU."

[input]
type = "object"
required = ["sku"]
additionalProperties = false
properties.sku = {{ type = "string", pattern = "{pattern}" }}

[output]
type = "object"
required = ["units"]
additionalProperties = false
properties.units = {{ type = "integer", minimum = 0 }}
"#
    ))
}

#[test]
fn a_changed_pattern_is_decided_by_sampling_in_both_directions() {
    let old = sku_contract("^[A-Z]{3}-[0-9]{3}$", "1.0.0");
    let narrower = sku_contract("^[A-M]{3}-[0-9]{3}$", "2.0.0");
    let d = compare(&old, &narrower);
    let change = only(&d, Area::Input, Class::Breaking);
    assert!(matches!(change.basis, Basis::Sampled { .. }));
    let sku = change.witness.as_ref().unwrap()["sku"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(sku[..3].chars().any(|c| c > 'M'), "{sku}");
    assert!(d.version_ok(), "2.0.0 is a major bump");

    let wider = sku_contract("^[A-Z]{3,4}-[0-9]{3}$", "1.1.0");
    let d = compare(&old, &wider);
    assert!(!d.breaking(), "{:#?}", d.changes);
    let change = only(&d, Area::Input, Class::Compatible);
    let sku = change.witness.as_ref().unwrap()["sku"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sku.find('-'), Some(4), "{sku}");

    let same = sku_contract("^[A-Z][A-Z][A-Z]-[0-9]{3}$", "1.0.1");
    let d = compare(&old, &same);
    assert!(!d.breaking(), "{:#?}", d.changes);
    assert_eq!(d.required, Bump::Patch);
}

#[test]
fn a_lower_version_fails_and_zero_major_versions_bump_their_minor() {
    let new = vat_with(&[("version = \"1.0.0\"", "version = \"0.9.0\"")]);
    let d = compare(&contract(&vat_text()), &new);
    assert_eq!(d.made, None);
    assert!(!d.version_ok());
    let zero = |v: &str| semver::Version::parse(v).unwrap();
    assert_eq!(
        mote_diff::made(&zero("0.3.1"), &zero("0.4.0")),
        Some(Bump::Major)
    );
    assert_eq!(
        mote_diff::made(&zero("0.3.1"), &zero("0.3.2")),
        Some(Bump::Minor)
    );
}

#[test]
fn making_a_service_internal_breaks_outside_callers_and_public_is_for_review() {
    let public = vat_with(&[(
        "summary = \"VAT",
        "visibility = \"public\"\nsummary = \"VAT",
    )]);
    let internal = contract(&vat_text());
    let d = compare(&public, &internal);
    let change = only(&d, Area::Service, Class::Breaking);
    assert_eq!(change.what, "public → internal");
    let d = compare(&internal, &public);
    only(&d, Area::Service, Class::Review);
    assert_eq!(d.required, Bump::Minor);
}
