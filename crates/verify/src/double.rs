//! Callee doubles: a callee's answers made up from its contract alone, so
//! that a service with calls is verified by itself, against every answer
//! its callees are allowed to give rather than the few their current
//! implementations happen to give.
//!
//! For one call the double, in order: refuses an input the callee's
//! contract refuses (`invalid_input`); returns the error the callee's
//! partition says is due; answers an example's input with the example's
//! outcome; now and then returns one of the callee's errors that have no
//! `when` (they may happen at any time, so the caller must handle them);
//! otherwise generates an output from the callee's output schema and makes
//! it satisfy the callee's `ensures`. An `ensures` of the form
//! `output.path == expression` is solved by evaluating the expression;
//! the rest are met by drawing again. When no output satisfies them, the
//! double declines and the real callee answers.
//!
//! Every answer is a function of the seed, the callee and the input, so a
//! run replays exactly.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use mote_contract::{Bindings, Contract, ContractHash, Expected, Expr};
use proptest::strategy::{BoxedStrategy, Strategy, ValueTree};
use serde_json::Value;

use crate::generate::{Hints, runner, values_with};

/// Outputs drawn before a double gives up on satisfying `ensures`.
const ATTEMPTS: usize = 64;

/// One in this many answers injects an error without `when`, when the
/// callee declares any.
const INJECT_ONE_IN: u64 = 3;

/// What a double answers.
#[derive(Debug, Clone, PartialEq)]
pub enum DoubleAnswer {
    /// A success with this output.
    Output(Value),
    /// One of the callee's declared errors.
    Error {
        /// The code.
        code: String,
        /// Why, for the log.
        message: String,
    },
    /// The callee's contract refuses this input.
    InvalidInput(String),
    /// The double cannot answer in the callee's name; let the real callee.
    Declined,
}

/// Doubles for every callee, fixed by one seed.
#[derive(Debug, Clone, Copy)]
pub struct Doubles {
    seed: u64,
}

/// An `ensures` solved for one output member.
struct Assignment {
    path: Vec<String>,
    value: Expr,
}

/// What a double prepares once per callee (per thread: proptest's
/// strategies are not shareable across threads).
struct Prepared {
    outputs: BoxedStrategy<Value>,
    assignments: Vec<Assignment>,
}

thread_local! {
    static PREPARED: RefCell<HashMap<ContractHash, std::rc::Rc<Prepared>>> = RefCell::new(HashMap::new());
}

impl Doubles {
    /// Doubles whose answers are fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Doubles { seed }
    }

    /// The answer of a double of `callee` to `input`.
    pub fn answer(&self, callee: &Contract, input: &Value) -> DoubleAnswer {
        // The same admission as the runtime's: canonical numbers, the
        // schema failing closed, then `requires`.
        let mut input = input.clone();
        mote_contract::canonicalize_numbers(&mut input);
        let input = &input;
        if !callee.input.is_valid(input) {
            let detail = callee
                .input
                .violations(input)
                .first()
                .map_or_else(|| "it is not valid".to_string(), ToString::to_string);
            return DoubleAnswer::InvalidInput(format!(
                "input does not match the input schema of {}: {detail}",
                callee.service.name
            ));
        }
        let bindings = Bindings::new().with("input", input);
        if let Some(unmet) = callee.unmet_requires(&bindings) {
            return DoubleAnswer::InvalidInput(format!("{unmet} of {}", callee.service.name));
        }
        match callee.due_error(&bindings) {
            Ok(Some(error)) => {
                return DoubleAnswer::Error {
                    code: error.code.clone(),
                    message: format!("double of {}: `when` holds", callee.service.name),
                };
            }
            Ok(None) => {}
            // The callee's own contract cannot judge this input: let the
            // real callee answer, and the call path report it.
            Err(_) => return DoubleAnswer::Declined,
        }
        if let Some(example) = callee.examples.iter().find(|e| &e.input == input) {
            return match &example.expected {
                Expected::Output(output) => DoubleAnswer::Output(output.clone()),
                Expected::Error(code) => DoubleAnswer::Error {
                    code: code.clone(),
                    message: format!("double of {}: its example", callee.service.name),
                },
            };
        }
        let seed = self.seed_for(callee, input);
        let anytime: Vec<&str> = callee
            .errors
            .iter()
            .filter(|e| e.when.is_none())
            .map(|e| e.code.as_str())
            .collect();
        if !anytime.is_empty() && seed.is_multiple_of(INJECT_ONE_IN) {
            let pick = (seed / INJECT_ONE_IN) as usize % anytime.len();
            return DoubleAnswer::Error {
                code: anytime[pick].to_string(),
                message: format!("double of {}: injected", callee.service.name),
            };
        }
        self.output(callee, input, seed)
    }

    fn seed_for(&self, callee: &Contract, input: &Value) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.seed.hash(&mut hasher);
        callee.hash.as_bytes().hash(&mut hasher);
        mote_contract::canonical_json(input).hash(&mut hasher);
        hasher.finish()
    }

    fn output(&self, callee: &Contract, input: &Value, seed: u64) -> DoubleAnswer {
        let prepared = PREPARED.with(|cache| {
            std::rc::Rc::clone(
                cache
                    .borrow_mut()
                    .entry(callee.hash)
                    .or_insert_with(|| std::rc::Rc::new(prepare(callee))),
            )
        });
        let mut runner = runner(seed);
        for _ in 0..ATTEMPTS {
            let Ok(tree) = prepared.outputs.new_tree(&mut runner) else {
                continue;
            };
            let mut output = tree.current();
            // Two passes, so an assignment may use a member an earlier one
            // set (`vat` from `rate`).
            for _ in 0..2 {
                for assignment in &prepared.assignments {
                    let bindings = Bindings::new().with("input", input).with("output", &output);
                    if let Ok(value) = assignment.value.eval_json(&bindings) {
                        set(&mut output, &assignment.path, value);
                    }
                }
            }
            if satisfies(callee, input, &output) {
                return DoubleAnswer::Output(output);
            }
        }
        DoubleAnswer::Declined
    }
}

