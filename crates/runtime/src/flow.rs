//! Flows: services whose implementation is a composition of calls to other
//! services, run in the process with no network hop.
//!
//! What a flow answers is decided by one rule, in this order:
//!
//! 1. **Its own errors with `when` come first.** Before any step runs, the
//!    flow's errors are tried in declaration order; the first whose `when`
//!    holds is the answer, and no step runs. (This is the error partition
//!    every service keeps; a flow keeps it by construction.)
//! 2. **Then the steps, wave by wave.** A step waits only for the steps its
//!    input names, so the steps of one wave are independent and run side by
//!    side. Every step of a wave runs to its end; if any failed, the flow
//!    answers with the failure of the one declared first among them, and no
//!    later wave runs. Which thread finished first never matters.
//! 3. **A step's failure becomes the flow's answer** as follows: a declared
//!    error that `on_error` maps becomes that error of the flow; an
//!    unmapped one, or an input the callee refuses, is the flow breaking
//!    its contract (`contract_violation`); a platform failure of the callee
//!    (`timeout`, `trap`, …) passes through as it is.
//! 4. Otherwise the `output` expression builds the answer.
//!
//! Every answer then goes through the same checks on the way out as a
//! guest's. The flow's deadline bounds every step: a step never gets more
//! time than the flow has left.

use std::sync::Arc;
use std::time::Instant;

use mote_contract::{Bindings, CallTarget, Flow};
use serde_json::Value;

use crate::bindings::mote::service::types;
use crate::call::Admitted;
use crate::context::{CallContext, Deadline};
use crate::failure::{Failure, PlatformFailure};
use crate::service::LoadedService;
use crate::shared::Shared;
use crate::steps::Task;

/// The order a flow's steps run in, computed once at load.
pub(crate) struct FlowPlan {
    /// Step indices, wave by wave; the steps of a wave are independent.
    waves: Vec<Vec<usize>>,
}

impl FlowPlan {
    /// Groups the steps into waves: a step runs one wave after the latest
    /// step it depends on. Steps may only name earlier steps (the contract
    /// checker guarantees it), so one pass suffices.
    pub(crate) fn new(flow: &Flow) -> FlowPlan {
        let mut wave_of: Vec<usize> = Vec::with_capacity(flow.steps.len());
        let mut waves: Vec<Vec<usize>> = Vec::new();
        for (index, step) in flow.steps.iter().enumerate() {
            let wave = step
                .depends_on
                .iter()
                .filter_map(|id| flow.steps.iter().position(|s| &s.id == id))
                .filter(|&earlier| earlier < index)
                .map(|earlier| wave_of[earlier] + 1)
                .max()
                .unwrap_or(0);
            wave_of.push(wave);
            if waves.len() <= wave {
                waves.resize_with(wave + 1, Vec::new);
            }
            waves[wave].push(index);
        }
        FlowPlan { waves }
    }

    /// How many waves the flow runs in.
    #[cfg(test)]
    fn depth(&self) -> usize {
        self.waves.len()
    }
}

