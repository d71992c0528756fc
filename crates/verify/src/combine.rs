//! Edge values in combination, and the same input written other ways.
//!
//! Random generation draws each field's edges (bounds, their neighbours,
//! zero) often, but one field at a time: a bug that needs two fields at
//! their edges together is found only by luck. Here every field of an
//! object input gets its edge values, and the inputs run cover their
//! combinations: all of them when there are few, every pair of edges of
//! every two fields otherwise (a pairwise covering array).
//!
//! Real clients also write one value in several ways (`40.0` for `40`,
//! `\u0041` for `A`, keys in any order); a strict decoder may refuse some.
//! [`encodings`] gives those other writings of an input.

use serde_json::{Map, Value};

/// The most combinations run as a full product; beyond it, pairwise.
pub const FULL_PRODUCT_LIMIT: usize = 256;

/// The most edge values taken for one field.
const EDGES_PER_FIELD: usize = 8;

/// The longest string drawn as an edge (a longer `maxLength` is tested by
/// generation, not here).
const LONGEST_EDGE_STRING: u64 = 256;

/// Object inputs with the fields of `base` set to combinations of their
/// edge values, as `schema` (the input schema, resolved against itself)
/// gives them. Fields without edges keep `base`'s value.
pub fn edge_combinations(schema: &Value, base: &Value) -> Vec<Value> {
    let Some(properties) = resolve(schema, schema)
        .get("properties")
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    let Value::Object(base) = base else {
        return Vec::new();
    };
    let fields: Vec<(&String, Vec<Value>)> = properties
        .iter()
        .map(|(name, field)| (name, edges(field, schema)))
        .filter(|(_, values)| !values.is_empty())
        .collect();
    if fields.is_empty() {
        return Vec::new();
    }
    let sizes: Vec<usize> = fields.iter().map(|(_, values)| values.len()).collect();
    covering(&sizes, FULL_PRODUCT_LIMIT)
        .into_iter()
        .map(|row| {
            let mut input: Map<String, Value> = base.clone();
            for ((name, values), &choice) in fields.iter().zip(&row) {
                input.insert((*name).clone(), values[choice].clone());
            }
            Value::Object(input)
        })
        .collect()
}

/// The edge values of one field's schema: its bounds and their inner
/// neighbours, zero where it fits, every value of a small enum, both
/// booleans, the shortest and longest plain strings, the empty list.
fn edges(schema: &Value, root: &Value) -> Vec<Value> {
    let schema = resolve(schema, root);
    let Some(members) = schema.as_object() else {
        return Vec::new();
    };
    if let Some(constant) = members.get("const") {
        return vec![constant.clone()];
    }
    if let Some(choices) = members.get("enum").and_then(Value::as_array) {
        return choices.iter().take(EDGES_PER_FIELD).cloned().collect();
    }
    let number = |key: &str| members.get(key).and_then(Value::as_f64);
    let mut found: Vec<Value> = Vec::new();
    match members.get("type").and_then(Value::as_str) {
        Some("boolean") => found = vec![Value::Bool(false), Value::Bool(true)],
        Some("integer") => {
            let low = match (number("minimum"), number("exclusiveMinimum")) {
                (Some(m), Some(x)) => Some(m.ceil().max(x.floor() + 1.0)),
                (Some(m), None) => Some(m.ceil()),
                (None, Some(x)) => Some(x.floor() + 1.0),
                (None, None) => None,
            };
            let high = match (number("maximum"), number("exclusiveMaximum")) {
                (Some(m), Some(x)) => Some(m.floor().min(x.ceil() - 1.0)),
                (Some(m), None) => Some(m.floor()),
                (None, Some(x)) => Some(x.ceil() - 1.0),
                (None, None) => None,
            };
            let (Some(low), Some(high)) = (low, high) else {
                return Vec::new();
            };
            if low > high || low < i64::MIN as f64 || high > i64::MAX as f64 {
                return Vec::new();
            }
            let (low, high) = (low as i64, high as i64);
            let step = number("multipleOf")
                .filter(|m| *m >= 1.0 && m.fract() == 0.0)
                .map_or(1, |m| m as i64);
            let first = low.div_euclid(step) + i64::from(low.rem_euclid(step) != 0);
            let last = high.div_euclid(step);
            if first > last {
                return Vec::new();
            }
            let mut values: Vec<i64> = vec![first, last];
            values.push(first.saturating_add(1).min(last));
            values.push(last.saturating_sub(1).max(first));
            if first <= 0 && 0 <= last {
                values.push(0);
            }
            values.sort_unstable();
            values.dedup();
            found = values
                .into_iter()
                .filter_map(|k| k.checked_mul(step))
                .map(Value::from)
                .collect();
        }
        Some("number") => {
            for key in ["minimum", "maximum"] {
                if let Some(bound) = number(key).and_then(serde_json::Number::from_f64) {
                    found.push(Value::Number(bound));
                }
            }
            let low = number("minimum").or(number("exclusiveMinimum"));
            let high = number("maximum").or(number("exclusiveMaximum"));
            if low.is_none_or(|l| l < 0.0) && high.is_none_or(|h| h > 0.0) {
                found.push(Value::from(0));
            }
        }
        Some("string") if !members.contains_key("pattern") && !members.contains_key("format") => {
            let min = members
                .get("minLength")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            found.push(Value::String("a".repeat(min as usize)));
            if let Some(max) = members.get("maxLength").and_then(Value::as_u64)
                && max != min
                && max <= LONGEST_EDGE_STRING
            {
                found.push(Value::String("z".repeat(max as usize)));
            }
        }
        Some("array") if members.get("minItems").and_then(Value::as_u64).unwrap_or(0) == 0 => {
            found.push(Value::Array(Vec::new()));
        }
        _ => {}
    }
    found.truncate(EDGES_PER_FIELD);
    found
}

