//! OpenAPI 3.1 generated from the contracts: one `POST /v1/{service}` per
//! service, its input and output schemas as they are (OpenAPI 3.1 speaks
//! JSON Schema 2020-12), its examples, and every error response with the
//! codes that travel under each status.

use std::collections::BTreeMap;

use mote_contract::{Contract, Expected};
use mote_runtime::PlatformFailure;
use serde_json::{Map, Value, json};

use crate::problem::{PROBLEM_JSON, platform_status, platform_title};

/// The OpenAPI 3.1 document of these services, each served as
/// `POST /v1/{reference}`: a service's key, or a bare name standing for
/// the newest of several series.
///
/// A contract's schema that uses `$ref` is placed whole under
/// `components/schemas` (as `{reference}.input` or `{reference}.output`,
/// its `$defs` inside it) and referred to from the operation; every `$ref`
/// in it is rewritten to point into that component, so that each one
/// resolves within the document.
pub fn openapi<'a>(services: impl IntoIterator<Item = (&'a str, &'a Contract)>) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert("Problem".into(), problem_schema());
    let services: Vec<(&str, &Contract)> = services.into_iter().collect();
    for &(reference, contract) in &services {
        let newest_of_several = !reference.contains('@')
            && services
                .iter()
                .any(|(other, c)| other.contains('@') && c.service.name == contract.service.name);
        paths.insert(
            format!("/v1/{reference}"),
            json!({ "post": operation(reference, contract, newest_of_several, &mut schemas) }),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "mote app",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every operation is one nanoservice, served by mote and checked against its contract on every call. Failures are RFC 9457 problem details whose `code` is the contract's error code or a platform failure code.",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": { "schemas": schemas },
    })
}

/// The schema an operation shows for `schema`: the schema itself when it
/// refers to nothing, else a reference to a component holding it.
fn placed(schema: &Value, name: String, schemas: &mut Map<String, Value>) -> Value {
    if !has_ref(schema) {
        return schema.clone();
    }
    let base = format!("#/components/schemas/{name}");
    let mut component = schema.clone();
    rebase_refs(&mut component, &base);
    schemas.insert(name, component);
    json!({ "$ref": base })
}

fn has_ref(value: &Value) -> bool {
    match value {
        Value::Object(members) => members
            .iter()
            .any(|(key, child)| key == "$ref" || has_ref(child)),
        Value::Array(items) => items.iter().any(has_ref),
        _ => false,
    }
}

/// Rewrites each local `$ref` (`#`, `#/$defs/x`, ...), which points into
/// the contract's schema, to point into the component at `base`.
fn rebase_refs(value: &mut Value, base: &str) {
    match value {
        Value::Object(members) => {
            for (key, child) in members.iter_mut() {
                match (key.as_str(), &*child) {
                    ("$ref", Value::String(reference)) if reference.starts_with('#') => {
                        *child = Value::String(format!("{base}{}", &reference[1..]));
                    }
                    // Examples and constants are data, not schemas.
                    ("const" | "enum" | "default" | "examples", _) => {}
                    _ => rebase_refs(child, base),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rebase_refs(item, base)),
        _ => {}
    }
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "RFC 9457 problem details; `code` is what clients match on.",
        "required": ["type", "title", "status", "code"],
        "properties": {
            "type": { "type": "string" },
            "title": { "type": "string" },
            "status": { "type": "integer" },
            "detail": { "type": "string" },
            "code": { "type": "string" },
            "service": { "type": "string" },
        },
    })
}

/// The failures that may travel under one status.
#[derive(Default)]
struct Failures {
    lines: Vec<String>,
    codes: Vec<String>,
    examples: Map<String, Value>,
}