/// Runs a flow on an admitted input. `Ok` is the flow's answer as a guest
/// would give it (its output as JSON text, or one of its own error codes),
/// for the call path to check like any other; `Err` is a platform failure.
/// `nested` is the context of the flow's steps: it carries the flow's
/// deadline.
pub(crate) fn run(
    shared: &Arc<Shared>,
    service: &LoadedService,
    plan: &FlowPlan,
    admitted: &Admitted,
    nested: &CallContext,
) -> Result<Result<String, types::Failure>, Failure> {
    let contract = &service.contract;
    let name = contract.service.name.as_str();
    let Some(flow) = &contract.flow else {
        return Err(Failure::platform(
            PlatformFailure::Trap,
            "a flow was loaded without its `[flow]`",
        ));
    };
    let input = &admitted.value;
    let input_bindings = match &admitted.bindings {
        Some(bindings) => bindings.clone(),
        None => Bindings::new().with("input", input),
    };
    // Rule 1: the flow's own errors with `when`.
    match contract.due_error(&input_bindings) {
        Ok(Some(due)) => {
            return Ok(Err(types::Failure {
                code: due.code.clone(),
                message: due.summary.clone(),
            }));
        }
        Ok(None) => {}
        Err(failed) => return Err(violation(name, failed.to_string())),
    }
    // Rules 2 and 3: the steps, wave by wave.
    let mut results: Vec<Option<Value>> = vec![None; flow.steps.len()];
    for wave in &plan.waves {
        if nested.deadline.is_some_and(|at| at <= Instant::now()) {
            return Err(crate::call::timeout(
                service,
                Deadline {
                    at: Instant::now(),
                    inherited: false,
                },
            ));
        }
        let outcomes = run_wave(shared, flow, wave, &input_bindings, &results, nested);
        let mut first_failure = None;
        for (&index, outcome) in wave.iter().zip(outcomes) {
            match outcome {
                Ok(value) => results[index] = Some(value),
                Err(failure) if first_failure.is_none() => first_failure = Some((index, failure)),
                Err(_) => {}
            }
        }
        if let Some((index, failure)) = first_failure {
            return answer_for_step_failure(name, flow, index, failure);
        }
    }
    // Rule 4: the output.
    let mut bindings = input_bindings;
    for (step, result) in flow.steps.iter().zip(&results) {
        if let Some(value) = result {
            bindings.bind(&step.id, value);
        }
    }
    let output = flow.output.eval_json(&bindings).map_err(|e| {
        violation(
            name,
            format!("the flow's `output` cannot be evaluated: {e}"),
        )
    })?;
    Ok(Ok(output.to_string()))
}

/// Why a step did not produce a value.
enum StepFailure {
    /// The callee answered: a declared error, or a platform failure.
    Callee(Failure),
    /// The flow built an input that cannot be built at all.
    Wiring(String),
}

/// Rule 3: the flow's answer when step `index` failed.
fn answer_for_step_failure(
    name: &str,
    flow: &Flow,
    index: usize,
    failure: StepFailure,
) -> Result<Result<String, types::Failure>, Failure> {
    let step = &flow.steps[index];
    let failure = match failure {
        StepFailure::Wiring(message) => return Err(violation(name, message)),
        StepFailure::Callee(failure) => failure,
    };
    match failure.platform_kind() {
        None => {}
        Some(PlatformFailure::InvalidInput) => {
            return Err(violation(
                name,
                format!(
                    "step `{}` gave {} an input it refuses: {}",
                    step.id,
                    step.call.service,
                    failure.message()
                ),
            ));
        }
        Some(_) => return Err(failure),
    }
    let mapped = flow
        .on_error
        .iter()
        .find(|m| m.service == step.call.service && m.code == failure.code());
    match mapped {
        Some(mapping) => Ok(Err(types::Failure {
            code: mapping.becomes.clone(),
            message: failure.message().to_string(),
        })),
        None => Err(violation(
            name,
            format!(
                "step `{}` ({}) failed with `{}`, which the flow's `on_error` does not map",
                step.id,
                step.call.service,
                failure.code(),
            ),
        )),
    }
}

