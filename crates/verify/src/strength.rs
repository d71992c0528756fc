//! Contract strength: how much of a service's behaviour its contract pins.
//!
//! For generated inputs the real implementation answers; then its answer
//! is mutated (numbers ±1 and doubled, strings changed and emptied,
//! booleans flipped, optional members dropped, array elements removed and
//! duplicated, a member added, success turned into each declared error
//! and an error into success or another error). A mutant the contract
//! (schema, `ensures` and error partition together) still accepts is
//! behaviour nobody pinned: a wrong implementation answering that way would
//! pass `mote verify`. Strength is the share of mutants the contract
//! rejects.

use std::collections::BTreeMap;

use mote_contract::{Bindings, Contract};
use proptest::strategy::{Strategy, ValueTree};
use serde_json::{Map, Value, json};

use crate::generate::{Hints, runner, values_with};
use crate::oracle::{self, SUCCESS};
use crate::target::{Answer, Target};

/// How a strength run is set up.
#[derive(Debug, Clone, Copy)]
pub struct StrengthOptions {
    /// Fixes the inputs.
    pub seed: u64,
    /// Inputs to mutate the answers of.
    pub inputs: u32,
}

/// A mutant the contract accepts: a hole.
#[derive(Debug, Clone, PartialEq)]
pub struct Survivor {
    /// Where the mutation was made: `output.total_cents`, `output.items[]`,
    /// or `outcome` for a changed success/error.
    pub path: String,
    /// What was done, e.g. `+1`, `emptied`, `success → error `x``.
    pub mutation: String,
    /// The input.
    pub input: Value,
    /// The implementation's answer.
    pub original: String,
    /// The mutant the contract accepted.
    pub mutant: String,
}

/// The result of a strength run.
#[derive(Debug, Clone, PartialEq)]
pub struct StrengthReport {
    /// The service.
    pub service: String,
    /// The seed.
    pub seed: u64,
    /// Inputs whose answers were mutated.
    pub inputs: u32,
    /// Mutants made.
    pub mutants: u32,
    /// Mutants the contract rejected.
    pub killed: u32,
    /// Per mutated path: (killed, made).
    pub paths: BTreeMap<String, (u32, u32)>,
    /// One surviving mutant per (path, mutation), in path order.
    pub survivors: Vec<Survivor>,
    /// Inputs on which more than one error's `when` holds (the first
    /// wins, but the overlap is usually an oversight), one per pair.
    pub overlaps: Vec<(Vec<String>, Value)>,
    /// Answers that already broke the contract (verify first); skipped.
    pub broken: u32,
}

impl StrengthReport {
    /// Output paths, and stores a success writes (`after.NAME[key]`), no
    /// mutant of which was rejected: the contract says nothing about them
    /// at all. For a pure service that means the same input may get any
    /// value there.
    pub fn free_paths(&self) -> Vec<&str> {
        self.paths
            .iter()
            .filter(|(path, (killed, made))| {
                (path.starts_with("output.") || path.starts_with("after."))
                    && *killed == 0
                    && *made > 0
            })
            .map(|(path, _)| path.as_str())
            .collect()
    }

    /// Killed over made; 1.0 when nothing could be mutated.
    pub fn score(&self) -> f64 {
        if self.mutants == 0 {
            1.0
        } else {
            f64::from(self.killed) / f64::from(self.mutants)
        }
    }
}

/// Measures how strongly `contract` pins the answers of `target`.
pub fn strength(
    contract: &Contract,
    target: &dyn Target,
    options: &StrengthOptions,
) -> StrengthReport {
    let mut report = StrengthReport {
        service: contract.service.name.to_string(),
        seed: options.seed,
        inputs: 0,
        mutants: 0,
        killed: 0,
        paths: BTreeMap::new(),
        survivors: Vec::new(),
        overlaps: Vec::new(),
        broken: 0,
    };
    let hints = Hints::from_contract(contract);
    let inputs = values_with(&contract.input, &hints);
    let outputs = values_with(&contract.output, &hints);
    let mut runner = runner(options.seed);
    let mut attempts = 0;
    while report.inputs < options.inputs && attempts < options.inputs.saturating_mul(4) {
        attempts += 1;
        let Ok(tree) = inputs.new_tree(&mut runner) else {
            continue;
        };
        let input = tree.current();
        let bindings = Bindings::new().with("input", &input);
        if !oracle::admitted(contract, &bindings) {
            continue;
        }
        let answer = target.call(&input);
        let bindings = match &answer {
            Answer::Stateful { before, after, .. } => {
                oracle::bindings_for(contract, &input, Some((before, after)))
            }
            _ => bindings,
        };
        record_overlap(contract, &input, &bindings, &mut report.overlaps);
        if oracle::judge(contract, &input, &answer).is_err() {
            report.broken += 1;
            continue;
        }
        report.inputs += 1;
        // Only an error needs a made-up success to turn into.
        let substitute = match answer.plain() {
            Answer::Error { .. } => outputs
                .new_tree(&mut runner)
                .ok()
                .map(|tree| tree.current()),
            _ => None,
        };
        for (path, mutation, mutant) in mutants(contract, &answer, substitute) {
            // Doubling zero changes nothing: not a mutant.
            if mutant == answer {
                continue;
            }
            let killed = oracle::judge(contract, &input, &mutant).is_err();
            report.mutants += 1;
            let entry = report.paths.entry(path.clone()).or_default();
            entry.1 += 1;
            if killed {
                report.killed += 1;
                entry.0 += 1;
            } else if !report
                .survivors
                .iter()
                .any(|s| s.path == path && s.mutation == mutation)
            {
                report.survivors.push(Survivor {
                    path,
                    mutation,
                    input: input.clone(),
                    original: crate::describe(&answer),
                    mutant: crate::describe(&mutant),
                });
            }
        }
    }
    report
        .survivors
        .sort_by(|a, b| a.path.cmp(&b.path).then(a.mutation.cmp(&b.mutation)));
    report
}

