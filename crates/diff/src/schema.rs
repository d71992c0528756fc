//! Two JSON Schemas compared keyword by keyword.
//!
//! For the keywords whose meaning is a set that can be compared directly
//! (types, enums and consts, numeric bounds, lengths and counts, required
//! members, declared members and `additionalProperties`, items), a change
//! is decided exactly: the new schema accepts more (wider), less
//! (narrower), or both. Where a keyword's meaning cannot be compared this
//! way (`pattern`, `format`, `multipleOf`, `uniqueItems`, the
//! combinators, `$ref`), the place is left undecided for differential
//! sampling to settle.

use serde_json::{Map, Value};

/// Which way a change moves the set of values a schema accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The new schema accepts values the old one refused.
    Wider,
    /// The new schema refuses values the old one accepted.
    Narrower,
}

/// One decided change.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaChange {
    /// Where in the value it applies, as a JSON pointer in which `*`
    /// stands for any array index or any undeclared member.
    pub at: String,
    /// What changed, for people.
    pub what: String,
    /// Which way.
    pub direction: Direction,
}

/// What comparing two schemas found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Comparison {
    /// Changes decided from the keywords.
    pub changes: Vec<SchemaChange>,
    /// Places where keywords differ that only sampling can judge: the
    /// place and the keyword.
    pub undecided: Vec<(String, String)>,
}

/// Keywords that document and change nothing.
const ANNOTATIONS: &[&str] = &["title", "description", "default", "examples", "$comment"];

/// Keywords compared here; every other difference is undecided.
const DECIDED: &[&str] = &[
    "type",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "required",
    "properties",
    "additionalProperties",
    "items",
];

/// Compares `old` with `new`.
pub fn compare(old: &Value, new: &Value) -> Comparison {
    let mut comparison = Comparison::default();
    node(old, new, "", &mut comparison);
    comparison
}

fn node(old: &Value, new: &Value, at: &str, out: &mut Comparison) {
    let empty = Map::new();
    let (old, new) = match (old, new) {
        (Value::Object(o), Value::Object(n)) => (o, n),
        (Value::Bool(false), Value::Bool(false)) | (Value::Bool(true), Value::Bool(true)) => {
            return;
        }
        (Value::Bool(true), Value::Object(n)) if meaningful(n).next().is_none() => return,
        (Value::Object(o), Value::Bool(true)) if meaningful(o).next().is_none() => return,
        (Value::Bool(false), _) => {
            return push(
                out,
                at,
                "accepts values where it accepted none".into(),
                Direction::Wider,
            );
        }
        (_, Value::Bool(false)) => {
            return push(
                out,
                at,
                "accepts no value here any more".into(),
                Direction::Narrower,
            );
        }
        (Value::Bool(true), Value::Object(n)) => (&empty, n),
        (Value::Object(o), Value::Bool(true)) => (o, &empty),
        _ => {
            out.undecided.push((at.to_string(), "schema".into()));
            return;
        }
    };
    let keys: std::collections::BTreeSet<&str> = meaningful(old).chain(meaningful(new)).collect();
    for key in keys {
        if old.get(key) != new.get(key) && !DECIDED.contains(&key) {
            out.undecided.push((at.to_string(), key.to_string()));
        }
    }
    types(old, new, at, out);
    values(old, new, at, out);
    bounds(old, new, at, out);
    counts(old, new, at, out);
    members(old, new, at, out);
    if let (Some(o), Some(n)) = (old.get("items"), new.get("items")) {
        node(o, n, &format!("{at}/*"), out);
    } else if old.get("items") != new.get("items") {
        let (o, n) = (
            old.get("items").unwrap_or(&Value::Bool(true)),
            new.get("items").unwrap_or(&Value::Bool(true)),
        );
        node(o, n, &format!("{at}/*"), out);
    }
}

fn meaningful(schema: &Map<String, Value>) -> impl Iterator<Item = &str> {
    schema
        .keys()
        .map(String::as_str)
        .filter(|k| !ANNOTATIONS.contains(k))
}

fn push(out: &mut Comparison, at: &str, what: String, direction: Direction) {
    out.changes.push(SchemaChange {
        at: at.to_string(),
        what,
        direction,
    });
}