fn satisfies(callee: &Contract, input: &Value, output: &Value) -> bool {
    if !callee.output.is_valid(output) {
        return false;
    }
    let bindings = Bindings::new().with("input", input).with("output", output);
    callee
        .behavior
        .ensures
        .iter()
        .all(|e| e.eval_bool(&bindings) == Ok(true))
}

fn prepare(callee: &Contract) -> Prepared {
    Prepared {
        outputs: values_with(&callee.output, &Hints::from_contract(callee)),
        assignments: callee
            .behavior
            .ensures
            .iter()
            .filter_map(|e| assignment(e.source()))
            .collect(),
    }
}

/// `output.a.b == expression` (either way round), when nothing else sits
/// at the top level of the condition: the member and the expression.
fn assignment(source: &str) -> Option<Assignment> {
    let (left, right) = split_top_level_equality(source)?;
    let (path, expression) = match (output_path(left), output_path(right)) {
        (Some(path), _) => (path, right),
        (None, Some(path)) => (path, left),
        (None, None) => return None,
    };
    let value = Expr::compile(expression, &["input", "output"]).ok()?;
    // `output.total == output.total + 0` solves nothing.
    let member = format!("output.{}", path.join("."));
    if expression.contains(&member) {
        return None;
    }
    Some(Assignment { path, value })
}

/// Splits `a == b` at its one top-level `==`; `None` when there is none,
/// more than one, or another top-level operator that binds more loosely.
fn split_top_level_equality(source: &str) -> Option<(&str, &str)> {
    let bytes = source.as_bytes();
    let mut depth = 0i32;
    let mut quote: Option<u8> = None;
    let mut found = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) => {
                if c == b'\\' {
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                b'\'' | b'"' => quote = Some(c),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth -= 1,
                b'?' | b'|' | b'&' if depth == 0 => return None,
                b'=' if depth == 0 && bytes.get(i + 1) == Some(&b'=') => {
                    let before = i.checked_sub(1).map(|j| bytes[j]);
                    if matches!(before, Some(b'!' | b'<' | b'>' | b'=')) || found.is_some() {
                        return None;
                    }
                    found = Some(i);
                    i += 1;
                }
                _ => {}
            },
        }
        i += 1;
    }
    let at = found?;
    Some((source[..at].trim(), source[at + 2..].trim()))
}

/// `output.a.b` as `["a", "b"]`.
fn output_path(text: &str) -> Option<Vec<String>> {
    let rest = text.strip_prefix("output.")?;
    let path: Vec<String> = rest.split('.').map(str::to_string).collect();
    let identifier = |s: &String| {
        !s.is_empty()
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !s.starts_with(|c: char| c.is_ascii_digit())
    };
    path.iter().all(identifier).then_some(path)
}

fn set(target: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = target;
    for key in parents {
        if !node.get(key).is_some_and(Value::is_object) {
            if let Value::Object(members) = node {
                members.insert(key.clone(), Value::Object(serde_json::Map::new()));
            } else {
                return;
            }
        }
        let Some(next) = node.get_mut(key) else {
            return;
        };
        node = next;
    }
    if let Value::Object(members) = node {
        members.insert(last.clone(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lone_top_level_equality_with_an_output_member_is_solved() {
        let solved = |s: &str| assignment(s).map(|a| a.path.join("."));
        assert_eq!(
            solved("output.vat_cents == (input.net_cents * output.rate_pct + 50) / 100"),
            Some("vat_cents".into())
        );
        assert_eq!(
            solved("input.a + input.b == output.total.cents"),
            Some("total.cents".into())
        );
        assert_eq!(
            solved("output.rate_pct == (input.country == 'DE' ? 19 : 21)"),
            Some("rate_pct".into())
        );
        assert_eq!(solved("output.a == 1 && output.b == 2"), None);
        assert_eq!(solved("output.a <= 1"), None);
        assert_eq!(solved("output.a == input.x ? 1 : 2"), None);
        assert_eq!(solved("size(output.items) == 2"), None);
        assert_eq!(solved("output.n == output.n + 0"), None);
        assert_eq!(solved("output.s == 'a == b'"), Some("s".into()));
    }

    #[test]
    fn set_creates_the_objects_on_the_way() {
        let mut value = serde_json::json!({"a": 1});
        set(&mut value, &["b".into(), "c".into()], serde_json::json!(2));
        assert_eq!(value, serde_json::json!({"a": 1, "b": {"c": 2}}));
    }
}
