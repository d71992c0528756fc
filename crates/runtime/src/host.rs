//! What a guest sees of the host during one call: a memory limiter and the
//! `mote:service` imports. There is no WASI: nothing to read, write, poll
//! or sleep on. Every import returns promptly: `call` runs under the
//! caller's remaining deadline, `log` writes at most a bounded amount per
//! call, `now` and `random` read a value, and the store functions read
//! one key or one bounded listing within the call's transaction (a local
//! read; writes are buffered in memory).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime::ResourceLimiter;

use mote_contract::{STORE_VALUE_BYTES, Store, StoreAccess};

/// The longest key a guest may read or write.
const MAX_KEY_BYTES: usize = 4 * 1024;
/// The most distinct keys one call may read or write.
const MAX_KEYS_PER_CALL: usize = 10_000;
/// The most bytes of keys and values one call's transaction may hold.
const MAX_STATE_BYTES_PER_CALL: usize = 16 * 1024 * 1024;
use mote_state::{StateError, Transaction};

use crate::bindings::mote::service::{clock, host, random, store, store_write, types};
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
    /// The call's transaction, for a service that declares stores.
    pub(crate) transaction: Option<mote_state::Shared>,
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
            transaction: None,
        }
    }

    /// Ends the call with `failure`: recorded as the outcome, and a trap
    /// so that the guest does not carry on.
    fn breach(&mut self, failure: Failure) -> wasmtime::Error {
        let error = wasmtime::Error::msg(failure.to_string());
        self.breach = Some(failure);
        error
    }

    /// The declared store named `name` and the call's transaction, or the
    /// breach of using a store the contract does not declare (or writing
    /// one it may only read).
    fn store(
        &mut self,
        name: &str,
        write: bool,
    ) -> wasmtime::Result<(Arc<LoadedService>, mote_state::Shared)> {
        let service = Arc::clone(&self.service);
        let declared = service.contract.stores.iter().find(|s| s.name == name);
        let refusal = match declared {
            None => Some(format!(
                "`{}` used store `{name}`, which its contract does not declare",
                self.name()
            )),
            Some(store) if write && store.access != StoreAccess::ReadWrite => Some(format!(
                "`{}` wrote to store `{name}`, which its contract declares `read`",
                self.name()
            )),
            Some(_) => None,
        };
        if let Some(why) = refusal {
            return Err(self.breach(Failure::platform(PlatformFailure::ContractViolation, why)));
        }
        match &self.transaction {
            Some(transaction) => Ok((service, Arc::clone(transaction))),
            None => Err(self.breach(Failure::platform(
                PlatformFailure::Trap,
                "a store was used outside a transaction",
            ))),
        }
    }

    /// Refuses a key longer than any store keeps, before it is read or
    /// buffered.
    fn check_key(&mut self, store: &str, key: &str) -> wasmtime::Result<()> {
        if key.len() <= MAX_KEY_BYTES {
            return Ok(());
        }
        let message = format!(
            "`{}` used a key of {} bytes in store `{store}`; a key is at most {MAX_KEY_BYTES} bytes",
            self.name(),
            key.len()
        );
        Err(self.breach(Failure::platform(
            PlatformFailure::ResourceExhausted,
            message,
        )))
    }

    /// Ends the call as `resource_exhausted` once its transaction holds
    /// more keys or bytes than a call may: the host buffers them, so a
    /// guest writing in a loop must not grow the host's memory unbounded.
    fn check_footprint(&mut self, transaction: &mote_state::Shared) -> wasmtime::Result<()> {
        let (keys, bytes) = with_transaction(transaction, |t| Ok(t.footprint())).unwrap_or((0, 0));
        if keys <= MAX_KEYS_PER_CALL && bytes <= MAX_STATE_BYTES_PER_CALL {
            return Ok(());
        }
        let message = format!(
            "`{}` touched {keys} keys ({bytes} bytes) of its stores in one call; a call may touch at most {MAX_KEYS_PER_CALL} keys and {} MiB",
            self.name(),
            MAX_STATE_BYTES_PER_CALL / (1024 * 1024)
        );
        Err(self.breach(Failure::platform(
            PlatformFailure::ResourceExhausted,
            message,
        )))
    }

    /// A backend failure ends the call as `unavailable`: its answer could
    /// not rest on what the stores hold.
    fn backend_failed(&mut self, error: StateError) -> wasmtime::Error {
        tracing::error!(service = self.name(), "store backend: {error}");
        self.breach(Failure::platform(
            PlatformFailure::Unavailable,
            "the service's stores cannot be reached",
        ))
    }

    /// A key and a value (JSON text) the guest wants written, checked
    /// against the store's schemas and size limit; the value's canonical
    /// text, or the breach.
    fn checked_write(
        &mut self,
        store: &Store,
        key: &str,
        value: Option<&str>,
    ) -> wasmtime::Result<Option<String>> {
        let problem = if !store.key.is_valid(&serde_json::Value::from(key)) {
            Some(format!(
                "key `{}` does not match the store's `key` schema",
                truncate(key)
            ))
        } else {
            None
        };
        let canonical = match (problem, value) {
            (Some(problem), _) => Err(problem),
            (None, None) => Ok(None),
            (None, Some(text)) if text.len() as u64 > STORE_VALUE_BYTES => Err(format!(
                "a value of {} bytes; a stored value is at most {STORE_VALUE_BYTES} bytes",
                text.len()
            )),
            (None, Some(text)) => match serde_json::from_str::<serde_json::Value>(text) {
                Err(e) => Err(format!("a value that is not JSON: {e}")),
                Ok(mut value) => {
                    mote_contract::canonicalize_numbers(&mut value);
                    if store.value.is_valid(&value) {
                        Ok(Some(value.to_string()))
                    } else {
                        let detail = store
                            .value
                            .violations(&value)
                            .first()
                            .map_or_else(|| "it is not valid".to_string(), ToString::to_string);
                        Err(format!(
                            "a value that breaks the store's `value` schema: {detail}"
                        ))
                    }
                }
            },
        };
        canonical.map_err(|why| {
            let message = format!("`{}` wrote to store `{}` {why}", self.name(), store.name);
            self.breach(Failure::platform(
                PlatformFailure::ContractViolation,
                message,
            ))
        })
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

/// A guest's key, shortened for a message.
fn truncate(key: &str) -> String {
    if key.len() <= 64 {
        return key.to_string();
    }
    let mut end = 61;
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &key[..end])
}

