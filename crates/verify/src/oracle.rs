//! The oracles: what the contract says the answer to one input must be.

use std::fmt;
use std::sync::Arc;

use mote_contract::{Bindings, Contract, MemoryStores, StoreRead};
use serde_json::Value;

use crate::target::Answer;

/// Which promise of the contract a failure breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Oracle {
    /// The output must match the output schema.
    OutputSchema,
    /// Every `ensures` must hold for a success.
    Ensures,
    /// The first error whose `when` holds must be returned; none holding
    /// means success.
    ErrorPartition,
    /// Only declared error codes may be returned.
    DeclaredCodes,
    /// Each example must be answered exactly.
    Examples,
    /// A pure service must answer the same input the same way.
    Determinism,
    /// The call must finish within its limits, without trapping.
    Limits,
    /// Over HTTP, the answer must travel as the contract says: JSON on
    /// success, problem details carrying the code under the declared
    /// status otherwise.
    Protocol,
    /// The same input written another way (`40.0` for `40`, escaped
    /// characters, members in another order) must be answered the same.
    Encoding,
    /// An input the contract refuses (by its schema or a `requires`) must
    /// be refused with `invalid_input`.
    Refusal,
    /// A call that fails must leave every store as it found it.
    Stores,
    /// Calls run at once must answer, and leave the stores, as some serial
    /// order of the same calls does.
    Serializable,
}

impl Oracle {
    /// A stable kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Oracle::OutputSchema => "output-schema",
            Oracle::Encoding => "encoding",
            Oracle::Ensures => "ensures",
            Oracle::ErrorPartition => "error-partition",
            Oracle::DeclaredCodes => "declared-codes",
            Oracle::Examples => "examples",
            Oracle::Determinism => "determinism",
            Oracle::Limits => "limits",
            Oracle::Protocol => "protocol",
            Oracle::Refusal => "refusal",
            Oracle::Stores => "stores",
            Oracle::Serializable => "serializable",
        }
    }
}

impl fmt::Display for Oracle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One broken promise, with what was expected and what came back.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The oracle that caught it.
    pub oracle: Oracle,
    /// What is wrong, in one sentence.
    pub message: String,
    /// What the contract demands.
    pub expected: String,
    /// What the service answered.
    pub actual: String,
}

/// The outcome classes coverage counts.
pub const SUCCESS: &str = "success";

/// The error the partition demands for `input`, if any. An expression that
/// cannot be evaluated is a contract problem and is reported as such.
pub fn due_error<'c>(
    contract: &'c Contract,
    bindings: &Bindings,
) -> Result<Option<&'c str>, Violation> {
    contract
        .due_error(bindings)
        .map(|due| due.map(|error| error.code.as_str()))
        .map_err(|failed| Violation {
            oracle: Oracle::ErrorPartition,
            message: failed.to_string(),
            expected: "a condition that evaluates to true or false".into(),
            actual: failed.cause.to_string(),
        })
}

/// Whether every `requires` holds for the input in `bindings`: inputs
/// that break one are never sent.
pub fn admitted(contract: &Contract, bindings: &Bindings) -> bool {
    contract.unmet_requires(bindings).is_none()
}

/// Judges one answer. `Ok` carries the outcome class for coverage (the
/// error code, or [`SUCCESS`]).
pub fn judge(contract: &Contract, input: &Value, answer: &Answer) -> Result<String, Violation> {
    let Answer::Stateful {
        answer,
        before,
        after,
    } = answer
    else {
        let bindings = bindings_for(contract, input, None);
        return judge_plain(contract, &bindings, answer);
    };
    let answer = answer.plain();
    let bindings = bindings_for(contract, input, Some((before, after)));
    let judged = if before != after && !matches!(answer, Answer::Output(Ok(_))) {
        Err(Violation {
            oracle: Oracle::Stores,
            message: "the call failed, but the stores changed".into(),
            expected: "the stores as the call found them".into(),
            actual: describe_plain(answer),
        })
    } else {
        judge_plain(contract, &bindings, answer)
    };
    judged.map_err(|mut violation| {
        violation.actual = format!(
            "{} (stores before: {}, after: {})",
            violation.actual,
            stores_json(before),
            stores_json(after)
        );
        violation
    })
}

