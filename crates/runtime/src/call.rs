//! The call path: every call, in every deployment mode, goes through here.
//!
//! 1. size → JSON → canonical numbers → input schema → `requires`; a
//!    failure is `invalid_input` and the guest never runs;
//! 2. the implementation runs under the service's limits (a deadline that
//!    is never later than the caller's, fuel, memory): a fresh instance of
//!    the component, handed the canonical input text, or a flow's steps;
//! 3. the answer is checked on the way out: its size, output schema,
//!    declared error codes and, unless disabled, `ensures` and the error
//!    partition.
//!
//! A service that declares stores runs steps 2 and 3 inside a transaction:
//! its writes are committed only after a success has passed step 3, a
//! failure writes nothing, and a call whose reads changed under it before
//! it could commit runs again on a fresh instance (`conflict` past
//! `max_conflict_reruns`). Every answer, failures included, rests on a
//! snapshot that was still current when the call ended.

use std::cell::OnceCell;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use mote_contract::versions;
use mote_contract::{Bindings, CallTarget, Contract};
use mote_state::{After, Backend, Before, StateError, Transaction};
use serde_json::Value;
use wasmtime::{Store, Trap};

use crate::RemoteCall;
use crate::bindings::mote::service::types;
use crate::context::{CallContext, Deadline};
use crate::failure::{Failure, PlatformFailure};
use crate::host::HostState;
use crate::service::{Implementation, LoadedService, ServiceCode};
use crate::shared::{OPTIMISTIC_RUNS, Shared};

/// Calls `service` with JSON text, the way the outside world does.
pub(crate) fn call(
    shared: &Arc<Shared>,
    service: &str,
    input: &str,
    context: &CallContext,
) -> Result<Value, Failure> {
    let loaded = lookup(shared, service)?;
    run(shared, &loaded, input, context)
}

fn lookup(shared: &Shared, service: &str) -> Result<Arc<LoadedService>, Failure> {
    shared.lookup(service).ok_or_else(|| {
        Failure::platform(
            PlatformFailure::UnknownService,
            format!("no service named `{service}` is loaded"),
        )
    })
}

