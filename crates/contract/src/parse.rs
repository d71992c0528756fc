//! From TOML text to a [`Contract`]: structure, names, schemas and CEL,
//! each problem recorded as a diagnostic so one run reports them all.

use std::ops::Range;
use std::sync::Arc;

use serde_json::{Value, json};
use toml::de::DeTable;

use crate::consistency::{self, ExampleSpans};
use crate::cost::{CostModel, STEPS_PER_BYTE};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::document::JsonDoc;
use crate::document::{At, Node, Reader, Table};
use crate::expr::{CompileError, EXTENSION_FUNCTIONS, Expr};
use crate::model::{
    Behavior, CallTarget, Contract, Effects, ErrorCase, ErrorMapping, Example, Expected, Flow,
    FlowStep, Limits, ServiceInfo, ServiceName, Store, StoreAccess, Visibility,
};
use crate::schema;
use crate::source::SourceFile;
use crate::stores::{MemoryStores, STATE_NAMES, check_reads};

/// Failure codes the platform itself returns; a contract cannot declare them.
pub const PLATFORM_CODES: &[&str] = &[
    "invalid_input",
    "contract_violation",
    "timeout",
    "resource_exhausted",
    "trap",
    "undeclared_call",
    "unknown_service",
    "overloaded",
    "rate_limited",
    "conflict",
    "unavailable",
];

const SECTIONS: &[&str] = &[
    "service", "input", "output", "error", "behavior", "example", "effects", "limits", "flow",
    "store",
];