fn record_overlap(
    contract: &Contract,
    input: &Value,
    bindings: &Bindings,
    overlaps: &mut Vec<(Vec<String>, Value)>,
) {
    let holding: Vec<String> = contract
        .errors
        .iter()
        .filter(|e| {
            e.when
                .as_ref()
                .is_some_and(|w| w.eval_bool(bindings) == Ok(true))
        })
        .map(|e| e.code.clone())
        .collect();
    if holding.len() > 1 && !overlaps.iter().any(|(codes, _)| codes == &holding) {
        overlaps.push((holding, input.clone()));
    }
}

/// Every mutant of one answer: (path, mutation, mutated answer).
fn mutants(
    contract: &Contract,
    answer: &Answer,
    substitute: Option<Value>,
) -> Vec<(String, String, Answer)> {
    let mut out = Vec::new();
    match answer {
        Answer::Output(Ok(output)) => {
            let mut values = Vec::new();
            mutate_value(
                output,
                contract.output.json(),
                contract.output.json(),
                "output",
                &mut values,
            );
            for (path, mutation, value) in values {
                out.push((path, mutation, Answer::Output(Ok(value))));
            }
            for error in &contract.errors {
                out.push((
                    "outcome".into(),
                    format!("{SUCCESS} → error `{}`", error.code),
                    Answer::Error {
                        code: error.code.clone(),
                        message: "mutant".into(),
                    },
                ));
            }
        }
        Answer::Error { code, .. } => {
            if let Some(output) = substitute {
                out.push((
                    "outcome".into(),
                    format!("error `{code}` → {SUCCESS}"),
                    Answer::Output(Ok(output)),
                ));
            }
            for error in contract.errors.iter().filter(|e| &e.code != code) {
                out.push((
                    "outcome".into(),
                    format!("error `{code}` → error `{}`", error.code),
                    Answer::Error {
                        code: error.code.clone(),
                        message: "mutant".into(),
                    },
                ));
            }
        }
        Answer::Stateful {
            answer,
            before,
            after,
        } => {
            let wrap = |inner: Answer, after: mote_contract::MemoryStores| Answer::Stateful {
                answer: Box::new(inner),
                before: before.clone(),
                after,
            };
            for (path, mutation, inner) in mutants(contract, answer, substitute) {
                out.push((path, mutation, wrap(inner, after.clone())));
            }
            // What a success leaves behind is part of its answer: each
            // entry it changed, changed otherwise or left as it was, must
            // be noticed. Entries it did not touch are not mutated: a
            // condition reads a store by key, so no contract can say that
            // every other key stays as it was (the platform's buffered
            // writes are the call's own, and a review reads them).
            if matches!(answer.plain(), Answer::Output(Ok(_))) {
                for store in &contract.stores {
                    let empty = std::collections::BTreeMap::new();
                    let was = before.stores.get(&store.name).unwrap_or(&empty);
                    let now = after.stores.get(&store.name).unwrap_or(&empty);
                    let path = format!("after.{}[key]", store.name);
                    let touched = was
                        .keys()
                        .chain(now.keys())
                        .filter(|key| was.get(*key) != now.get(*key))
                        .collect::<std::collections::BTreeSet<_>>();
                    for key in touched {
                        let left_as = |value: Option<Value>| {
                            let mut left = after.clone();
                            let entries = left.stores.entry(store.name.clone()).or_default();
                            match value {
                                Some(value) => entries.insert(key.clone(), value),
                                None => entries.remove(key),
                            };
                            if entries.is_empty() {
                                left.stores.remove(&store.name);
                            }
                            left
                        };
                        if let Some(value) = now.get(key) {
                            let schema = store.value.json();
                            let mut values = Vec::new();
                            mutate_value(value, schema, schema, &path, &mut values);
                            for (at, mutation, changed) in values {
                                out.push((
                                    at,
                                    mutation,
                                    wrap(answer.plain().clone(), left_as(Some(changed))),
                                ));
                            }
                        }
                        out.push((
                            path.clone(),
                            "unwritten".into(),
                            wrap(answer.plain().clone(), left_as(was.get(key).cloned())),
                        ));
                    }
                }
            }
        }
        Answer::Output(Err(_)) | Answer::Platform { .. } | Answer::Protocol { .. } => {}
    }
    out
}

