//! The mote host: runs nanoservices as sandboxed WebAssembly components
//! behind the call path that enforces their contracts.
//!
//! A [`Runtime`] holds one wasmtime engine (pooling allocator, epoch
//! deadlines, fuel) and every loaded service, each pre-instantiated once.
//! Every [`Runtime::call`] gets a fresh instance, so no state survives a
//! call; the input is checked before the guest runs and the answer after.
//! Calls between services stay in the process: a fresh instance, not a
//! network hop.
//!
//! Architecture invariant: knows nothing of HTTP, of how services are built,
//! or of verification.

mod bindings;
mod cache;
mod call;
mod config;
mod context;
mod failure;
mod flow;
mod host;
mod imports;
mod service;
mod shared;
mod steps;
mod trace;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mote_contract::versions;
use mote_contract::{CallTarget, Contract};
use sha2::Digest as _;

pub use cache::sha256;
pub use call::GuestAnswer;
pub use config::{ResolvedLimits, RuntimeConfig};
pub use failure::{Failure, PlatformFailure};
pub use imports::RefusedImport;
pub use trace::{MAX_SPANS, Trace, TraceSpan};

use crate::bindings::ServicePre;
use crate::context::CallContext;
use crate::flow::FlowPlan;
use crate::service::{Implementation, LoadedService, ServiceCode};
use crate::shared::Shared;

/// The host: loaded services and the means to call them.
///
/// Cloning is cheap and shares everything; a `Runtime` can be used from
/// many threads at once.
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
}

/// The runtime itself could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the WebAssembly engine: {0}")]
pub struct RuntimeError(String);

impl RuntimeError {
    fn engine(error: impl std::fmt::Display) -> Self {
        RuntimeError(error.to_string())
    }
}

/// Why a service was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The component file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The bytes are not a valid WebAssembly component.
    #[error("`{service}` is not a valid component: {message}")]
    Compile {
        /// The service.
        service: String,
        /// wasmtime's explanation.
        message: String,
    },
    /// The component imports interfaces its contract does not allow.
    #[error("`{service}` imports what its contract does not allow: {}", .refused.iter().map(|r| format!("{} ({})", r.import, r.reason)).collect::<Vec<_>>().join("; "))]
    RefusedImports {
        /// The service.
        service: String,
        /// Each refused import with the reason.
        refused: Vec<RefusedImport>,
    },
    /// The component does not fit the `mote:service` world.
    #[error("`{service}` does not implement the mote:service world: {message}")]
    Link {
        /// The service.
        service: String,
        /// wasmtime's explanation.
        message: String,
    },
    /// The contract asks for more memory than this runtime allows.
    #[error(
        "`{service}` asks for {asked_mib} MiB of memory; this host allows at most {max_mib} MiB"
    )]
    MemoryTooLarge {
        /// The service.
        service: String,
        /// What the contract asks.
        asked_mib: u64,
        /// The runtime's maximum.
        max_mib: u64,
    },
    /// The contract is a flow, which has no component: load it with
    /// [`Runtime::load_flow`].
    #[error("`{service}` is a flow; it has no component to load")]
    Flow {
        /// The service.
        service: String,
    },
    /// [`Runtime::load_flow`] was given a contract without `[flow]`.
    #[error("`{service}` is not a flow; it needs a component")]
    NotAFlow {
        /// The service.
        service: String,
    },
    /// A version of this service in the same series is already loaded
    /// (versions of one name sit side by side only in different series).
    #[error("`{service}` is already loaded in series {series}")]
    Duplicate {
        /// The service.
        service: String,
        /// The series both versions are in.
        series: String,
    },
}

/// What the stateful calls of a runtime did to one store since it
/// started. A commit with nothing read or written touches no store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCount {
    /// Keys read from the backend (each key once per run) and listings.
    pub reads: u64,
    /// Keys written or deleted by committed calls.
    pub writes: u64,
    /// Runs committed (a failed call's run commits no writes, but its
    /// reads are checked and counted).
    pub commits: u64,
    /// Runs whose commit found that something they read had changed:
    /// each was run again, or failed with `conflict` after the last.
    pub conflicts: u64,
}