/// Parses and checks a whole contract file. The contract is returned only
/// if no diagnostic is an error.
pub(crate) fn parse(file: &Arc<SourceFile>) -> (Option<Contract>, Vec<Diagnostic>) {
    let mut reader = Reader::new(file);
    let (document, syntax_errors) = DeTable::parse_recoverable(file.text());
    if !syntax_errors.is_empty() {
        for error in syntax_errors {
            let span = error.span().unwrap_or(0..0);
            let d = reader
                .error(
                    DiagnosticKind::TomlSyntax,
                    format!("invalid TOML: {}", error.message().trim()),
                )
                .at(span)
                .label("here");
            reader.push(d);
        }
        return (None, reader.into_diagnostics());
    }
    let root = Table::new(document.get_ref(), 0..0);
    root.finish(&mut reader, "the contract", SECTIONS);

    let service =
        section(&root, &mut reader, "service", true).and_then(|t| service(&t, &mut reader));
    let input = schema_section(&root, &mut reader, "input");
    let output = schema_section(&root, &mut reader, "output");
    let is_flow = root.get("flow").is_some();
    let limits = section(&root, &mut reader, "limits", false)
        .map(|t| limits(&t, &mut reader, is_flow))
        .unwrap_or_default();
    let stores = section(&root, &mut reader, "store", false)
        .map(|t| stores(&t, &mut reader))
        .unwrap_or_default();
    let cost = CostModel {
        input: input.as_ref().map(|(_, json)| json),
        output: output.as_ref().map(|(_, json)| json),
        input_bytes: limits
            .max_input_bytes
            .unwrap_or(crate::cost::DEFAULT_INPUT_BUDGET_BYTES),
        stores: stores
            .iter()
            .map(|s| (s.name.as_str(), s.value.json()))
            .collect(),
    };
    let errors = root
        .get("error")
        .map(|n| errors(n, &mut reader, &cost))
        .unwrap_or_default();
    let behavior = section(&root, &mut reader, "behavior", false)
        .map(|t| behavior(&t, &mut reader, &cost))
        .unwrap_or_default();
    let effects = section(&root, &mut reader, "effects", false)
        .map(|t| effects(&t, &mut reader))
        .unwrap_or_default();
    let flow = section(&root, &mut reader, "flow", false)
        .and_then(|t| flow(&t, &mut reader, &errors, &cost));
    if flow.is_some()
        && let (false, Some(node)) = (stores.is_empty(), root.get("store"))
    {
        let d = reader
            .error(
                DiagnosticKind::InvalidValue,
                "a flow keeps no state of its own; its steps declare the stores they use",
            )
            .at(node.span());
        reader.push(d);
    }
    let examples = root
        .get("example")
        .map(|n| examples(n, &mut reader))
        .unwrap_or_default();

    let is_pure = root.get("flow").is_none() && effects.is_empty() && stores.is_empty();
    if is_pure {
        for error in &errors {
            if error.case.when.is_none() {
                let d = reader
                    .error(
                        DiagnosticKind::MissingWhen,
                        format!("error `{}` has no `when`, but this service is pure", error.case.code),
                    )
                    .at(error.table_span.clone())
                    .label("needs a `when` condition")
                    .hint("a pure service (no [effects], no [flow]) must say for every error exactly when it is returned");
                reader.push(d);
            }
        }
    }

    let (Some(service), Some((input, input_json)), Some((output, output_json))) =
        (service, input, output)
    else {
        return (None, reader.into_diagnostics());
    };
    if reader.has_errors() {
        return (None, reader.into_diagnostics());
    }

    let mut meaning = json!({
        "service": {
            "name": service.name.as_str(),
            "version": service.version.to_string(),
            "summary": service.summary,
            "visibility": service.visibility.as_str(),
        },
        "input": input_json,
        "output": output_json,
        "errors": errors.iter().map(|e| json!({
            "code": e.case.code,
            "summary": e.case.summary,
            "status": e.case.status,
            "when": e.case.when.as_ref().map(|w| w.source().trim()),
        })).collect::<Vec<_>>(),
        "behavior": {
            "requires": behavior.requires.iter().map(|e| e.source().trim()).collect::<Vec<_>>(),
            "ensures": behavior.ensures.iter().map(|e| e.source().trim()).collect::<Vec<_>>(),
        },
        "examples": examples.iter().map(|(e, _)| {
            let mut example = json!({
                "name": e.name,
                "input": e.input,
                "output": match &e.expected { Expected::Output(o) => o.clone(), Expected::Error(_) => Value::Null },
                "error": match &e.expected { Expected::Error(c) => Value::from(c.as_str()), Expected::Output(_) => Value::Null },
            });
            // State only when given, so that examples without it keep
            // their contracts' hashes.
            if !e.before.stores.is_empty() {
                example["before"] = json!(e.before.stores);
            }
            if let Some(after) = &e.after {
                example["after"] = json!(after.stores);
            }
            example
        }).collect::<Vec<_>>(),
        "effects": {
            "calls": effects.calls.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "clock": effects.clock,
            "random": effects.random,
        },
        "limits": {
            "timeout_ms": limits.timeout_ms,
            "memory_mib": limits.memory_mib,
            "fuel": limits.fuel,
            "max_input_bytes": limits.max_input_bytes,
        },
        "flow": flow.as_ref().map(|f| json!({
            "steps": f.steps.iter().map(|s| json!({
                "id": s.id, "call": s.call.to_string(), "input": s.input.source().trim(),
            })).collect::<Vec<_>>(),
            "output": f.output.source().trim(),
            "on_error": f.on_error.iter().map(|m| json!([format!("{}/{}", m.service, m.code), m.becomes])).collect::<Vec<_>>(),
        })),
    });

    // Only a contract with stores says so, so that the hash of every
    // contract without one stays what it was.
    if !stores.is_empty()
        && let Some(object) = meaning.as_object_mut()
    {
        object.insert(
            "stores".to_string(),
            stores
                .iter()
                .map(|s| {
                    (
                        s.name.clone(),
                        json!({"key": s.key.json(), "value": s.value.json(), "access": s.access.as_str()}),
                    )
                })
                .collect::<serde_json::Map<_, _>>()
                .into(),
        );
    }
    let (examples, example_spans): (Vec<Example>, Vec<ExampleSpans>) = examples.into_iter().unzip();
    let error_spans: Vec<Range<usize>> = errors.iter().map(|e| e.table_span.clone()).collect();
    let contract = Contract {
        service,
        input,
        output,
        errors: errors.into_iter().map(|e| e.case).collect(),
        behavior,
        examples,
        effects,
        limits,
        stores,
        flow,
        hash: crate::hash::hash(&meaning),
        json: meaning,
        path: file.path().to_path_buf(),
    };
    consistency::check_examples(&contract, &example_spans, &error_spans, &mut reader);
    if reader.has_errors() {
        return (None, reader.into_diagnostics());
    }
    (Some(contract), reader.into_diagnostics())
}

fn section<'t, 'i>(
    root: &Table<'t, 'i>,
    reader: &mut Reader<'_>,
    name: &str,
    required: bool,
) -> Option<Table<'t, 'i>> {
    let node = if required {
        root.require(reader, name, "the contract")?
    } else {
        root.get(name)?
    };
    reader.table(node, &format!("[{name}]"))
}

