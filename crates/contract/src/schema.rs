//! JSON Schemas of inputs and outputs: the subset mote accepts (it must be
//! able to validate *and* later generate data for every keyword), checked
//! with spans, then compiled by the `jsonschema` crate (draft 2020-12).

use std::fmt;

use serde_json::Value;

use crate::diagnostic::DiagnosticKind;
use crate::document::{JsonDoc, Reader, pointer_segment};

/// Keywords mote validates and generates data for.
pub const SUPPORTED_KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "uniqueItems",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "oneOf",
    "anyOf",
    "allOf",
    "$ref",
    "$defs",
];

/// Keywords that carry documentation only and change no behaviour.
pub const ANNOTATION_KEYWORDS: &[&str] =
    &["title", "description", "default", "examples", "$comment"];

/// Values of `format` that are validated and generated.
pub const SUPPORTED_FORMATS: &[&str] = &["date", "date-time", "email", "uuid"];

const TYPES: &[&str] = &[
    "object", "array", "string", "integer", "number", "boolean", "null",
];

/// A compiled JSON Schema.
pub struct Schema {
    json: Value,
    validator: jsonschema::Validator,
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Schema").field(&self.json).finish()
    }
}

/// One way in which a value breaks a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    /// JSON pointer to the offending part of the value (`""` for the root).
    pub instance_path: String,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.instance_path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "at {}: {}", self.instance_path, self.message)
        }
    }
}

impl Schema {
    /// Compiles a schema given as JSON, after checking it uses only the
    /// supported subset. Meant for schemas that do not come from a contract
    /// file (tests, generated doubles); contracts go through `mote check`.
    pub fn from_json(json: Value) -> Result<Schema, String> {
        let mut problems = Vec::new();
        walk(&json, "", &json, &mut |p| problems.push(p));
        if let Some(first) = problems.into_iter().next() {
            return Err(format!(
                "{}: {}",
                display_pointer(&first.pointer),
                first.message
            ));
        }
        build(json).map_err(|e| e.to_string())
    }

    /// The schema as JSON.
    pub fn json(&self) -> &Value {
        &self.json
    }

    /// Whether `instance` satisfies the schema.
    pub fn is_valid(&self, instance: &Value) -> bool {
        self.validator.is_valid(instance)
    }

    /// Every way `instance` breaks the schema (empty if it does not).
    pub fn violations(&self, instance: &Value) -> Vec<SchemaViolation> {
        self.validator
            .iter_errors(instance)
            .map(|e| SchemaViolation {
                instance_path: e.instance_path().to_string(),
                message: e.to_string(),
            })
            .collect()
    }
}

fn build(mut json: Value) -> Result<Schema, jsonschema::ValidationError<'static>> {
    bound_integers(&mut json);
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(&json)?;
    Ok(Schema { json, validator })
}

/// The smallest and largest integer mote carries: a JSON integer is a
/// 64-bit signed integer in every guest, so an integer schema admits no
/// value outside this range.
pub const INTEGER_RANGE: (i64, i64) = (i64::MIN, i64::MAX);

