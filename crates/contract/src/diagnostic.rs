//! Problems found in a contract, each pointing at the text that causes it.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use crate::source::{LineColumn, SourceFile};

/// What kind of problem a [`Diagnostic`] reports.
///
/// The kebab-case name ([`DiagnosticKind::as_str`]) is stable: tools and
/// tests match on it, and it is shown as `mote::<name>` next to the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiagnosticKind {
    /// The file could not be read.
    Io,
    /// The file is not valid TOML.
    TomlSyntax,
    /// A key that the contract format does not define.
    UnknownKey,
    /// A key that must be present is absent.
    MissingKey,
    /// A value of the wrong TOML type (a string where a table belongs, ...).
    WrongType,
    /// A value of the right type that is out of range or malformed.
    InvalidValue,
    /// A service name that is not dotted lowercase.
    InvalidName,
    /// A version that is not semver.
    InvalidVersion,
    /// A call target that is not `name@semver-range`.
    InvalidCall,
    /// A JSON Schema keyword (or format) that mote cannot both validate and
    /// generate data for.
    SchemaUnsupported,
    /// A JSON Schema that is malformed: bad keyword value, dangling `$ref`,
    /// a pattern that is not a regular expression.
    SchemaInvalid,
    /// A CEL expression that does not parse.
    CelSyntax,
    /// A CEL expression that names a variable not in scope where it is used.
    CelUnknownVariable,
    /// A CEL expression that calls a function CEL and mote do not provide.
    CelUnknownFunction,
    /// A CEL expression whose worst case, on the largest inputs the
    /// contract allows, exceeds mote's step limit.
    CelCost,
    /// A CEL expression that fails when evaluated on an example, or gives
    /// something other than true or false where a condition is expected.
    CelEvaluation,
    /// Two errors share one code.
    DuplicateErrorCode,
    /// An error of a pure service without a `when` condition.
    MissingWhen,
    /// An example whose input breaks the input schema or a `requires`.
    ExampleInput,
    /// An example whose output breaks the output schema.
    ExampleOutput,
    /// An example whose output breaks an `ensures`.
    ExampleEnsures,
    /// An example whose expected error disagrees with the error partition:
    /// unknown code, its `when` does not hold, or an earlier one does.
    ExampleError,
    /// A success example for an input on which some error's `when` holds.
    ExampleNotSuccess,
    /// A `[flow]` that does not hang together (duplicate step ids, an
    /// `on_error` entry that is malformed or maps to an undeclared code).
    InvalidFlow,
    /// A placement file puts one service on two hosts.
    PlacedTwice,
    /// A placement file leaves a service of the app on no host.
    Unplaced,
    /// A store is shared by services that a placement puts on different
    /// hosts, with a backend that cannot be shared.
    StoreSplit,
    /// A condition uses a store other than by key, or one the contract
    /// does not declare.
    StoreRead,
    /// A placement file names a service the app does not have.
    UnknownService,
}