fn required_string(
    table: &Table<'_, '_>,
    reader: &mut Reader<'_>,
    key: &str,
    within: &str,
) -> Option<At<String>> {
    let node = table.require(reader, key, within)?;
    reader.string(node, &format!("`{key}`"))
}

fn service(table: &Table<'_, '_>, reader: &mut Reader<'_>) -> Option<ServiceInfo> {
    table.finish(
        reader,
        "[service]",
        &["name", "version", "summary", "visibility"],
    );
    let name = required_string(table, reader, "name", "[service]");
    let version = required_string(table, reader, "version", "[service]");
    let summary = required_string(table, reader, "summary", "[service]");
    let visibility = match table.get("visibility") {
        None => Some(Visibility::Internal),
        Some(node) => reader
            .string(node, "`visibility`")
            .and_then(|v| match v.value.as_str() {
                "public" => Some(Visibility::Public),
                "internal" => Some(Visibility::Internal),
                other => {
                    let d = reader
                        .error(
                            DiagnosticKind::InvalidValue,
                            format!("`visibility` is \"public\" or \"internal\", not \"{other}\""),
                        )
                        .at(v.span)
                        .hint("\"public\": an entry point any client may call; \"internal\" (the default): only the app's services, mote call, mote verify and the admin address reach it");
                    reader.push(d);
                    None
                }
            }),
    };

    let name = name.and_then(|n| match ServiceName::parse(&n.value) {
        Ok(name) => Some(name),
        Err(why) => {
            let d = reader
                .error(
                    DiagnosticKind::InvalidName,
                    format!("invalid service name: {why}"),
                )
                .at(n.span)
                .hint("service names are dotted lowercase, e.g. `cart.total`");
            reader.push(d);
            None
        }
    });
    let version = version.and_then(|v| match semver::Version::parse(&v.value) {
        Ok(version) => Some(version),
        Err(e) => {
            let d = reader
                .error(
                    DiagnosticKind::InvalidVersion,
                    format!("`{}` is not a semver version: {e}", v.value),
                )
                .at(v.span)
                .hint("write MAJOR.MINOR.PATCH, e.g. \"1.0.0\"");
            reader.push(d);
            None
        }
    });
    let summary = summary.and_then(|s| non_empty(reader, s, "`summary`"));
    Some(ServiceInfo {
        name: name?,
        version: version?,
        summary: summary?,
        visibility: visibility?,
    })
}

fn non_empty(reader: &mut Reader<'_>, text: At<String>, what: &str) -> Option<String> {
    if text.value.trim().is_empty() {
        let d = reader
            .error(
                DiagnosticKind::InvalidValue,
                format!("{what} cannot be empty"),
            )
            .at(text.span);
        reader.push(d);
        return None;
    }
    Some(text.value)
}

/// Reads `[input]` or `[output]`: a table holding a JSON Schema.
fn schema_section(
    root: &Table<'_, '_>,
    reader: &mut Reader<'_>,
    name: &str,
) -> Option<(schema::Schema, Value)> {
    let node = root.require(reader, name, "the contract")?;
    let section = format!("[{name}]");
    reader.table(node, &section)?;
    let doc = reader.json(node)?;
    let compiled = schema::compile(&doc, reader, &section)?;
    Some((compiled, doc.value))
}

/// A declared error with the spans later checks point at.
struct ParsedError {
    case: ErrorCase,
    table_span: Range<usize>,
}

