//! Values from JSON Schemas, as proptest strategies.
//!
//! Every keyword mote accepts has a generator here, so a schema that passes
//! `mote check` can always be sampled. Each strategy shrinks towards simple
//! values (short strings, small numbers, fewer optional members), so a
//! failing input reduces to a minimal counterexample. A final filter keeps
//! only values the compiled schema accepts, which makes combinations the
//! structural generators only approximate (`oneOf` exclusivity, `allOf`,
//! `uniqueItems` with few choices) exact.

use std::sync::Arc;

use mote_contract::Schema;
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Just, Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Map, Number, Value};

/// How deep `$ref`s, arrays and objects may nest before the generator stops
/// adding optional parts.
pub const MAX_DEPTH: u32 = 4;

/// Longest string generated when the schema sets no `maxLength`.
pub const DEFAULT_MAX_LENGTH: usize = 24;

/// Most array elements generated when the schema sets no `maxItems`.
pub const DEFAULT_MAX_ITEMS: usize = 6;

/// Most array elements generated even when `maxItems` allows more (unless
/// `minItems` asks for more): a bound of thousands is tested near the
/// sizes that can be generated and checked in time, not at itself.
pub const GENERATED_MAX_ITEMS: usize = 64;

/// Longest string generated even when `maxLength` allows more (unless
/// `minLength` asks for more), for the same reason.
pub const GENERATED_MAX_LENGTH: usize = 512;

/// Largest magnitude of an unbounded integer: JSON numbers are exact up to
/// 2^53 in most clients.
pub const UNBOUNDED_INTEGER: i64 = 1 << 53;

/// Values worth trying because the contract mentions them: the literals of
/// its conditions (`input.code == 'VIP20'`, `input.n < 5000`) and the
/// values in its examples. Behaviour changes at exactly these values, and
/// random generation would almost never hit them.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    /// Strings to draw from where a string fits.
    pub strings: Vec<String>,
    /// Whole numbers to draw (with their neighbours) where they fit.
    pub integers: Vec<i64>,
}

impl Hints {
    /// Collects the hints of a contract.
    pub fn from_contract(contract: &mote_contract::Contract) -> Hints {
        let mut values: Vec<Value> = Vec::new();
        let expressions = contract
            .behavior
            .requires
            .iter()
            .chain(&contract.behavior.ensures)
            .chain(contract.errors.iter().filter_map(|e| e.when.as_ref()));
        for expr in expressions {
            values.extend(expr.literals());
        }
        for example in &contract.examples {
            leaves(&example.input, &mut values);
        }
        let mut hints = Hints::default();
        for value in values {
            match value {
                Value::String(s) if !hints.strings.contains(&s) => hints.strings.push(s),
                Value::Number(n) => {
                    if let Some(i) = n.as_i64().filter(|i| !hints.integers.contains(i)) {
                        hints.integers.push(i);
                    }
                }
                _ => {}
            }
        }
        hints
    }

    /// These hints and `other`'s, each value once.
    pub fn merged(mut self, other: &Hints) -> Hints {
        for s in &other.strings {
            if !self.strings.contains(s) {
                self.strings.push(s.clone());
            }
        }
        for i in &other.integers {
            if !self.integers.contains(i) {
                self.integers.push(*i);
            }
        }
        self
    }
}

fn leaves(value: &Value, out: &mut Vec<Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| leaves(v, out)),
        Value::Object(members) => members.values().for_each(|v| leaves(v, out)),
        other => out.push(other.clone()),
    }
}

/// A strategy producing values that satisfy `schema`.
pub fn values(schema: &Schema) -> BoxedStrategy<Value> {
    values_with(schema, &Hints::default())
}

/// A strategy producing values that satisfy `schema`, drawing often on
/// `hints`.
pub fn values_with(schema: &Schema, hints: &Hints) -> BoxedStrategy<Value> {
    let json = schema.json().clone();
    let Ok(checker) = Schema::from_json(json.clone()) else {
        // Not a schema mote accepts: nothing can be generated for it.
        return Just(Value::Null)
            .prop_filter("no schema", |_| false)
            .boxed();
    };
    let checker = Arc::new(checker);
    let context = Context {
        root: &json,
        depth: 0,
        hints,
    };
    strategy(&json, &context)
        .prop_filter("satisfies the schema", move |v| checker.is_valid(v))
        .boxed()
}

