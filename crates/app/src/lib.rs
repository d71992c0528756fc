//! An app is a folder of service folders. This crate turns one into a
//! running [`Runtime`]: it discovers the services, checks their contracts,
//! builds their components, precompiles them into the cache and loads them.
//!
//! Architecture invariant: orchestration only. Parsing belongs to
//! mote-contract, building to mote-build, running to mote-runtime.

mod remembered;

use std::path::{Path, PathBuf};

pub use remembered::{REMEMBERED_DIR, remember_pass, remembered_pass, startup_seed};

use mote_build::{BuildError, ServiceSource, TargetStatus};
use mote_contract::{CallGraph, Contract, Diagnostic, GraphProblem, versions};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mote_contract::{CallTarget, MemoryStores};
use mote_runtime::{
    CalleeDouble, CompiledCode, Failure, GuestAnswer, LoadError, LoadedArtefact, PlatformFailure,
    Runtime, RuntimeConfig, RuntimeError,
};
use mote_state::MemoryBackend;
use mote_verify::double::{DoubleAnswer, Doubles};
use mote_verify::state::StoreDraw;
use mote_verify::{Answer, Target};

/// Where an app's build output goes, unless told otherwise.
pub fn default_target_dir(app: &Path) -> PathBuf {
    app.join("target")
}