/// The operation of `POST /v1/{reference}`; `newest_of_several` when the
/// reference is a bare name standing for the newest of several series.
fn operation(
    reference: &str,
    contract: &Contract,
    newest_of_several: bool,
    schemas: &mut Map<String, Value>,
) -> Value {
    let name = contract.service.name.as_str();
    let mut request_examples = Map::new();
    let mut success_examples = Map::new();
    let mut by_status: BTreeMap<u16, Failures> = BTreeMap::new();
    for error in &contract.errors {
        let entry = by_status.entry(error.status).or_default();
        let when = error
            .when
            .as_ref()
            .map(|w| format!(" (when `{}`)", w.source().trim()))
            .unwrap_or_default();
        entry
            .lines
            .push(format!("`{}`: {}{when}", error.code, error.summary));
        entry.codes.push(error.code.clone());
    }
    for (index, example) in contract.examples.iter().enumerate() {
        let key = example
            .name
            .clone()
            .unwrap_or_else(|| format!("example-{}", index + 1));
        request_examples.insert(key.clone(), json!({ "value": example.input }));
        match &example.expected {
            Expected::Output(output) => {
                success_examples.insert(key, json!({ "value": output }));
            }
            Expected::Error(code) => {
                if let Some(error) = contract.error(code) {
                    by_status.entry(error.status).or_default().examples.insert(
                        key,
                        json!({ "value": {
                            "type": format!("urn:mote:error:{name}:{code}"),
                            "title": error.summary,
                            "status": error.status,
                            "code": code,
                            "service": name,
                        }}),
                    );
                }
            }
        }
    }
    for kind in PlatformFailure::ALL {
        if kind == PlatformFailure::UnknownService {
            continue;
        }
        let entry = by_status.entry(platform_status(kind)).or_default();
        entry.lines.push(format!(
            "`{}` (platform): {}",
            kind.code(),
            platform_title(kind)
        ));
        entry.codes.push(kind.code().to_string());
    }

    let mut responses = Map::new();
    let output = placed(
        contract.output.json(),
        format!("{reference}.output"),
        schemas,
    );
    let mut success = json!({ "schema": output });
    if !success_examples.is_empty() {
        success["examples"] = Value::Object(success_examples);
    }
    responses.insert(
        "200".into(),
        json!({ "description": "Success", "content": { "application/json": success } }),
    );
    for (status, failures) in by_status {
        let mut content = json!({
            "schema": {
                "allOf": [
                    { "$ref": "#/components/schemas/Problem" },
                    { "properties": { "code": { "enum": failures.codes } } },
                ],
            },
        });
        if !failures.examples.is_empty() {
            content["examples"] = Value::Object(failures.examples);
        }
        let mut response = json!({
            "description": failures.lines.join("; "),
            "content": { PROBLEM_JSON: content },
        });
        if status == platform_status(PlatformFailure::Overloaded) {
            response["headers"] = json!({
                "Retry-After": {
                    "description": "Seconds to wait before trying again.",
                    "schema": { "type": "integer" },
                },
            });
        }
        responses.insert(status.to_string(), response);
    }

    let input = placed(contract.input.json(), format!("{reference}.input"), schemas);
    let mut request = json!({ "schema": input });
    if !request_examples.is_empty() {
        request["examples"] = Value::Object(request_examples);
    }
    let mut description = description(contract);
    if newest_of_several {
        description = format!(
            "The newest series of `{name}`: the same as `/v1/{}`.\n\n{description}",
            mote_contract::versions::qualified(name, &contract.service.version)
        );
    }
    json!({
        "operationId": reference,
        "summary": contract.service.summary,
        "description": description,
        "tags": [name.split('.').next().unwrap_or(name)],
        "requestBody": { "required": true, "content": { "application/json": request } },
        "responses": responses,
    })
}

fn description(contract: &Contract) -> String {
    let mut lines = vec![format!(
        "Version {}. Contract {}.",
        contract.service.version, contract.hash
    )];
    for requires in &contract.behavior.requires {
        lines.push(format!("Requires `{}`.", requires.source().trim()));
    }
    for ensures in &contract.behavior.ensures {
        lines.push(format!("Ensures `{}`.", ensures.source().trim()));
    }
    if contract.flow.is_some() {
        lines.push("A flow: composed in-process from other services.".into());
    }
    lines.join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_local_ref_is_rebased_into_its_component() {
        let mut schemas = Map::new();
        let schema = json!({
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": {"$ref": "#/$defs/item"}},
                "self": {"$ref": "#"},
                "tag": {"const": {"$ref": "#/not/a/schema"}},
            },
            "$defs": {"item": {"properties": {"next": {"$ref": "#/$defs/item"}}}},
        });
        let shown = placed(&schema, "cart.total.input".into(), &mut schemas);
        assert_eq!(
            shown,
            json!({"$ref": "#/components/schemas/cart.total.input"})
        );
        let component = &schemas["cart.total.input"];
        assert_eq!(
            component["properties"]["items"]["items"]["$ref"],
            "#/components/schemas/cart.total.input/$defs/item"
        );
        assert_eq!(
            component["properties"]["self"]["$ref"],
            "#/components/schemas/cart.total.input"
        );
        assert_eq!(
            component["$defs"]["item"]["properties"]["next"]["$ref"],
            "#/components/schemas/cart.total.input/$defs/item"
        );
        assert_eq!(
            component["properties"]["tag"]["const"]["$ref"],
            "#/not/a/schema"
        );
    }

    #[test]
    fn a_schema_without_refs_stays_inline() {
        let mut schemas = Map::new();
        let schema = json!({"type": "integer"});
        assert_eq!(placed(&schema, "x.input".into(), &mut schemas), schema);
        assert!(schemas.is_empty());
    }
}