/// Runs steps 1 and 2 only: the guest's own answer, unchecked, for a
/// verifier that judges it against the contract itself. Platform failures
/// (including the guest's breaches through imports) are still `Err`.
pub(crate) fn call_unchecked(
    shared: &Arc<Shared>,
    service: &str,
    input: &str,
    context: &CallContext,
) -> Result<GuestAnswer, Failure> {
    let loaded = lookup(shared, service)?;
    let admitted = admit(&loaded.contract, loaded.limits.max_input_bytes, input)?;
    let Invocation {
        answer,
        callee_failures,
    } = match Stateful::of(shared, &loaded, context) {
        None => execute(shared, &loaded, &admitted, context, None)?,
        Some(stateful) => stateful.rerun(|transaction, context| {
            let invocation = execute(shared, &loaded, &admitted, context, Some(transaction));
            // The verifier judges the answer; the platform's own rule
            // still holds: only a success writes.
            let succeeded = matches!(&invocation, Ok(Invocation { answer: Ok(_), .. }));
            (invocation, succeeded)
        })?,
    };
    match answer {
        Ok(output) => Ok(GuestAnswer::Output(output)),
        Err(failure) => match passed_on(callee_failures, &failure.code) {
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
/// the caller accepts; a double, when the context has one and it answers,
/// stands in for the callee. `context` is the caller's nested context.
pub(crate) fn call_declared(
    shared: &Arc<Shared>,
    target: &CallTarget,
    step: Option<&str>,
    input: &str,
    context: &CallContext,
) -> Result<Value, Failure> {
    let Some(recorder) = &context.trace else {
        return call_declared_untraced(shared, target, input, context);
    };
    let started = Instant::now();
    let answer = call_declared_untraced(shared, target, input, context);
    let outcome = answer.as_ref().map_or_else(|f| f.code(), |_| "ok");
    // The series the call reached, when several are loaded.
    let callee = match shared.lookup_matching(target) {
        Ok(loaded) => shared.key_of(&loaded.contract),
        Err(_) => target.service.to_string(),
    };
    recorder.record(&callee, step, context.depth, started, outcome);
    answer
}

fn call_declared_untraced(
    shared: &Arc<Shared>,
    target: &CallTarget,
    input: &str,
    context: &CallContext,
) -> Result<Value, Failure> {
    if let Some(answer) = context
        .double
        .as_ref()
        .and_then(|d| d.answer(target, input))
    {
        return answer;
    }
    let loaded = shared.lookup_matching(target).map_err(|loaded| {
        let message = if loaded.is_empty() {
            format!("no service named `{}` is loaded", target.service)
        } else {
            format!(
                "`{}` is loaded at {}, outside the declared range {}",
                target.service,
                loaded.join(" and "),
                target.versions
            )
        };
        Failure::platform(PlatformFailure::UnknownService, message)
    })?;
    if context.depth > shared.config.max_call_depth {
        return Err(Failure::platform(
            PlatformFailure::ResourceExhausted,
            format!("calls nested deeper than {}", shared.config.max_call_depth),
        ));
    }
    run(shared, &loaded, input, context)
}

/// A platform failure of a callee whose code the guest answered with: it
/// stays what it is rather than becoming the guest's breach. A callee
/// refusing the input the guest built is not passed on as the caller's
/// `invalid_input`: that input is the guest's doing, not the client's.
fn passed_on(callee_failures: Vec<Failure>, code: &str) -> Option<Failure> {
    callee_failures
        .into_iter()
        .find(|f| f.code() == code && f.platform_kind() != Some(PlatformFailure::InvalidInput))
}

fn run(
    shared: &Arc<Shared>,
    service: &Arc<LoadedService>,
    input: &str,
    context: &CallContext,
) -> Result<Value, Failure> {
    let contract = &service.contract;
    let mut admitted = admit(contract, service.limits.max_input_bytes, input)?;
    let Some(stateful) = Stateful::of(shared, service, context) else {
        let bindings = admitted.bindings.take();
        return answer_checked(shared, service, &admitted, context, None, bindings);
    };
    stateful.rerun(|transaction, context| {
        let mut bindings = admitted
            .bindings
            .clone()
            .unwrap_or_else(|| Bindings::new().with("input", &admitted.value));
        bindings
            .bind_stores("before", Arc::new(Before(Arc::clone(transaction))))
            .bind_stores("after", Arc::new(After(Arc::clone(transaction))));
        let answer = answer_checked(
            shared,
            service,
            &admitted,
            context,
            Some(transaction),
            Some(bindings),
        );
        let succeeded = answer.is_ok();
        (answer, succeeded)
    })
}

/// Steps 2 and 3 once: the implementation's answer, checked.
fn answer_checked(
    shared: &Arc<Shared>,
    service: &Arc<LoadedService>,
    admitted: &Admitted,
    context: &CallContext,
    transaction: Option<&mote_state::Shared>,
    bindings: Option<Bindings>,
) -> Result<Value, Failure> {
    let contract = &service.contract;
    let Invocation {
        answer,
        callee_failures,
    } = execute(shared, service, admitted, context, transaction)?;
    let checks = Postconditions {
        contract,
        input: &admitted.value,
        input_bindings: bindings.map_or_else(OnceCell::new, OnceCell::from),
        full: shared.config.check_postconditions,
    };
    match answer {
        Ok(output) => checks.success(&output),
        Err(failure) => {
            if let Some(passed_on) = passed_on(callee_failures, &failure.code) {
                return Err(passed_on);
            }
            Err(checks.declared_error(failure))
        }
    }
}

/// A call to a service that declares stores: where its stores are, and
/// the one deadline its runs share.
struct Stateful<'a> {
    shared: &'a Shared,
    backend: Arc<dyn Backend>,
    /// Whether the runs count in the runtime's store figures: not when the
    /// call brought stores of its own (verification).
    counted: bool,
    context: CallContext,
    service: &'a LoadedService,
    reruns: u32,
}

impl<'a> Stateful<'a> {
    /// `None` for a service without stores (or served by another host,
    /// which keeps them).
    fn of(shared: &'a Shared, service: &'a LoadedService, context: &CallContext) -> Option<Self> {
        if service.contract.stores.is_empty()
            || matches!(service.implementation, Implementation::Remote(_))
        {
            return None;
        }
        let counted = context.state.is_none();
        let backend = context.state.clone().unwrap_or_else(|| shared.state());
        // Every run of the call shares one deadline: its own limit, or its
        // caller's if that comes first.
        let mut bounded = context.clone();
        let deadline = context.deadline_for(service.limits.timeout);
        bounded.deadline = Some(deadline.at);
        bounded.deadline_is_own = !deadline.inherited;
        Some(Stateful {
            shared,
            backend,
            counted,
            context: bounded,
            service,
            reruns: shared.config.max_conflict_reruns,
        })
    }

    /// Runs `attempt` in a fresh transaction until its commit goes
    /// through. `attempt` gives its outcome and whether it may write. A
    /// timeout, trap or exhausted resource is answered at once: it rests on
    /// nothing read. Any other answer is given only if what the call read
    /// is still current.
    ///
    /// A call from outside that lost [`OPTIMISTIC_RUNS`] commits runs
    /// again alone: the other stateful calls of this host wait for it, so
    /// it cannot lose again to them. (Nested calls never wait: the call
    /// that made them holds its place.)
    fn rerun<T>(
        &self,
        mut attempt: impl FnMut(&mote_state::Shared, &CallContext) -> (Result<T, Failure>, bool),
    ) -> Result<T, Failure> {
        for run in 0..=self.reruns {
            let outside = self.context.depth == 0;
            let alone = outside && run >= OPTIMISTIC_RUNS;
            let exclusive = &self.shared.exclusive;
            let _turn = Turn {
                _beside: (outside && !alone)
                    .then(|| exclusive.read().unwrap_or_else(PoisonError::into_inner)),
                _alone: alone.then(|| exclusive.write().unwrap_or_else(PoisonError::into_inner)),
            };
            if alone {
                tracing::debug!(
                    service = self.service.contract.service.name.as_str(),
                    "running alone after {run} lost commits"
                );
            }
            let transaction = Arc::new(Mutex::new(Transaction::new(Arc::clone(&self.backend))));
            let (outcome, writes) = attempt(&transaction, &self.context);
            let judged = match &outcome {
                Ok(_) => true,
                Err(failure) => !matches!(
                    failure.platform_kind(),
                    Some(
                        PlatformFailure::Timeout
                            | PlatformFailure::Trap
                            | PlatformFailure::ResourceExhausted
                            | PlatformFailure::Overloaded
                            | PlatformFailure::Unavailable
                    )
                ),
            };
            if !judged {
                return outcome;
            }
            let mut transaction = {
                let mut held = transaction.lock().unwrap_or_else(PoisonError::into_inner);
                std::mem::replace(&mut *held, Transaction::new(Arc::clone(&self.backend)))
            };
            if !writes {
                transaction.discard_writes();
            }
            let touched = transaction.touched();
            match transaction.commit() {
                Ok(_) => {
                    if self.counted {
                        self.shared.count_stores(&touched, true);
                    }
                    return outcome;
                }
                Err(StateError::Conflict) => {
                    if self.counted {
                        self.shared.count_stores(&touched, false);
                    }
                    tracing::debug!(
                        service = self.service.contract.service.name.as_str(),
                        "what the call read changed before it committed; running it again"
                    );
                }
                Err(error) => {
                    tracing::error!(
                        service = self.service.contract.service.name.as_str(),
                        "store backend: {error}"
                    );
                    return Err(Failure::platform(
                        PlatformFailure::Unavailable,
                        "the service's stores cannot be reached",
                    ));
                }
            }
        }
        Err(Failure::platform(
            PlatformFailure::Conflict,
            format!(
                "concurrent calls changed what this call read {} times in a row",
                self.reruns + 1
            ),
        ))
    }
}

/// A stateful call's place among the others, held while it runs: beside
/// them, or alone.
struct Turn<'a> {
    _beside: Option<std::sync::RwLockReadGuard<'a, ()>>,
    _alone: Option<std::sync::RwLockWriteGuard<'a, ()>>,
}

/// An input that passed step 1.
pub(crate) struct Admitted {
    /// The input, numbers canonical.
    pub(crate) value: Value,
    /// `value` as JSON text: what the guest is handed.
    pub(crate) text: String,
    /// The input as CEL sees it, when `requires` needed it; the checks on
    /// the way out reuse it rather than convert the input again.
    pub(crate) bindings: Option<Bindings>,
}

/// Step 1: everything decided before the guest runs.
pub(crate) fn admit(contract: &Contract, max_bytes: u64, input: &str) -> Result<Admitted, Failure> {
    let invalid = |message: String| Failure::platform(PlatformFailure::InvalidInput, message);
    if input.len() as u64 > max_bytes {
        return Err(invalid(format!(
            "input is {} bytes; the limit is {max_bytes}",
            input.len()
        )));
    }
    let mut value: Value =
        serde_json::from_str(input).map_err(|e| invalid(format!("input is not JSON: {e}")))?;
    mote_contract::canonicalize_numbers(&mut value);
    // Fail closed: an input the validator calls invalid is refused even if
    // it gives no detail.
    if !contract.input.is_valid(&value) {
        let detail = contract
            .input
            .violations(&value)
            .first()
            .map_or_else(|| "it is not valid".to_string(), ToString::to_string);
        return Err(invalid(format!(
            "input does not match the input schema: {detail}"
        )));
    }
    let mut bindings = None;
    if !contract.behavior.requires.is_empty() {
        let bindings = bindings.insert(Bindings::new().with("input", &value));
        if let Some(unmet) = contract.unmet_requires(bindings) {
            return Err(invalid(unmet.to_string()));
        }
    }
    let text = value.to_string();
    Ok(Admitted {
        value,
        text,
        bindings,
    })
}

/// What the guest answered, and the platform failures its calls met.
pub(crate) struct Invocation {
    pub(crate) answer: Result<String, types::Failure>,
    pub(crate) callee_failures: Vec<Failure>,
}

/// Step 2: the implementation runs: a component in a fresh instance, or a
/// flow's steps, never past the caller's deadline.
fn execute(
    shared: &Arc<Shared>,
    service: &Arc<LoadedService>,
    admitted: &Admitted,
    context: &CallContext,
    transaction: Option<&mote_state::Shared>,
) -> Result<Invocation, Failure> {
    let deadline = context.deadline_for(service.limits.timeout);
    if deadline.at <= Instant::now() {
        return Err(timeout(service, deadline));
    }
    let nested = context.nested(deadline, service);
    let invocation = match &service.implementation {
        Implementation::Component(code) => invoke(
            shared,
            service,
            code,
            admitted,
            (nested, deadline.inherited),
            transaction,
        )?,
        Implementation::Flow(plan) => Invocation {
            answer: crate::flow::run(shared, service, plan, admitted, &nested)?,
            callee_failures: Vec::new(),
        },
        Implementation::Remote(remote) => {
            let qualified = |contract: &Contract| {
                versions::qualified(contract.service.name.as_str(), &contract.service.version)
            };
            let callee = qualified(&service.contract);
            let caller = context.caller.as_ref().map(|c| qualified(&c.contract));
            let answer = remote.call(&RemoteCall {
                service: &callee,
                caller: caller.as_deref(),
                input: &admitted.text,
                deadline: deadline.at,
            })?;
            Invocation {
                answer: answer.map_err(|(code, message)| types::Failure { code, message }),
                callee_failures: Vec::new(),
            }
        }
    };
    let limit = shared.config.max_answer_bytes;
    let size = match &invocation.answer {
        Ok(output) => output.len(),
        Err(failure) => failure.code.len() + failure.message.len(),
    };
    if size > limit {
        return Err(Failure::platform(
            PlatformFailure::ResourceExhausted,
            format!("answered {size} bytes; this host accepts answers of at most {limit} bytes"),
        ));
    }
    Ok(invocation)
}

/// The failure of a call that ran out of time.
pub(crate) fn timeout(service: &LoadedService, deadline: Deadline) -> Failure {
    let message = if deadline.inherited {
        "its caller's deadline passed before it finished".to_string()
    } else {
        format!(
            "did not finish within {} ms",
            service.limits.timeout.as_millis()
        )
    };
    Failure::platform(PlatformFailure::Timeout, message)
}

/// A fresh instance, the guest's `handle`, and the classification of
/// whatever stopped it.
fn invoke(
    shared: &Arc<Shared>,
    service: &Arc<LoadedService>,
    code: &ServiceCode,
    admitted: &Admitted,
    (nested, inherited): (CallContext, bool),
    transaction: Option<&mote_state::Shared>,
) -> Result<Invocation, Failure> {
    let limits = service.limits;
    let deadline = nested.deadline.map_or(limits.timeout, |at| {
        at.saturating_duration_since(Instant::now())
    });
    let mut state = HostState::new(shared, service, nested);
    state.transaction = transaction.cloned();
    let mut store = Store::new(&shared.engine, state);
    store.limiter(|state| &mut state.memory);
    store
        .set_fuel(limits.fuel)
        .map_err(|e| Failure::platform(PlatformFailure::Trap, format!("cannot set fuel: {e}")))?;
    let tick = shared.config.epoch_tick.as_nanos().max(1);
    let ticks = deadline.as_nanos().div_ceil(tick);
    store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).max(1));
    store.epoch_deadline_trap();

    let outcome = code
        .pre
        .instantiate(&mut store)
        .and_then(|instance| instance.call_handle(&mut store, &admitted.text));
    let state = store.data_mut();
    state.log.finish(service.contract.service.name.as_str());
    if let Some(breach) = state.breach.take() {
        return Err(breach);
    }
    let answer = outcome.map_err(|error| classify(service, state, &error, inherited))?;
    Ok(Invocation {
        answer,
        callee_failures: std::mem::take(&mut state.callee_failures),
    })
}