fn errors(node: &Node<'_>, reader: &mut Reader<'_>, cost: &CostModel<'_>) -> Vec<ParsedError> {
    let Some(items) = reader.array(node, "`error`") else {
        return Vec::new();
    };
    let mut parsed: Vec<ParsedError> = Vec::new();
    let mut seen: Vec<(String, Range<usize>)> = Vec::new();
    for item in items {
        let Some(table) = reader.table(item, "each [[error]]") else {
            continue;
        };
        table.finish(reader, "[[error]]", &["code", "summary", "status", "when"]);
        let code = required_string(&table, reader, "code", "[[error]]");
        let summary = required_string(&table, reader, "summary", "[[error]]");
        let status = match table.get("status") {
            None => Some(422),
            Some(n) => reader
                .integer_in(n, "`status`", 400..=599)
                .map(|s| s as u16),
        };
        let when: Option<Option<Expr>> = match table.get("when") {
            None => Some(None),
            Some(n) => reader
                .string(n, "`when`")
                .and_then(|w| compile_expr(reader, &w, "`when`", cost.when_scope(), cost))
                .map(Some),
        };
        let code = code.and_then(|c| {
            if !is_code(&c.value) {
                let d = reader
                    .error(DiagnosticKind::InvalidValue, format!("error code `{}` is not snake_case", c.value))
                    .at(c.span.clone())
                    .hint("codes are lowercase letters, digits and `_`, starting with a letter, e.g. `zero_amount`");
                reader.push(d);
                return None;
            }
            if PLATFORM_CODES.contains(&c.value.as_str()) {
                let d = reader
                    .error(
                        DiagnosticKind::InvalidValue,
                        format!("`{}` is reserved for failures of the platform itself", c.value),
                    )
                    .at(c.span.clone())
                    .hint(format!("pick another code; reserved: {}", PLATFORM_CODES.join(", ")));
                reader.push(d);
                return None;
            }
            if let Some((_, first)) = seen.iter().find(|(s, _)| *s == c.value) {
                let line = reader.file().line_column(first.start).line;
                let d = reader
                    .error(DiagnosticKind::DuplicateErrorCode, format!("error code `{}` is declared twice", c.value))
                    .at(c.span.clone())
                    .label("second declaration")
                    .hint(format!("the first is on line {line}; each code names one failure"));
                reader.push(d);
                return None;
            }
            seen.push((c.value.clone(), c.span.clone()));
            Some(c.value)
        });
        let summary = summary.and_then(|s| non_empty(reader, s, "`summary`"));
        let (Some(code), Some(summary), Some(status), Some(when)) = (code, summary, status, when)
        else {
            continue;
        };
        parsed.push(ParsedError {
            case: ErrorCase {
                code,
                summary,
                status,
                when,
            },
            table_span: table.span(),
        });
    }
    parsed
}

