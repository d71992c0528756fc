//! `contract!()`: the Rust types of a service's input and output, generated
//! at compile time from the JSON Schemas in its `contract.toml` (with
//! typify), so the implementation is one function over checked types.
//!
//! The host validates every input and output against the full schema, so
//! the generated types carry structure only: validation keywords (bounds,
//! lengths, patterns, formats) are left out, and the guest needs no
//! validation crates.

use std::path::PathBuf;

use proc_macro::TokenStream;
use quote::{format_ident, quote};
use serde_json::{Map, Value};

/// Generates `Input` and `Output` (and the types they contain) from the
/// `[input]` and `[output]` schemas of `contract.toml` next to the crate's
/// `Cargo.toml`, or of the path given as a string literal.
#[proc_macro]
pub fn contract(input: TokenStream) -> TokenStream {
    match generate(input) {
        Ok(tokens) => tokens.into(),
        Err(message) => quote!(::core::compile_error!(#message);).into(),
    }
}

fn generate(input: TokenStream) -> Result<proc_macro2::TokenStream, String> {
    let relative = if input.is_empty() {
        "contract.toml".to_string()
    } else {
        syn::parse::<syn::LitStr>(input)
            .map_err(|e| format!("contract!: expected a path string: {e}"))?
            .value()
    };
    let dir = std::env::var("CARGO_MANIFEST_DIR")
        .map_err(|_| "contract!: CARGO_MANIFEST_DIR is not set".to_string())?;
    let path = PathBuf::from(dir).join(&relative);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("contract!: cannot read {}: {e}", path.display()))?;
    let document: toml::Table = text
        .parse()
        .map_err(|e| format!("contract!: {} is not valid TOML: {e}", path.display()))?;
    let document = serde_json::to_value(document).map_err(|e| e.to_string())?;

    let mut settings = typify::TypeSpaceSettings::default();
    settings.with_struct_builder(false);
    let mut space = typify::TypeSpace::new(&settings);
    let mut aliases = Vec::new();
    for (section, name) in [("input", "Input"), ("output", "Output")] {
        let schema = document
            .get(section)
            .ok_or_else(|| format!("contract!: {} has no [{section}]", path.display()))?;
        let (schema, definitions) = structural(schema, section);
        let definitions = definitions
            .into_iter()
            .map(|(k, v)| {
                Ok((
                    k,
                    serde_json::from_value::<schemars::schema::Schema>(v)
                        .map_err(|e| e.to_string())?,
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        space
            .add_ref_types(definitions)
            .map_err(|e| format!("contract!: [{section}]: {e}"))?;
        let schema: schemars::schema::Schema =
            serde_json::from_value(schema).map_err(|e| e.to_string())?;
        let id = space
            .add_type_with_name(&schema, Some(name.to_string()))
            .map_err(|e| format!("contract!: [{section}]: {e}"))?;
        let ident = space.get_type(&id).map_err(|e| e.to_string())?.ident();
        let alias = format_ident!("{name}");
        if ident.to_string() != name {
            aliases.push(quote!(#[doc = "Generated from the contract."] pub type #alias = #ident;));
        }
    }
    let types = space.to_stream();
    let path_text = path.display().to_string();
    Ok(quote! {
        // Rebuild when the contract changes.
        const _: &[u8] = include_bytes!(#path_text);
        #types
        #(#aliases)*
    })
}

/// The structure of a schema without its validation keywords, in the
/// draft-07 form typify reads: `$defs` become `definitions` (prefixed with
/// the section, so input and output may reuse names) and `prefixItems`
/// becomes the array form of `items`.
fn structural(schema: &Value, section: &str) -> (Value, Vec<(String, Value)>) {
    let mut definitions = Vec::new();
    if let Some(defs) = schema.get("$defs").and_then(Value::as_object) {
        for (name, def) in defs {
            definitions.push((format!("{section}_{name}"), rewrite(def, section)));
        }
    }
    (rewrite(schema, section), definitions)
}

const STRUCTURAL: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "oneOf",
    "anyOf",
    "allOf",
    "$ref",
    "title",
    "description",
];

fn rewrite(schema: &Value, section: &str) -> Value {
    let Value::Object(members) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in members {
        match key.as_str() {
            "prefixItems" => {
                out.insert(
                    "items".into(),
                    Value::Array(
                        value
                            .as_array()
                            .map(|items| items.iter().map(|i| rewrite(i, section)).collect())
                            .unwrap_or_default(),
                    ),
                );
            }
            "$ref" => {
                let target = value
                    .as_str()
                    .unwrap_or_default()
                    .replace("#/$defs/", &format!("#/definitions/{section}_"));
                out.insert(key.clone(), Value::String(target));
            }
            "properties" => {
                let properties = value
                    .as_object()
                    .map(|p| {
                        p.iter()
                            .map(|(k, v)| (k.clone(), rewrite(v, section)))
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Object(properties));
            }
            // Beside `prefixItems`, 2020-12 `items` constrains the rest of
            // the array: draft-07 calls that `additionalItems`.
            "items" if members.contains_key("prefixItems") => {
                out.insert("additionalItems".into(), rewrite(value, section));
            }
            "items" | "additionalProperties" => {
                out.insert(key.clone(), rewrite(value, section));
            }
            "oneOf" | "anyOf" | "allOf" => {
                let variants = value
                    .as_array()
                    .map(|v| v.iter().map(|s| rewrite(s, section)).collect())
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Array(variants));
            }
            k if STRUCTURAL.contains(&k) => {
                out.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
    Value::Object(out)
}