/// What stopped a guest. The message is the host's own words: a guest's
/// text (its panic message, its logs) goes to the log, never into a
/// failure that may travel to a client.
fn classify(
    service: &LoadedService,
    state: &HostState,
    error: &wasmtime::Error,
    inherited_deadline: bool,
) -> Failure {
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
        Some(Trap::Interrupt) => timeout(
            service,
            Deadline {
                at: Instant::now(),
                inherited: inherited_deadline,
            },
        ),
        Some(Trap::OutOfFuel) => Failure::platform(
            PlatformFailure::ResourceExhausted,
            format!("used up its fuel ({} units)", service.limits.fuel),
        ),
        Some(trap) => Failure::platform(
            PlatformFailure::Trap,
            format!("the guest trapped: {trap} (a panic's message is in the log)"),
        ),
        None => {
            // A host function refused to go on (e.g. an effect used
            // without its declaration); its own message says which.
            let why = error.to_string();
            let first = why.lines().next().unwrap_or_default();
            Failure::platform(PlatformFailure::Trap, first.to_string())
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

    /// The code of the error due for the input, if any.
    fn due_code(&self) -> Result<Option<&str>, Failure> {
        match self.contract.due_error(self.input_bindings()) {
            Ok(due) => Ok(due.map(|e| e.code.as_str())),
            Err(failed) => Err(self.violation(failed.to_string())),
        }
    }

    fn success(&self, text: &str) -> Result<Value, Failure> {
        let output: Value = serde_json::from_str(text)
            .map_err(|e| self.violation(format!("the output is not JSON: {e}")))?;
        // Fail closed, as on the way in.
        if !self.contract.output.is_valid(&output) {
            let detail = self
                .contract
                .output
                .violations(&output)
                .first()
                .map_or_else(|| "it is not valid".to_string(), ToString::to_string);
            return Err(self.violation(format!(
                "the output does not match the output schema: {detail}"
            )));
        }
        if !self.full {
            return Ok(output);
        }
        if let Some(code) = self.due_code()? {
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
                "returned error code `{}`, which the contract does not declare",
                failure.code
            ));
        };
        if self.full {
            match self.due_code() {
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