/// `count` values for `schema`, the same for the same `seed`.
pub fn sample(schema: &Schema, seed: u64, count: usize) -> Vec<Value> {
    sample_with(schema, &Hints::default(), seed, count)
}

/// [`sample`], drawing often on `hints`.
pub fn sample_with(schema: &Schema, hints: &Hints, seed: u64, count: usize) -> Vec<Value> {
    let strategy = values_with(schema, hints);
    let mut runner = runner(seed);
    (0..count)
        .filter_map(|_| {
            strategy
                .new_tree(&mut runner)
                .ok()
                .map(|tree| tree.current())
        })
        .collect()
}

/// Whether any value satisfying `schema` can be generated: a bounded
/// search, so `false` means "none found in many tries", which for a schema
/// `mote check` accepted almost always means none exists (contradictory
/// bounds, `allOf` branches that exclude each other). Either way a
/// verifier could not exercise it.
pub fn has_values(schema: &Schema) -> bool {
    let strategy = values(schema);
    let mut bytes = [0u8; 32];
    bytes[0] = 1;
    let config = Config {
        max_local_rejects: 2_000,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    (0..4).any(|_| strategy.new_tree(&mut runner).is_ok())
}

/// A proptest runner whose randomness is fixed by `seed`.
pub fn runner(seed: u64) -> TestRunner {
    runner_with_cases(seed, Config::default().cases)
}

/// A runner fixed by `seed` that runs `cases` cases, writes no regression
/// files and gives up when a quarter of the cases are rejected.
pub fn runner_with_cases(seed: u64, cases: u32) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        max_local_rejects: 100_000,
        max_global_rejects: (cases / 4).max(64),
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

#[derive(Clone, Copy)]
struct Context<'a> {
    root: &'a Value,
    depth: u32,
    hints: &'a Hints,
}

impl Context<'_> {
    fn deeper(&self) -> Self {
        Context {
            root: self.root,
            depth: self.depth + 1,
            hints: self.hints,
        }
    }

    fn exhausted(&self) -> bool {
        self.depth >= MAX_DEPTH
    }
}

fn strategy(schema: &Value, context: &Context<'_>) -> BoxedStrategy<Value> {
    // Only a schema whose recursion is required at every level gets this
    // deep; no finite value satisfies it, and the final filter says so.
    if context.depth > 4 * MAX_DEPTH {
        return Just(Value::Null).boxed();
    }
    let members = match schema {
        Value::Bool(true) => return any_json(context.depth),
        Value::Object(members) => members,
        // `false` (and anything malformed) admits nothing: the final filter
        // rejects whatever is produced here.
        _ => return Just(Value::Null).boxed(),
    };
    if let Some(reference) = members.get("$ref").and_then(Value::as_str) {
        let target = reference
            .strip_prefix('#')
            .and_then(|pointer| context.root.pointer(pointer))
            .cloned()
            .unwrap_or(Value::Bool(false));
        let siblings = without(members, &["$ref"]);
        return strategy(&merge(&target, &siblings), &context.deeper());
    }
    if let Some(constant) = members.get("const") {
        return Just(constant.clone()).boxed();
    }
    if let Some(choices) = members.get("enum").and_then(Value::as_array) {
        return proptest::sample::select(choices.clone()).boxed();
    }
    if let Some(branches) = members.get("allOf").and_then(Value::as_array) {
        let merged = branches
            .iter()
            .fold(without(members, &["allOf"]), |acc, branch| {
                merge(&acc, branch)
            });
        return strategy(&merged, context);
    }
    for combinator in ["oneOf", "anyOf"] {
        if let Some(branches) = members.get(combinator).and_then(Value::as_array) {
            let base = without(members, &[combinator]);
            let options: Vec<BoxedStrategy<Value>> = branches
                .iter()
                .map(|branch| strategy(&merge(&base, branch), context))
                .collect();
            return proptest::strategy::Union::new(options).boxed();
        }
    }
    let types: Vec<&str> = match members.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => inferred_type(members).into_iter().collect(),
    };
    if types.is_empty() {
        return any_json(context.depth);
    }
    let options: Vec<BoxedStrategy<Value>> = types
        .into_iter()
        .map(|t| typed(t, members, context))
        .collect();
    proptest::strategy::Union::new(options).boxed()
}