/// Something worth telling the person waiting.
#[derive(Debug)]
pub enum Progress<'a> {
    /// The guest target was missing and has been installed.
    TargetInstalled,
    /// A service is being built.
    Building(&'a ServiceSource),
    /// A service's component is loaded; `compiled` says whether the host
    /// compiled it now or found it in the cache.
    Ready {
        /// The service.
        contract: &'a Contract,
        /// The component file.
        wasm: &'a Path,
        /// Compiled now (true) or taken from the cache (false).
        compiled: bool,
    },
    /// A flow: nothing to build.
    Flow(&'a Contract),
}

/// Why an app could not be built or loaded.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A contract has errors.
    #[error("{} has errors; run `mote check` on it", .path.display())]
    Contract {
        /// The contract file.
        path: PathBuf,
        /// Its diagnostics.
        diagnostics: Vec<Diagnostic>,
    },
    /// Building failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The runtime refused a component.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The runtime did not start.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The folder holds no service.
    #[error("no contract.toml found under {}", .0.display())]
    Empty(PathBuf),
    /// The app's calls do not fit together (missing callees, versions
    /// outside a caller's range, cycles, …).
    #[error("the app's calls do not fit together:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Graph(Vec<GraphProblem>),
    /// Two services of the app are versions of one name in one series.
    #[error("two services are `{name}` in series {series}: {} and {}; versions of one service sit side by side only in different series (e.g. 1.x beside 2.x)", .first.display(), .second.display())]
    DuplicateName {
        /// The name.
        name: String,
        /// The series both are in.
        series: String,
        /// One contract.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// Two services are built from cargo packages of one name: their
    /// components would overwrite each other.
    #[error("{} and {} are both the cargo package `{package}`, so their components would overwrite each other; rename one in its Cargo.toml", .first.display(), .second.display())]
    DuplicatePackage {
        /// The package name.
        package: String,
        /// One service folder.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// A service folder has a contract but no code and is not a flow.
    #[error("{} has no Cargo.toml next to its contract, so there is nothing to build", .0.display())]
    NoImplementation(PathBuf),
    /// Serving prebuilt artefacts only, and a component has not been built.
    #[error("{} has not been built ({} is missing); run `mote build` first", .service.display(), .component.display())]
    NotBuilt {
        /// The service folder.
        service: PathBuf,
        /// The component that should be there.
        component: PathBuf,
    },
}

/// A service of the app with its checked contract and built component.
#[derive(Debug, Clone)]
pub struct BuiltService {
    /// Where it lives.
    pub source: ServiceSource,
    /// How the app names it: its name, or `name@SERIES` when the app holds
    /// several series of that name (see `mote_contract::versions`).
    pub key: String,
    /// Its contract, read and checked once.
    pub contract: Arc<Contract>,
    /// Its component; `None` for a flow.
    pub wasm: Option<PathBuf>,
}

/// A service loaded into a runtime: what it was built from, and the
/// identity of what runs.
#[derive(Debug, Clone)]
pub struct LoadedService {
    /// The service as built.
    pub built: BuiltService,
    /// The component and compiled code that run; `None` for a flow.
    pub artefact: Option<LoadedArtefact>,
}

impl LoadedService {
    /// How the app names the service: its name, or `name@SERIES` when
    /// the app holds several series of it.
    pub fn key(&self) -> &str {
        &self.built.key
    }

    /// The contract.
    pub fn contract(&self) -> &Contract {
        &self.built.contract
    }

    /// The hash an attestation binds besides the contract's: the
    /// component's sha-256, or for a flow (whose implementation is its
    /// `[flow]`, already covered by the contract's hash) the contract's.
    pub fn artefact_sha256(&self) -> String {
        match &self.artefact {
            Some(artefact) => artefact.component_sha256.clone(),
            None => self.built.contract.hash.to_string(),
        }
    }
}

/// Checks every contract and builds every component of the app. Stops at
/// the first service that fails, naming it.
pub fn build(
    app: &Path,
    target_dir: &Path,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Vec<BuiltService>, AppError> {
    Ok(build_where(app, target_dir, progress, &|_| true)?.here)
}

/// An app split by placement: the services this host serves, built, and
/// the contracts of those other hosts serve.
#[derive(Debug, Clone)]
pub struct Split {
    /// The services served here.
    pub here: Vec<BuiltService>,
    /// The contracts of the services served elsewhere, which this host
    /// calls but neither builds nor serves.
    pub elsewhere: Vec<Arc<Contract>>,
}

/// Checks every contract of the app (the whole app: the call graph spans
/// hosts) and builds the components of the services `here` picks by name;
/// the others are left to the hosts that serve them.
pub fn build_where(
    app: &Path,
    target_dir: &Path,
    progress: &mut dyn FnMut(Progress<'_>),
    here: &dyn Fn(&str) -> bool,
) -> Result<Split, AppError> {
    let (checked, elsewhere) = split(check(app)?, here);
    if checked.iter().any(|c| c.source.package.is_some())
        && mote_build::ensure_wasm_target()? == TargetStatus::Installed
    {
        progress(Progress::TargetInstalled);
    }
    let mut built = Vec::with_capacity(checked.len());
    for Checked {
        source,
        contract,
        key,
    } in checked
    {
        let wasm = if contract.flow.is_some() {
            None
        } else {
            if source.package.is_none() {
                return Err(AppError::NoImplementation(source.dir));
            }
            progress(Progress::Building(&source));
            mote_build::build(&source, target_dir)?
        };
        built.push(BuiltService {
            source,
            key,
            contract: Arc::new(contract),
            wasm,
        });
    }
    Ok(Split {
        here: built,
        elsewhere,
    })
}

/// The checked services `here` picks by name, and the contracts of the
/// others.
fn split(checked: Vec<Checked>, here: &dyn Fn(&str) -> bool) -> (Vec<Checked>, Vec<Arc<Contract>>) {
    let (mine, theirs): (Vec<_>, Vec<_>) = checked
        .into_iter()
        .partition(|checked| here(checked.contract.service.name.as_str()));
    (
        mine,
        theirs.into_iter().map(|c| Arc::new(c.contract)).collect(),
    )
}

/// Like [`build`], but never runs cargo: every component must already be
/// in `target_dir`. For hosts that serve prebuilt, attested artefacts, so
/// that no service's build scripts or macros run on them.
pub fn locate(app: &Path, target_dir: &Path) -> Result<Vec<BuiltService>, AppError> {
    Ok(locate_where(app, target_dir, &|_| true)?.here)
}

/// [`locate`] for the services `here` picks, as [`build_where`] builds
/// them.
pub fn locate_where(
    app: &Path,
    target_dir: &Path,
    here: &dyn Fn(&str) -> bool,
) -> Result<Split, AppError> {
    let (checked, elsewhere) = split(check(app)?, here);
    let mut built = Vec::with_capacity(checked.len());
    for Checked {
        source,
        contract,
        key,
    } in checked
    {
        let wasm = if contract.flow.is_some() {
            None
        } else {
            let Some(package) = &source.package else {
                return Err(AppError::NoImplementation(source.dir));
            };
            let component = mote_build::artefact(target_dir, package);
            if !component.is_file() {
                return Err(AppError::NotBuilt {
                    service: source.dir,
                    component,
                });
            }
            Some(component)
        };
        built.push(BuiltService {
            source,
            key,
            contract: Arc::new(contract),
            wasm,
        });
    }
    Ok(Split {
        here: built,
        elsewhere,
    })
}

/// A service whose contract passed the checks, with its key in the app.
struct Checked {
    source: ServiceSource,
    contract: Contract,
    key: String,
}

/// Discovers the app's services and checks each contract, then the app as
/// a whole (duplicate names, the call graph).
fn check(app: &Path) -> Result<Vec<Checked>, AppError> {
    let sources = mote_build::discover(app)?;
    if sources.is_empty() {
        return Err(AppError::Empty(app.to_path_buf()));
    }
    let mut contracts = Vec::with_capacity(sources.len());
    for source in &sources {
        let checked = mote_contract::check_file(&source.contract);
        match checked.contract {
            Some(contract) => contracts.push(contract),
            None => {
                return Err(AppError::Contract {
                    path: source.contract.clone(),
                    diagnostics: checked.diagnostics,
                });
            }
        }
    }
    for (i, contract) in contracts.iter().enumerate() {
        let series = versions::series(&contract.service.version);
        if let Some(j) = contracts[..i].iter().position(|c| {
            c.service.name == contract.service.name
                && versions::series(&c.service.version) == series
        }) {
            return Err(AppError::DuplicateName {
                name: contract.service.name.to_string(),
                series,
                first: sources[j].contract.clone(),
                second: sources[i].contract.clone(),
            });
        }
        if let Some(package) = &sources[i].package
            && let Some(j) = sources[..i]
                .iter()
                .position(|s| s.package.as_ref() == Some(package))
        {
            return Err(AppError::DuplicatePackage {
                package: package.clone(),
                first: sources[j].dir.clone(),
                second: sources[i].dir.clone(),
            });
        }
    }
    let problems = CallGraph::new(&contracts).problems();
    if !problems.is_empty() {
        return Err(AppError::Graph(problems));
    }
    let keys = versions::keys(
        contracts
            .iter()
            .map(|c| (c.service.name.as_str(), &c.service.version)),
    );
    Ok(sources
        .into_iter()
        .zip(contracts)
        .zip(keys)
        .map(|((source, contract), key)| Checked {
            source,
            contract,
            key,
        })
        .collect())
}

/// Builds the app and loads every service, components and flows, into a
/// new runtime.
pub fn load(
    app: &Path,
    target_dir: &Path,
    config: RuntimeConfig,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<(Runtime, Vec<LoadedService>), AppError> {
    let built = build(app, target_dir, progress)?;
    load_built(built, target_dir, config, progress, &mut |_, _| {
        CompiledCode::Cached
    })
}

/// Loads services already built by [`build`] (or found by [`locate`])
/// into a new runtime. Each component file is read once: the bytes hashed
/// are the bytes compiled. `code_for` is asked, for each component (with
/// its sha-256), which compiled code may run: an attested component runs
/// only the code its attestation binds, or code compiled afresh.
pub fn load_built(
    built: Vec<BuiltService>,
    target_dir: &Path,
    mut config: RuntimeConfig,
    progress: &mut dyn FnMut(Progress<'_>),
    code_for: &mut dyn FnMut(&BuiltService, &str) -> CompiledCode,
) -> Result<(Runtime, Vec<LoadedService>), AppError> {
    if config.cache_dir.is_none() {
        config.cache_dir = Some(target_dir.join("mote-cache"));
    }
    let runtime = Runtime::new(config)?;
    let mut loaded = Vec::with_capacity(built.len());
    for service in built {
        let Some(wasm) = &service.wasm else {
            progress(Progress::Flow(&service.contract));
            runtime.load_flow(Arc::clone(&service.contract))?;
            loaded.push(LoadedService {
                built: service,
                artefact: None,
            });
            continue;
        };
        let bytes = std::fs::read(wasm).map_err(|source| LoadError::Io {
            path: wasm.clone(),
            source,
        })?;
        let component_sha256 = mote_runtime::sha256(&bytes);
        let code = code_for(&service, &component_sha256);
        let artefact = runtime.load_with(Arc::clone(&service.contract), &bytes, code)?;
        progress(Progress::Ready {
            contract: &service.contract,
            wasm,
            compiled: artefact.compiled,
        });
        loaded.push(LoadedService {
            built: service,
            artefact: Some(artefact),
        });
    }
    Ok((runtime, loaded))
}

/// A service loaded in a runtime, as a verification target: its guest's
/// own answers, before the call path's checks on the way out, so that the
/// verifier can say exactly which promise an answer breaks.
///
/// A stateful service runs each call against stores of its own, in
/// memory: the contents mote-verify draws for the input (or an example's
/// `before`), and answers [`Answer::Stateful`] with what the call left.
pub struct InProcess<'a> {
    runtime: &'a Runtime,
    service: String,
    doubles: Option<Arc<dyn CalleeDouble>>,
    counts: Option<Arc<DoubleCounts>>,
    stores: Option<StoreDraw>,
}

impl<'a> InProcess<'a> {
    /// The service `service` of `runtime`; its calls reach the real
    /// callees.
    pub fn new(runtime: &'a Runtime, service: impl Into<String>) -> Self {
        InProcess {
            runtime,
            service: service.into(),
            doubles: None,
            counts: None,
            stores: None,
        }
    }

    /// The service `service` of `runtime`, alone: its calls are answered
    /// by doubles built from the callees' contracts, fixed by `seed`.
    pub fn isolated(runtime: &'a Runtime, service: impl Into<String>, seed: u64) -> Self {
        let counts = Arc::new(DoubleCounts::default());
        let doubles: Arc<dyn CalleeDouble> = Arc::new(ContractDoubles {
            runtime: runtime.clone(),
            doubles: Doubles::new(seed),
            counts: Arc::clone(&counts),
        });
        InProcess {
            runtime,
            service: service.into(),
            doubles: Some(doubles),
            counts: Some(counts),
            stores: None,
        }
    }

    /// The service `service` of `runtime` as verification sees it: alone
    /// (doubles for its callees, fixed by `seed`) when it makes calls or
    /// is a flow, as it is otherwise.
    /// A stateful service starts each call from stores drawn for its input
    /// by mote-verify with the same `seed` (the run's), so that the
    /// verifier draws the same ones when it judges.
    pub fn alone(runtime: &'a Runtime, contract: &Contract, seed: u64) -> Self {
        // Its series named, so that the version verified is this one
        // whatever else the runtime holds.
        let name = versions::qualified(contract.service.name.as_str(), &contract.service.version);
        let target = if contract.flow.is_some() || !contract.effects.calls.is_empty() {
            InProcess::isolated(runtime, name, seed)
        } else {
            InProcess::new(runtime, name)
        };
        target.with_stores(contract, seed)
    }

    /// This target, starting each call of a stateful service from stores
    /// drawn for its input with `seed`.
    pub fn with_stores(mut self, contract: &Contract, seed: u64) -> Self {
        self.stores = StoreDraw::new(contract, seed);
        self
    }

    /// Runs `text` against stores holding `before`; the answer with the
    /// stores before and after.
    fn call_text_from(&self, text: &str, before: &MemoryStores) -> Answer {
        let backend = Arc::new(MemoryBackend::with_contents(before));
        let answer = self.runtime.call_unchecked_in(
            &self.service,
            text,
            self.doubles.as_ref(),
            Arc::clone(&backend) as Arc<dyn mote_state::Backend>,
        );
        Answer::Stateful {
            answer: Box::new(plain_answer(answer)),
            before: before.clone(),
            after: backend.contents(),
        }
    }

    /// How the service's calls were answered so far (`None` when they
    /// reach the real callees).
    pub fn double_counts(&self) -> Option<&DoubleCounts> {
        self.counts.as_deref()
    }
}

/// How the calls of a service verified alone were answered.
#[derive(Debug, Default)]
pub struct DoubleCounts {
    /// Successes made up from the callee's contract.
    pub outputs: AtomicU64,
    /// Declared errors of the callee (due, from an example, or injected).
    pub errors: AtomicU64,
    /// Inputs the callee's contract refuses.
    pub refused: AtomicU64,
    /// Calls the double could not answer, so the real callee did.
    pub declined: AtomicU64,
}

/// The runtime's [`CalleeDouble`] over mote-verify's doubles: callee
/// contracts come from the runtime's loaded services.
struct ContractDoubles {
    runtime: Runtime,
    doubles: Doubles,
    counts: Arc<DoubleCounts>,
}

impl CalleeDouble for ContractDoubles {
    fn answer(
        &self,
        target: &CallTarget,
        input: &str,
    ) -> Option<Result<serde_json::Value, Failure>> {
        // A callee that is not loaded, or not in the range, is the real
        // call path's to report.
        let callee = self.runtime.contract_for(target)?;
        let count = |counter: &AtomicU64| counter.fetch_add(1, Ordering::Relaxed);
        let invalid = |message: String| Failure::Platform {
            kind: PlatformFailure::InvalidInput,
            message,
        };
        let value: serde_json::Value = match serde_json::from_str(input) {
            Ok(value) => value,
            Err(e) => {
                count(&self.counts.refused);
                return Some(Err(invalid(format!("input is not JSON: {e}"))));
            }
        };
        Some(match self.doubles.answer(&callee, &value) {
            DoubleAnswer::Output(output) => {
                count(&self.counts.outputs);
                Ok(output)
            }
            DoubleAnswer::Error { code, message } => {
                count(&self.counts.errors);
                let status = callee.error(&code).map_or(422, |e| e.status);
                Err(Failure::Declared {
                    code,
                    message,
                    status,
                })
            }
            DoubleAnswer::InvalidInput(message) => {
                count(&self.counts.refused);
                Err(invalid(message))
            }
            DoubleAnswer::Declined => {
                count(&self.counts.declined);
                return None;
            }
        })
    }
}

impl Target for InProcess<'_> {
    fn call(&self, input: &serde_json::Value) -> Answer {
        self.call_text(&input.to_string())
    }

    /// The text goes to the runtime as it is, so that its admission
    /// (canonical numbers, the schema) is what is exercised.
    fn call_text(&self, text: &str) -> Answer {
        if let Some(draw) = &self.stores {
            // The stores depend on the value, not on how it is written.
            let before = match serde_json::from_str::<serde_json::Value>(text) {
                Ok(mut value) => {
                    mote_contract::canonicalize_numbers(&mut value);
                    draw.before(&value)
                }
                Err(_) => MemoryStores::default(),
            };
            return self.call_text_from(text, &before);
        }
        plain_answer(match &self.doubles {
            Some(doubles) => self.runtime.call_isolated(&self.service, text, doubles),
            None => self.runtime.call_unchecked(&self.service, text),
        })
    }

    fn call_from(&self, input: &serde_json::Value, before: &MemoryStores) -> Answer {
        self.call_text_from(&input.to_string(), before)
    }

    fn call_sharing(
        &self,
        inputs: &[serde_json::Value],
        before: &MemoryStores,
        together: bool,
    ) -> Option<(Vec<Answer>, MemoryStores)> {
        let memory = Arc::new(MemoryBackend::with_contents(before));
        let backend: Arc<dyn mote_state::Backend> = Arc::clone(&memory) as _;
        let (runtime, service, doubles) = (self.runtime, self.service.as_str(), &self.doubles);
        let one = |input: &serde_json::Value| {
            plain_answer(runtime.call_unchecked_in(
                service,
                &input.to_string(),
                doubles.as_ref(),
                Arc::clone(&backend),
            ))
        };
        let answers = if together {
            std::thread::scope(|scope| {
                let calls: Vec<_> = inputs
                    .iter()
                    .map(|input| scope.spawn(move || one(input)))
                    .collect();
                calls
                    .into_iter()
                    .map(|call| {
                        call.join().unwrap_or_else(|_| Answer::Protocol {
                            message: "a thread sending a call panicked".into(),
                        })
                    })
                    .collect()
            })
        } else {
            inputs.iter().map(one).collect()
        };
        Some((answers, memory.contents()))
    }
}

/// The runtime's unchecked answer as the verifier sees it.
fn plain_answer(answer: Result<GuestAnswer, Failure>) -> Answer {
    match answer {
        Ok(GuestAnswer::Output(text)) => {
            Answer::Output(serde_json::from_str(&text).map_err(|_| text))
        }
        Ok(GuestAnswer::Error { code, message }) => Answer::Error { code, message },
        Err(failure) => Answer::Platform {
            code: failure.code().to_string(),
            message: failure.message().to_string(),
        },
    }
}
