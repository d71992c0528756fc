//! The call path: every call, in every deployment mode, goes through here.
//!
//! 1. size → JSON → input schema → `requires`; a failure is `invalid_input`
//!    and the guest never runs;
//! 2. a fresh instance from the pre-instantiated image, under the
//!    service's limits (epoch deadline, fuel, memory);
//! 3. the answer is checked on the way out: output schema, declared error
//!    codes and, unless disabled, `ensures` and the error partition.

use std::cell::OnceCell;
use std::sync::Arc;

use mote_contract::{Bindings, CallTarget, Contract};
use serde_json::Value;
use wasmtime::{Store, Trap};

use crate::CalleeDouble;
use crate::bindings::ServicePre;
use crate::bindings::mote::service::types;
use crate::failure::{Failure, PlatformFailure};
use crate::host::HostState;
use crate::service::{Implementation, LoadedService};
use crate::shared::Shared;

/// Calls `service` with JSON text, the way the outside world does.
pub(crate) fn call(shared: &Arc<Shared>, service: &str, input: &str) -> Result<Value, Failure> {
    let Some(loaded) = shared.lookup(service) else {
        return Err(Failure::platform(
            PlatformFailure::UnknownService,
            format!("no service named `{service}` is loaded"),
        ));
    };
    run(shared, &loaded, input, 0, None)
}

/// Runs steps 1 and 2 only: the guest's own answer, unchecked, for a
/// verifier that judges it against the contract itself. Platform failures
/// (including the guest's breaches through imports) are still `Err`.
pub(crate) fn call_unchecked(
    shared: &Arc<Shared>,
    service: &str,
    input: &str,
    double: Option<&Arc<dyn CalleeDouble>>,
) -> Result<GuestAnswer, Failure> {
    let Some(loaded) = shared.lookup(service) else {
        return Err(Failure::platform(
            PlatformFailure::UnknownService,
            format!("no service named `{service}` is loaded"),
        ));
    };
    let Admitted { value, .. } = admit(&loaded.contract, loaded.limits.max_input_bytes, input)?;
    let Invocation {
        answer,
        callee_failures,
    } = execute(shared, &loaded, input, &value, 0, double)?;
    match answer {
        Ok(output) => Ok(GuestAnswer::Output(output)),
        Err(failure) => match callee_failures
            .into_iter()
            .find(|f| f.code() == failure.code)
        {
            Some(passed_on) => Err(passed_on),
            None => Ok(GuestAnswer::Error {
                code: failure.code,
                message: failure.message,
            }),
        },
    }
}

/// What a guest answered, before the call path checked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestAnswer {
    /// The output, as the JSON text the guest wrote.
    Output(String),
    /// An error the guest returned, declared or not.
    Error {
        /// The code it used.
        code: String,
        /// Its message.
        message: String,
    },
}

/// Calls the service a caller declared, checking the loaded version is one
/// the caller accepts; a double, when one is given and answers, stands in
/// for the callee.
pub(crate) fn call_declared(
    shared: &Arc<Shared>,
    target: &CallTarget,
    input: &str,
    depth: u32,
    double: Option<&Arc<dyn CalleeDouble>>,
) -> Result<Value, Failure> {
    if let Some(answer) = double.and_then(|d| d.answer(target, input)) {
        return answer;
    }
    let Some(loaded) = shared.lookup(target.service.as_str()) else {
        return Err(Failure::platform(
            PlatformFailure::UnknownService,
            format!("no service named `{}` is loaded", target.service),
        ));
    };
    let version = &loaded.contract.service.version;
    if !target.versions.matches(version) {
        return Err(Failure::platform(
            PlatformFailure::UnknownService,
            format!(
                "`{}` is loaded at {version}, outside the declared range {}",
                target.service, target.versions
            ),
        ));
    }
    if depth > shared.config.max_call_depth {
        return Err(Failure::platform(
            PlatformFailure::ResourceExhausted,
            format!("calls nested deeper than {}", shared.config.max_call_depth),
        ));
    }
    run(shared, &loaded, input, depth, double)
}

fn run(
    shared: &Arc<Shared>,
    service: &Arc<LoadedService>,
    input: &str,
    depth: u32,
    double: Option<&Arc<dyn CalleeDouble>>,
) -> Result<Value, Failure> {
    let contract = &service.contract;
    let Admitted { value, bindings } = admit(contract, service.limits.max_input_bytes, input)?;
    let Invocation {
        answer,
        callee_failures,
    } = execute(shared, service, input, &value, depth, double)?;
    let checks = Postconditions {
        contract,
        input: &value,
        input_bindings: bindings.map_or_else(OnceCell::new, OnceCell::from),
        full: shared.config.check_postconditions,
    };
    match answer {
        Ok(output) => checks.success(&output),
        Err(failure) => {
            // A platform failure of a callee that the guest passes on stays
            // what it is, rather than becoming the guest's breach.
            if let Some(passed_on) = callee_failures
                .into_iter()
                .find(|f| f.code() == failure.code)
            {
                return Err(passed_on);
            }
            Err(checks.declared_error(failure))
        }
    }
}