/// Stands in for callees during verification (see
/// [`Runtime::call_isolated`]).
pub trait CalleeDouble: Send + Sync {
    /// The answer to a call of `target` with the JSON text `input`, or
    /// `None` to let the real callee answer.
    fn answer(
        &self,
        target: &CallTarget,
        input: &str,
    ) -> Option<Result<serde_json::Value, Failure>>;
}

/// One call of a service placed on another host, as the runtime hands it
/// to a [`RemoteService`].
#[derive(Debug, Clone, Copy)]
pub struct RemoteCall<'a> {
    /// The service called, as `name@SERIES` (which names it whatever
    /// versions the other host holds).
    pub service: &'a str,
    /// The service calling it, as `name@SERIES` (`None` for a call from
    /// outside), so that the other host can hold the call to what the
    /// caller declares.
    pub caller: Option<&'a str>,
    /// Its input, admitted: valid, numbers canonical.
    pub input: &'a str,
    /// When the answer must be in: the callee's own limit or the caller's
    /// deadline, whichever comes first.
    pub deadline: std::time::Instant,
}

/// The answer of another host: the output as JSON text, or a declared
/// error (code and message) for the call path to check like a guest's.
pub type RemoteAnswer = Result<String, (String, String)>;

/// Reaches services that another host serves (see
/// [`Runtime::load_remote`]). The runtime checks what comes back against
/// the callee's contract, as it checks a guest's answer: a host that
/// answers against the contract is a `contract_violation` here too.
pub trait RemoteService: Send + Sync {
    /// Sends `call` and waits for the answer, never past its deadline. A
    /// host that cannot be reached is `Err` with
    /// [`PlatformFailure::Unavailable`]; a platform failure the other host
    /// answered with is `Err` with that failure.
    fn call(&self, call: &RemoteCall<'_>) -> Result<RemoteAnswer, Failure>;
}

/// A loaded service's contract, shared with the runtime (cheap to clone).
#[derive(Clone)]
pub struct ServiceContract(Arc<LoadedService>);

impl std::ops::Deref for ServiceContract {
    type Target = Contract;

    fn deref(&self) -> &Contract {
        &self.0.contract
    }
}

impl ServiceContract {
    /// The contract itself, shared.
    pub fn shared(&self) -> Arc<Contract> {
        Arc::clone(&self.0.contract)
    }
}

/// Which compiled code a load may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompiledCode {
    /// The cache's code for these component bytes, or code compiled now
    /// (and cached) when there is none.
    Cached,
    /// Only code whose sha-256 (`sha256:…`) is this one, as an attestation
    /// records it; cached code with any other hash is not run, and the
    /// component is compiled afresh instead.
    Expect(String),
    /// Code compiled now from the component, whatever the cache holds.
    Fresh,
}

/// What a component load ran: the identity attestations bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedArtefact {
    /// The sha-256 of the component's bytes, `sha256:…`.
    pub component_sha256: String,
    /// The sha-256 of the compiled code that runs, `sha256:…`.
    pub precompiled_sha256: String,
    /// The engine settings the compiled code is for.
    pub engine: String,
    /// Whether the code was compiled by this load (not taken from the
    /// cache).
    pub compiled: bool,
}

/// What [`Runtime::precompile`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precompiled {
    /// The compiled artefact in the cache.
    pub path: PathBuf,
    /// Whether it was compiled now (false: it was already cached).
    pub compiled: bool,
}

