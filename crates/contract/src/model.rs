//! The typed contract: what a service promises, after parsing and
//! compilation. Everything here has been checked; the runtime and the
//! verifier read it and never re-parse the TOML.

use std::fmt;
use std::path::PathBuf;

use crate::expr::{Bindings, EvalError, Expr};
use crate::hash::ContractHash;
use crate::schema::Schema;
use crate::stores::MemoryStores;

/// A checked, compiled contract: schemas and expressions ready to evaluate.
#[derive(Debug)]
pub struct Contract {
    /// Name, version and summary.
    pub service: ServiceInfo,
    /// What the service accepts.
    pub input: Schema,
    /// What the service returns on success.
    pub output: Schema,
    /// Every failure the service may return, in the order they are tried:
    /// the first whose `when` holds is the one due.
    pub errors: Vec<ErrorCase>,
    /// Preconditions and postconditions.
    pub behavior: Behavior,
    /// Concrete input → outcome pairs, already checked against the rest.
    pub examples: Vec<Example>,
    /// Everything beyond computation the service may do.
    pub effects: Effects,
    /// Resource limits; `None` means the host's default.
    pub limits: Limits,
    /// The stores the service keeps state in (`[store.NAME]`), by name.
    pub stores: Vec<Store>,
    /// The composition of other services, for a flow contract.
    pub flow: Option<Flow>,
    /// The canonical hash attestations bind to.
    pub hash: ContractHash,
    /// The contract's meaning as JSON, exactly what the hash covers: for
    /// catalogs and tools that show a contract without its TOML form.
    pub json: serde_json::Value,
    /// The file the contract was loaded from.
    pub path: PathBuf,
}

impl Contract {
    /// A pure service has no effects and no flow: same input, same output.
    pub fn is_pure(&self) -> bool {
        self.flow.is_none() && self.effects.is_empty() && self.stores.is_empty()
    }

    /// Whether this service may call `callee` at `version`: through
    /// `effects.calls` or as a step of its flow, with a range that accepts
    /// that version.
    pub fn declares_call(&self, callee: &ServiceName, version: &semver::Version) -> bool {
        self.effects
            .calls
            .iter()
            .chain(
                self.flow
                    .iter()
                    .flat_map(|f| f.steps.iter().map(|s| &s.call)),
            )
            .any(|c| c.service == *callee && c.versions.matches(version))
    }

    /// The declared error with this code, if any.
    pub fn error(&self, code: &str) -> Option<&ErrorCase> {
        self.errors.iter().find(|e| e.code == code)
    }

    /// The error due for the input bound as `input` in `bindings`: the
    /// first error, in declaration order, whose `when` holds. Errors
    /// without `when` are never due by this rule. This is the one place the
    /// rule is written; the checker, the runtime and the verifier all ask
    /// here.
    pub fn due_error(&self, bindings: &Bindings) -> Result<Option<&ErrorCase>, WhenFailed<'_>> {
        for error in &self.errors {
            let Some(when) = &error.when else { continue };
            match when.eval_bool(bindings) {
                Ok(true) => return Ok(Some(error)),
                Ok(false) => {}
                Err(cause) => return Err(WhenFailed { error, cause }),
            }
        }
        Ok(None)
    }

    /// The first `requires` the input bound as `input` in `bindings` does
    /// not satisfy, if any: an input is admitted exactly when every
    /// `requires` evaluates to true.
    pub fn unmet_requires(&self, bindings: &Bindings) -> Option<UnmetRequires<'_>> {
        self.behavior
            .requires
            .iter()
            .find_map(|requires| match requires.eval_bool(bindings) {
                Ok(true) => None,
                Ok(false) => Some(UnmetRequires {
                    requires,
                    cause: None,
                }),
                Err(cause) => Some(UnmetRequires {
                    requires,
                    cause: Some(cause),
                }),
            })
    }
}

/// An error whose `when` cannot be evaluated on an input.
#[derive(Debug, Clone)]
pub struct WhenFailed<'a> {
    /// The error.
    pub error: &'a ErrorCase,
    /// Why its `when` failed.
    pub cause: EvalError,
}

impl fmt::Display for WhenFailed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the `when` of `{}` cannot be evaluated on this input: {}",
            self.error.code, self.cause
        )
    }
}

/// A `requires` an input does not satisfy.
#[derive(Debug, Clone)]
pub struct UnmetRequires<'a> {
    /// The precondition.
    pub requires: &'a Expr,
    /// Why it could not be evaluated; `None` when it is simply false.
    pub cause: Option<EvalError>,
}

impl fmt::Display for UnmetRequires<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = self.requires.source().trim();
        match &self.cause {
            None => write!(f, "input breaks `requires` `{source}`"),
            Some(cause) => write!(
                f,
                "`requires` `{source}` cannot be evaluated on this input: {cause}"
            ),
        }
    }
}

/// The `[service]` section.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    /// Dotted lowercase name, e.g. `tax.vat`.
    pub name: ServiceName,
    /// The contract's semver version.
    pub version: semver::Version,
    /// One line saying what the service does.
    pub summary: String,
    /// Who may call it from outside the app.
    pub visibility: Visibility,
}

/// Who may call a service from outside its app. Inside the app, a service
/// is reachable from every service that declares the call, whatever its
/// visibility.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Visibility {
    /// Only the app's own services, `mote call`, `mote verify` and the
    /// admin address reach it: the safe default.
    #[default]
    Internal,
    /// An entry point: the public address serves it to any client.
    Public,
}

impl Visibility {
    /// `"public"` or `"internal"`, as written in a contract.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Internal => "internal",
            Visibility::Public => "public",
        }
    }
}

