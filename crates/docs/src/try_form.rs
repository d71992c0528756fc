//! The console's "try it" form, built from a service's input schema and
//! filled in with its first example.
//!
//! An object's properties each get a field that fits their type (a number
//! box, a text box, a choice for an enum or a boolean, JSON text for
//! anything nested); any other input is one JSON text box. Nothing is
//! validated in the browser: a value the contract refuses is worth
//! trying, and the host's answer (the problem) says why.

use maud::{Markup, html};
use mote_contract::Contract;
use serde_json::Value;

/// How one field's text becomes JSON (`console.js` reads `data-kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    Number,
    Text,
    /// A choice among JSON values (an enum or a boolean).
    Choice,
    /// JSON text.
    Json,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Integer => "integer",
            Kind::Number => "number",
            Kind::Text => "string",
            Kind::Choice => "choice",
            Kind::Json => "json",
        }
    }
}

/// The schema's single type, ignoring `null` in a list of types.
fn single_type(schema: &Value) -> Option<&str> {
    match schema.get("type") {
        Some(Value::String(kind)) => Some(kind),
        Some(Value::Array(kinds)) => {
            let named: Vec<&str> = kinds
                .iter()
                .filter_map(Value::as_str)
                .filter(|k| *k != "null")
                .collect();
            (named.len() == 1).then(|| named[0])
        }
        _ => None,
    }
}

/// The choices a field offers, as JSON texts, if it is a choice.
fn choices(schema: &Value) -> Option<Vec<String>> {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return Some(values.iter().map(Value::to_string).collect());
    }
    (single_type(schema) == Some("boolean")).then(|| vec!["true".into(), "false".into()])
}

fn kind(schema: &Value) -> Kind {
    if choices(schema).is_some() {
        return Kind::Choice;
    }
    match single_type(schema) {
        Some("integer") => Kind::Integer,
        Some("number") => Kind::Number,
        Some("string") => Kind::Text,
        _ => Kind::Json,
    }
}

/// A value as a field shows it: strings bare, the rest as JSON.
fn shown(value: Option<&Value>, kind: Kind) -> String {
    match (value, kind) {
        (None, _) => String::new(),
        (Some(Value::String(text)), Kind::Text) => text.clone(),
        (Some(value), Kind::Json) => {
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        }
        (Some(value), _) => value.to_string(),
    }
}

fn field(
    id: &str,
    label: &str,
    name: &str,
    schema: &Value,
    value: Option<&Value>,
    required: bool,
) -> Markup {
    let kind = kind(schema);
    let text = shown(value, kind);
    html! {
        div.field {
            label for=(id) { code { (label) } @if !required { span.detail { " optional" } } }
            @match kind {
                Kind::Choice => {
                    select #(id) data-field=(name) data-kind=(kind.name()) {
                        @if !required { option value="" { "(leave out)" } }
                        @for choice in choices(schema).unwrap_or_default() {
                            option value=(choice) selected[choice == text] { (choice) }
                        }
                    }
                }
                Kind::Json => {
                    textarea #(id) data-field=(name) data-kind=(kind.name()) rows="4" spellcheck="false" { (text) }
                }
                Kind::Integer | Kind::Number => {
                    input #(id) type="text" inputmode="decimal" data-field=(name) data-kind=(kind.name()) value=(text);
                }
                Kind::Text => {
                    input #(id) type="text" data-field=(name) data-kind=(kind.name()) value=(text);
                }
            }
            @if let Some(description) = schema.get("description").and_then(Value::as_str) {
                span.detail { (description) }
            }
        }
    }
}

/// The form for `contract`'s input.
pub(crate) fn form(contract: &Contract) -> Markup {
    let schema = &contract.json["input"];
    let example = contract.examples.first().map(|e| &e.input);
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .filter(|_| single_type(schema) == Some("object"));
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    html! {
        section #try {
            h2 { "Try it" }
            p { "Sends one call to this host, as " code { "POST /v1/" (contract.service.name) } " on the admin address does, and shows the answer and where the call spent its time." }
            form #try-form data-as=(if properties.is_some() { "object" } else { "value" }) {
                @match properties {
                    Some(properties) => {
                        @for (i, (name, property)) in properties.iter().enumerate() {
                            (field(&format!("try-{i}"), name, name, property, example.and_then(|e| e.get(name)), required.contains(&name.as_str())))
                        }
                    }
                    None => {
                        (field("try-value", "input", "", &Value::Null, example, true))
                    }
                }
                button type="submit" { "Call" }
            }
            div #try-result hidden {
                p { "Status " strong #try-status {} " · call id " code #try-call-id {} }
                pre.json #try-body {}
                h3 { "Trace" }
                div #try-trace {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_type_gets_the_field_that_fits_it() {
        assert_eq!(kind(&json!({"type": "integer"})), Kind::Integer);
        assert_eq!(kind(&json!({"type": ["number", "null"]})), Kind::Number);
        assert_eq!(kind(&json!({"type": "string"})), Kind::Text);
        assert_eq!(
            kind(&json!({"type": "string", "enum": ["a", "b"]})),
            Kind::Choice
        );
        assert_eq!(kind(&json!({"type": "boolean"})), Kind::Choice);
        assert_eq!(kind(&json!({"type": "array"})), Kind::Json);
        assert_eq!(kind(&json!({})), Kind::Json);
    }

    #[test]
    fn values_show_as_a_person_would_type_them() {
        assert_eq!(shown(Some(&json!("ABC-123")), Kind::Text), "ABC-123");
        assert_eq!(shown(Some(&json!("EU")), Kind::Choice), "\"EU\"");
        assert_eq!(shown(Some(&json!(40)), Kind::Integer), "40");
        assert_eq!(shown(None, Kind::Integer), "");
        assert_eq!(shown(Some(&json!([1])), Kind::Json), "[\n  1\n]");
    }
}