/// The type a schema without `type` constrains, from its keywords.
fn inferred_type(members: &Map<String, Value>) -> Option<&'static str> {
    let has = |keys: &[&str]| keys.iter().any(|k| members.contains_key(*k));
    if has(&["properties", "required", "additionalProperties"]) {
        Some("object")
    } else if has(&[
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "uniqueItems",
    ]) {
        Some("array")
    } else if has(&["minLength", "maxLength", "pattern", "format"]) {
        Some("string")
    } else if has(&[
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
    ]) {
        Some("number")
    } else {
        None
    }
}

fn typed(kind: &str, members: &Map<String, Value>, context: &Context<'_>) -> BoxedStrategy<Value> {
    match kind {
        "null" => Just(Value::Null).boxed(),
        "boolean" => any::<bool>().prop_map(Value::Bool).boxed(),
        "integer" => integer(members, context.hints),
        "number" => number(members),
        "string" => string(members, context.hints),
        "array" => array(members, context),
        "object" => object(members, context),
        _ => Just(Value::Null).boxed(),
    }
}

fn bound(members: &Map<String, Value>, key: &str) -> Option<f64> {
    members.get(key).and_then(Value::as_f64)
}

fn integer(members: &Map<String, Value>, hints: &Hints) -> BoxedStrategy<Value> {
    let mut low = bound(members, "minimum").map(|m| m.ceil());
    if let Some(e) = bound(members, "exclusiveMinimum") {
        low = Some(low.map_or(e.floor() + 1.0, |l| l.max(e.floor() + 1.0)));
    }
    let mut high = bound(members, "maximum").map(|m| m.floor());
    if let Some(e) = bound(members, "exclusiveMaximum") {
        high = Some(high.map_or(e.ceil() - 1.0, |h| h.min(e.ceil() - 1.0)));
    }
    let low = low.map_or(-UNBOUNDED_INTEGER, |l| l.max(i64::MIN as f64) as i64);
    let high = high.map_or(UNBOUNDED_INTEGER, |h| h.min(i64::MAX as f64) as i64);
    if low > high {
        return Just(Value::Null).boxed();
    }
    match bound(members, "multipleOf").filter(|m| *m >= 1.0 && m.fract() == 0.0) {
        Some(step) => {
            let step = step as i64;
            let first = low.div_euclid(step) + i64::from(low.rem_euclid(step) != 0);
            let last = high.div_euclid(step);
            if first > last {
                return Just(Value::Null).boxed();
            }
            with_boundaries(first, last, &[])
                .prop_map(move |k| Value::from(k * step))
                .boxed()
        }
        None => with_boundaries(low, high, &hints.integers)
            .prop_map(Value::from)
            .boxed(),
    }
}

/// A whole number in `low..=high`, with the edges (each bound, one inside
/// each bound, zero, and each hinted number and its neighbours, where in
/// range) drawn far more often than chance would: that is where
/// off-by-one mistakes live.
fn with_boundaries(low: i64, high: i64, hints: &[i64]) -> BoxedStrategy<i64> {
    let mut edges = vec![
        low,
        high,
        low.saturating_add(1).min(high),
        high.saturating_sub(1).max(low),
    ];
    for hint in std::iter::once(&0).chain(hints) {
        for near in [hint.saturating_sub(1), *hint, hint.saturating_add(1)] {
            if (low..=high).contains(&near) {
                edges.push(near);
            }
        }
    }
    edges.sort_unstable();
    edges.dedup();
    prop_oneof![
        3 => int_in(low, high),
        1 => proptest::sample::select(edges),
    ]
    .boxed()
}

/// A whole number in `low..=high`, for any bounds `i64` holds. proptest's
/// own ranges overflow near the ends of `i64`, so far from zero the number
/// is drawn as an offset from `low` instead.
fn int_in(low: i64, high: i64) -> BoxedStrategy<i64> {
    const SAFE: i64 = 1 << 62;
    if low == high {
        return Just(low).boxed();
    }
    if (-SAFE..=SAFE).contains(&low) && (-SAFE..=SAFE).contains(&high) {
        return (low..=high).boxed();
    }
    let span = u64::try_from(i128::from(high) - i128::from(low)).unwrap_or(u64::MAX);
    let offsets = if span == u64::MAX {
        any::<u64>().boxed()
    } else {
        (0..=span).boxed()
    };
    offsets
        .prop_map(move |offset| i64::try_from(i128::from(low) + i128::from(offset)).unwrap_or(high))
        .boxed()
}