fn with_transaction<T>(
    transaction: &mote_state::Shared,
    work: impl FnOnce(&mut Transaction) -> Result<T, StateError>,
) -> Result<T, StateError> {
    let mut transaction = transaction
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    work(&mut transaction)
}

impl store::Host for HostState {
    fn get(&mut self, store: String, key: String) -> wasmtime::Result<Option<String>> {
        let (_, transaction) = self.store(&store, false)?;
        self.check_key(&store, &key)?;
        let value = with_transaction(&transaction, |t| t.get(&store, &key))
            .map_err(|e| self.backend_failed(e))?;
        self.check_footprint(&transaction)?;
        Ok(value)
    }

    fn scan(
        &mut self,
        store: String,
        prefix: String,
        limit: u32,
    ) -> wasmtime::Result<Vec<(String, String)>> {
        let (_, transaction) = self.store(&store, false)?;
        self.check_key(&store, &prefix)?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let entries = with_transaction(&transaction, |t| t.list(&store, &prefix, limit))
            .map_err(|e| self.backend_failed(e))?;
        self.check_footprint(&transaction)?;
        Ok(entries)
    }
}

impl store_write::Host for HostState {
    fn put(&mut self, store: String, key: String, value: String) -> wasmtime::Result<()> {
        let (service, transaction) = self.store(&store, true)?;
        let Some(declared) = service.contract.stores.iter().find(|s| s.name == store) else {
            return Ok(());
        };
        self.check_key(&store, &key)?;
        if let Some(value) = self.checked_write(declared, &key, Some(&value))? {
            with_transaction(&transaction, |t| {
                t.put(&store, &key, value);
                Ok(())
            })
            .map_err(|e| self.backend_failed(e))?;
        }
        self.check_footprint(&transaction)
    }

    fn delete(&mut self, store: String, key: String) -> wasmtime::Result<()> {
        let (service, transaction) = self.store(&store, true)?;
        let Some(declared) = service.contract.stores.iter().find(|s| s.name == store) else {
            return Ok(());
        };
        self.check_key(&store, &key)?;
        self.checked_write(declared, &key, None)?;
        with_transaction(&transaction, |t| {
            t.delete(&store, &key);
            Ok(())
        })
        .map_err(|e| self.backend_failed(e))?;
        self.check_footprint(&transaction)
    }

    fn swap(
        &mut self,
        store: String,
        key: String,
        expected: Option<String>,
        new: Option<String>,
    ) -> wasmtime::Result<bool> {
        let (service, transaction) = self.store(&store, true)?;
        let Some(declared) = service.contract.stores.iter().find(|s| s.name == store) else {
            return Ok(false);
        };
        self.check_key(&store, &key)?;
        let new = self.checked_write(declared, &key, new.as_deref())?;
        // Compared as JSON values: the guest may write the expected value
        // another way than the stored canonical text.
        let expected: Option<serde_json::Value> =
            match expected.as_deref().map(serde_json::from_str) {
                None => None,
                Some(Ok(value)) => Some(value),
                Some(Err(_)) => return Ok(false),
            };
        let swapped = with_transaction(&transaction, |t| {
            let now = t
                .get(&store, &key)?
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
            let mut expected = expected;
            if let Some(value) = expected.as_mut() {
                mote_contract::canonicalize_numbers(value);
            }
            if now != expected {
                return Ok(false);
            }
            match new {
                Some(value) => t.put(&store, &key, value),
                None => t.delete(&store, &key),
            }
            Ok(true)
        })
        .map_err(|e| self.backend_failed(e))?;
        self.check_footprint(&transaction)?;
        Ok(swapped)
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