fn is_code(code: &str) -> bool {
    let mut chars = code.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn behavior(table: &Table<'_, '_>, reader: &mut Reader<'_>, cost: &CostModel<'_>) -> Behavior {
    table.finish(reader, "[behavior]", &["requires", "ensures"]);
    Behavior {
        requires: expr_list(table, reader, "requires", &["input"], cost),
        ensures: expr_list(table, reader, "ensures", cost.ensures_scope(), cost),
    }
}

fn expr_list(
    table: &Table<'_, '_>,
    reader: &mut Reader<'_>,
    key: &str,
    scope: &[&str],
    cost: &CostModel<'_>,
) -> Vec<Expr> {
    let Some(node) = table.get(key) else {
        return Vec::new();
    };
    let Some(items) = reader.array(node, &format!("`{key}`")) else {
        return Vec::new();
    };
    let mut compiled = Vec::new();
    for item in items {
        if let Some(text) = reader.string(item, &format!("each entry of `{key}`"))
            && let Some(expr) = compile_expr(reader, &text, &format!("`{key}`"), scope, cost)
        {
            compiled.push(expr);
        }
    }
    compiled
}

/// Compiles one CEL expression written at `text`, turning compile errors
/// into diagnostics pointing inside the string where possible, and refuses
/// one whose worst case on the largest allowed input is too long to run
/// on a host's thread.
fn compile_expr(
    reader: &mut Reader<'_>,
    text: &At<String>,
    what: &str,
    scope: &[&str],
    cost: &CostModel<'_>,
) -> Option<Expr> {
    let compiled = Expr::compile(&text.value, scope).and_then(|expr| {
        if !scope.iter().any(|name| STATE_NAMES.contains(name)) {
            return Ok(expr);
        }
        let names: Vec<&str> = cost.stores.iter().map(|(name, _)| *name).collect();
        let refused = check_reads(&expr, &names);
        if refused.is_empty() {
            Ok(expr)
        } else {
            Err(refused)
        }
    });
    match compiled {
        Ok(expr) => {
            let worst = cost.cost(&expr);
            let limit = cost.limit(scope);
            if worst.steps > limit {
                let driver = worst
                    .driver
                    .map(|d| format!(", iterating over {d}"))
                    .unwrap_or_default();
                let d = reader
                    .error(
                        DiagnosticKind::CelCost,
                        format!(
                            "{what} may take about {:.1e} steps on the largest input the contract allows{driver}; mote allows {STEPS_PER_BYTE} steps per byte of the largest document it reads ({limit:.1e})",
                            worst.steps
                        ),
                    )
                    .at(text.span.clone())
                    .label("too costly at worst")
                    .hint("bound what it iterates: `maxItems` on lists, `maxLength` on strings, or a lower `[limits] max_input_bytes`");
                reader.push(d);
                return None;
            }
            Some(expr)
        }
        Err(errors) => {
            for error in errors {
                let span = expr_span(reader.file(), text, error.location());
                let d = match error {
                    CompileError::Syntax { message, .. } => reader
                        .error(
                            DiagnosticKind::CelSyntax,
                            format!(
                                "{what} is not valid CEL: {}",
                                message.trim_start_matches("Syntax error: ")
                            ),
                        )
                        .at(span)
                        .label("here"),
                    CompileError::UnknownVariable { name, .. } => {
                        let hint = match name.as_str() {
                            "output" => format!(
                                "`output` exists only in `ensures`; {what} sees: {}",
                                scope.join(", ")
                            ),
                            _ => format!("{what} sees: {}", scope.join(", ")),
                        };
                        reader
                            .error(
                                DiagnosticKind::CelUnknownVariable,
                                format!("`{name}` is not in scope in {what}"),
                            )
                            .at(span)
                            .label("not defined here")
                            .hint(hint)
                    }
                    CompileError::StoreRead { message, .. } => reader
                        .error(DiagnosticKind::StoreRead, format!("{what}: {message}"))
                        .at(span)
                        .label("here"),
                    CompileError::UnknownFunction { name, .. } => {
                        let hint = match crate::document::closest(&name, &EXTENSION_FUNCTIONS) {
                            Some(best) => format!("did you mean `{best}`?"),
                            None => {
                                "CEL's standard functions and mote's sum, min and max are available"
                                    .into()
                            }
                        };
                        reader
                            .error(
                                DiagnosticKind::CelUnknownFunction,
                                format!("unknown function `{name}` in {what}"),
                            )
                            .at(span)
                            .label("no such function")
                            .hint(hint)
                    }
                };
                reader.push(d);
            }
            None
        }
    }
}

/// The file span of characters `chars` of the string literal at `text`, or
/// the whole literal if escapes make the mapping inexact.
fn expr_span(file: &SourceFile, text: &At<String>, chars: Option<Range<usize>>) -> Range<usize> {
    let whole = text.span.clone();
    let Some(chars) = chars else {
        return whole;
    };
    let raw = file.slice(whole.clone());
    let (open, close) = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
        (3, 3)
    } else {
        (1, 1)
    };
    if raw.len() < open + close {
        return whole;
    }
    let mut content_start = whole.start + open;
    let mut content = &raw[open..raw.len() - close];
    if open == 3 {
        if let Some(rest) = content.strip_prefix("\r\n") {
            content_start += 2;
            content = rest;
        } else if let Some(rest) = content.strip_prefix('\n') {
            content_start += 1;
            content = rest;
        }
    }
    if content != text.value {
        return whole;
    }
    let byte_at = |char_index: usize| {
        content
            .char_indices()
            .nth(char_index)
            .map(|(i, _)| i)
            .unwrap_or(content.len())
    };
    let start = content_start + byte_at(chars.start);
    let end = content_start + byte_at(chars.end);
    start..end.max(start)
}

/// The `[store.NAME]` tables: each a key schema (a string), a value
/// schema and an access.
fn stores(table: &Table<'_, '_>, reader: &mut Reader<'_>) -> Vec<Store> {
    let mut stores = Vec::new();
    for (name, node) in table.entries() {
        let name_text = name.get_ref().to_string();
        if !(name_text.starts_with(|c: char| c.is_ascii_lowercase())
            && name_text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        {
            let d = reader
                .error(
                    DiagnosticKind::InvalidName,
                    format!("`{name_text}` cannot name a store"),
                )
                .at(name.span())
                .hint("a store's name is lowercase letters, digits and `_`, starting with a letter (it is `before.NAME` in conditions)");
            reader.push(d);
            continue;
        }
        let within = format!("[store.{name_text}]");
        let Some(store) = reader.table(node, &within) else {
            continue;
        };
        store.finish(reader, &within, &["key", "value", "access"]);
        let schema = |what: &str, reader: &mut Reader<'_>| {
            let node = store.require(reader, what, &within)?;
            let doc = reader.json(node)?;
            let compiled = schema::compile(&doc, reader, &format!("{within} {what}"))?;
            Some((compiled, node.span()))
        };
        let key = schema("key", reader);
        let key = key.filter(|(key, span)| {
            let string = key.json().get("type").and_then(Value::as_str) == Some("string");
            if !string {
                let d = reader
                    .error(
                        DiagnosticKind::InvalidValue,
                        format!("the keys of store `{name_text}` must be strings"),
                    )
                    .at(span.clone())
                    .hint("give `key` the type \"string\", e.g. key = { type = \"string\", pattern = \"^[A-Z]{3}-[0-9]{3}$\" }");
                reader.push(d);
            }
            string
        });
        let value = schema("value", reader);
        let access = match store.get("access") {
            None => Some(StoreAccess::Read),
            Some(node) => {
                reader
                    .string(node, "`access`")
                    .and_then(|text| match text.value.as_str() {
                        "read" => Some(StoreAccess::Read),
                        "read-write" => Some(StoreAccess::ReadWrite),
                        other => {
                            let d = reader
                                .error(
                                    DiagnosticKind::InvalidValue,
                                    format!("`{other}` is not a store access"),
                                )
                                .at(text.span)
                                .hint("`read` or `read-write`");
                            reader.push(d);
                            None
                        }
                    })
            }
        };
        let (Some((key, _)), Some((value, _)), Some(access)) = (key, value, access) else {
            continue;
        };
        stores.push(Store {
            name: name_text,
            key,
            value,
            access,
        });
    }
    stores
}