/// The bindings conditions are judged with: the input and, for a contract
/// with stores, `before` and `after` (empty stores when the target could
/// not say what they held).
pub fn bindings_for(
    contract: &Contract,
    input: &Value,
    state: Option<(&MemoryStores, &MemoryStores)>,
) -> Bindings {
    let mut bindings = Bindings::new().with("input", input);
    if !contract.stores.is_empty() {
        let empty = MemoryStores::default();
        let (before, after) = state.unwrap_or((&empty, &empty));
        let before: Arc<dyn StoreRead> = Arc::new(before.clone());
        let after: Arc<dyn StoreRead> = Arc::new(after.clone());
        bindings
            .bind_stores("before", before)
            .bind_stores("after", after);
    }
    bindings
}

/// Stores as JSON, for a message.
pub fn stores_json(stores: &MemoryStores) -> Value {
    serde_json::to_value(&stores.stores).unwrap_or(Value::Null)
}

fn describe_plain(answer: &Answer) -> String {
    crate::describe(answer)
}

fn judge_plain(
    contract: &Contract,
    bindings: &Bindings,
    answer: &Answer,
) -> Result<String, Violation> {
    let due = due_error(contract, bindings)?;
    match answer {
        Answer::Stateful { answer, .. } => judge_plain(contract, bindings, answer),
        Answer::Platform { code, message } => Err(Violation {
            oracle: Oracle::Limits,
            message: format!("the platform stopped the call: {code}: {message}"),
            expected: expected_outcome(due),
            actual: format!("platform failure `{code}`"),
        }),
        Answer::Protocol { message } => Err(Violation {
            oracle: Oracle::Protocol,
            message: message.clone(),
            expected: expected_outcome(due),
            actual: message.clone(),
        }),
        Answer::Error { code, message } => {
            let Some(declared) = contract.error(code) else {
                return Err(Violation {
                    oracle: Oracle::DeclaredCodes,
                    message: format!(
                        "returned error code `{code}`, which the contract does not declare"
                    ),
                    expected: expected_outcome(due),
                    actual: format!("error `{code}`: {message}"),
                });
            };
            match due {
                Some(due) if due == declared.code => Ok(declared.code.clone()),
                Some(due) => Err(Violation {
                    oracle: Oracle::ErrorPartition,
                    message: format!(
                        "returned `{code}`, but the contract says this input fails with `{due}`"
                    ),
                    expected: format!("error `{due}`"),
                    actual: format!("error `{code}`: {message}"),
                }),
                None if declared.when.is_none() => Ok(declared.code.clone()),
                None => Err(Violation {
                    oracle: Oracle::ErrorPartition,
                    message: format!(
                        "returned `{code}`, but its `when` does not hold for this input"
                    ),
                    expected: "success".into(),
                    actual: format!("error `{code}`: {message}"),
                }),
            }
        }
        Answer::Output(Err(text)) => Err(Violation {
            oracle: Oracle::OutputSchema,
            message: "the output is not JSON".into(),
            expected: "a JSON value".into(),
            actual: text.clone(),
        }),
        Answer::Output(Ok(output)) => {
            if let Some(due) = due {
                return Err(Violation {
                    oracle: Oracle::ErrorPartition,
                    message: format!(
                        "succeeded, but the contract says this input fails with `{due}`"
                    ),
                    expected: format!("error `{due}`"),
                    actual: format!("success {output}"),
                });
            }
            // Fail closed, as the runtime does.
            if !contract.output.is_valid(output) {
                let detail = contract
                    .output
                    .violations(output)
                    .first()
                    .map_or_else(|| "it is not valid".to_string(), ToString::to_string);
                return Err(Violation {
                    oracle: Oracle::OutputSchema,
                    message: format!("the output does not match the output schema: {detail}"),
                    expected: "an output matching [output]".into(),
                    actual: output.to_string(),
                });
            }
            let bindings = bindings.clone().with("output", output);
            for ensures in &contract.behavior.ensures {
                let holds = ensures.eval_bool(&bindings);
                if holds != Ok(true) {
                    let why = match holds {
                        Err(e) => format!(" (it cannot be evaluated: {e})"),
                        _ => String::new(),
                    };
                    return Err(Violation {
                        oracle: Oracle::Ensures,
                        message: format!(
                            "the output breaks `ensures` `{}`{why}",
                            ensures.source().trim()
                        ),
                        expected: format!("`{}` to hold", ensures.source().trim()),
                        actual: output.to_string(),
                    });
                }
            }
            Ok(SUCCESS.to_string())
        }
    }
}

fn expected_outcome(due: Option<&str>) -> String {
    match due {
        Some(code) => format!("error `{code}`"),
        None => "success".into(),
    }
}