/// Mutations of `value` (whose schema is `schema`, inside `root` for
/// `$ref`s) and of everything inside it, as whole replacement values of
/// the top-level output built by `rebuild`.
fn mutate_value(
    value: &Value,
    schema: &Value,
    root: &Value,
    path: &str,
    out: &mut Vec<(String, String, Value)>,
) {
    // Mutations are collected for this node, then for its children with
    // the rebuilt parent around them.
    for (mutation, replaced) in leaf_mutations(value) {
        out.push((path.to_string(), mutation, replaced));
    }
    let schema = resolve(schema, root);
    match value {
        Value::Object(members) => {
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for key in members.keys() {
                if !required.contains(&key.as_str()) {
                    let mut dropped = members.clone();
                    dropped.remove(key);
                    out.push((
                        format!("{path}.{key}"),
                        "dropped".into(),
                        Value::Object(dropped),
                    ));
                }
            }
            let mut extra = members.clone();
            extra.insert("mote_extra".into(), json!(true));
            out.push((
                path.to_string(),
                "member added".into(),
                Value::Object(extra),
            ));
            for (key, child) in members {
                let child_schema = schema
                    .get("properties")
                    .and_then(|p| p.get(key))
                    .unwrap_or(&Value::Bool(true));
                let mut inner = Vec::new();
                mutate_value(
                    child,
                    child_schema,
                    root,
                    &format!("{path}.{key}"),
                    &mut inner,
                );
                for (p, m, v) in inner {
                    let mut rebuilt: Map<String, Value> = members.clone();
                    rebuilt.insert(key.clone(), v);
                    out.push((p, m, Value::Object(rebuilt)));
                }
            }
        }
        Value::Array(items) => {
            let item_schema = schema.get("items").unwrap_or(&Value::Bool(true));
            // The first three elements stand for the rest.
            for (index, item) in items.iter().enumerate().take(3) {
                let mut removed = items.clone();
                removed.remove(index);
                out.push((
                    format!("{path}[]"),
                    "element removed".into(),
                    Value::Array(removed),
                ));
                let mut duplicated = items.clone();
                duplicated.insert(index, item.clone());
                out.push((
                    format!("{path}[]"),
                    "element duplicated".into(),
                    Value::Array(duplicated),
                ));
                let mut inner = Vec::new();
                mutate_value(item, item_schema, root, &format!("{path}[]"), &mut inner);
                for (p, m, v) in inner {
                    let mut rebuilt = items.clone();
                    rebuilt[index] = v;
                    out.push((p, m, Value::Array(rebuilt)));
                }
            }
        }
        _ => {}
    }
}

/// The mutations of a scalar, each with its replacement.
fn leaf_mutations(value: &Value) -> Vec<(String, Value)> {
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                vec![
                    ("+1".into(), json!(i.saturating_add(1))),
                    ("-1".into(), json!(i.saturating_sub(1))),
                    ("doubled".into(), json!(i.saturating_mul(2))),
                ]
            } else if let Some(f) = n.as_f64() {
                vec![
                    ("+1".into(), json!(f + 1.0)),
                    ("-1".into(), json!(f - 1.0)),
                    ("doubled".into(), json!(f * 2.0)),
                ]
            } else {
                Vec::new()
            }
        }
        Value::String(s) => {
            let changed = match s.chars().next() {
                Some(first) => {
                    let other = if first == 'x' { 'y' } else { 'x' };
                    format!("{other}{}", &s[first.len_utf8()..])
                }
                None => "x".to_string(),
            };
            let mut mutations = vec![("changed".into(), Value::String(changed))];
            if !s.is_empty() {
                mutations.push(("emptied".into(), Value::String(String::new())));
            }
            mutations
        }
        Value::Bool(b) => vec![("flipped".into(), Value::Bool(!b))],
        _ => Vec::new(),
    }
}

/// Follows a local `$ref` (`#/$defs/...`), once.
fn resolve<'a>(schema: &'a Value, root: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
            .unwrap_or(schema),
        None => schema,
    }
}
