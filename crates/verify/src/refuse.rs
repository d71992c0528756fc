//! Inputs a contract refuses, made from inputs it accepts.
//!
//! A contract's input schema and `requires` say which inputs a service
//! takes; everything else must be refused with `invalid_input`, before
//! the service's logic runs. mote's host does that for every guest. A
//! service behind a URL may not: it may take a field the schema forbids,
//! a string where a number belongs, or a missing required field, and
//! answer as if nothing were wrong. [`mutants`] breaks a valid input in
//! the ways clients break them, one change at a time, so that the
//! verifier can send the ones the schema refuses.

use serde_json::{Map, Value};

/// The member added to objects to test `additionalProperties`.
pub const UNEXPECTED_MEMBER: &str = "mote_unexpected";

/// The most places of one input that get mutated.
const PLACES: usize = 32;

/// Inputs that differ from `input` in one place each: a member added to
/// or removed from an object, a value replaced by one of another type or
/// far out of range, an array emptied or grown. Some of them may still be
/// valid; the caller keeps those the schema refuses. The order is fixed.
pub fn mutants(input: &Value) -> Vec<Value> {
    let mut places = Vec::new();
    collect_places(input, String::new(), &mut places);
    places.truncate(PLACES);
    let mut out = Vec::new();
    for pointer in &places {
        let Some(current) = input.pointer(pointer) else {
            continue;
        };
        for replacement in replacements(current) {
            let mut mutant = input.clone();
            if let Some(slot) = mutant.pointer_mut(pointer) {
                *slot = replacement;
                out.push(mutant);
            }
        }
    }
    out
}

/// JSON pointers of `value` and every value inside it, outermost first.
fn collect_places(value: &Value, at: String, places: &mut Vec<String>) {
    places.push(at.clone());
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_places(item, format!("{at}/{i}"), places);
            }
        }
        Value::Object(members) => {
            for (key, member) in members {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                collect_places(member, format!("{at}/{escaped}"), places);
            }
        }
        _ => {}
    }
}

/// What one place may become.
fn replacements(value: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    match value {
        Value::Object(members) => {
            let mut grown = members.clone();
            grown.insert(UNEXPECTED_MEMBER.into(), Value::Bool(true));
            out.push(Value::Object(grown));
            for key in members.keys() {
                let mut shrunk = members.clone();
                shrunk.remove(key);
                out.push(Value::Object(shrunk));
            }
        }
        Value::Array(items) => {
            out.push(Value::Array(Vec::new()));
            if let Some(last) = items.last() {
                let mut grown = items.clone();
                grown.push(last.clone());
                out.push(Value::Array(grown));
            }
        }
        Value::Number(n) => {
            out.push(Value::from(i64::MAX));
            out.push(Value::from(i64::MIN));
            if n.is_i64() || n.is_u64() {
                out.push(Value::from(0.5));
            }
        }
        Value::String(s) => {
            out.push(Value::String(String::new()));
            out.push(Value::String(format!("{s}\u{0}~")));
            out.push(Value::String("x".repeat(s.chars().count() * 2 + 300)));
        }
        _ => {}
    }
    // Another type, whatever it was.
    out.extend([
        Value::Null,
        Value::Bool(true),
        Value::String("mote".into()),
        Value::from(7),
        Value::Array(Vec::new()),
        Value::Object(Map::new()),
    ]);
    out.retain(|candidate| candidate != value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_mutant_differs_from_the_input_in_one_place() {
        let input = json!({"a": 1, "tags": ["x"], "inner": {"b": "s"}});
        let mutants = mutants(&input);
        assert!(mutants.iter().all(|m| *m != input));
        assert!(mutants.contains(
            &json!({"a": 1, "tags": ["x"], "inner": {"b": "s"}, UNEXPECTED_MEMBER: true})
        ));
        assert!(mutants.contains(&json!({"tags": ["x"], "inner": {"b": "s"}})));
        assert!(mutants.contains(&json!({"a": "mote", "tags": ["x"], "inner": {"b": "s"}})));
        assert!(mutants.contains(&json!({"a": 1, "tags": [], "inner": {"b": "s"}})));
        assert!(mutants.contains(&json!({"a": 1, "tags": ["x"], "inner": {"b": null}})));
        assert_eq!(mutants, super::mutants(&input), "the order is fixed");
    }
}