/// The JSON types a schema node admits (`integer` counted inside
/// `number`), or `None` for any.
fn type_set(schema: &Map<String, Value>) -> Option<Vec<&str>> {
    match schema.get("type")? {
        Value::String(t) => Some(vec![t.as_str()]),
        Value::Array(ts) => Some(ts.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

fn covers(types: &Option<Vec<&str>>, t: &str) -> bool {
    types
        .as_ref()
        .is_none_or(|ts| ts.contains(&t) || (t == "integer" && ts.contains(&"number")))
}

fn types(old: &Map<String, Value>, new: &Map<String, Value>, at: &str, out: &mut Comparison) {
    let (o, n) = (type_set(old), type_set(new));
    if o == n {
        return;
    }
    let all = [
        "object", "array", "string", "number", "integer", "boolean", "null",
    ];
    let gained: Vec<&str> = all
        .iter()
        .copied()
        .filter(|t| covers(&n, t) && !covers(&o, t))
        .collect();
    let lost: Vec<&str> = all
        .iter()
        .copied()
        .filter(|t| covers(&o, t) && !covers(&n, t))
        .collect();
    if !gained.is_empty() {
        push(
            out,
            at,
            format!("type also admits {}", gained.join(", ")),
            Direction::Wider,
        );
    }
    if !lost.is_empty() {
        push(
            out,
            at,
            format!("type no longer admits {}", lost.join(", ")),
            Direction::Narrower,
        );
    }
}

/// The values an `enum` or `const` allows, if either is present.
fn allowed(schema: &Map<String, Value>) -> Option<Vec<&Value>> {
    match (schema.get("enum"), schema.get("const")) {
        (Some(Value::Array(values)), None) => Some(values.iter().collect()),
        (None, Some(value)) => Some(vec![value]),
        (Some(Value::Array(values)), Some(value)) => {
            Some(values.iter().filter(|v| *v == value).collect())
        }
        _ => None,
    }
}

fn values(old: &Map<String, Value>, new: &Map<String, Value>, at: &str, out: &mut Comparison) {
    let (o, n) = (allowed(old), allowed(new));
    match (&o, &n) {
        (Some(o), Some(n)) => {
            let gained: Vec<String> = n
                .iter()
                .filter(|v| !o.contains(v))
                .map(|v| v.to_string())
                .collect();
            let lost: Vec<String> = o
                .iter()
                .filter(|v| !n.contains(v))
                .map(|v| v.to_string())
                .collect();
            if !gained.is_empty() {
                push(
                    out,
                    at,
                    format!("allows {}", gained.join(", ")),
                    Direction::Wider,
                );
            }
            if !lost.is_empty() {
                push(
                    out,
                    at,
                    format!("no longer allows {}", lost.join(", ")),
                    Direction::Narrower,
                );
            }
        }
        (Some(_), None) => push(
            out,
            at,
            "no longer limited to a list of values".into(),
            Direction::Wider,
        ),
        (None, Some(n)) => push(
            out,
            at,
            format!(
                "limited to {}",
                n.iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Direction::Narrower,
        ),
        (None, None) => {}
    }
}

/// A numeric bound: the value and whether it is exclusive; `None` is no
/// bound.
type Bound = Option<(f64, bool)>;

fn bound(schema: &Map<String, Value>, inclusive: &str, exclusive: &str, upper: bool) -> Bound {
    let i = schema
        .get(inclusive)
        .and_then(Value::as_f64)
        .map(|v| (v, false));
    let e = schema
        .get(exclusive)
        .and_then(Value::as_f64)
        .map(|v| (v, true));
    match (i, e) {
        (Some(i), Some(e)) => {
            let tighter_exclusive = if upper { e.0 <= i.0 } else { e.0 >= i.0 };
            Some(if tighter_exclusive { e } else { i })
        }
        (i, e) => i.or(e),
    }
}

fn show(bound: Bound, upper: bool) -> String {
    match bound {
        None => "none".into(),
        Some((v, exclusive)) => {
            let sign = match (upper, exclusive) {
                (true, false) => "≤",
                (true, true) => "<",
                (false, false) => "≥",
                (false, true) => ">",
            };
            if v.fract() == 0.0 && v.abs() < 1e15 {
                format!("{sign} {}", v as i64)
            } else {
                format!("{sign} {v}")
            }
        }
    }
}

/// Whether lower bound `a` admits less than `b` (is tighter).
fn tighter_lower(a: Bound, b: Bound) -> bool {
    match (a, b) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some((x, xe)), Some((y, ye))) => x > y || (x == y && xe && !ye),
    }
}

fn tighter_upper(a: Bound, b: Bound) -> bool {
    match (a, b) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some((x, xe)), Some((y, ye))) => x < y || (x == y && xe && !ye),
    }
}