/// A service name: dot-separated segments of lowercase ASCII letters,
/// digits, `_` and `-`, each starting with a letter (`cart.total`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceName(String);

impl ServiceName {
    /// Checks and wraps a name; the error says what is wrong with it.
    pub fn parse(name: &str) -> Result<Self, String> {
        if name.is_empty() {
            return Err("a service name cannot be empty".into());
        }
        if name.len() > 128 {
            return Err("a service name is at most 128 characters".into());
        }
        for segment in name.split('.') {
            let mut chars = segment.chars();
            match chars.next() {
                None => return Err(format!("`{name}` has an empty segment between dots")),
                Some(c) if !c.is_ascii_lowercase() => {
                    return Err(format!(
                        "segment `{segment}` of `{name}` must start with a lowercase letter"
                    ));
                }
                Some(_) => {}
            }
            if let Some(bad) = chars
                .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
            {
                return Err(format!(
                    "`{name}` contains `{bad}`; use lowercase letters, digits, `_`, `-` and dots"
                ));
            }
        }
        Ok(ServiceName(name.to_string()))
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One `[[error]]`: a failure the service may return.
#[derive(Debug)]
pub struct ErrorCase {
    /// The code clients match on, e.g. `zero_amount`.
    pub code: String,
    /// One line for people.
    pub summary: String,
    /// The HTTP status it travels with (default 422).
    pub status: u16,
    /// The condition over `input` that holds exactly when this error is due.
    /// Always present for pure services.
    pub when: Option<Expr>,
}

/// The `[behavior]` section.
#[derive(Debug, Default)]
pub struct Behavior {
    /// Preconditions over `input`; an input breaking one is rejected like a
    /// schema violation.
    pub requires: Vec<Expr>,
    /// Postconditions over `input` and `output`, for every success.
    pub ensures: Vec<Expr>,
}

/// One `[[example]]`.
#[derive(Debug, Clone)]
pub struct Example {
    /// An optional name, shown in reports.
    pub name: Option<String>,
    /// The input, as JSON.
    pub input: serde_json::Value,
    /// What the service must answer.
    pub expected: Expected,
    /// The stores as the call finds them; empty unless the example says.
    pub before: MemoryStores,
    /// The stores as the call must leave them, when the example says.
    pub after: Option<MemoryStores>,
}

/// The outcome an example demands.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    /// Success with exactly this output.
    Output(serde_json::Value),
    /// The declared error with this code.
    Error(String),
}

/// A store a service declares, `[store.NAME]`: keys to values, shared by
/// name across the services of an app that declare it, each of which
/// must declare the same key and value schemas.
#[derive(Debug)]
pub struct Store {
    /// The store's name; `before.NAME` and `after.NAME` in conditions.
    pub name: String,
    /// What a key is; always a string schema.
    pub key: Schema,
    /// What a value is.
    pub value: Schema,
    /// Whether the service may write to it.
    pub access: StoreAccess,
}

/// What a service may do with a store it declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreAccess {
    /// Read only.
    Read,
    /// Read and write.
    ReadWrite,
}

impl StoreAccess {
    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreAccess::Read => "read",
            StoreAccess::ReadWrite => "read-write",
        }
    }
}

/// The `[effects]` section: deny by default.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    /// Other services this one may call.
    pub calls: Vec<CallTarget>,
    /// Whether the service may read the real clock.
    pub clock: bool,
    /// Whether the service may read real randomness.
    pub random: bool,
}

impl Effects {
    /// No effects at all.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty() && !self.clock && !self.random
    }
}

/// A reference to another service: `name@semver-range`, e.g. `tax.vat@^1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTarget {
    /// The callee's name.
    pub service: ServiceName,
    /// The versions of the callee this caller accepts.
    pub versions: semver::VersionReq,
}

impl CallTarget {
    /// Parses `name@range`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some((name, range)) = text.split_once('@') else {
            return Err(format!(
                "`{text}` has no version range; write it as `name@range`, e.g. `{text}@^1`"
            ));
        };
        let service = ServiceName::parse(name)?;
        let versions = semver::VersionReq::parse(range)
            .map_err(|e| format!("`{range}` is not a semver range: {e}"))?;
        Ok(CallTarget { service, versions })
    }
}

impl fmt::Display for CallTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.service, self.versions)
    }
}

/// The `[limits]` section; `None` leaves the host's default in force.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock deadline for one call, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Linear memory cap, in MiB.
    pub memory_mib: Option<u64>,
    /// Instruction budget (wasmtime fuel) for one call.
    pub fuel: Option<u64>,
    /// Largest accepted input, in bytes of JSON.
    pub max_input_bytes: Option<u64>,
}

/// The `[flow]` section: a service built from calls to others.
#[derive(Debug)]
pub struct Flow {
    /// The steps; each may use `input` and the results of earlier steps.
    pub steps: Vec<FlowStep>,
    /// Builds the flow's output from `input` and every step's result.
    pub output: Expr,
    /// Maps a step's error (`service/code`) to one of the flow's own codes.
    pub on_error: Vec<ErrorMapping>,
}

/// One step of a flow.
#[derive(Debug)]
pub struct FlowStep {
    /// The name later steps and the output use for this step's result.
    pub id: String,
    /// The service called.
    pub call: CallTarget,
    /// Builds the call's input from `input` and earlier steps.
    pub input: Expr,
    /// The earlier steps `input` refers to: this step waits for them only.
    pub depends_on: Vec<String>,
}

/// One `on_error` entry of a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMapping {
    /// The called service whose error is mapped.
    pub service: ServiceName,
    /// That service's error code.
    pub code: String,
    /// The flow's own error code it becomes.
    pub becomes: String,
}