fn resolve<'a>(mut schema: &'a Value, root: &'a Value) -> &'a Value {
    for _ in 0..8 {
        match schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|pointer| root.pointer(pointer))
        {
            Some(target) => schema = target,
            None => break,
        }
    }
    schema
}

/// Rows of choices, one column per field with `sizes[i]` values: every
/// combination when there are at most `limit`, else rows that cover every
/// pair of values of every two fields (in-parameter-order growth).
pub fn covering(sizes: &[usize], limit: usize) -> Vec<Vec<usize>> {
    if sizes.is_empty() || sizes.contains(&0) {
        return Vec::new();
    }
    let product = sizes
        .iter()
        .try_fold(1usize, |total, &n| total.checked_mul(n));
    if product.is_some_and(|p| p <= limit) || sizes.len() == 1 {
        let mut rows = vec![Vec::new()];
        for &n in sizes {
            rows = rows
                .into_iter()
                .flat_map(|row| {
                    (0..n).map(move |v| {
                        let mut next = row.clone();
                        next.push(v);
                        next
                    })
                })
                .collect();
        }
        return rows;
    }
    let mut rows: Vec<Vec<usize>> = (0..sizes[0])
        .flat_map(|a| (0..sizes[1]).map(move |b| vec![a, b]))
        .collect();
    for (column, &n) in sizes.iter().enumerate().skip(2) {
        // Every pair (earlier column, its value, this column's value).
        let mut uncovered: Vec<(usize, usize, usize)> = (0..column)
            .flat_map(|j| (0..sizes[j]).flat_map(move |a| (0..n).map(move |b| (j, a, b))))
            .collect();
        // Grow each row by the value covering the most uncovered pairs.
        for row in &mut rows {
            let best = (0..n)
                .max_by_key(|&b| {
                    (0..column)
                        .filter(|&j| uncovered.contains(&(j, row[j], b)))
                        .count()
                })
                .unwrap_or(0);
            row.push(best);
            uncovered.retain(|&(j, a, b)| !(b == best && row[j] == a));
        }
        // Add rows for the pairs still uncovered.
        while let Some(&(j, a, b)) = uncovered.first() {
            let mut row = vec![0; column + 1];
            row[j] = a;
            row[column] = b;
            uncovered.retain(|&(k, x, y)| !(y == b && row[k] == x));
            rows.push(row);
        }
    }
    rows
}

/// How an input is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Whole numbers with a fraction: `40.0`.
    FloatIntegers,
    /// Every character of every string as a `\u` escape.
    EscapedStrings,
    /// Object members in reverse order, with spaces and newlines.
    ReorderedSpaced,
}

impl Encoding {
    /// Every encoding.
    pub const ALL: [Encoding; 3] = [
        Encoding::FloatIntegers,
        Encoding::EscapedStrings,
        Encoding::ReorderedSpaced,
    ];

    /// A short name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::FloatIntegers => "integers written as 40.0",
            Encoding::EscapedStrings => "strings written as \\u escapes",
            Encoding::ReorderedSpaced => "members reordered, with whitespace",
        }
    }
}