impl DiagnosticKind {
    /// The stable kebab-case name of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            DiagnosticKind::Io => "io",
            DiagnosticKind::TomlSyntax => "toml-syntax",
            DiagnosticKind::UnknownKey => "unknown-key",
            DiagnosticKind::MissingKey => "missing-key",
            DiagnosticKind::WrongType => "wrong-type",
            DiagnosticKind::InvalidValue => "invalid-value",
            DiagnosticKind::InvalidName => "invalid-name",
            DiagnosticKind::InvalidVersion => "invalid-version",
            DiagnosticKind::InvalidCall => "invalid-call",
            DiagnosticKind::SchemaUnsupported => "schema-unsupported",
            DiagnosticKind::SchemaInvalid => "schema-invalid",
            DiagnosticKind::CelSyntax => "cel-syntax",
            DiagnosticKind::CelUnknownVariable => "cel-unknown-variable",
            DiagnosticKind::CelUnknownFunction => "cel-unknown-function",
            DiagnosticKind::CelCost => "cel-cost",
            DiagnosticKind::CelEvaluation => "cel-evaluation",
            DiagnosticKind::DuplicateErrorCode => "duplicate-error-code",
            DiagnosticKind::MissingWhen => "missing-when",
            DiagnosticKind::ExampleInput => "example-input",
            DiagnosticKind::ExampleOutput => "example-output",
            DiagnosticKind::ExampleEnsures => "example-ensures",
            DiagnosticKind::ExampleError => "example-error",
            DiagnosticKind::ExampleNotSuccess => "example-not-success",
            DiagnosticKind::InvalidFlow => "invalid-flow",
            DiagnosticKind::PlacedTwice => "placed-twice",
            DiagnosticKind::Unplaced => "unplaced",
            DiagnosticKind::StoreSplit => "store-split",
            DiagnosticKind::StoreRead => "store-read",
            DiagnosticKind::UnknownService => "unknown-service",
        }
    }
}

impl fmt::Display for DiagnosticKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a diagnostic stops the contract from being used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The contract is refused.
    Error,
    /// The contract is accepted, but something is probably wrong.
    Warning,
}

/// One problem in one contract file: what is wrong, where, and what to do.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    kind: DiagnosticKind,
    severity: Severity,
    message: String,
    span: Option<Range<usize>>,
    label: Option<String>,
    hint: Option<String>,
    file: Arc<SourceFile>,
}

impl Diagnostic {
    /// An error of `kind` in `file`; place it with [`Diagnostic::at`].
    pub fn error(file: &Arc<SourceFile>, kind: DiagnosticKind, message: impl Into<String>) -> Self {
        Diagnostic {
            kind,
            severity: Severity::Error,
            message: message.into(),
            span: None,
            label: None,
            hint: None,
            file: Arc::clone(file),
        }
    }

    /// Turns this diagnostic into a warning.
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// Points the diagnostic at a byte range of its file.
    pub fn at(mut self, span: Range<usize>) -> Self {
        self.span = Some(span);
        self
    }

    /// Sets the short text shown under the highlighted span.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets the one-line advice on how to fix the problem.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> DiagnosticKind {
        self.kind
    }

    /// Whether the problem refuses the contract.
    pub fn severity(&self) -> Severity {
        self.severity
    }

    /// Whether this is an error rather than a warning.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The one-sentence description of the problem.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The advice on how to fix it, if there is one.
    pub fn hint_text(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// The byte range the problem is about, if it has one.
    pub fn span(&self) -> Option<Range<usize>> {
        self.span.clone()
    }

    /// The file the problem is in.
    pub fn file(&self) -> &SourceFile {
        &self.file
    }

    /// Where the problem starts, as line and column.
    pub fn start(&self) -> Option<LineColumn> {
        self.span.as_ref().map(|s| self.file.line_column(s.start))
    }

    /// A machine-readable form, for `--format json`.
    pub fn to_json(&self) -> serde_json::Value {
        let start = self.start();
        let end = self.span.as_ref().map(|s| self.file.line_column(s.end));
        serde_json::json!({
            "file": self.file.path().display().to_string(),
            "kind": self.kind.as_str(),
            "severity": self.severity,
            "message": self.message,
            "line": start.map(|p| p.line),
            "column": start.map(|p| p.column),
            "end_line": end.map(|p| p.line),
            "end_column": end.map(|p| p.column),
            "span": self.span.as_ref().map(|s| [s.start, s.end]),
            "label": self.label,
            "hint": self.hint,
        })
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("mote::{}", self.kind)))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.hint
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&*self.file)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let span = self.span.clone()?;
        let label = miette::LabeledSpan::new_primary_with_span(
            self.label.clone(),
            miette::SourceSpan::from(span.start..span.end.max(span.start)),
        );
        Some(Box::new(std::iter::once(label)))
    }
}