/// Makes the 64-bit range of `integer` explicit in every subschema that
/// allows integers, so that the validator refuses what no typed guest
/// could decode, generators never draw it, and documents generated from
/// the schema (OpenAPI) say so. A bound the contract gives stays, clamped
/// to the range.
fn bound_integers(schema: &mut Value) {
    let Value::Object(members) = schema else {
        return;
    };
    let integer = match members.get("type") {
        Some(Value::String(kind)) => kind == "integer",
        Some(Value::Array(kinds)) => kinds.iter().any(|k| k == "integer"),
        _ => false,
    };
    if integer {
        let (low, high) = INTEGER_RANGE;
        let within = |key: &str, members: &serde_json::Map<String, Value>| {
            members.get(key).and_then(Value::as_f64)
        };
        if within("minimum", members).is_none_or(|m| m < low as f64)
            && within("exclusiveMinimum", members).is_none_or(|m| m < low as f64)
        {
            members.insert("minimum".into(), Value::from(low));
        }
        if within("maximum", members).is_none_or(|m| m > high as f64)
            && within("exclusiveMaximum", members).is_none_or(|m| m > high as f64)
        {
            members.insert("maximum".into(), Value::from(high));
        }
    }
    for (key, value) in members.iter_mut() {
        match key.as_str() {
            "properties" | "$defs" => {
                if let Value::Object(children) = value {
                    children.values_mut().for_each(bound_integers);
                }
            }
            "items" | "additionalProperties" => bound_integers(value),
            "prefixItems" | "oneOf" | "anyOf" | "allOf" => {
                if let Value::Array(children) = value {
                    children.iter_mut().for_each(bound_integers);
                }
            }
            _ => {}
        }
    }
}

/// Checks the schema written at `doc`, reporting each problem at its span,
/// and compiles it if there are none. `section` names it for messages.
pub(crate) fn compile(doc: &JsonDoc, reader: &mut Reader<'_>, section: &str) -> Option<Schema> {
    let mut clean = true;
    walk(&doc.value, "", &doc.value, &mut |problem| {
        clean = false;
        let span = if problem.on_key {
            doc.key_span(&problem.pointer)
        } else {
            doc.value_span(&problem.pointer)
        };
        let mut d = reader
            .error(problem.kind, format!("{section}: {}", problem.message))
            .at(span);
        if let Some(hint) = problem.hint {
            d = d.hint(hint);
        }
        reader.push(d);
    });
    if !clean {
        return None;
    }
    match build(doc.value.clone()) {
        Ok(schema) => Some(schema),
        Err(e) => {
            let pointer = e.schema_path().to_string();
            let d = reader
                .error(DiagnosticKind::SchemaInvalid, format!("{section}: {e}"))
                .at(doc.value_span(&pointer));
            reader.push(d);
            None
        }
    }
}

struct Problem {
    kind: DiagnosticKind,
    pointer: String,
    on_key: bool,
    message: String,
    hint: Option<String>,
}

fn display_pointer(pointer: &str) -> String {
    if pointer.is_empty() {
        "schema".into()
    } else {
        format!("schema at {pointer}")
    }
}

