//! Generation never crashes on a schema `mote check` accepts: 10,000
//! random schemas over the accepted subset, contradictory ones included
//! (bounds with no whole number between them, `allOf` lengths that cross),
//! each sampled. A schema with no valid value yields no value; it never
//! panics.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use mote_contract::Schema;
use mote_verify::generate::{Hints, runner, values_with};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Map, Value, json};

/// Schemas to try: how many, and values drawn from each.
const SCHEMAS: u32 = 10_000;
const DRAWS: usize = 1;

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-1000i64..1000).prop_map(Value::from),
        (-10.0f64..10.0).prop_map(|f| json!((f * 10.0).round() / 10.0)),
        Just(json!(0.5)),
        Just(json!(0.7)),
        Just(json!(1e300)),
        Just(json!(-9_223_372_036_854_775_808i64)),
        Just(json!(9_223_372_036_854_775_807i64)),
    ]
}

/// A lower bound on a length: small, or one that cannot be met together
/// with a small upper bound.
fn low_length() -> impl Strategy<Value = Value> {
    prop_oneof![0u64..4, 0u64..40, Just(70)].prop_map(Value::from)
}

fn length() -> impl Strategy<Value = Value> {
    prop_oneof![0u64..4, 0u64..40, Just(1_000), Just(100_000)].prop_map(Value::from)
}

fn leaf() -> impl Strategy<Value = Value> {
    let numeric = (
        prop::sample::select(vec!["integer", "number"]),
        prop::option::of(number()),
        prop::option::of(number()),
        prop::option::of(number()),
        prop::option::of(number()),
        prop::option::of(prop::sample::select(vec![
            json!(1),
            json!(2),
            json!(0.1),
            json!(7),
            json!(0.25),
            json!(1e-9),
        ])),
    )
        .prop_map(|(kind, min, max, xmin, xmax, step)| {
            let mut m = Map::new();
            m.insert("type".into(), kind.into());
            for (key, v) in [
                ("minimum", min),
                ("maximum", max),
                ("exclusiveMinimum", xmin),
                ("exclusiveMaximum", xmax),
                ("multipleOf", step),
            ] {
                if let Some(v) = v {
                    m.insert(key.into(), v);
                }
            }
            Value::Object(m)
        });
    let text = (
        prop::option::of(low_length()),
        prop::option::of(length()),
        prop::option::of(prop::sample::select(vec![
            "^[A-Z]{3}-[0-9]{3}$",
            "a+",
            "^x?$",
            "[0-9]{2,5}",
        ])),
        prop::option::of(prop::sample::select(vec![
            "date",
            "date-time",
            "email",
            "uuid",
        ])),
    )
        .prop_map(|(min, max, pattern, format)| {
            let mut m = Map::new();
            m.insert("type".into(), "string".into());
            for (key, v) in [
                ("minLength", min),
                ("maxLength", max),
                ("pattern", pattern.map(Value::from)),
                ("format", format.map(Value::from)),
            ] {
                if let Some(v) = v {
                    m.insert(key.into(), v);
                }
            }
            Value::Object(m)
        });
    prop_oneof![
        numeric,
        text,
        Just(json!({"type": "boolean"})),
        Just(json!({"type": "null"})),
        Just(json!(true)),
        Just(json!(false)),
        Just(json!({"enum": ["a", 1, null]})),
        Just(json!({"const": {"k": [1, 2]}})),
        Just(json!({"$ref": "#/$defs/node"})),
        Just(json!({"type": ["integer", "string"]})),
    ]
}

fn schema() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            (
                prop::collection::btree_map("[a-d]", inner.clone(), 0..4),
                prop::collection::vec("[a-e]", 0..3),
                prop::option::of(prop_oneof![Just(json!(false)), inner.clone()]),
            )
                .prop_map(|(properties, required, additional)| {
                    let mut m = Map::new();
                    m.insert("type".into(), "object".into());
                    m.insert(
                        "properties".into(),
                        Value::Object(properties.into_iter().collect()),
                    );
                    let mut required: Vec<String> = required;
                    required.sort();
                    required.dedup();
                    m.insert("required".into(), json!(required));
                    if let Some(additional) = additional {
                        m.insert("additionalProperties".into(), additional);
                    }
                    Value::Object(m)
                }),
            (
                prop::option::of(inner.clone()),
                prop::collection::vec(inner.clone(), 0..3),
                prop::option::of(low_length()),
                prop::option::of(length()),
                any::<bool>(),
            )
                .prop_map(|(items, prefix, min, max, unique)| {
                    let mut m = Map::new();
                    m.insert("type".into(), "array".into());
                    if let Some(items) = items {
                        m.insert("items".into(), items);
                    }
                    if !prefix.is_empty() {
                        m.insert("prefixItems".into(), Value::Array(prefix));
                    }
                    if let Some(min) = min {
                        m.insert("minItems".into(), min);
                    }
                    if let Some(max) = max {
                        m.insert("maxItems".into(), max);
                    }
                    if unique {
                        m.insert("uniqueItems".into(), true.into());
                    }
                    Value::Object(m)
                }),
            (
                prop::sample::select(vec!["oneOf", "anyOf", "allOf"]),
                prop::collection::vec(inner, 1..4),
            )
                .prop_map(|(combinator, branches)| json!({ combinator: branches })),
        ]
    })
}

/// A runner that gives up on a draw after a few hundred rejected values,
/// so that schemas without values are told apart quickly.
fn quick_runner(seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        max_local_rejects: 100,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

#[test]
fn ten_thousand_random_accepted_schemas_generate_without_a_panic() {
    let mut schemas = runner(20_261_202);
    let strategy = schema();
    let mut accepted = 0;
    let mut empty = 0;
    for round in 0..SCHEMAS {
        let mut body = strategy.new_tree(&mut schemas).unwrap().current();
        // Give every schema the definition its `$ref`s point to.
        if let Value::Object(members) = &mut body {
            members.insert(
                "$defs".into(),
                json!({"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}}),
            );
        }
        let Ok(schema) = Schema::from_json(body.clone()) else {
            continue;
        };
        accepted += 1;
        let drawn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let values = values_with(&schema, &Hints::default());
            let mut draws = quick_runner(u64::from(round));
            let mut found = Vec::new();
            for _ in 0..DRAWS {
                if let Ok(tree) = values.new_tree(&mut draws) {
                    found.push(tree.current());
                }
            }
            found
        }));
        let drawn = drawn.unwrap_or_else(|_| panic!("generation panicked on {body}"));
        for value in &drawn {
            assert!(schema.is_valid(value), "{value} breaks {body}");
        }
        empty += usize::from(drawn.is_empty());
    }
    // Most random schemas are accepted, and most of those have values.
    assert!(accepted > SCHEMAS as usize / 2, "{accepted} accepted");
    assert!(empty < accepted / 2, "{empty} of {accepted} gave no value");
}
