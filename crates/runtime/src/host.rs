//! What a guest sees of the host during one call: WASI with nothing
//! granted, a memory limiter, and the `mote:service/host` imports.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{
    Deterministic, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView,
    WasiView,
};

use crate::CalleeDouble;
use crate::bindings::mote::service::{host, types};
use crate::failure::{Failure, PlatformFailure};
use crate::service::LoadedService;
use crate::shared::Shared;

/// The store data of one call.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) memory: MemoryLimiter,
    shared: Arc<Shared>,
    service: Arc<LoadedService>,
    depth: u32,
    double: Option<Arc<dyn CalleeDouble>>,
    /// A breach of the contract the guest committed through an import
    /// (an undeclared call); it decides the call's outcome.
    pub(crate) breach: Option<Failure>,
    /// Platform failures met by this guest's calls, so that one passed on
    /// keeps its meaning.
    pub(crate) callee_failures: Vec<Failure>,
    pub(crate) stdout: MemoryOutputPipe,
    pub(crate) stderr: MemoryOutputPipe,
}

impl HostState {
    pub(crate) fn new(
        shared: &Arc<Shared>,
        service: &Arc<LoadedService>,
        depth: u32,
        double: Option<&Arc<dyn CalleeDouble>>,
    ) -> Self {
        let capture = shared.config.max_output_capture;
        let stdout = MemoryOutputPipe::new(capture);
        let stderr = MemoryOutputPipe::new(capture);
        let effects = &service.contract.effects;
        let mut builder = WasiCtxBuilder::new();
        builder
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if !effects.clock {
            builder.wall_clock(FixedClock).monotonic_clock(FixedClock);
        }
        if !effects.random {
            let seed = service.random_seed;
            builder
                .secure_random(Deterministic::new(seed.to_vec()))
                .insecure_random(Deterministic::new(seed.to_vec()))
                .insecure_random_seed(u128::from_le_bytes(
                    seed[..16].try_into().unwrap_or([0; 16]),
                ));
        }
        HostState {
            wasi: builder.build(),
            table: ResourceTable::new(),
            memory: MemoryLimiter {
                max_bytes: usize::try_from(service.limits.memory_bytes).unwrap_or(usize::MAX),
                exhausted: false,
            },
            shared: Arc::clone(shared),
            service: Arc::clone(service),
            depth,
            double: double.cloned(),
            breach: None,
            callee_failures: Vec::new(),
            stdout,
            stderr,
        }
    }
}

/// The seed of the random source a service sees when it does not declare
/// `random`: fixed per service name, so runs repeat exactly.
pub(crate) fn random_seed(service_name: &str) -> [u8; 32] {
    Sha256::digest(format!("mote/random/{service_name}").as_bytes()).into()
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
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

/// The clock of a service that does not declare `clock`: it always reads
/// 2001-01-01T00:00:00Z, and monotonic time never advances.
struct FixedClock;

const FIXED_EPOCH_SECONDS: u64 = 978_307_200;

impl HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::from_secs(FIXED_EPOCH_SECONDS)
    }
}

impl HostMonotonicClock for FixedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        0
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
        let outcome = crate::call::call_declared(
            &self.shared,
            target,
            &input,
            self.depth + 1,
            self.double.as_ref(),
        );
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
        let service = self.service.contract.service.name.as_str();
        match level {
            types::Level::Trace => tracing::trace!(service, "{message}"),
            types::Level::Debug => tracing::debug!(service, "{message}"),
            types::Level::Info => tracing::info!(service, "{message}"),
            types::Level::Warn => tracing::warn!(service, "{message}"),
            types::Level::Error => tracing::error!(service, "{message}"),
        }
        Ok(())
    }
}