fn effects(table: &Table<'_, '_>, reader: &mut Reader<'_>) -> Effects {
    // `kv` and `http` are planned effects: say so rather than "unknown key".
    for (key, _) in table.entries() {
        if matches!(key.get_ref().as_ref(), "kv" | "http") {
            let d = reader
                .error(
                    DiagnosticKind::UnknownKey,
                    format!("effect `{}` is not supported yet", key.get_ref()),
                )
                .at(key.span())
                .hint("mote supports `calls`, `clock` and `random` today");
            reader.push(d);
        }
    }
    table.finish(
        reader,
        "[effects]",
        &["calls", "clock", "random", "kv", "http"],
    );
    let mut value = Effects::default();
    if let Some(node) = table.get("calls")
        && let Some(items) = reader.array(node, "`calls`")
    {
        for item in items {
            let Some(text) = reader.string(item, "each entry of `calls`") else {
                continue;
            };
            match CallTarget::parse(&text.value) {
                Ok(target) => {
                    if value.calls.iter().any(|c| c.service == target.service) {
                        let d = reader
                            .error(
                                DiagnosticKind::InvalidCall,
                                format!("`{}` is listed twice in `calls`", target.service),
                            )
                            .at(text.span);
                        reader.push(d);
                    } else {
                        value.calls.push(target);
                    }
                }
                Err(why) => {
                    let d = reader
                        .error(
                            DiagnosticKind::InvalidCall,
                            format!("invalid call target: {why}"),
                        )
                        .at(text.span)
                        .hint("write `name@range`, e.g. \"tax.vat@^1\"");
                    reader.push(d);
                }
            }
        }
    }
    value.clock = table
        .get("clock")
        .and_then(|n| reader.boolean(n, "`clock`"))
        .unwrap_or(false);
    value.random = table
        .get("random")
        .and_then(|n| reader.boolean(n, "`random`"))
        .unwrap_or(false);
    value
}

fn limits(table: &Table<'_, '_>, reader: &mut Reader<'_>, is_flow: bool) -> Limits {
    table.finish(
        reader,
        "[limits]",
        &["timeout_ms", "memory_mib", "fuel", "max_input_bytes"],
    );
    if is_flow {
        // A flow runs no code of its own; its steps run under their own
        // callees' limits. Accepting these would promise what nothing
        // enforces.
        for key in ["memory_mib", "fuel"] {
            if let Some(node) = table.get(key) {
                let d = reader
                    .error(
                        DiagnosticKind::InvalidFlow,
                        format!("`{key}` does not apply to a flow"),
                    )
                    .at(node.span())
                    .hint("a flow runs no code of its own: each step runs under its callee's `[limits]`; a flow's own limits are `timeout_ms` and `max_input_bytes`");
                reader.push(d);
            }
        }
    }
    let mut read = |key: &str, max: i64| {
        table
            .get(key)
            .and_then(|n| reader.integer_in(n, &format!("`{key}`"), 1..=max))
            .map(|v| v as u64)
    };
    Limits {
        timeout_ms: read("timeout_ms", 600_000),
        memory_mib: read("memory_mib", 4096),
        fuel: read("fuel", i64::MAX),
        max_input_bytes: read("max_input_bytes", 64 * 1024 * 1024),
    }
}