/// Visits a (sub)schema at `pointer`; `root` resolves `$ref`s.
fn walk(schema: &Value, pointer: &str, root: &Value, report: &mut dyn FnMut(Problem)) {
    let invalid = |at: String, on_key: bool, message: String| Problem {
        kind: DiagnosticKind::SchemaInvalid,
        pointer: at,
        on_key,
        message,
        hint: None,
    };
    let members = match schema {
        Value::Bool(_) => return,
        Value::Object(members) => members,
        _ => {
            report(invalid(
                pointer.into(),
                false,
                "a schema must be a table (or true/false)".into(),
            ));
            return;
        }
    };
    for (key, value) in members {
        let at = format!("{pointer}/{}", pointer_segment(key));
        let key = key.as_str();
        if ANNOTATION_KEYWORDS.contains(&key) {
            continue;
        }
        if !SUPPORTED_KEYWORDS.contains(&key) {
            let hint = match crate::document::closest(key, SUPPORTED_KEYWORDS) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!(
                    "mote can only accept keywords it can both validate and generate data for: {}",
                    SUPPORTED_KEYWORDS.join(", ")
                ),
            };
            report(Problem {
                kind: DiagnosticKind::SchemaUnsupported,
                pointer: at,
                on_key: true,
                message: format!("JSON Schema keyword `{key}` is not supported"),
                hint: Some(hint),
            });
            continue;
        }
        match key {
            "type" => {
                let names: Vec<&Value> = match value {
                    Value::Array(items) if !items.is_empty() => items.iter().collect(),
                    Value::String(_) => vec![value],
                    _ => {
                        report(invalid(
                            at,
                            false,
                            "`type` must be a type name or a non-empty array of them".into(),
                        ));
                        continue;
                    }
                };
                for name in names {
                    if !name.as_str().is_some_and(|n| TYPES.contains(&n)) {
                        report(invalid(
                            at.clone(),
                            false,
                            format!(
                                "`{name}` is not a JSON Schema type; use one of {}",
                                TYPES.join(", ")
                            ),
                        ));
                    }
                }
            }
            "properties" | "$defs" => match value {
                Value::Object(children) => {
                    for (name, child) in children {
                        walk(
                            child,
                            &format!("{at}/{}", pointer_segment(name)),
                            root,
                            report,
                        );
                    }
                }
                _ => report(invalid(
                    at,
                    false,
                    format!("`{key}` must be a table of schemas"),
                )),
            },
            "additionalProperties" | "items" => walk(value, &at, root, report),
            "prefixItems" | "oneOf" | "anyOf" | "allOf" => match value {
                Value::Array(children) if !children.is_empty() => {
                    for (i, child) in children.iter().enumerate() {
                        walk(child, &format!("{at}/{i}"), root, report);
                    }
                }
                _ => report(invalid(
                    at,
                    false,
                    format!("`{key}` must be a non-empty array of schemas"),
                )),
            },
            "required" if !is_property_list(value) => report(invalid(
                at,
                false,
                "`required` must be an array of distinct property names".into(),
            )),
            "minItems" | "maxItems" | "minLength" | "maxLength" if value.as_u64().is_none() => {
                report(invalid(
                    at,
                    false,
                    format!("`{key}` must be a non-negative integer"),
                ))
            }
            "uniqueItems" if !value.is_boolean() => report(invalid(
                at,
                false,
                "`uniqueItems` must be true or false".into(),
            )),
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum"
                if !value.is_number() =>
            {
                report(invalid(at, false, format!("`{key}` must be a number")))
            }
            "multipleOf" if !value.as_f64().is_some_and(|m| m > 0.0) => report(invalid(
                at,
                false,
                "`multipleOf` must be a number greater than 0".into(),
            )),
            "enum" if value.as_array().is_none_or(Vec::is_empty) => report(invalid(
                at,
                false,
                "`enum` must be a non-empty array of values".into(),
            )),
            "pattern" => match value.as_str() {
                Some(pattern) => {
                    if let Some(why) = ungeneratable_pattern(pattern) {
                        report(Problem {
                            kind: DiagnosticKind::SchemaUnsupported,
                            pointer: at,
                            on_key: false,
                            message: format!("pattern `{pattern}` cannot be used: {why}"),
                            hint: Some(
                                "patterns use Rust regex syntax without look-around, backreferences, or anchors other than a leading ^ and a trailing $, so that mote can generate matching strings"
                                    .into(),
                            ),
                        });
                    }
                }
                None => report(invalid(at, false, "`pattern` must be a string".into())),
            },
            "format"
                if !value
                    .as_str()
                    .is_some_and(|f| SUPPORTED_FORMATS.contains(&f)) =>
            {
                report(Problem {
                    kind: DiagnosticKind::SchemaUnsupported,
                    pointer: at,
                    on_key: false,
                    message: format!("format {value} is not supported"),
                    hint: Some(format!(
                        "supported formats: {}",
                        SUPPORTED_FORMATS.join(", ")
                    )),
                })
            }
            "$ref" => match value.as_str() {
                Some(reference) => {
                    if resolve_ref(root, reference).is_none() {
                        report(invalid(
                            at,
                            false,
                            format!(
                                "`$ref` \"{reference}\" does not point to a schema in this contract"
                            ),
                        ));
                    }
                }
                None => report(invalid(at, false, "`$ref` must be a string".into())),
            },
            _ => {}
        }
    }
    check_satisfiable(members, pointer, report);
}

