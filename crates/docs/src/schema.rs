//! A JSON Schema as rows of a table: one per field, with its type, its
//! limits, whether it is required, and its description.

use serde_json::Value;

/// One field of a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Where the field is: `items[].sku`; empty for the value itself.
    pub path: String,
    /// Its type(s), e.g. `integer` or `string | null`.
    pub kind: String,
    /// Its limits in words: range, length, pattern, enum, format...
    pub limits: Vec<String>,
    /// Whether its object requires it.
    pub required: bool,
    /// Its `description` (or `title`).
    pub description: String,
}

/// How deep nested schemas are followed; deeper fields are summarised.
const MAX_DEPTH: usize = 8;

/// The rows of `schema`, outermost first. `root` resolves `$ref`s.
pub fn rows(schema: &Value) -> Vec<Row> {
    let mut out = Vec::new();
    walk(schema, schema, String::new(), true, 0, &mut out);
    out
}

fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
            .unwrap_or(schema),
        None => schema,
    }
}

fn kind(schema: &Value) -> String {
    match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ if schema.get("enum").is_some() => "enum".into(),
        _ if schema.get("const").is_some() => "const".into(),
        _ if schema.get("properties").is_some() => "object".into(),
        _ => "any".into(),
    }
}

fn limits(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let number = |k: &str| schema.get(k).map(Value::to_string);
    match (number("minimum"), number("exclusiveMinimum")) {
        (Some(m), _) => out.push(format!("≥ {m}")),
        (None, Some(m)) => out.push(format!("> {m}")),
        _ => {}
    }
    match (number("maximum"), number("exclusiveMaximum")) {
        (Some(m), _) => out.push(format!("≤ {m}")),
        (None, Some(m)) => out.push(format!("< {m}")),
        _ => {}
    }
    if let Some(m) = number("multipleOf") {
        out.push(format!("multiple of {m}"));
    }
    for (key, words) in [
        ("minLength", "length ≥"),
        ("maxLength", "length ≤"),
        ("minItems", "items ≥"),
        ("maxItems", "items ≤"),
    ] {
        if let Some(n) = number(key) {
            out.push(format!("{words} {n}"));
        }
    }
    if schema.get("uniqueItems") == Some(&Value::Bool(true)) {
        out.push("unique items".into());
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        out.push(format!("pattern {pattern}"));
    }
    if let Some(format) = schema.get("format").and_then(Value::as_str) {
        out.push(format!("format {format}"));
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let shown: Vec<String> = values.iter().map(Value::to_string).collect();
        out.push(format!("one of {}", shown.join(", ")));
    }
    if let Some(value) = schema.get("const") {
        out.push(format!("exactly {value}"));
    }
    for (key, words) in [
        ("oneOf", "exactly one of"),
        ("anyOf", "any of"),
        ("allOf", "all of"),
    ] {
        if let Some(branches) = schema.get(key).and_then(Value::as_array) {
            let shown: Vec<String> = branches.iter().map(Value::to_string).collect();
            out.push(format!("{words}: {}", shown.join("; ")));
        }
    }
    if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
        out.push("no other members".into());
    }
    out
}

fn walk(
    root: &Value,
    schema: &Value,
    path: String,
    required: bool,
    depth: usize,
    out: &mut Vec<Row>,
) {
    let schema = resolve(root, schema);
    let description = schema
        .get("description")
        .or_else(|| schema.get("title"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    out.push(Row {
        path: path.clone(),
        kind: kind(schema),
        limits: limits(schema),
        required,
        description,
    });
    if depth >= MAX_DEPTH {
        return;
    }
    let join = |name: &str| {
        if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        let needed: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (name, member) in properties {
            walk(
                root,
                member,
                join(name),
                needed.contains(&name.as_str()),
                depth + 1,
                out,
            );
        }
    }
    if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
        let path = if path.is_empty() {
            "[]".to_string()
        } else {
            format!("{path}[]")
        };
        walk(root, items, path, true, depth + 1, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_members_and_items_become_rows_with_their_limits() {
        let schema = json!({
            "type": "object", "required": ["items"], "additionalProperties": false,
            "properties": {
                "items": {"type": "array", "maxItems": 50, "items": {"$ref": "#/$defs/line"}},
                "note": {"type": "string", "maxLength": 200, "description": "Free text."}
            },
            "$defs": {"line": {"type": "object", "required": ["sku"], "properties": {
                "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{3}$"}}}}
        });
        let rows = rows(&schema);
        let paths: Vec<&str> = rows.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["", "items", "items[]", "items[].sku", "note"]);
        assert!(rows[1].required && !rows[4].required);
        assert_eq!(rows[1].limits, ["items ≤ 50"]);
        assert_eq!(rows[3].limits, ["pattern ^[A-Z]{3}-[0-9]{3}$"]);
        assert_eq!(rows[4].description, "Free text.");
    }
}
