//! Examples against the rest of their contract: an example that contradicts
//! its own contract is a contract error, found when the contract loads.

use std::ops::Range;
use std::sync::Arc;

use serde_json::Value;

use crate::diagnostic::DiagnosticKind;
use crate::document::{JsonDoc, Reader};
use crate::expr::{Bindings, EvalError, Expr};
use crate::model::{Contract, Example, Expected};
use crate::stores::{MemoryStores, StoreRead};

/// Where the parts of one example were written.
pub(crate) struct ExampleSpans {
    pub table: Range<usize>,
    pub input: JsonDoc,
    pub output: Option<JsonDoc>,
    pub error: Option<Range<usize>>,
    pub before: Option<JsonDoc>,
    pub after: Option<JsonDoc>,
}

/// Checks every example against schemas, `requires`, the error partition and
/// `ensures`. `error_spans[i]` is where `contract.errors[i]` was declared.
pub(crate) fn check_examples(
    contract: &Contract,
    spans: &[ExampleSpans],
    error_spans: &[Range<usize>],
    reader: &mut Reader<'_>,
) {
    for (index, (example, at)) in contract.examples.iter().zip(spans).enumerate() {
        let label = match &example.name {
            Some(name) => format!("example `{name}`"),
            None => format!("example #{}", index + 1),
        };
        check_example(contract, example, at, error_spans, &label, reader);
    }
}

fn check_example(
    contract: &Contract,
    example: &Example,
    at: &ExampleSpans,
    error_spans: &[Range<usize>],
    label: &str,
    reader: &mut Reader<'_>,
) {
    let violations = contract.input.violations(&example.input);
    if !violations.is_empty() {
        for v in violations {
            let d = reader
                .error(
                    DiagnosticKind::ExampleInput,
                    format!("{label}: input does not match [input]: {}", v.message),
                )
                .at(at.input.value_span(&v.instance_path))
                .label("breaks the input schema");
            reader.push(d);
        }
        return;
    }
    let mut state_ok = true;
    for (state, doc, what) in [
        (Some(&example.before), at.before.as_ref(), "before"),
        (example.after.as_ref(), at.after.as_ref(), "after"),
    ] {
        if let (Some(state), Some(doc)) = (state, doc) {
            state_ok &= check_state(contract, state, doc, what, label, reader);
        }
    }
    if !state_ok {
        return;
    }
    let mut bindings = Bindings::new().with("input", &example.input);
    if !contract.stores.is_empty() {
        let before: Arc<dyn StoreRead> = Arc::new(example.before.clone());
        let after: Arc<dyn StoreRead> = match &example.after {
            Some(after) => Arc::new(after.clone()),
            None => Arc::clone(&before),
        };
        bindings
            .bind_stores("before", before)
            .bind_stores("after", after);
    }
    if let Some(unmet) = contract.unmet_requires(&bindings) {
        match &unmet.cause {
            None => {
                let d = reader
                    .error(
                        DiagnosticKind::ExampleInput,
                        format!("{label}: input breaks `requires` {}", quote(unmet.requires)),
                    )
                    .at(at.input.value_span(""))
                    .label("rejected before the service would run");
                reader.push(d);
            }
            Some(e) => {
                evaluation_failed(reader, label, unmet.requires, e, at.input.value_span(""));
            }
        }
        return;
    }

    // The error the partition says is due for this input, if any.
    let due: Option<(usize, &str)> = match contract.due_error(&bindings) {
        Ok(due) => due.and_then(|error| {
            let index = contract.errors.iter().position(|e| e.code == error.code)?;
            Some((index, error.code.as_str()))
        }),
        Err(failed) => {
            if let Some(when) = &failed.error.when {
                evaluation_failed(reader, label, when, &failed.cause, at.input.value_span(""));
            }
            return;
        }
    };

    match &example.expected {
        Expected::Error(code) => {
            let code_span = at.error.clone().unwrap_or(at.table.clone());
            if let (Some(after), Some(doc)) = (&example.after, &at.after)
                && *after != example.before
            {
                let d = reader
                    .error(
                        DiagnosticKind::ExampleError,
                        format!(
                            "{label}: expects error `{code}`, but its `after` differs from `before`"
                        ),
                    )
                    .at(doc.value_span(""))
                    .label("a call that fails leaves every store as it found it");
                reader.push(d);
                return;
            }
            let Some(declared) = contract.errors.iter().position(|e| e.code == *code) else {
                let known: Vec<&str> = contract.errors.iter().map(|e| e.code.as_str()).collect();
                let mut d = reader
                    .error(
                        DiagnosticKind::ExampleError,
                        format!("{label}: error `{code}` is not declared"),
                    )
                    .at(code_span)
                    .label("no [[error]] has this code");
                d = match crate::document::closest(code, &known) {
                    Some(best) => d.hint(format!("did you mean `{best}`?")),
                    None if known.is_empty() => d.hint("declare it in an [[error]] section"),
                    None => d.hint(format!("declared codes: {}", known.join(", "))),
                };
                reader.push(d);
                return;
            };
            match due {
                Some((i, _)) if i == declared => {}
                Some((i, due_code)) => {
                    let line = reader.file().line_column(error_spans[i].start).line;
                    let d = reader
                        .error(
                            DiagnosticKind::ExampleError,
                            format!(
                                "{label}: expects `{code}`, but `{due_code}` (line {line}) comes first and its `when` holds for this input"
                            ),
                        )
                        .at(code_span)
                        .label(format!("the service must return `{due_code}` here"))
                        .hint("the first error whose `when` holds is the one returned");
                    reader.push(d);
                }
                None if contract.errors[declared].when.is_some() => {
                    let d = reader
                        .error(
                            DiagnosticKind::ExampleError,
                            format!("{label}: expects `{code}`, but its `when` does not hold for this input"),
                        )
                        .at(code_span)
                        .label("the contract says this input does not fail this way");
                    reader.push(d);
                }
                // An error without `when` (effectful services only) may be
                // returned for any input the partition leaves open.
                None => {}
            }
        }
        Expected::Output(output) => {
            if let Some((_, due_code)) = due {
                let d = reader
                    .error(
                        DiagnosticKind::ExampleNotSuccess,
                        format!("{label}: expects success, but the `when` of error `{due_code}` holds for this input"),
                    )
                    .at(at.table.clone())
                    .label(format!("the service must return `{due_code}` here"));
                reader.push(d);
                return;
            }
            let output_doc = at.output.as_ref();
            let output_span = |pointer: &str| {
                output_doc
                    .map(|doc| doc.value_span(pointer))
                    .unwrap_or(at.table.clone())
            };
            let violations = contract.output.violations(output);
            if !violations.is_empty() {
                for v in violations {
                    let d = reader
                        .error(
                            DiagnosticKind::ExampleOutput,
                            format!("{label}: output does not match [output]: {}", v.message),
                        )
                        .at(output_span(&v.instance_path))
                        .label("breaks the output schema");
                    reader.push(d);
                }
                return;
            }
            let bindings = bindings.with("output", output);
            // Without the example's `after`, what the call leaves behind
            // is not known, and conditions on it cannot be judged.
            let judged = contract.behavior.ensures.iter().filter(|e| {
                example.after.is_some() || !e.free_variables().iter().any(|v| v == "after")
            });
            for ensures in judged {
                match ensures.eval_bool(&bindings) {
                    Ok(true) => {}
                    Ok(false) => {
                        let d = reader
                            .error(
                                DiagnosticKind::ExampleEnsures,
                                format!("{label}: output breaks `ensures` {}", quote(ensures)),
                            )
                            .at(output_span(""))
                            .label("contradicts the contract")
                            .hint(format!("for input {}", compact(&example.input)));
                        reader.push(d);
                    }
                    Err(e) => evaluation_failed(reader, label, ensures, &e, output_span("")),
                }
            }
        }
    }
}