/// Runs the steps of one wave, side by side when there are several; the
/// outcomes come back in the wave's order. Each step's input is built
/// here, on the calling thread; the calls run on the step threads.
fn run_wave(
    shared: &Arc<Shared>,
    flow: &Flow,
    wave: &[usize],
    input_bindings: &Bindings,
    results: &[Option<Value>],
    nested: &CallContext,
) -> Vec<Result<Value, StepFailure>> {
    let parent = tracing::Span::current();
    let mut outcomes: Vec<Option<Result<Value, StepFailure>>> = Vec::with_capacity(wave.len());
    let mut tasks: Vec<Task<Result<Value, Failure>>> = Vec::new();
    let mut task_of: Vec<usize> = Vec::new();
    for &index in wave {
        let step = &flow.steps[index];
        match step_input(flow, index, input_bindings, results) {
            Err(message) => outcomes.push(Some(Err(StepFailure::Wiring(message)))),
            Ok(text) => {
                outcomes.push(None);
                task_of.push(outcomes.len() - 1);
                let shared = Arc::clone(shared);
                let target: CallTarget = step.call.clone();
                let id = step.id.clone();
                let context = nested.clone();
                let span = tracing::info_span!(
                    parent: &parent,
                    "step",
                    step = step.id.as_str(),
                    service = step.call.service.as_str()
                );
                tasks.push(Box::new(move || {
                    span.in_scope(|| {
                        crate::call::call_declared(&shared, &target, Some(&id), &text, &context)
                    })
                }));
            }
        }
    }
    let answers = shared.steps.run_all(tasks);
    for (slot, answer) in task_of.into_iter().zip(answers) {
        outcomes[slot] = Some(match answer {
            Some(Ok(value)) => Ok(value),
            Some(Err(failure)) => Err(StepFailure::Callee(failure)),
            None => Err(StepFailure::Wiring(
                "a step's call failed unexpectedly".into(),
            )),
        });
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(StepFailure::Wiring("a step did not run".into()))))
        .collect()
}

/// The JSON text step `index` is called with.
fn step_input(
    flow: &Flow,
    index: usize,
    input_bindings: &Bindings,
    results: &[Option<Value>],
) -> Result<String, String> {
    let step = &flow.steps[index];
    let mut bindings = input_bindings.clone();
    for id in &step.depends_on {
        let value = flow
            .steps
            .iter()
            .position(|s| &s.id == id)
            .and_then(|earlier| results[earlier].as_ref());
        if let Some(value) = value {
            bindings.bind(id, value);
        }
    }
    step.input
        .eval_json(&bindings)
        .map(|value| value.to_string())
        .map_err(|e| format!("the input of step `{}` cannot be evaluated: {e}", step.id))
}

fn violation(service: &str, message: String) -> Failure {
    tracing::warn!(service, "contract violation: {message}");
    Failure::platform(PlatformFailure::ContractViolation, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(flow_toml: &str) -> FlowPlan {
        let source = format!(
            r#"
[service]
name = "t.flow"
version = "1.0.0"
summary = "A flow for the planner."

[input]
type = "object"

[output]
type = "object"

{flow_toml}
"#
        );
        let checked =
            mote_contract::check_source(mote_contract::SourceFile::new("contract.toml", source));
        let Some(contract) = checked.contract else {
            panic!("{:?}", checked.diagnostics)
        };
        let Some(flow) = &contract.flow else {
            panic!("not a flow")
        };
        FlowPlan::new(flow)
    }

    #[test]
    fn independent_steps_share_a_wave() {
        let plan = plan_of(
            r#"[flow]
steps = [
  { id = "a", call = "x.a@^1", input = "input" },
  { id = "b", call = "x.b@^1", input = "input" },
  { id = "c", call = "x.c@^1", input = "{'a': a, 'b': b}" },
  { id = "d", call = "x.d@^1", input = "a" },
]
output = "c"
"#,
        );
        assert_eq!(plan.waves, vec![vec![0, 1], vec![2, 3]]);
        assert_eq!(plan.depth(), 2);
    }

    #[test]
    fn a_chain_runs_one_step_per_wave() {
        let plan = plan_of(
            r#"[flow]
steps = [
  { id = "a", call = "x.a@^1", input = "input" },
  { id = "b", call = "x.b@^1", input = "a" },
  { id = "c", call = "x.c@^1", input = "b" },
]
output = "c"
"#,
        );
        assert_eq!(plan.waves, vec![vec![0], vec![1], vec![2]]);
    }
}