/// Bounds that no value can meet make generation impossible and are
/// almost always a typo, so they are refused.
fn check_satisfiable(
    members: &serde_json::Map<String, Value>,
    pointer: &str,
    report: &mut dyn FnMut(Problem),
) {
    let number = |k: &str| members.get(k).and_then(Value::as_f64);
    let integer = match members.get("type") {
        Some(Value::String(kind)) => kind == "integer",
        Some(Value::Array(kinds)) => kinds.iter().all(|k| k == "integer"),
        _ => false,
    };
    let (low, high) = INTEGER_RANGE;
    if integer {
        for (key, beyond) in [
            ("minimum", number("minimum").filter(|m| *m > high as f64)),
            (
                "exclusiveMinimum",
                number("exclusiveMinimum").filter(|m| *m >= high as f64),
            ),
            ("maximum", number("maximum").filter(|m| *m < low as f64)),
            (
                "exclusiveMaximum",
                number("exclusiveMaximum").filter(|m| *m <= low as f64),
            ),
        ] {
            if let Some(bound) = beyond {
                report(Problem {
                    kind: DiagnosticKind::SchemaInvalid,
                    pointer: format!("{pointer}/{key}"),
                    on_key: false,
                    message: format!(
                        "`{key}` ({bound}) leaves no integer: mote integers are 64-bit ({low}..={high})"
                    ),
                    hint: None,
                });
            }
        }
    }
    let pairs = [
        ("minimum", "maximum"),
        ("minLength", "maxLength"),
        ("minItems", "maxItems"),
    ];
    for (low, high) in pairs {
        if let (Some(l), Some(h)) = (number(low), number(high))
            && l > h
        {
            report(Problem {
                kind: DiagnosticKind::SchemaInvalid,
                pointer: format!("{pointer}/{low}"),
                on_key: false,
                message: format!("`{low}` ({l}) is greater than `{high}` ({h}): no value fits"),
                hint: None,
            });
        }
    }
    if members.get("additionalProperties") == Some(&Value::Bool(false))
        && let Some(required) = members.get("required").and_then(Value::as_array)
    {
        let properties = members.get("properties").and_then(Value::as_object);
        for name in required.iter().filter_map(Value::as_str) {
            if !properties.is_some_and(|p| p.contains_key(name)) {
                report(Problem {
                    kind: DiagnosticKind::SchemaInvalid,
                    pointer: format!("{pointer}/required"),
                    on_key: false,
                    message: format!(
                        "`{name}` is required but not among `properties`, and additionalProperties is false: no value fits"
                    ),
                    hint: Some(format!("add `properties.{name}`")),
                });
            }
        }
    }
}

/// Why strings matching `pattern` cannot be generated, if they cannot.
fn ungeneratable_pattern(pattern: &str) -> Option<String> {
    if let Err(e) = regex_syntax::Parser::new().parse(pattern) {
        return Some(first_line(&e.to_string()).to_string());
    }
    let body = pattern.strip_prefix('^').unwrap_or(pattern);
    let body = body.strip_suffix('$').unwrap_or(body);
    match regex_syntax::Parser::new().parse(body) {
        Ok(hir) if hir.properties().look_set().is_empty() => None,
        Ok(_) => Some("it uses an anchor or word boundary inside the pattern".into()),
        Err(e) => Some(first_line(&e.to_string()).to_string()),
    }
}

/// Whether `value` is an array of distinct strings.
fn is_property_list(value: &Value) -> bool {
    value.as_array().is_some_and(|items| {
        items.iter().all(Value::is_string)
            && items
                .iter()
                .enumerate()
                .all(|(i, a)| !items[..i].contains(a))
    })
}

/// Resolves a local reference (`#` or `#/$defs/name/...`).
fn resolve_ref<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    root.pointer(pointer)
}