/// An example's `before` or `after` against the stores' schemas; false
/// when it breaks them (reported).
fn check_state(
    contract: &Contract,
    state: &MemoryStores,
    doc: &JsonDoc,
    what: &str,
    label: &str,
    reader: &mut Reader<'_>,
) -> bool {
    let mut ok = true;
    for (name, entries) in &state.stores {
        let at = |key: Option<&str>| {
            let mut pointer = format!("/{}", escape(name));
            if let Some(key) = key {
                pointer.push('/');
                pointer.push_str(&escape(key));
            }
            doc.value_span(&pointer)
        };
        let Some(store) = contract.stores.iter().find(|s| s.name == *name) else {
            let declared: Vec<&str> = contract.stores.iter().map(|s| s.name.as_str()).collect();
            let d = reader
                .error(
                    DiagnosticKind::ExampleInput,
                    format!("{label}: `{what}` lists store `{name}`, which the contract does not declare"),
                )
                .at(at(None))
                .hint(if declared.is_empty() {
                    "declare it in a [store.NAME] section".to_string()
                } else {
                    format!("declared stores: {}", declared.join(", "))
                });
            reader.push(d);
            ok = false;
            continue;
        };
        for (key, value) in entries {
            let key_json = Value::from(key.as_str());
            let problem = if let Some(v) = store.key.violations(&key_json).first() {
                Some(format!(
                    "key `{key}` does not match the store's `key`: {}",
                    v.message
                ))
            } else {
                store.value.violations(value).first().map(|v| {
                    format!(
                        "the value at `{key}` does not match the store's `value`: {}",
                        v.message
                    )
                })
            };
            if let Some(problem) = problem {
                let d = reader
                    .error(
                        DiagnosticKind::ExampleInput,
                        format!("{label}: `{what}.{name}`: {problem}"),
                    )
                    .at(at(Some(key)))
                    .label("breaks the store's schema");
                reader.push(d);
                ok = false;
            }
        }
    }
    ok
}

/// One JSON pointer segment.
pub(crate) fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn evaluation_failed(
    reader: &mut Reader<'_>,
    label: &str,
    expr: &Expr,
    error: &EvalError,
    span: Range<usize>,
) {
    let d = reader
        .error(
            DiagnosticKind::CelEvaluation,
            format!("{label}: evaluating {} failed: {error}", quote(expr)),
        )
        .at(span)
        .hint("guard optional fields with has(...) and keep number types consistent");
    reader.push(d);
}

fn quote(expr: &Expr) -> String {
    format!("`{}`", expr.source().trim())
}

fn compact(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 120 {
        format!("{}…", &text[..text.floor_char_boundary(117)])
    } else {
        text
    }
}