impl Runtime {
    /// Starts an engine with `config`; no services are loaded yet.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        Ok(Runtime {
            shared: Arc::new(Shared::new(config)?),
        })
    }

    /// The configuration the runtime was started with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.shared.config
    }

    /// The wasmtime engine this runtime compiles and instantiates every
    /// service with. Not part of mote's interface: it lets a benchmark
    /// measure wasmtime alone under exactly these settings (pool, fuel,
    /// epochs), the floor under the call path.
    #[doc(hidden)]
    pub fn engine(&self) -> &wasmtime::Engine {
        &self.shared.engine
    }

    /// Compiles a component for this engine into the cache, unless an
    /// artefact for the same bytes and engine settings is already there.
    pub fn precompile(&self, service: &str, wasm: &[u8]) -> Result<Precompiled, LoadError> {
        let Some(dir) = &self.shared.config.cache_dir else {
            return Err(LoadError::Io {
                path: PathBuf::new(),
                source: std::io::Error::other("the runtime has no cache directory"),
            });
        };
        cache::precompile(&self.shared.engine, dir, service, wasm)
    }

    /// Loads a service from its contract and the component file that
    /// implements it.
    pub fn load_file(
        &self,
        contract: impl Into<Arc<Contract>>,
        component: &Path,
    ) -> Result<LoadedArtefact, LoadError> {
        let wasm = std::fs::read(component).map_err(|source| LoadError::Io {
            path: component.to_path_buf(),
            source,
        })?;
        self.load(contract, &wasm)
    }

    /// Loads a service from its contract and component bytes: compiles
    /// (or takes from the cache), checks imports against the contract, and
    /// pre-instantiates it.
    pub fn load(
        &self,
        contract: impl Into<Arc<Contract>>,
        wasm: &[u8],
    ) -> Result<LoadedArtefact, LoadError> {
        self.load_with(contract, wasm, CompiledCode::Cached)
    }

    /// [`Runtime::load`], saying which compiled code may run. Services
    /// whose components have the same bytes share one compiled copy.
    pub fn load_with(
        &self,
        contract: impl Into<Arc<Contract>>,
        wasm: &[u8],
        code: CompiledCode,
    ) -> Result<LoadedArtefact, LoadError> {
        let contract: Arc<Contract> = contract.into();
        let name = contract.service.name.to_string();
        if contract.flow.is_some() {
            return Err(LoadError::Flow { service: name });
        }
        let shared = &self.shared;
        let limits = ResolvedLimits::resolve(&contract.limits, &shared.config.default_limits);
        let max_bytes = shared.config.max_memory_mib * 1024 * 1024;
        if limits.memory_bytes > max_bytes {
            return Err(LoadError::MemoryTooLarge {
                service: name,
                asked_mib: limits.memory_bytes / (1024 * 1024),
                max_mib: shared.config.max_memory_mib,
            });
        }
        let code = self.compiled(&name, wasm, code)?;
        let refused = imports::check(
            code.imports.iter().map(String::as_str),
            imports::Grants::of(&contract),
        );
        if !refused.is_empty() {
            return Err(LoadError::RefusedImports {
                service: name,
                refused,
            });
        }
        let artefact = code.artefact.clone();
        self.insert(LoadedService {
            contract,
            limits,
            implementation: Implementation::Component(code),
        })?;
        Ok(artefact)
    }

    /// The compiled, pre-instantiated component for `wasm`: shared with an
    /// earlier load of the same bytes when its code is acceptable.
    fn compiled(
        &self,
        service: &str,
        wasm: &[u8],
        code: CompiledCode,
    ) -> Result<Arc<ServiceCode>, LoadError> {
        let shared = &self.shared;
        let key: [u8; 32] = sha2::Sha256::digest(wasm).into();
        let mut components = shared
            .components
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(known) = components.get(&key) {
            let acceptable = match &code {
                CompiledCode::Cached => true,
                CompiledCode::Expect(hash) => known.artefact.precompiled_sha256 == *hash,
                CompiledCode::Fresh => false,
            };
            if acceptable {
                return Ok(Arc::clone(known));
            }
        }
        let (component, artefact) = cache::load(
            &shared.engine,
            shared.config.cache_dir.as_deref(),
            service,
            wasm,
            &code,
        )?;
        let imports: Vec<String> = component
            .component_type()
            .imports(&shared.engine)
            .map(|(import, _)| import.to_string())
            .collect();
        // Anything outside mote's own interfaces is refused before linking,
        // naming every such import; the contract's effects are checked per
        // service by the caller.
        let refused = imports::check(imports.iter().map(String::as_str), imports::Grants::ALL);
        if !refused.is_empty() {
            return Err(LoadError::RefusedImports {
                service: service.to_string(),
                refused,
            });
        }
        let link = |e: wasmtime::Error| LoadError::Link {
            service: service.to_string(),
            message: e.to_string(),
        };
        let pre = shared.linker.instantiate_pre(&component).map_err(link)?;
        let pre = ServicePre::new(pre).map_err(link)?;
        let code = Arc::new(ServiceCode {
            pre,
            imports,
            artefact,
        });
        components.insert(key, Arc::clone(&code));
        Ok(code)
    }

    /// Loads a flow: a contract whose `[flow]` composes other services.
    /// Its steps are resolved on each call, so the services it calls may be
    /// loaded before or after it.
    pub fn load_flow(&self, contract: impl Into<Arc<Contract>>) -> Result<(), LoadError> {
        let contract: Arc<Contract> = contract.into();
        let Some(flow) = &contract.flow else {
            return Err(LoadError::NotAFlow {
                service: contract.service.name.to_string(),
            });
        };
        let plan = FlowPlan::new(flow);
        let limits = ResolvedLimits::resolve(&contract.limits, &self.shared.config.default_limits);
        self.insert(LoadedService {
            contract,
            limits,
            implementation: Implementation::Flow(plan),
        })
    }

    /// Loads a service that another host serves: calls to it (from flows
    /// and guests of this host) go through `remote`, and its answers are
    /// checked against `contract` here. It is not served by this host.
    pub fn load_remote(
        &self,
        contract: impl Into<Arc<Contract>>,
        remote: Arc<dyn RemoteService>,
    ) -> Result<(), LoadError> {
        let contract: Arc<Contract> = contract.into();
        let limits = ResolvedLimits::resolve(&contract.limits, &self.shared.config.default_limits);
        self.insert(LoadedService {
            contract,
            limits,
            implementation: Implementation::Remote(remote),
        })
    }

    /// Whether `service` is served by another host (loaded with
    /// [`Runtime::load_remote`]).
    pub fn is_remote(&self, service: &str) -> bool {
        self.shared
            .lookup(service)
            .is_some_and(|s| matches!(s.implementation, Implementation::Remote(_)))
    }

    fn insert(&self, service: LoadedService) -> Result<(), LoadError> {
        let name = service.contract.service.name.to_string();
        if !matches!(service.implementation, Implementation::Remote(_)) {
            let mut counts = self
                .shared
                .store_counts
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for store in &service.contract.stores {
                counts.entry(store.name.clone()).or_default();
            }
        }
        let mut services = self
            .shared
            .services
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let versions = services.entry(name.clone()).or_default();
        let series = versions::series(&service.contract.service.version);
        if versions
            .iter()
            .any(|s| versions::series(&s.contract.service.version) == series)
        {
            return Err(LoadError::Duplicate {
                service: name,
                series,
            });
        }
        versions.push(Arc::new(service));
        versions.sort_by(|a, b| a.contract.service.version.cmp(&b.contract.service.version));
        Ok(())
    }

    /// The contract of a loaded service.
    pub fn contract(&self, service: &str) -> Option<ServiceContract> {
        self.shared.lookup(service).map(ServiceContract)
    }

    /// The contract of the loaded version a call to `target` reaches: the
    /// newest its range accepts.
    pub fn contract_for(&self, target: &CallTarget) -> Option<ServiceContract> {
        self.shared
            .lookup_matching(target)
            .ok()
            .map(ServiceContract)
    }

    /// Calls a service with JSON text: the output as JSON, or why not.
    pub fn call(&self, service: &str, input: &str) -> Result<serde_json::Value, Failure> {
        call::call(&self.shared, service, input, &CallContext::outside(None))
    }

    /// [`Runtime::call`], recording the trace of the call: itself, every
    /// call its guest made and every flow step, each with its start, its
    /// duration and its outcome, at any depth. For operators trying a
    /// service by hand; serving paths use [`Runtime::call`], which records
    /// nothing.
    pub fn call_traced(
        &self,
        service: &str,
        input: &str,
    ) -> (Result<serde_json::Value, Failure>, Trace) {
        let recorder = Arc::new(trace::Recorder::new());
        let mut context = CallContext::outside(None);
        context.trace = Some(Arc::clone(&recorder));
        let started = std::time::Instant::now();
        let answer = call::call(&self.shared, service, input, &context);
        let outcome = answer.as_ref().map_or_else(|f| f.code(), |_| "ok");
        recorder.record(service, None, 0, started, outcome);
        (answer, recorder.finish())
    }

    /// Calls a service but returns the guest's own answer without the
    /// checks on the way out: for verifiers, which judge the answer against
    /// the contract themselves and report precisely how it fails.
    pub fn call_unchecked(&self, service: &str, input: &str) -> Result<GuestAnswer, Failure> {
        call::call_unchecked(&self.shared, service, input, &CallContext::outside(None))
    }

    /// Like [`Runtime::call_unchecked`], but every call the service makes
    /// (through `effects.calls`, or as a flow's steps) is first offered to
    /// `double`: a verifier's stand-in built from the callee's contract, so
    /// that a service is judged alone and its handling of each answer a
    /// callee may give (declared errors included) is exercised. Calls the
    /// double declines reach the loaded callee.
    pub fn call_isolated(
        &self,
        service: &str,
        input: &str,
        double: &Arc<dyn CalleeDouble>,
    ) -> Result<GuestAnswer, Failure> {
        call::call_unchecked(
            &self.shared,
            service,
            input,
            &CallContext::outside(Some(double)),
        )
    }

    /// What stateful calls did to each store since the runtime started:
    /// every store a loaded service declares, by name.
    pub fn store_counts(&self) -> BTreeMap<String, StoreCount> {
        self.shared
            .store_counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Keeps the stores of stateful services in `backend` from now on.
    /// Until this is called they are in memory, lost with the runtime.
    pub fn use_state_backend(&self, backend: Arc<dyn mote_state::Backend>) {
        let mut state = self
            .shared
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *state = backend;
    }

    /// [`Runtime::call_unchecked`] (or, with a double,
    /// [`Runtime::call_isolated`]) against `state` rather than the
    /// runtime's stores, for this call and the calls it makes: a verifier
    /// gives each case stores of its own. A success's writes are committed
    /// to `state`; a failure writes nothing.
    pub fn call_unchecked_in(
        &self,
        service: &str,
        input: &str,
        double: Option<&Arc<dyn CalleeDouble>>,
        state: Arc<dyn mote_state::Backend>,
    ) -> Result<GuestAnswer, Failure> {
        let mut context = CallContext::outside(double);
        context.state = Some(state);
        call::call_unchecked(&self.shared, service, input, &context)
    }

    /// [`Runtime::call`] against `state` rather than the runtime's stores.
    pub fn call_in(
        &self,
        service: &str,
        input: &str,
        state: Arc<dyn mote_state::Backend>,
    ) -> Result<serde_json::Value, Failure> {
        let mut context = CallContext::outside(None);
        context.state = Some(state);
        call::call(&self.shared, service, input, &context)
    }

    /// The keys of the loaded services, sorted: a name alone, or
    /// `name@SERIES` for each version of a name loaded in several series
    /// (see [`mote_contract::versions`]).
    pub fn services(&self) -> Vec<String> {
        let services = self
            .shared
            .services
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let loaded = services.values().flatten().map(|s| {
            (
                s.contract.service.name.as_str(),
                &s.contract.service.version,
            )
        });
        let mut keys = versions::keys(loaded);
        keys.sort();
        keys
    }

    /// The key (see [`Runtime::services`]) of the service `reference`
    /// names: a key, a bare name (its newest series) or `name@SERIES`.
    pub fn key_of(&self, reference: &str) -> Option<String> {
        let service = self.shared.lookup(reference)?;
        Some(self.shared.key_of(&service.contract))
    }

    /// The limits in force for a loaded service.
    pub fn limits(&self, service: &str) -> Option<ResolvedLimits> {
        self.shared.lookup(service).map(|s| s.limits)
    }
}