fn flow(
    table: &Table<'_, '_>,
    reader: &mut Reader<'_>,
    errors: &[ParsedError],
    cost: &CostModel<'_>,
) -> Option<Flow> {
    table.finish(reader, "[flow]", &["steps", "output", "on_error"]);
    let steps_node = table.require(reader, "steps", "[flow]");
    let output_text = required_string(table, reader, "output", "[flow]");

    let mut steps: Vec<FlowStep> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let mut called: Vec<ServiceName> = Vec::new();
    let mut ok = true;
    if let Some(items) = steps_node.and_then(|n| reader.array(n, "`steps`")) {
        if items.is_empty() {
            let d = reader
                .error(
                    DiagnosticKind::InvalidFlow,
                    "a flow needs at least one step",
                )
                .at(steps_node.map(|n| n.span()).unwrap_or(table.span()));
            reader.push(d);
            ok = false;
        }
        for item in items {
            let Some(step) = reader.table(item, "each step") else {
                ok = false;
                continue;
            };
            step.finish(reader, "a flow step", &["id", "call", "input"]);
            let id = required_string(&step, reader, "id", "a flow step");
            let call = required_string(&step, reader, "call", "a flow step");
            let input = required_string(&step, reader, "input", "a flow step");
            let id = id.and_then(|id| {
                let valid = is_code(&id.value) && id.value != "input" && id.value != "output";
                if !valid {
                    let d = reader
                        .error(
                            DiagnosticKind::InvalidFlow,
                            format!("step id `{}` must be a snake_case name other than input and output", id.value),
                        )
                        .at(id.span);
                    reader.push(d);
                    return None;
                }
                if ids.contains(&id.value) {
                    let d = reader
                        .error(DiagnosticKind::InvalidFlow, format!("step id `{}` is used twice", id.value))
                        .at(id.span);
                    reader.push(d);
                    return None;
                }
                Some(id.value)
            });
            let call = call.and_then(|c| match CallTarget::parse(&c.value) {
                Ok(target) => Some(target),
                Err(why) => {
                    let d = reader
                        .error(
                            DiagnosticKind::InvalidCall,
                            format!("invalid call target: {why}"),
                        )
                        .at(c.span)
                        .hint("write `name@range`, e.g. \"tax.vat@^1\"");
                    reader.push(d);
                    None
                }
            });
            let scope: Vec<&str> = std::iter::once("input")
                .chain(ids.iter().map(String::as_str))
                .collect();
            let input = input
                .and_then(|text| compile_expr(reader, &text, "a step's `input`", &scope, cost));
            // A step that is wrong in one part still names itself and its
            // callee, so later references to it do not cascade into errors.
            if let Some(id) = &id {
                ids.push(id.clone());
            }
            if let Some(call) = &call {
                called.push(call.service.clone());
            }
            match (id, call, input) {
                (Some(id), Some(call), Some(input)) => {
                    let depends_on = input
                        .free_variables()
                        .iter()
                        .filter(|v| *v != "input")
                        .cloned()
                        .collect();
                    steps.push(FlowStep {
                        id,
                        call,
                        input,
                        depends_on,
                    });
                }
                _ => ok = false,
            }
        }
    }
    let scope: Vec<&str> = std::iter::once("input")
        .chain(ids.iter().map(String::as_str))
        .collect();
    let output = output_text
        .and_then(|text| compile_expr(reader, &text, "the flow's `output`", &scope, cost));

    let mut on_error = Vec::new();
    if let Some(node) = table.get("on_error")
        && let Some(map) = reader.table(node, "`on_error`")
    {
        for (key, value) in map.entries() {
            let Some(becomes) = reader.string(value, "each `on_error` value") else {
                ok = false;
                continue;
            };
            let parsed = key
                .get_ref()
                .split_once('/')
                .and_then(|(s, c)| ServiceName::parse(s).ok().map(|s| (s, c.to_string())))
                .filter(|(_, c)| is_code(c));
            let Some((service, code)) = parsed else {
                let d = reader
                    .error(
                        DiagnosticKind::InvalidFlow,
                        format!("`{}` is not `service/error_code`", key.get_ref()),
                    )
                    .at(key.span())
                    .hint("name a called service's error, e.g. \"cart.total/empty_cart\"");
                reader.push(d);
                ok = false;
                continue;
            };
            if !called.contains(&service) {
                let d = reader
                    .error(
                        DiagnosticKind::InvalidFlow,
                        format!("no step of this flow calls `{service}`"),
                    )
                    .at(key.span());
                reader.push(d);
                ok = false;
                continue;
            }
            if !errors.iter().any(|e| e.case.code == becomes.value) {
                let d = reader
                    .error(
                        DiagnosticKind::InvalidFlow,
                        format!(
                            "`{}` is not one of this flow's declared errors",
                            becomes.value
                        ),
                    )
                    .at(becomes.span)
                    .hint("declare it in an [[error]] section");
                reader.push(d);
                ok = false;
                continue;
            }
            on_error.push(ErrorMapping {
                service,
                code,
                becomes: becomes.value,
            });
        }
    }
    let output = output?;
    ok.then_some(Flow {
        steps,
        output,
        on_error,
    })
}