/// A float in `low..=high`; the single value when they are equal.
fn float_in(low: f64, high: f64) -> BoxedStrategy<f64> {
    if low >= high {
        return Just(low).boxed();
    }
    if (high - low).is_finite() {
        return (low..=high).boxed();
    }
    // A span too wide for one range: pick a half, then a value in it.
    let middle = low / 2.0 + high / 2.0;
    prop_oneof![low..=middle, middle..=high].boxed()
}

fn number(members: &Map<String, Value>) -> BoxedStrategy<Value> {
    let low = bound(members, "minimum")
        .or(bound(members, "exclusiveMinimum"))
        .unwrap_or(-1.0e9);
    let high = bound(members, "maximum")
        .or(bound(members, "exclusiveMaximum"))
        .unwrap_or(1.0e9);
    if low > high {
        return Just(Value::Null).boxed();
    }
    if let Some(step) = bound(members, "multipleOf").filter(|m| *m > 0.0) {
        let first = (low / step).ceil() as i64;
        let last = (high / step).floor() as i64;
        if first > last {
            return Just(Value::Null).boxed();
        }
        return int_in(first, last)
            .prop_map(move |k| float(k as f64 * step))
            .boxed();
    }
    let fractional = float_in(low, high).prop_map(float).boxed();
    let (first, last) = (low.ceil(), high.floor());
    if first > last {
        // No whole number in range (e.g. 0.5..0.7): fractions only.
        return fractional;
    }
    let integral = int_in(first as i64, last as i64).prop_map(Value::from);
    prop_oneof![integral, fractional].boxed()
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn string(members: &Map<String, Value>, hints: &Hints) -> BoxedStrategy<Value> {
    let generated = plain_string(members);
    // Hinted strings that fit this schema's own string constraints.
    let constraints: Map<String, Value> = members
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "minLength" | "maxLength" | "pattern" | "format"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let fitting: Vec<Value> = match Schema::from_json(Value::Object(constraints)) {
        Ok(check) => hints
            .strings
            .iter()
            .map(|s| Value::String(s.clone()))
            .filter(|v| check.is_valid(v))
            .collect(),
        Err(_) => Vec::new(),
    };
    if fitting.is_empty() {
        return generated;
    }
    prop_oneof![
        2 => generated,
        1 => proptest::sample::select(fitting),
    ]
    .boxed()
}

fn plain_string(members: &Map<String, Value>) -> BoxedStrategy<Value> {
    let min = members
        .get("minLength")
        .and_then(Value::as_u64)
        .unwrap_or(0) as usize;
    let max_length = members
        .get("maxLength")
        .and_then(Value::as_u64)
        .map(|m| m as usize);
    // Formats and patterns decide their own lengths unless capped.
    let cap = max_length.unwrap_or(usize::MAX);
    let length_ok = move |s: &String| (min..=cap).contains(&s.chars().count());
    let max = max_length.unwrap_or(DEFAULT_MAX_LENGTH.max(min));
    if min > max {
        // Contradictory lengths (say, from `allOf`): nothing fits, and the
        // final filter says so.
        return Just(Value::Null).boxed();
    }
    let max = max.min(GENERATED_MAX_LENGTH.max(min));
    if let Some(format) = members.get("format").and_then(Value::as_str) {
        let base = match format {
            "date" => date().boxed(),
            "date-time" => date_time().boxed(),
            "email" => email().boxed(),
            "uuid" => uuid().boxed(),
            _ => Just(String::new()).boxed(),
        };
        return base
            .prop_filter("length", length_ok)
            .prop_map(Value::String)
            .boxed();
    }
    if let Some(pattern) = members.get("pattern").and_then(Value::as_str) {
        let body = pattern.strip_prefix('^').unwrap_or(pattern);
        let body = body.strip_suffix('$').unwrap_or(body);
        return match proptest::string::string_regex(body) {
            Ok(strategy) => strategy
                .prop_filter("length", length_ok)
                .prop_map(Value::String)
                .boxed(),
            Err(_) => Just(Value::Null).boxed(),
        };
    }
    let length = prop_oneof![3 => min..=max, 1 => proptest::sample::select(vec![min, max])];
    length
        .prop_flat_map(|n| proptest::collection::vec(text_char(), n))
        .prop_map(|chars| Value::String(chars.into_iter().collect()))
        .boxed()
}

/// Mostly printable ASCII (which shrinks towards `a`), with some of the
/// characters that break naive code: multi-byte letters, emoji, quotes,
/// backslashes and control characters.
fn text_char() -> impl Strategy<Value = char> {
    prop_oneof![
        8 => proptest::char::range('a', 'z'),
        2 => proptest::char::range(' ', '~'),
        1 => proptest::sample::select(vec!['é', 'ß', 'Ж', '中', '😀', '"', '\\', '\n', '\t', '\u{0}']),
    ]
}

fn date() -> impl Strategy<Value = String> {
    (1900u32..=2100, 1u32..=12, 1u32..=31).prop_map(|(y, m, d)| {
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let days = match m {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        format!("{y:04}-{m:02}-{:02}", d.min(days))
    })
}

fn date_time() -> impl Strategy<Value = String> {
    (
        date(),
        0u32..24,
        0u32..60,
        0u32..60,
        prop::option::of(0u32..1000),
        prop::option::of(-12i32..=14),
    )
        .prop_map(|(day, h, m, s, millis, offset)| {
            let fraction = millis.map_or(String::new(), |ms| format!(".{ms:03}"));
            let zone = match offset {
                None | Some(0) => "Z".to_string(),
                Some(o) => format!("{}{:02}:00", if o < 0 { '-' } else { '+' }, o.abs()),
            };
            format!("{day}T{h:02}:{m:02}:{s:02}{fraction}{zone}")
        })
}

fn email() -> impl Strategy<Value = String> {
    ("[a-z][a-z0-9]{0,9}", "[a-z][a-z0-9]{0,9}", "[a-z]{2,4}")
        .prop_map(|(local, domain, tld)| format!("{local}@{domain}.{tld}"))
}

fn uuid() -> impl Strategy<Value = String> {
    any::<[u8; 16]>().prop_map(|mut b| {
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    })
}

fn array(members: &Map<String, Value>, context: &Context<'_>) -> BoxedStrategy<Value> {
    let prefix: Vec<Value> = members
        .get("prefixItems")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let rest = members.get("items").cloned().unwrap_or(Value::Bool(true));
    let min = members.get("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max = members
        .get("maxItems")
        .and_then(Value::as_u64)
        .map_or(DEFAULT_MAX_ITEMS.max(min), |m| m as usize);
    if min > max {
        // Contradictory sizes (say, from `allOf`): nothing fits.
        return Just(Value::Null).boxed();
    }
    let max = max.min(GENERATED_MAX_ITEMS.max(min));
    let max = if context.exhausted() {
        min.max(prefix.len().min(max))
    } else {
        max
    };
    let inner = context.deeper();
    let prefix_strategies: Vec<BoxedStrategy<Value>> =
        prefix.iter().map(|s| strategy(s, &inner)).collect();
    let rest_strategy = if rest == Value::Bool(false) {
        None
    } else {
        Some(strategy(&rest, &inner))
    };
    let unique = members.get("uniqueItems") == Some(&Value::Bool(true));
    let prefix_len = prefix_strategies.len();
    let longest_rest = max.saturating_sub(prefix_len);
    let shortest_rest = min.saturating_sub(prefix_len);
    let longest_rest = longest_rest.max(shortest_rest);
    let rest_items = match rest_strategy {
        // Mostly any length, often exactly the shortest or the longest.
        Some(s) => prop_oneof![
            3 => proptest::collection::vec(s.clone(), shortest_rest..=longest_rest),
            1 => proptest::collection::vec(s.clone(), shortest_rest),
            1 => proptest::collection::vec(s, longest_rest),
        ]
        .boxed(),
        None => Just(Vec::new()).boxed(),
    };
    // The prefix may be cut short when maxItems or minItems allow it.
    let keep_prefix = min.min(prefix_len)..=prefix_len.min(max).max(min.min(prefix_len));
    (prefix_strategies, rest_items, keep_prefix)
        .prop_map(move |(head, tail, keep)| {
            let mut items: Vec<Value> = head.into_iter().take(keep).collect();
            if keep == prefix_len {
                items.extend(tail);
            }
            if unique {
                let mut seen: Vec<Value> = Vec::with_capacity(items.len());
                items.retain(|v| {
                    let fresh = !seen.contains(v);
                    if fresh {
                        seen.push(v.clone());
                    }
                    fresh
                });
            }
            Value::Array(items)
        })
        .boxed()
}

fn object(members: &Map<String, Value>, context: &Context<'_>) -> BoxedStrategy<Value> {
    let properties = members
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let required: Vec<String> = members
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let inner = context.deeper();
    let mut fields: Vec<BoxedStrategy<(String, Option<Value>)>> = Vec::new();
    for (name, schema) in &properties {
        let key = name.clone();
        if required.contains(name) {
            let value = strategy(schema, &inner);
            fields.push(value.prop_map(move |v| (key.clone(), Some(v))).boxed());
        } else if !context.exhausted() {
            let value = strategy(schema, &inner);
            fields.push(
                prop::option::of(value)
                    .prop_map(move |v| (key.clone(), v))
                    .boxed(),
            );
        }
    }
    // Required names the properties do not describe take any value.
    for name in required.iter().filter(|n| !properties.contains_key(*n)) {
        let key = name.clone();
        fields.push(
            any_json(inner.depth)
                .prop_map(move |v| (key.clone(), Some(v)))
                .boxed(),
        );
    }
    let extra = match members.get("additionalProperties") {
        Some(Value::Bool(false)) => None,
        Some(schema @ Value::Object(_)) => Some(strategy(schema, &inner)),
        _ => Some(any_json(MAX_DEPTH)),
    };
    let extras = match extra {
        Some(values) if !context.exhausted() => {
            let taken: Vec<String> = properties.keys().cloned().collect();
            proptest::collection::vec(("x_[a-z]{1,6}", values), 0..=2)
                .prop_map(move |pairs| {
                    pairs
                        .into_iter()
                        .filter(|(k, _)| !taken.contains(k))
                        .collect::<Vec<_>>()
                })
                .boxed()
        }
        _ => Just(Vec::new()).boxed(),
    };
    (fields, extras)
        .prop_map(|(fields, extras)| {
            let mut object = Map::new();
            for (name, value) in extras {
                object.insert(name, value);
            }
            for (name, value) in fields {
                if let Some(value) = value {
                    object.insert(name, value);
                }
            }
            Value::Object(object)
        })
        .boxed()
}

/// Any JSON value, small and shallow.
fn any_json(depth: u32) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1000i64..1000).prop_map(Value::from),
        "[a-z]{0,8}".prop_map(Value::String),
    ];
    if depth >= MAX_DEPTH {
        return leaf.boxed();
    }
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{1,5}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// `members` without the keys in `drop`, as a schema.
fn without(members: &Map<String, Value>, drop: &[&str]) -> Value {
    Value::Object(
        members
            .iter()
            .filter(|(k, _)| !drop.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// A shallow merge of two schemas: `properties` and `required` are united,
/// other keywords from `extra` win. Approximate by design; the final
/// validity filter makes the result exact.
fn merge(base: &Value, extra: &Value) -> Value {
    let (Value::Object(base), Value::Object(extra)) = (base, extra) else {
        return if matches!(extra, Value::Object(_)) {
            extra.clone()
        } else {
            base.clone()
        };
    };
    let mut merged = base.clone();
    for (key, value) in extra {
        match (key.as_str(), merged.get_mut(key)) {
            ("properties", Some(Value::Object(existing))) => {
                if let Value::Object(more) = value {
                    for (k, v) in more {
                        existing.insert(k.clone(), v.clone());
                    }
                }
            }
            ("required", Some(Value::Array(existing))) => {
                if let Value::Array(more) = value {
                    for v in more {
                        if !existing.contains(v) {
                            existing.push(v.clone());
                        }
                    }
                }
            }
            _ => {
                merged.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(merged)
}
