//! Flows: services whose implementation is a composition of calls to other
//! services, run in the process with no network hop.
//!
//! A flow's steps form waves: each step waits only for the steps its input
//! expression names, so the steps of one wave run concurrently. A step's
//! declared error becomes one of the flow's own errors through `on_error`;
//! anything else that goes wrong in the wiring is the flow breaking its
//! contract, never the caller's fault.

use std::sync::Arc;
use std::time::Instant;

use mote_contract::{Bindings, Flow, FlowStep};
use serde_json::Value;

use crate::CalleeDouble;
use crate::bindings::mote::service::types;
use crate::failure::{Failure, PlatformFailure};
use crate::service::LoadedService;
use crate::shared::Shared;

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
pub(crate) fn run(
    shared: &Arc<Shared>,
    service: &LoadedService,
    flow: &Flow,
    plan: &FlowPlan,
    input: &Value,
    depth: u32,
    double: Option<&Arc<dyn CalleeDouble>>,
) -> Result<Result<String, types::Failure>, Failure> {
    let name = service.contract.service.name.as_str();
    let started = Instant::now();
    let mut results: Vec<Option<Value>> = vec![None; flow.steps.len()];
    for wave in &plan.waves {
        if started.elapsed() > service.limits.timeout {
            return Err(Failure::platform(
                PlatformFailure::Timeout,
                format!(
                    "did not finish within {} ms",
                    service.limits.timeout.as_millis()
                ),
            ));
        }
        let outcomes = run_wave(shared, flow, wave, input, &results, depth, double);
        for (&index, outcome) in wave.iter().zip(outcomes) {
            match outcome {
                Ok(value) => results[index] = Some(value),
                Err(StepFailure::Platform(failure)) => return Err(failure),
                Err(StepFailure::Declared(step_failure)) => {
                    let step = &flow.steps[index];
                    let mapped = flow
                        .on_error
                        .iter()
                        .find(|m| m.service == step.call.service && m.code == step_failure.code());
                    return match mapped {
                        Some(mapping) => Ok(Err(types::Failure {
                            code: mapping.becomes.clone(),
                            message: step_failure.message().to_string(),
                        })),
                        None => Err(violation(
                            name,
                            format!(
                                "step `{}` ({}) failed with `{}`, which the flow's `on_error` does not map: {}",
                                step.id,
                                step.call.service,
                                step_failure.code(),
                                step_failure.message()
                            ),
                        )),
                    };
                }
                Err(StepFailure::Wiring(message)) => return Err(violation(name, message)),
            }
        }
    }
    let mut bindings = Bindings::new().with("input", input);
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
    /// The callee returned one of its declared errors.
    Declared(Failure),
    /// The callee failed on the platform (timeout, trap, …): passed on.
    Platform(Failure),
    /// The flow itself built an input its callee refuses, or one that
    /// cannot be built at all.
    Wiring(String),
}

/// Runs the steps of one wave, concurrently when there are several; the
/// outcomes come back in the wave's order.
fn run_wave(
    shared: &Arc<Shared>,
    flow: &Flow,
    wave: &[usize],
    input: &Value,
    results: &[Option<Value>],
    depth: u32,
    double: Option<&Arc<dyn CalleeDouble>>,
) -> Vec<Result<Value, StepFailure>> {
    let parent = tracing::Span::current();
    let one = |index: usize| {
        let step = &flow.steps[index];
        let span = tracing::info_span!(
            parent: &parent,
            "step",
            step = step.id.as_str(),
            service = step.call.service.as_str()
        );
        span.in_scope(|| run_step(shared, flow, step, input, results, depth, double))
    };
    match wave {
        [] => Vec::new(),
        [only] => vec![one(*only)],
        [first, rest @ ..] => std::thread::scope(|scope| {
            let handles: Vec<_> = rest
                .iter()
                .map(|&index| scope.spawn(move || one(index)))
                .collect();
            let mut outcomes = vec![one(*first)];
            for handle in handles {
                outcomes.push(handle.join().unwrap_or_else(|_| {
                    Err(StepFailure::Wiring("a step's thread panicked".to_string()))
                }));
            }
            outcomes
        }),
    }
}

fn run_step(
    shared: &Arc<Shared>,
    flow: &Flow,
    step: &FlowStep,
    input: &Value,
    results: &[Option<Value>],
    depth: u32,
    double: Option<&Arc<dyn CalleeDouble>>,
) -> Result<Value, StepFailure> {
    let mut bindings = Bindings::new().with("input", input);
    for id in &step.depends_on {
        let value = flow
            .steps
            .iter()
            .position(|s| &s.id == id)
            .and_then(|index| results[index].as_ref());
        if let Some(value) = value {
            bindings.bind(id, value);
        }
    }
    let step_input = step.input.eval_json(&bindings).map_err(|e| {
        StepFailure::Wiring(format!(
            "the input of step `{}` cannot be evaluated: {e}",
            step.id
        ))
    })?;
    match crate::call::call_declared(
        shared,
        &step.call,
        &step_input.to_string(),
        depth + 1,
        double,
    ) {
        Ok(output) => Ok(output),
        Err(failure) => match failure.platform_kind() {
            None => Err(StepFailure::Declared(failure)),
            Some(PlatformFailure::InvalidInput) => Err(StepFailure::Wiring(format!(
                "step `{}` gave {} an input it refuses: {}",
                step.id,
                step.call.service,
                failure.message()
            ))),
            Some(_) => Err(StepFailure::Platform(failure)),
        },
    }
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
