//! Generated values satisfy their schema for every keyword mote accepts,
//! cover the choices a schema offers, repeat for a seed, and shrink.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use std::collections::BTreeSet;
use std::path::Path;

use mote_contract::Schema;
use mote_verify::generate::{runner, sample, values};
use proptest::test_runner::TestError;
use serde_json::{Value, json};

fn schema(json: Value) -> Schema {
    Schema::from_json(json).expect("an accepted schema")
}

/// Samples `n` values and checks each is valid; returns them.
fn valid_sample(s: &Schema, n: usize) -> Vec<Value> {
    let values = sample(s, 7, n);
    assert_eq!(values.len(), n, "generation gave up for {}", s.json());
    for v in &values {
        assert!(s.is_valid(v), "{v} does not satisfy {}", s.json());
    }
    values
}

fn distinct(values: &[Value]) -> usize {
    values
        .iter()
        .map(Value::to_string)
        .collect::<BTreeSet<_>>()
        .len()
}

#[test]
fn every_schema_of_the_example_app_can_be_sampled() {
    let shop = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop");
    let mut schemas = 0;
    for entry in std::fs::read_dir(shop).unwrap() {
        let path = entry.unwrap().path().join("contract.toml");
        if !path.exists() {
            continue;
        }
        let contract = mote_contract::load(&path).unwrap();
        for s in [&contract.input, &contract.output] {
            let values = valid_sample(s, 200);
            assert!(
                distinct(&values) > 20,
                "too little variety for {}",
                s.json()
            );
            schemas += 1;
        }
    }
    assert!(schemas >= 14);
}

#[test]
fn each_keyword_family_generates_valid_and_varied_values() {
    let cases = [
        json!({"type": "integer", "minimum": -5, "maximum": 5}),
        json!({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10, "multipleOf": 3}),
        json!({"type": "number", "minimum": 0.5, "maximum": 2.5}),
        json!({"type": "number", "multipleOf": 0.25, "minimum": 0, "maximum": 10}),
        json!({"type": "string", "minLength": 2, "maxLength": 4}),
        json!({"type": "string", "pattern": "^[A-Z]{3}-[0-9]{3}$"}),
        json!({"type": "string", "pattern": "ab+c", "maxLength": 6}),
        json!({"type": "string", "format": "date"}),
        json!({"type": "string", "format": "date-time"}),
        json!({"type": "string", "format": "email"}),
        json!({"type": "string", "format": "uuid"}),
        json!({"enum": ["NL", "DE", "BE", 3, null]}),
        json!({"type": ["string", "null"], "maxLength": 3}),
        json!({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 4, "uniqueItems": true}),
        json!({"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}], "items": false}),
        json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"const": "x"}}, "required": ["a"], "additionalProperties": false}),
        json!({"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}),
        json!({"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "maxLength": 2}]}),
        json!({"anyOf": [{"type": "integer", "maximum": 0}, {"type": "integer", "minimum": 10}]}),
        json!({"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}, {"properties": {"b": {"type": "boolean"}}, "required": ["b"]}]}),
        json!({"$ref": "#/$defs/node", "$defs": {"node": {"type": "object", "required": ["v"], "properties": {"v": {"type": "integer"}, "next": {"$ref": "#/$defs/node"}}}}}),
        json!({"description": "anything goes"}),
    ];
    for case in cases {
        let s = schema(case);
        let values = valid_sample(&s, 150);
        assert!(distinct(&values) > 1, "no variety for {}", s.json());
    }
}

#[test]
fn every_enum_value_and_both_sides_of_optional_members_appear() {
    let s = schema(json!({"enum": ["NL", "DE", "BE"]}));
    let seen: BTreeSet<String> = valid_sample(&s, 100).iter().map(Value::to_string).collect();
    assert_eq!(seen.len(), 3);

    let s = schema(
        json!({"type": "object", "properties": {"opt": {"type": "boolean"}}, "additionalProperties": false}),
    );
    let values = valid_sample(&s, 100);
    assert!(values.iter().any(|v| v.get("opt").is_some()));
    assert!(values.iter().any(|v| v.get("opt").is_none()));
}

#[test]
fn recursion_is_bounded_but_reached() {
    let s = schema(
        json!({"$ref": "#/$defs/node", "$defs": {"node": {"type": "object", "required": ["v"], "additionalProperties": false, "properties": {"v": {"type": "integer"}, "next": {"$ref": "#/$defs/node"}}}}}),
    );
    let depth = |mut v: &Value| {
        let mut d = 0;
        while let Some(next) = v.get("next") {
            d += 1;
            v = next;
        }
        d
    };
    let depths: Vec<usize> = valid_sample(&s, 200).iter().map(depth).collect();
    assert!(
        depths.iter().any(|d| *d >= 2),
        "recursion never taken: {depths:?}"
    );
    assert!(
        depths.iter().all(|d| *d <= 5),
        "recursion not bounded: {depths:?}"
    );
}

#[test]
fn the_same_seed_gives_the_same_values() {
    let s = schema(
        json!({"type": "object", "properties": {"n": {"type": "integer"}, "s": {"type": "string"}}}),
    );
    assert_eq!(sample(&s, 42, 50), sample(&s, 42, 50));
    assert_ne!(sample(&s, 42, 50), sample(&s, 43, 50));
}

#[test]
fn failures_shrink_to_a_minimal_counterexample() {
    let s = schema(json!({"type": "integer", "minimum": 0, "maximum": 100000}));
    let result = runner(1).run(&values(&s), |v| {
        proptest::prop_assert!(v.as_i64().unwrap() < 500);
        Ok(())
    });
    match result {
        Err(TestError::Fail(_, minimal)) => assert_eq!(minimal, json!(500)),
        other => panic!("expected a failure, got {other:?}"),
    }

    let s = schema(
        json!({"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9}, "maxItems": 8}),
    );
    let result = runner(1).run(&values(&s), |v| {
        let sum: i64 = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .sum();
        proptest::prop_assert!(sum < 12);
        Ok(())
    });
    match result {
        Err(TestError::Fail(_, minimal)) => {
            let items = minimal.as_array().unwrap();
            let sum: i64 = items.iter().map(|x| x.as_i64().unwrap()).sum();
            assert_eq!(sum, 12, "not minimal: {minimal}");
            assert!(items.len() <= 3, "not minimal: {minimal}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}
