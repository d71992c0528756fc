//! The runtime's one typed configuration, built once.

use std::path::PathBuf;
use std::time::Duration;

use mote_contract::Limits;

/// How a [`Runtime`](crate::Runtime) is set up: defaults for limits a
/// contract leaves open, the size of the instance pool, where compiled
/// components are cached, and how much of the contract each call enforces.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Limits for contracts that do not set them.
    pub default_limits: ResolvedLimits,
    /// Instances that can be alive at once (nested calls count too); the
    /// pooling allocator reserves this many slots up front.
    pub max_concurrent_instances: u32,
    /// The largest linear memory any service may ask for, in MiB; each pool
    /// slot reserves this much address space.
    pub max_memory_mib: u64,
    /// How deep in-process calls may nest before the innermost is refused.
    pub max_call_depth: u32,
    /// Where precompiled components are cached; `None` compiles in memory
    /// every time.
    pub cache_dir: Option<PathBuf>,
    /// How often the epoch ticks; deadlines are rounded up to it.
    pub epoch_tick: Duration,
    /// Whether every success is checked against `ensures` and the error
    /// partition too, not only the output schema and declared codes.
    pub check_postconditions: bool,
    /// The most log text one call may write (bytes); the rest is dropped
    /// and counted in one closing note.
    pub max_log_bytes_per_call: usize,
    /// The most log lines one call may write; the rest is dropped and
    /// counted in one closing note.
    pub max_log_lines_per_call: usize,
    /// The largest answer (output JSON or error message) a guest may give,
    /// in bytes; a larger one is `resource_exhausted`.
    pub max_answer_bytes: usize,
    /// How many threads run the extra steps of a flow's wave alongside the
    /// calling thread; 0 runs every wave's steps one after another.
    pub flow_threads: usize,
    /// How many times a call to a stateful service is run again when a
    /// concurrent call changed what it read; past that it fails with
    /// `conflict`.
    pub max_conflict_reruns: u32,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            default_limits: ResolvedLimits::default(),
            max_concurrent_instances: 128,
            max_memory_mib: 512,
            max_call_depth: 16,
            cache_dir: None,
            epoch_tick: Duration::from_millis(1),
            check_postconditions: true,
            max_log_bytes_per_call: 16 * 1024,
            max_log_lines_per_call: 64,
            max_answer_bytes: 4 * 1024 * 1024,
            flow_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_conflict_reruns: 16,
        }
    }
}

/// Limits with every value decided: the contract's where it gives one, the
/// runtime's default otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedLimits {
    /// Deadline for one call.
    pub timeout: Duration,
    /// Linear memory cap in bytes.
    pub memory_bytes: u64,
    /// Instruction budget for one call.
    pub fuel: u64,
    /// Largest accepted input in bytes.
    pub max_input_bytes: u64,
}

impl Default for ResolvedLimits {
    fn default() -> Self {
        ResolvedLimits {
            timeout: Duration::from_millis(1_000),
            memory_bytes: 64 * 1024 * 1024,
            fuel: 10_000_000_000,
            max_input_bytes: 1024 * 1024,
        }
    }
}

impl ResolvedLimits {
    /// The contract's limits over these defaults.
    pub fn resolve(limits: &Limits, defaults: &ResolvedLimits) -> ResolvedLimits {
        ResolvedLimits {
            timeout: limits
                .timeout_ms
                .map_or(defaults.timeout, Duration::from_millis),
            memory_bytes: limits
                .memory_mib
                .map_or(defaults.memory_bytes, |m| m * 1024 * 1024),
            fuel: limits.fuel.unwrap_or(defaults.fuel),
            max_input_bytes: limits.max_input_bytes.unwrap_or(defaults.max_input_bytes),
        }
    }
}