/// An input that passed step 1.
struct Admitted {
    value: Value,
    /// The input as CEL sees it, when `requires` needed it; the checks on
    /// the way out reuse it rather than convert the input again.
    bindings: Option<Bindings>,
}

/// Step 1: everything decided before the guest runs.
fn admit(contract: &Contract, max_bytes: u64, input: &str) -> Result<Admitted, Failure> {
    let invalid = |message: String| Failure::platform(PlatformFailure::InvalidInput, message);
    if input.len() as u64 > max_bytes {
        return Err(invalid(format!(
            "input is {} bytes; the limit is {max_bytes}",
            input.len()
        )));
    }
    let value: Value =
        serde_json::from_str(input).map_err(|e| invalid(format!("input is not JSON: {e}")))?;
    if !contract.input.is_valid(&value)
        && let Some(first) = contract.input.violations(&value).first()
    {
        return Err(invalid(format!(
            "input does not match the input schema: {first}"
        )));
    }
    let mut bindings = None;
    if !contract.behavior.requires.is_empty() {
        let bindings = bindings.insert(Bindings::new().with("input", &value));
        for requires in &contract.behavior.requires {
            match requires.eval_bool(bindings) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(invalid(format!(
                        "input breaks `requires` `{}`",
                        requires.source().trim()
                    )));
                }
                Err(e) => {
                    return Err(invalid(format!(
                        "`requires` `{}` cannot be evaluated on this input: {e}",
                        requires.source().trim()
                    )));
                }
            }
        }
    }
    Ok(Admitted { value, bindings })
}

/// What the guest answered, and the platform failures its calls met.
struct Invocation {
    answer: Result<String, types::Failure>,
    callee_failures: Vec<Failure>,
}

/// Step 2: the implementation runs: a component in a fresh instance, or a
/// flow's steps.
fn execute(
    shared: &Arc<Shared>,
    service: &Arc<LoadedService>,
    input: &str,
    value: &Value,
    depth: u32,
    double: Option<&Arc<dyn CalleeDouble>>,
) -> Result<Invocation, Failure> {
    match &service.implementation {
        Implementation::Component(pre) => invoke(shared, service, pre, input, depth, double),
        Implementation::Flow(plan) => {
            let Some(flow) = &service.contract.flow else {
                return Err(Failure::platform(
                    PlatformFailure::Trap,
                    "a flow was loaded without its `[flow]`",
                ));
            };
            Ok(Invocation {
                answer: crate::flow::run(shared, service, flow, plan, value, depth, double)?,
                callee_failures: Vec::new(),
            })
        }
    }
}

/// A fresh instance, the guest's `handle`, and the classification of
/// whatever stopped it.
fn invoke(
    shared: &Arc<Shared>,
    service: &Arc<LoadedService>,
    pre: &ServicePre<HostState>,
    input: &str,
    depth: u32,
    double: Option<&Arc<dyn CalleeDouble>>,
) -> Result<Invocation, Failure> {
    let limits = service.limits;
    let mut store = Store::new(
        &shared.engine,
        HostState::new(shared, service, depth, double),
    );
    store.limiter(|state| &mut state.memory);
    store
        .set_fuel(limits.fuel)
        .map_err(|e| Failure::platform(PlatformFailure::Trap, format!("cannot set fuel: {e}")))?;
    let tick = shared.config.epoch_tick.as_nanos().max(1);
    let ticks = limits.timeout.as_nanos().div_ceil(tick);
    store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).max(1));
    store.epoch_deadline_trap();

    let outcome = pre
        .instantiate(&mut store)
        .and_then(|instance| instance.call_handle(&mut store, input));
    let state = store.data_mut();
    log_output(service, state);
    if let Some(breach) = state.breach.take() {
        return Err(breach);
    }
    let answer = outcome.map_err(|error| classify(service, state, &error))?;
    Ok(Invocation {
        answer,
        callee_failures: std::mem::take(&mut state.callee_failures),
    })
}