fn bounds(old: &Map<String, Value>, new: &Map<String, Value>, at: &str, out: &mut Comparison) {
    let (ol, nl) = (
        bound(old, "minimum", "exclusiveMinimum", false),
        bound(new, "minimum", "exclusiveMinimum", false),
    );
    if tighter_lower(nl, ol) {
        push(
            out,
            at,
            format!("lower bound {} → {}", show(ol, false), show(nl, false)),
            Direction::Narrower,
        );
    } else if tighter_lower(ol, nl) {
        push(
            out,
            at,
            format!("lower bound {} → {}", show(ol, false), show(nl, false)),
            Direction::Wider,
        );
    }
    let (ou, nu) = (
        bound(old, "maximum", "exclusiveMaximum", true),
        bound(new, "maximum", "exclusiveMaximum", true),
    );
    if tighter_upper(nu, ou) {
        push(
            out,
            at,
            format!("upper bound {} → {}", show(ou, true), show(nu, true)),
            Direction::Narrower,
        );
    } else if tighter_upper(ou, nu) {
        push(
            out,
            at,
            format!("upper bound {} → {}", show(ou, true), show(nu, true)),
            Direction::Wider,
        );
    }
}

fn counts(old: &Map<String, Value>, new: &Map<String, Value>, at: &str, out: &mut Comparison) {
    for (low, high, noun) in [
        ("minLength", "maxLength", "length"),
        ("minItems", "maxItems", "item count"),
    ] {
        let get = |s: &Map<String, Value>, k: &str| s.get(k).and_then(Value::as_u64);
        let (ol, nl) = (get(old, low).unwrap_or(0), get(new, low).unwrap_or(0));
        if nl != ol {
            let direction = if nl > ol {
                Direction::Narrower
            } else {
                Direction::Wider
            };
            push(out, at, format!("least {noun} {ol} → {nl}"), direction);
        }
        let (oh, nh) = (get(old, high), get(new, high));
        if oh != nh {
            let narrower = match (oh, nh) {
                (None, Some(_)) => true,
                (Some(o), Some(n)) => n < o,
                _ => false,
            };
            let shown = |v: Option<u64>| v.map_or("none".to_string(), |v| v.to_string());
            let direction = if narrower {
                Direction::Narrower
            } else {
                Direction::Wider
            };
            push(
                out,
                at,
                format!("greatest {noun} {} → {}", shown(oh), shown(nh)),
                direction,
            );
        }
    }
}