fn examples(node: &Node<'_>, reader: &mut Reader<'_>) -> Vec<(Example, ExampleSpans)> {
    let Some(items) = reader.array(node, "`example`") else {
        return Vec::new();
    };
    let mut parsed = Vec::new();
    for item in items {
        let Some(table) = reader.table(item, "each [[example]]") else {
            continue;
        };
        table.finish(
            reader,
            "[[example]]",
            &["name", "input", "output", "error", "before", "after"],
        );
        let mut state = |key: &str| match table.get(key) {
            None => Some(None),
            Some(node) => example_state(node, reader).map(Some),
        };
        let (before, after) = (state("before"), state("after"));
        let name = table
            .get("name")
            .and_then(|n| reader.string(n, "`name`"))
            .map(|n| n.value);
        let input = table
            .require(reader, "input", "[[example]]")
            .and_then(|n| reader.json(n));
        let output = table.get("output");
        let error = table.get("error");
        let expected = match (output, error) {
            (Some(_), Some(e)) => {
                let d = reader
                    .error(
                        DiagnosticKind::InvalidValue,
                        "an example gives either `output` or `error`, not both",
                    )
                    .at(e.span());
                reader.push(d);
                None
            }
            (None, None) => {
                let d = reader
                    .error(
                        DiagnosticKind::MissingKey,
                        "[[example]] is missing `output` or `error`",
                    )
                    .at(table.span())
                    .label("says nothing about the outcome");
                reader.push(d);
                None
            }
            (Some(o), None) => reader
                .json(o)
                .map(|doc| (Expected::Output(doc.value.clone()), Some(doc), None)),
            (None, Some(e)) => reader
                .string(e, "`error`")
                .map(|code| (Expected::Error(code.value.clone()), None, Some(code.span))),
        };
        let (Some(input), Some((expected, output, error))) = (input, expected) else {
            continue;
        };
        let (Some(before), Some(after)) = (before, after) else {
            continue;
        };
        parsed.push((
            Example {
                name,
                input: input.value.clone(),
                expected,
                before: before.as_ref().map(|(s, _)| s.clone()).unwrap_or_default(),
                after: after.as_ref().map(|(s, _)| s.clone()),
            },
            ExampleSpans {
                table: table.span(),
                input,
                output,
                error,
                before: before.map(|(_, doc)| doc),
                after: after.map(|(_, doc)| doc),
            },
        ));
    }
    parsed
}

/// An example's `before` or `after`: a table of stores, each a table of
/// keys to values. `None` when it is not that shape (reported); the
/// contents are checked against the stores' schemas with the rest of the
/// example.
fn example_state(node: &Node<'_>, reader: &mut Reader<'_>) -> Option<(MemoryStores, JsonDoc)> {
    let doc = reader.json(node)?;
    let mut state = MemoryStores::default();
    let Some(stores) = doc.value.as_object() else {
        let d = reader
            .error(
                DiagnosticKind::InvalidValue,
                "an example's `before` and `after` are tables of stores, e.g. before = { stock = { \"MUG-001\" = 5 } }",
            )
            .at(node.span());
        reader.push(d);
        return None;
    };
    for (store, entries) in stores {
        let Some(entries) = entries.as_object() else {
            let d = reader
                .error(
                    DiagnosticKind::InvalidValue,
                    format!("store `{store}` in an example is a table of keys to values"),
                )
                .at(doc.value_span(&format!("/{}", consistency::escape(store))));
            reader.push(d);
            return None;
        };
        state.stores.insert(
            store.clone(),
            entries
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
    }
    Some((state, doc))
}