/// `value` written with `encoding`; `None` when the encoding would not
/// change anything (no integers, no strings, no objects).
pub fn encode(value: &Value, encoding: Encoding) -> Option<String> {
    let mut out = String::new();
    let mut changed = false;
    write(value, encoding, &mut out, &mut changed);
    changed.then_some(out)
}

fn write(value: &Value, encoding: Encoding, out: &mut String, changed: &mut bool) {
    match value {
        Value::Number(n) if encoding == Encoding::FloatIntegers && (n.is_i64() || n.is_u64()) => {
            // Exact for every integer up to 2^53; beyond it the float form
            // names a different integer, so keep those as they are.
            match n.as_i64() {
                Some(i) if i.unsigned_abs() <= 1 << 53 => {
                    out.push_str(&format!("{i}.0"));
                    *changed = true;
                }
                _ => out.push_str(&n.to_string()),
            }
        }
        Value::String(s) if encoding == Encoding::EscapedStrings => {
            out.push('"');
            for unit in s.encode_utf16() {
                out.push_str(&format!("\\u{unit:04x}"));
            }
            out.push('"');
            *changed |= !s.is_empty();
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, encoding, out, changed);
            }
            out.push(']');
        }
        Value::Object(members) => {
            let spaced = encoding == Encoding::ReorderedSpaced;
            out.push_str(if spaced { "{\n  " } else { "{" });
            let ordered: Vec<(&String, &Value)> = if spaced {
                *changed |= !members.is_empty();
                members.iter().rev().collect()
            } else {
                members.iter().collect()
            };
            for (i, (key, member)) in ordered.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(if spaced { " ,\n  " } else { "," });
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push_str(if spaced { " : " } else { ":" });
                write(member, encoding, out, changed);
            }
            out.push_str(if spaced { "\n}" } else { "}" });
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn covers_every_pair(sizes: &[usize], rows: &[Vec<usize>]) -> bool {
        (0..sizes.len()).all(|i| {
            (i + 1..sizes.len()).all(|j| {
                (0..sizes[i])
                    .all(|a| (0..sizes[j]).all(|b| rows.iter().any(|r| r[i] == a && r[j] == b)))
            })
        })
    }

    #[test]
    fn few_combinations_are_all_run() {
        let rows = covering(&[2, 3, 2], FULL_PRODUCT_LIMIT);
        assert_eq!(rows.len(), 12);
    }

    #[test]
    fn many_combinations_are_covered_pairwise_in_far_fewer_rows() {
        let sizes = [5, 5, 5, 5, 5, 5];
        let rows = covering(&sizes, FULL_PRODUCT_LIMIT);
        assert!(covers_every_pair(&sizes, &rows));
        assert!(rows.len() < 60, "{} rows", rows.len());
        let uneven = [2, 8, 3, 5, 1, 4, 7];
        assert!(covers_every_pair(&uneven, &covering(&uneven, 10)));
    }

    #[test]
    fn edges_of_an_object_input_combine_with_the_rest_of_a_base() {
        let schema = json!({
            "type": "object",
            "properties": {
                "a": {"type": "integer", "minimum": 0, "maximum": 10},
                "b": {"type": "integer", "minimum": -5, "maximum": 5},
                "name": {"type": "string", "pattern": "^x+$"},
            },
        });
        let inputs = edge_combinations(&schema, &json!({"a": 3, "b": 1, "name": "xx"}));
        // a: 0, 1, 9, 10; b: -5, -4, 0, 4, 5.
        assert_eq!(inputs.len(), 20);
        assert!(inputs.contains(&json!({"a": 0, "b": -5, "name": "xx"})));
        assert!(inputs.contains(&json!({"a": 10, "b": 5, "name": "xx"})));
    }

    #[test]
    fn other_writings_change_the_text_not_the_value() {
        let value = json!({"n": 40, "s": "Aé", "list": [1, {"k": 2}]});
        for encoding in Encoding::ALL {
            let text = encode(&value, encoding).unwrap();
            assert_ne!(text, value.to_string(), "{encoding:?}");
            let back: Value = serde_json::from_str(&text).unwrap();
            if encoding == Encoding::FloatIntegers {
                assert!(text.contains("40.0"), "{text}");
            } else {
                assert_eq!(back, value, "{encoding:?}: {text}");
            }
        }
        assert_eq!(encode(&json!(true), Encoding::FloatIntegers), None);
    }
}