fn members(old: &Map<String, Value>, new: &Map<String, Value>, at: &str, out: &mut Comparison) {
    let required = |s: &Map<String, Value>| -> Vec<String> {
        s.get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (or, nr) = (required(old), required(new));
    for gone in or.iter().filter(|m| !nr.contains(m)) {
        push(
            out,
            at,
            format!("`{gone}` is no longer required"),
            Direction::Wider,
        );
    }
    for added in nr.iter().filter(|m| !or.contains(m)) {
        push(
            out,
            at,
            format!("`{added}` is now required"),
            Direction::Narrower,
        );
    }
    let props = |s: &Map<String, Value>| {
        s.get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let (op, np) = (props(old), props(new));
    let closed =
        |s: &Map<String, Value>| s.get("additionalProperties") == Some(&Value::Bool(false));
    let (oc, nc) = (closed(old), closed(new));
    let escape = |k: &str| k.replace('~', "~0").replace('/', "~1");
    for (key, o) in &op {
        let place = format!("{at}/{}", escape(key));
        match np.get(key) {
            Some(n) => node(o, n, &place, out),
            None if nc => push(
                out,
                at,
                format!("member `{key}` is no longer accepted"),
                Direction::Narrower,
            ),
            None => {
                let rest = new
                    .get("additionalProperties")
                    .unwrap_or(&Value::Bool(true));
                node(o, rest, &place, out);
            }
        }
    }
    for (key, n) in &np {
        if op.contains_key(key) {
            continue;
        }
        let place = format!("{at}/{}", escape(key));
        if oc {
            push(
                out,
                at,
                format!("member `{key}` is now accepted"),
                Direction::Wider,
            );
        } else {
            let rest = old
                .get("additionalProperties")
                .unwrap_or(&Value::Bool(true));
            node(rest, n, &place, out);
        }
    }
    match (
        old.get("additionalProperties"),
        new.get("additionalProperties"),
    ) {
        (o, n) if o == n => {}
        (Some(Value::Bool(false)), _) => push(
            out,
            at,
            "accepts undeclared members".into(),
            Direction::Wider,
        ),
        (_, Some(Value::Bool(false))) => push(
            out,
            at,
            "refuses undeclared members".into(),
            Direction::Narrower,
        ),
        (o, n) => {
            let any = Value::Bool(true);
            node(
                o.unwrap_or(&any),
                n.unwrap_or(&any),
                &format!("{at}/*"),
                out,
            );
        }
    }
}

/// Whether a validator's instance path (`/lines/0/sku`) lies at `at`
/// (`/lines/*/sku`), where `*` matches any one segment.
pub fn lies_at(instance_path: &str, at: &str) -> bool {
    let a: Vec<&str> = instance_path.split('/').collect();
    let b: Vec<&str> = at.split('/').collect();
    a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| *y == "*" || x == y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn directions(old: Value, new: Value) -> Vec<(String, Direction)> {
        compare(&old, &new)
            .changes
            .into_iter()
            .map(|c| (c.at, c.direction))
            .collect()
    }

    #[test]
    fn bounds_enums_required_and_members_are_decided() {
        let old = json!({"type": "object", "required": ["a"], "additionalProperties": false,
            "properties": {"a": {"type": "integer", "maximum": 10}, "c": {"enum": ["x", "y"]}}});
        let new = json!({"type": "object", "required": ["a", "c"], "additionalProperties": false,
            "properties": {"a": {"type": "integer", "maximum": 5}, "c": {"enum": ["x", "z"]}, "d": {}}});
        let found = directions(old, new);
        assert!(
            found.contains(&("/a".into(), Direction::Narrower)),
            "{found:?}"
        );
        assert!(
            found.contains(&("/c".into(), Direction::Wider)),
            "{found:?}"
        );
        assert!(
            found.contains(&("/c".into(), Direction::Narrower)),
            "{found:?}"
        );
        assert!(
            found.contains(&("".into(), Direction::Narrower)),
            "`c` required: {found:?}"
        );
        assert!(
            found.contains(&("".into(), Direction::Wider)),
            "`d` accepted: {found:?}"
        );
    }

    #[test]
    fn the_same_schema_with_other_annotations_has_no_change() {
        let old = json!({"type": "string", "pattern": "^a", "description": "one"});
        let new = json!({"type": "string", "pattern": "^a", "description": "two", "title": "t"});
        assert_eq!(compare(&old, &new), Comparison::default());
    }

    #[test]
    fn a_changed_pattern_is_left_to_sampling() {
        let found = compare(&json!({"pattern": "^a"}), &json!({"pattern": "^b"}));
        assert!(found.changes.is_empty());
        assert_eq!(
            found.undecided,
            vec![(String::new(), "pattern".to_string())]
        );
    }

    #[test]
    fn exclusive_and_inclusive_bounds_compare_by_what_they_admit() {
        let found = directions(json!({"minimum": 0}), json!({"exclusiveMinimum": 0}));
        assert_eq!(found, vec![(String::new(), Direction::Narrower)]);
        let found = directions(json!({"type": "integer"}), json!({"type": "number"}));
        assert_eq!(found, vec![(String::new(), Direction::Wider)]);
    }

    #[test]
    fn instance_paths_match_places_with_wildcards() {
        assert!(lies_at("/lines/0/sku", "/lines/*/sku"));
        assert!(lies_at("", ""));
        assert!(!lies_at("/lines/0", "/lines/*/sku"));
    }
}