fn classify(service: &LoadedService, state: &HostState, error: &wasmtime::Error) -> Failure {
    if state.memory.exhausted {
        return Failure::platform(
            PlatformFailure::ResourceExhausted,
            format!(
                "memory limit of {} MiB reached",
                service.limits.memory_bytes / (1024 * 1024)
            ),
        );
    }
    if error
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return Failure::platform(
            PlatformFailure::Overloaded,
            "no free instance slot; try again",
        );
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Failure::platform(
            PlatformFailure::Timeout,
            format!(
                "did not finish within {} ms",
                service.limits.timeout.as_millis()
            ),
        ),
        Some(Trap::OutOfFuel) => Failure::platform(
            PlatformFailure::ResourceExhausted,
            format!("used up its fuel ({} units)", service.limits.fuel),
        ),
        other => {
            let what = match other {
                Some(trap) => trap.to_string(),
                None => error
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            };
            let stderr = String::from_utf8_lossy(&state.stderr.contents()).into_owned();
            let tail: Vec<&str> = stderr
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
                .collect();
            let tail = tail[tail.len().saturating_sub(3)..].join(" / ");
            let message = if tail.is_empty() {
                what
            } else {
                format!("{what}; stderr: {tail}")
            };
            Failure::platform(PlatformFailure::Trap, message)
        }
    }
}

fn log_output(service: &LoadedService, state: &HostState) {
    let name = service.contract.service.name.as_str();
    for (stream, pipe) in [("stdout", &state.stdout), ("stderr", &state.stderr)] {
        let bytes = pipe.contents();
        if bytes.is_empty() {
            continue;
        }
        for line in String::from_utf8_lossy(&bytes).lines() {
            tracing::info!(service = name, stream, "{line}");
        }
    }
}

/// Step 3: the answer against the contract.
struct Postconditions<'a> {
    contract: &'a Contract,
    input: &'a Value,
    /// `input` as CEL sees it, converted at most once per call.
    input_bindings: OnceCell<Bindings>,
    full: bool,
}

impl Postconditions<'_> {
    fn input_bindings(&self) -> &Bindings {
        self.input_bindings
            .get_or_init(|| Bindings::new().with("input", self.input))
    }

    fn violation(&self, message: String) -> Failure {
        tracing::warn!(
            service = self.contract.service.name.as_str(),
            "contract violation: {message}"
        );
        Failure::platform(PlatformFailure::ContractViolation, message)
    }

    /// The first declared error whose `when` holds for the input.
    fn due_error(&self, bindings: &Bindings) -> Result<Option<&str>, Failure> {
        for error in &self.contract.errors {
            let Some(when) = &error.when else { continue };
            match when.eval_bool(bindings) {
                Ok(true) => return Ok(Some(&error.code)),
                Ok(false) => {}
                Err(e) => {
                    return Err(self.violation(format!(
                        "`when` of `{}` cannot be evaluated on this input: {e}",
                        error.code
                    )));
                }
            }
        }
        Ok(None)
    }

    fn success(&self, text: &str) -> Result<Value, Failure> {
        let output: Value = serde_json::from_str(text)
            .map_err(|e| self.violation(format!("the output is not JSON: {e}")))?;
        if !self.contract.output.is_valid(&output)
            && let Some(first) = self.contract.output.violations(&output).first()
        {
            return Err(self.violation(format!(
                "the output does not match the output schema: {first}"
            )));
        }
        if !self.full {
            return Ok(output);
        }
        if let Some(code) = self.due_error(self.input_bindings())? {
            return Err(self.violation(format!(
                "succeeded, but the contract says this input fails with `{code}`"
            )));
        }
        let bindings = self.input_bindings().clone().with("output", &output);
        for ensures in &self.contract.behavior.ensures {
            match ensures.eval_bool(&bindings) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(self.violation(format!(
                        "the output breaks `ensures` `{}`",
                        ensures.source().trim()
                    )));
                }
                Err(e) => {
                    return Err(self.violation(format!(
                        "`ensures` `{}` cannot be evaluated on this output: {e}",
                        ensures.source().trim()
                    )));
                }
            }
        }
        Ok(output)
    }

    fn declared_error(&self, failure: types::Failure) -> Failure {
        let Some(declared) = self.contract.error(&failure.code) else {
            return self.violation(format!(
                "returned error code `{}`, which the contract does not declare ({})",
                failure.code, failure.message
            ));
        };
        if self.full {
            match self.due_error(self.input_bindings()) {
                Err(violation) => return violation,
                Ok(Some(due)) if due != declared.code => {
                    return self.violation(format!(
                        "returned `{}`, but the contract says this input fails with `{due}`",
                        declared.code
                    ));
                }
                Ok(None) if declared.when.is_some() => {
                    return self.violation(format!(
                        "returned `{}`, but its `when` does not hold for this input",
                        declared.code
                    ));
                }
                Ok(_) => {}
            }
        }
        Failure::Declared {
            code: declared.code.clone(),
            message: failure.message,
            status: declared.status,
        }
    }
}