/// The line of a multi-line parser message that says what is wrong.
fn first_line(text: &str) -> &str {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .or_else(|| text.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_are_validated_not_just_annotated() {
        let schema = Schema::from_json(json!({"type": "string", "format": "date"})).unwrap();
        assert!(schema.is_valid(&json!("2024-02-29")));
        assert!(!schema.is_valid(&json!("2024-02-30")));
        let uuid = Schema::from_json(json!({"format": "uuid"})).unwrap();
        assert!(!uuid.is_valid(&json!("not-a-uuid")));
        let email = Schema::from_json(json!({"format": "email"})).unwrap();
        assert!(email.is_valid(&json!("a@example.com")));
        assert!(!email.is_valid(&json!("nobody")));
    }

    #[test]
    fn recursive_refs_compile_and_validate() {
        let schema = Schema::from_json(json!({
            "$ref": "#/$defs/node",
            "$defs": {"node": {"type": "object", "properties": {
                "value": {"type": "integer"},
                "next": {"$ref": "#/$defs/node"}
            }}}
        }))
        .unwrap();
        assert!(schema.is_valid(&json!({"value": 1, "next": {"value": 2}})));
        assert!(!schema.is_valid(&json!({"value": 1, "next": {"value": "x"}})));
    }

    #[test]
    fn unsupported_keywords_and_formats_are_refused() {
        assert!(Schema::from_json(json!({"not": {"type": "string"}})).is_err());
        assert!(Schema::from_json(json!({"type": "string", "format": "hostname"})).is_err());
        assert!(Schema::from_json(json!({"pattern": "(?=a)b"})).is_err());
        assert!(Schema::from_json(json!({"pattern": "a\\bb"})).is_err());
        assert!(Schema::from_json(json!({"pattern": "^[A-Z]{3}-[0-9]{3}$"})).is_ok());
        assert!(Schema::from_json(json!({"$ref": "#/$defs/missing"})).is_err());
        assert!(Schema::from_json(json!({"minimum": 5, "maximum": 1})).is_err());
    }

    #[test]
    fn integers_are_64_bit_and_say_so() {
        let schema = Schema::from_json(json!({
            "type": "object",
            "properties": {
                "n": {"type": "integer", "minimum": 0},
                "big": {"type": "integer", "maximum": 1e30},
                "x": {"type": "number"},
                "list": {"type": "array", "items": {"type": ["integer", "null"]}}
            }
        }))
        .unwrap();
        let n = &schema.json()["properties"]["n"];
        assert_eq!(n["minimum"], json!(0));
        assert_eq!(n["maximum"], json!(i64::MAX));
        assert_eq!(
            schema.json()["properties"]["big"]["maximum"],
            json!(i64::MAX)
        );
        assert!(schema.json()["properties"]["x"].get("maximum").is_none());
        assert_eq!(
            schema.json()["properties"]["list"]["items"]["minimum"],
            json!(i64::MIN)
        );
        assert!(schema.is_valid(&json!({"n": 9223372036854775807_i64})));
        assert!(!schema.is_valid(&json!({"n": 24831348606724808704.0_f64})));
        assert!(!schema.is_valid(&json!({"list": [-1e19]})));
        assert!(schema.is_valid(&json!({"x": 24831348606724808704.0_f64})));
        // A bound beyond the range leaves no integer at all.
        assert!(Schema::from_json(json!({"type": "integer", "minimum": 1e300})).is_err());
        assert!(Schema::from_json(json!({"type": "integer", "maximum": -1e19})).is_err());
        assert!(Schema::from_json(json!({"type": "number", "minimum": 1e300})).is_ok());
    }

    #[test]
    fn violations_name_the_path() {
        let schema = Schema::from_json(json!({
            "type": "object",
            "properties": {"n": {"type": "integer", "minimum": 0}}
        }))
        .unwrap();
        let v = schema.violations(&json!({"n": -1}));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].instance_path, "/n");
    }
}
