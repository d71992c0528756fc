//! The mote contract: parse, validate and compile `contract.toml`.
//!
//! A contract is the only part of a nanoservice people read. This crate
//! turns its TOML into a [`Contract`] whose JSON Schemas and CEL
//! expressions are compiled and ready to evaluate, after checking that it
//! is well-formed and agrees with itself (every example is checked against
//! the schemas, `requires`, `ensures` and the error partition). Every
//! problem becomes a [`Diagnostic`] pointing at the offending text.
//!
//! Architecture invariant: this crate does no I/O beyond reading the one
//! file it is given, and knows nothing of WebAssembly, HTTP or the CLI.
//!
//! ```
//! use mote_contract::{SourceFile, check_source};
//!
//! let text = r#"
//! [service]
//! name = "math.double"
//! version = "1.0.0"
//! summary = "Twice a number."
//!
//! [input]
//! type = "integer"
//!
//! [output]
//! type = "integer"
//!
//! [behavior]
//! ensures = ["output == input * 2"]
//!
//! [[example]]
//! input = 21
//! output = 42
//! "#;
//! let checked = check_source(SourceFile::new("contract.toml", text));
//! let contract = checked.contract.expect("a valid contract");
//! assert_eq!(contract.service.name.as_str(), "math.double");
//! assert!(contract.is_pure());
//! ```

mod canonical;
mod consistency;
mod cost;
mod diagnostic;
mod document;
mod expr;
mod graph;
mod hash;
mod model;
mod parse;
mod schema;
mod source;
mod stores;
pub mod versions;

use std::path::Path;
use std::sync::Arc;

pub use canonical::canonicalize_numbers;
pub use cost::{
    DEFAULT_INPUT_BUDGET_BYTES, OUTPUT_BUDGET_BYTES, STEPS_PER_BYTE, STORE_VALUE_BYTES,
};
pub use diagnostic::{Diagnostic, DiagnosticKind, Severity};
pub use expr::{Bindings, CompileError, EXTENSION_FUNCTIONS, EvalError, Expr};
pub use graph::{CallGraph, Edge, GraphProblem, OlderSeriesInUse};
pub use hash::{ContractHash, canonical_json};
pub use model::{
    Behavior, CallTarget, Contract, Effects, ErrorCase, ErrorMapping, Example, Expected, Flow,
    FlowStep, Limits, ServiceInfo, ServiceName, Store, StoreAccess, UnmetRequires, Visibility,
    WhenFailed,
};
pub use parse::PLATFORM_CODES;
pub use schema::{
    ANNOTATION_KEYWORDS, SUPPORTED_FORMATS, SUPPORTED_KEYWORDS, Schema, SchemaViolation,
};
/// The semver crate whose versions and ranges contracts carry.
pub use semver;
pub use source::{LineColumn, SourceFile};
pub use stores::{MemoryStores, STATE_NAMES, StoreRead};

/// The outcome of checking one contract file.
#[derive(Debug)]
pub struct Checked {
    /// The file that was checked.
    pub file: Arc<SourceFile>,
    /// The compiled contract, present exactly when no diagnostic is an error.
    pub contract: Option<Contract>,
    /// Every problem found, errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks contract text already in memory.
pub fn check_source(file: SourceFile) -> Checked {
    let file = Arc::new(file);
    let (contract, mut diagnostics) = parse::parse(&file);
    diagnostics.sort_by_key(|d| d.span().map_or(0, |s| s.start));
    Checked {
        file,
        contract,
        diagnostics,
    }
}

/// Reads and checks a contract file. A file that cannot be read yields a
/// single [`DiagnosticKind::Io`] diagnostic.
pub fn check_file(path: &Path) -> Checked {
    match SourceFile::read(path) {
        Ok(file) => check_source(file),
        Err(e) => {
            let file = Arc::new(SourceFile::new(path, String::new()));
            let diagnostic = Diagnostic::error(
                &file,
                DiagnosticKind::Io,
                format!("cannot read {}: {e}", path.display()),
            );
            Checked {
                file,
                contract: None,
                diagnostics: vec![diagnostic],
            }
        }
    }
}

/// Why [`load`] produced no contract.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The contract has errors; each is a diagnostic.
    #[error("{} has {} error(s)", .path.display(), .diagnostics.iter().filter(|d| d.is_error()).count())]
    Invalid {
        /// The contract file.
        path: std::path::PathBuf,
        /// Every problem found.
        diagnostics: Vec<Diagnostic>,
    },
}

/// Reads, checks and compiles a contract, for callers that only want a
/// usable contract (the runtime, the verifier).
pub fn load(path: &Path) -> Result<Contract, LoadError> {
    let checked = check_file(path);
    checked.contract.ok_or_else(|| LoadError::Invalid {
        path: path.to_path_buf(),
        diagnostics: checked.diagnostics,
    })
}
