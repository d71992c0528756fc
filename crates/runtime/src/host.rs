//! What a guest sees of the host during one call: a memory limiter and the
//! `mote:service` imports. There is no WASI: nothing to read, write, poll
//! or sleep on. Every import returns promptly: `call` runs under the
//! caller's remaining deadline, `log` writes at most a bounded amount per
//! call, `now` and `random` read a value.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime::ResourceLimiter;

use crate::bindings::mote::service::{clock, host, random, types};
use crate::context::CallContext;
use crate::failure::{Failure, PlatformFailure};
use crate::service::LoadedService;
use crate::shared::Shared;

/// The store data of one call.
pub(crate) struct HostState {
    pub(crate) memory: MemoryLimiter,
    shared: Arc<Shared>,
    service: Arc<LoadedService>,
    /// The context of the calls this guest makes.
    nested: CallContext,
    /// A breach of the contract the guest committed through an import
    /// (an undeclared call); it decides the call's outcome.
    pub(crate) breach: Option<Failure>,
    /// Platform failures met by this guest's calls, so that one passed on
    /// keeps its meaning.
    pub(crate) callee_failures: Vec<Failure>,
    pub(crate) log: LogBudget,
}

impl HostState {
    pub(crate) fn new(
        shared: &Arc<Shared>,
        service: &Arc<LoadedService>,
        nested: CallContext,
    ) -> Self {
        HostState {
            memory: MemoryLimiter {
                max_bytes: usize::try_from(service.limits.memory_bytes).unwrap_or(usize::MAX),
                exhausted: false,
            },
            log: LogBudget::new(
                shared.config.max_log_lines_per_call,
                shared.config.max_log_bytes_per_call,
            ),
            shared: Arc::clone(shared),
            service: Arc::clone(service),
            nested,
            breach: None,
            callee_failures: Vec::new(),
        }
    }

    fn name(&self) -> &str {
        self.service.contract.service.name.as_str()
    }
}

/// Caps linear memory; remembers a refusal so that the trap that usually
/// follows (the guest's allocator aborting) is reported as
/// `resource_exhausted` rather than a crash.
pub(crate) struct MemoryLimiter {
    max_bytes: usize,
    pub(crate) exhausted: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.exhausted = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        const MAX_TABLE_ELEMENTS: usize = 1 << 20;
        if desired > MAX_TABLE_ELEMENTS {
            self.exhausted = true;
            return Ok(false);
        }
        Ok(true)
    }
}

/// How much a call may still log. A guest that floods the log loses the
/// excess, which is counted and reported in one note when the call ends;
/// it never traps for it, and never holds its thread writing.
pub(crate) struct LogBudget {
    lines_left: usize,
    bytes_left: usize,
    dropped_lines: u64,
    dropped_bytes: u64,
}

impl LogBudget {
    fn new(lines: usize, bytes: usize) -> Self {
        LogBudget {
            lines_left: lines,
            bytes_left: bytes,
            dropped_lines: 0,
            dropped_bytes: 0,
        }
    }

    /// The part of `message` that fits, if any; the rest is counted.
    fn take<'m>(&mut self, message: &'m str) -> Option<&'m str> {
        if self.lines_left == 0 || self.bytes_left == 0 {
            self.dropped_lines += 1;
            self.dropped_bytes += message.len() as u64;
            return None;
        }
        self.lines_left -= 1;
        let mut end = message.len().min(self.bytes_left);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        self.bytes_left -= end;
        self.dropped_bytes += (message.len() - end) as u64;
        Some(&message[..end])
    }

    /// Reports what was dropped, once, at the end of the call.
    pub(crate) fn finish(&self, service: &str) {
        if self.dropped_lines > 0 || self.dropped_bytes > 0 {
            tracing::warn!(
                service,
                dropped_lines = self.dropped_lines,
                dropped_bytes = self.dropped_bytes,
                "the guest logged more than the per-call cap; the excess was dropped"
            );
        }
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn call(
        &mut self,
        service: String,
        input: String,
    ) -> wasmtime::Result<Result<String, types::Failure>> {
        let caller = &self.service.contract;
        let Some(target) = caller
            .effects
            .calls
            .iter()
            .find(|c| c.service.as_str() == service)
        else {
            let failure = Failure::platform(
                PlatformFailure::UndeclaredCall,
                format!(
                    "`{}` called `{service}`, which its `effects.calls` does not list",
                    caller.service.name
                ),
            );
            self.breach = Some(failure.clone());
            // Trap: the guest must not carry on as if the call were allowed.
            return Err(wasmtime::Error::msg(failure.to_string()));
        };
        let outcome = crate::call::call_declared(&self.shared, target, None, &input, &self.nested);
        Ok(match outcome {
            Ok(output) => Ok(output.to_string()),
            Err(failure) => {
                let wit = types::Failure {
                    code: failure.code().to_string(),
                    message: failure.message().to_string(),
                };
                if failure.platform_kind().is_some() {
                    self.callee_failures.push(failure);
                }
                Err(wit)
            }
        })
    }

    fn log(&mut self, level: types::Level, message: String) -> wasmtime::Result<()> {
        let Some(line) = self.log.take(&message) else {
            return Ok(());
        };
        let service = self.name();
        match level {
            types::Level::Trace => tracing::trace!(service, guest = true, "{line}"),
            types::Level::Debug => tracing::debug!(service, guest = true, "{line}"),
            types::Level::Info => tracing::info!(service, guest = true, "{line}"),
            types::Level::Warn => tracing::warn!(service, guest = true, "{line}"),
            types::Level::Error => tracing::error!(service, guest = true, "{line}"),
        }
        Ok(())
    }
}

impl clock::Host for HostState {
    fn now(&mut self) -> wasmtime::Result<u64> {
        // Refused at load for a service that does not declare `clock`;
        // checked again here so that no path reaches it undeclared.
        if !self.service.contract.effects.clock {
            return Err(wasmtime::Error::msg(format!(
                "`{}` read the clock without `[effects] clock = true`",
                self.name()
            )));
        }
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Ok(u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX))
    }
}

impl random::Host for HostState {
    fn random(&mut self) -> wasmtime::Result<u64> {
        if !self.service.contract.effects.random {
            return Err(wasmtime::Error::msg(format!(
                "`{}` asked for randomness without `[effects] random = true`",
                self.name()
            )));
        }
        getrandom::u64().map_err(|e| wasmtime::Error::msg(format!("no randomness: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_budget_keeps_what_fits_and_counts_the_rest() {
        let mut budget = LogBudget::new(2, 10);
        assert_eq!(budget.take("hello"), Some("hello"));
        assert_eq!(budget.take("world, again"), Some("world"));
        assert_eq!(budget.take("more"), None);
        assert_eq!(budget.dropped_lines, 1);
        assert_eq!(budget.dropped_bytes, 7 + 4);
    }

    #[test]
    fn the_log_budget_never_splits_a_character() {
        let mut budget = LogBudget::new(5, 3);
        assert_eq!(budget.take("aé€"), Some("aé"));
        assert_eq!(budget.take("x"), None);
    }
}
