//! The state every call shares: the engine, the linker, the loaded
//! services, the compiled components, the threads that run a flow's
//! concurrent steps, and the epoch ticker that enforces deadlines.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use mote_contract::CallTarget;
use mote_contract::versions::{ServiceRef, newest_matching};
use mote_state::{Backend, MemoryBackend};

use crate::bindings::Service;
use crate::config::RuntimeConfig;
use crate::host::HostState;
use crate::service::{LoadedService, ServiceCode};
use crate::steps::StepThreads;
use crate::{RuntimeError, StoreCount};

/// How many times a stateful call runs optimistically, beside others,
/// before it runs alone.
pub(crate) const OPTIMISTIC_RUNS: u32 = 3;

pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) config: RuntimeConfig,
    /// The loaded services by name: each name's versions (one per
    /// series), oldest first.
    pub(crate) services: RwLock<HashMap<String, Vec<Arc<LoadedService>>>>,
    /// Compiled, pre-instantiated components by the sha-256 of their
    /// bytes: services sharing a component share one compiled copy.
    pub(crate) components: Mutex<HashMap<[u8; 32], Arc<ServiceCode>>>,
    pub(crate) steps: StepThreads,
    /// Where stateful services keep their stores; memory until the host
    /// chooses a backend.
    pub(crate) state: RwLock<Arc<dyn Backend>>,
    /// Stateful calls from outside run under the read side; a call that
    /// lost [`OPTIMISTIC_RUNS`] commits in a row runs under the write
    /// side, alone, so that no call starves under contention.
    pub(crate) exclusive: RwLock<()>,
    /// What stateful calls did to each store, for metrics.
    pub(crate) store_counts: Mutex<BTreeMap<String, StoreCount>>,
    ticker: EpochTicker,
}

impl Shared {
    pub(crate) fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let engine = Engine::new(&engine_config(&config)).map_err(RuntimeError::engine)?;
        let mut linker = Linker::new(&engine);
        Service::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(RuntimeError::engine)?;
        // Without the ticker no deadline would ever fire: refuse to start.
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick).map_err(|e| {
            RuntimeError(format!(
                "cannot start the thread that enforces deadlines: {e}"
            ))
        })?;
        let steps = StepThreads::start(config.flow_threads).map_err(|e| {
            RuntimeError(format!("cannot start the threads that run flow steps: {e}"))
        })?;
        Ok(Shared {
            engine,
            linker,
            config,
            services: RwLock::new(HashMap::new()),
            components: Mutex::new(HashMap::new()),
            steps,
            state: RwLock::new(Arc::new(MemoryBackend::new())),
            exclusive: RwLock::new(()),
            store_counts: Mutex::new(BTreeMap::new()),
            ticker,
        })
    }

    /// Adds what one run of a stateful call did to the stores' counts.
    pub(crate) fn count_stores(&self, touched: &mote_state::Committed, committed: bool) {
        let mut counts = self
            .store_counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (store, (reads, writes)) in &touched.stores {
            let count = counts.entry(store.clone()).or_default();
            count.reads += reads;
            if committed {
                count.writes += writes;
                count.commits += 1;
            } else {
                count.conflicts += 1;
            }
        }
    }

    /// The backend stateful calls use now.
    pub(crate) fn state(&self) -> Arc<dyn Backend> {
        Arc::clone(
            &self
                .state
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    pub(crate) fn lookup(&self, reference: &str) -> Option<Arc<LoadedService>> {
        let reference = ServiceRef::parse(reference);
        let services = self
            .services
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        reference
            .pick(
                services
                    .get(reference.name)?
                    .iter()
                    .map(|s| (&s.contract.service.version, s)),
            )
            .cloned()
    }

    /// The key of the loaded service with `contract`: its name, or
    /// `name@SERIES` while several series of that name are loaded.
    pub(crate) fn key_of(&self, contract: &mote_contract::Contract) -> String {
        let name = contract.service.name.as_str();
        let several = self
            .services
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(name)
            .is_some_and(|versions| versions.len() > 1);
        if several {
            mote_contract::versions::qualified(name, &contract.service.version)
        } else {
            name.to_string()
        }
    }

    /// The newest loaded version of `target`'s service that its range
    /// accepts, or every version loaded under that name when none does.
    pub(crate) fn lookup_matching(
        &self,
        target: &CallTarget,
    ) -> Result<Arc<LoadedService>, Vec<String>> {
        let services = self
            .services
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let versions = services
            .get(target.service.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        newest_matching(
            &target.versions,
            versions.iter().map(|s| (&s.contract.service.version, s)),
        )
        .cloned()
        .ok_or_else(|| {
            versions
                .iter()
                .map(|s| s.contract.service.version.to_string())
                .collect()
        })
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.ticker.stop();
    }
}

/// Engine settings: components, epoch deadlines, fuel, and a pool of
/// pre-reserved instance slots so that a fresh instance per call is cheap.
fn engine_config(config: &RuntimeConfig) -> Config {
    let slots = config.max_concurrent_instances.max(1);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(8))
        .total_memories(slots.saturating_mul(2))
        .total_tables(slots.saturating_mul(4))
        // Reset only the pages a call dirtied (found with PAGEMAP_SCAN where
        // the kernel has it) and keep them resident, so the next instance
        // neither page-faults them in nor pays a memset of untouched pages.
        .pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(2 * 1024 * 1024)
        .table_keep_resident(64 * 1024)
        .max_memory_size(
            usize::try_from(config.max_memory_mib * 1024 * 1024).unwrap_or(usize::MAX),
        );
    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(true)
        // Guests are synchronous; skipping the async machinery makes every
        // store and call cheaper.
        .concurrency_support(false)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    wasm
}

/// Advances the engine's epoch every tick, so a store's epoch deadline is a
/// wall-clock deadline.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine, tick: std::time::Duration) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("mote-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
