//! The `mote` command. It parses arguments and renders results; every piece
//! of logic lives in the library crates.

mod attest;
mod check;
mod deploy;
mod diff;
mod docs;
mod graph;
mod keygen_app;
mod new;
mod otlp_http;
mod run;
mod stores;
mod strength;
mod telemetry;
mod up;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Every call allocates (a wasmtime store, JSON and CEL values); mimalloc
/// makes the call path about 6 % faster than the system allocator
/// (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mote: nanoservices you can trust without reading their code.
///
/// Each service owns one operation and is described by a contract
/// (contract.toml): JSON Schemas for input and output, every error with the
/// exact condition it is returned on, CEL pre- and postconditions, examples
/// and declared effects. mote checks contracts, runs implementations as
/// sandboxed WebAssembly components, and enforces the contract on every
/// call.
#[derive(Debug, Parser)]
#[command(name = "mote", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check contracts: well-formed, self-consistent, examples agreeing with
    /// schemas, requires, ensures and the error partition.
    ///
    /// Each PATH is a contract file or a folder searched for contract.toml
    /// files. Every problem in every contract is reported, not just the
    /// first. Exit status: 0 all contracts are valid, 1 some have errors,
    /// 2 the command could not run (no such path, no contract found).
    Check {
        /// Contract files or folders to search for contract.toml.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Output format: a report for people, or one JSON document for tools.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Also compare every contract with the same service at REF (a git
        /// revision such as `main` or `HEAD~1`, or a folder): a change
        /// whose version bump is too small for it (see `mote diff`) is an
        /// error, so CI can refuse an unannounced break.
        #[arg(long, value_name = "REF")]
        against: Option<String>,
        /// Also check a placement file against the contracts found: a
        /// service placed twice or on no host, a name the app does not
        /// have, a host without a URL are errors, each with its line.
        #[arg(long, value_name = "FILE")]
        placement: Option<PathBuf>,
    },
    /// Build every service of an app into a WebAssembly component and
    /// precompile it for this host.
    ///
    /// Installs the wasm32-unknown-unknown target if it is missing. Cargo rebuilds
    /// only what changed, and a component whose bytes did not change is
    /// never recompiled by the host (artefacts are cached by content hash
    /// under TARGET_DIR/mote-cache). Exit status: 0 built, 1 a contract or a
    /// build failed, 2 the command could not run.
    Build {
        /// The app folder (default: the current folder).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Where build output goes (default: DIR/target).
        #[arg(long, value_name = "TARGET_DIR")]
        target_dir: Option<PathBuf>,
    },
    /// Call one service of an app, through the full call path.
    ///
    /// Builds what changed, loads the app, and calls SERVICE with the JSON
    /// INPUT (from the argument, or standard input when it is omitted or
    /// `-`). Prints the output as JSON, or the failure as
    /// {"code": ..., "message": ...}. Exit status: 0 success, 1 the service
    /// returned one of its declared errors, 3 a platform failure
    /// (invalid_input, contract_violation, timeout, resource_exhausted,
    /// trap, undeclared_call, unknown_service, overloaded), 2 the command
    /// could not run.
    Call {
        /// The app folder.
        dir: PathBuf,
        /// The service: its name (`tax.vat`, the newest major when the app
        /// holds several) or one series of it (`tax.vat@1`).
        service: String,
        /// The input as JSON; omit or `-` to read standard input.
        input: Option<String>,
        /// Where build output goes (default: DIR/target).
        #[arg(long, value_name = "TARGET_DIR")]
        target_dir: Option<PathBuf>,
        /// Where stateful services keep their stores: `sqlite:PATH`,
        /// `postgres://USER:PASSWORD@HOST/DATABASE` or `memory`. Default:
        /// DIR/.mote/state.sqlite, the stores `mote up DIR` serves.
        #[arg(long, value_name = "STORE")]
        store: Option<String>,
    },
    /// Verify every service of an app against its contract, from the
    /// outside.
    ///
    /// Runs each service's examples, then inputs generated from its input
    /// schema (boundaries drawn often), through every oracle: the output
    /// schema, each ensures, the error partition, declared codes,
    /// determinism for pure services, and the limits. A failure shrinks to
    /// a minimal counterexample and prints the command that replays it. An
    /// outcome (success or a declared error) that no input reached fails
    /// the run unless allowed. Exit status: 0 every service passed, 1 some
    /// failed, 2 the command could not run. With --key, each passing
    /// service gets a signed attestation. Flows are verified like any
    /// service. With --url URL, DIR is one contract and the service behind
    /// URL is verified over HTTP, whatever it is written in. --junit FILE
    /// also writes JUnit XML. A service's calls (a flow's steps too) are
    /// answered by doubles built from the callees' contracts, so each
    /// service is verified alone (--real-callees to call the real ones).
    Verify(verify::Request),
    /// Serve an app over HTTP: build what changed, verify every service
    /// without a valid attestation, then serve them all from one process.
    ///
    /// POST /v1/{service} with JSON; failures are application/problem+json
    /// (RFC 9457) with the failure `code`. GET /v1/services lists the
    /// catalog, GET /v1/services/{name} a contract, /openapi.json the
    /// OpenAPI 3.1 document, /metrics Prometheus metrics, /healthz and
    /// /readyz health. A service that fails verification stops the start
    /// (exit 1). Ctrl-C or SIGTERM stops it after the calls in flight.
    Up(Box<up::Request>),
    /// Measure what each contract leaves unsaid.
    ///
    /// Mutates the real answers (numbers ±1 and doubled, strings changed and emptied, booleans
    /// flipped, optional members dropped, array elements removed and
    /// duplicated, a member added, success and errors swapped) and counts
    /// the mutants the contract still accepts. Each survivor is a hole: a
    /// wrong implementation answering that way would pass `mote verify`.
    /// Also reports errors whose `when` overlap. Exit status: 0, or 1 when
    /// a service scores below --min-strength; 2 the command could not run.
    Strength(strength::Request),
    /// Compare two versions of contracts: every change in meaning, whether
    /// it breaks callers, and the version bump it needs.
    ///
    /// OLD and NEW are contract files, service folders or app folders;
    /// services are matched by name (one contract on each side is compared
    /// whatever its name). Narrower inputs, wider outputs, weaker
    /// `ensures`, errors due where the old contract succeeded, changed
    /// statuses and lower limits are breaking; new effects are for review.
    /// Schema keywords are compared exactly where they can be; `pattern`
    /// and CEL conditions by differential sampling, with a witness. Exit
    /// status: 0 every change is compatible and each new version is high
    /// enough, 1 some change breaks callers (or a service is gone, or a
    /// version is too low), 2 the command could not run.
    Diff {
        /// The old contracts: a contract file or a folder.
        old: PathBuf,
        /// The new contracts: a contract file or a folder.
        new: PathBuf,
        /// Output format: a report for people, or one JSON document for CI.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Fixes the sampled values: the same seed gives the same report.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Values drawn from each side of each sampled comparison.
        #[arg(long, default_value_t = 2_000)]
        samples: usize,
    },
    /// Write the app's contracts as a static site: an index of services
    /// with their verification status and the call graph, and a page per
    /// service (schemas as tables, conditions, errors, examples, effects,
    /// limits, flow, callers and callees).
    ///
    /// Open SITE/index.html in a browser, or serve the folder with any
    /// static file server; pages need no JavaScript but for the index's
    /// search. Verification status comes from the attestations `mote
    /// verify --key` wrote. The old site is replaced only once the new one
    /// is complete. Exit status: 0 written, 1 a contract does not check,
    /// 2 the command could not run.
    Docs {
        /// The app folder (default: the current folder).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Where the site goes.
        #[arg(long, value_name = "SITE", default_value = "target/mote-docs")]
        out: PathBuf,
        /// Where the attestations are (default:
        /// DIR/target/mote-attestations).
        #[arg(long, value_name = "DIR")]
        attest_dir: Option<PathBuf>,
    },
    /// Print the app's call graph and name every problem in it.
    ///
    /// The calls are effects.calls and flow steps; the output is Mermaid
    /// or Graphviz DOT. Problems named on standard error: calls to
    /// missing services, versions outside a caller's range, errors a flow
    /// maps that its callee never returns, cycles. Exit status: 0 sound,
    /// 1 problems, 2 the command could not run.
    Graph {
        /// The app folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = graph::GraphFormat::Mermaid)]
        format: graph::GraphFormat,
        /// Draw each host of this placement file as a cluster of the
        /// services it serves, with the calls that cross hosts dashed.
        #[arg(long, value_name = "FILE")]
        placement: Option<PathBuf>,
    },
    /// Write what an orchestrator needs to run the app as a placement
    /// splits it.
    Deploy {
        #[command(subcommand)]
        target: deploy::Target,
    },
    /// Make a key pair for signing attestations (mote-key.secret and
    /// mote-key.pub; existing files are never overwritten), or with
    /// --app, the certificates for mutual TLS between an app's hosts.
    Keygen {
        /// The folder to write them to.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Make the app's certificate authority (ca.pem, ca.key; kept if
        /// the folder holds one) and a certificate and key per host of
        /// --placement (HOST.pem, HOST.key; replaced). Give each host
        /// ca.pem and its own pair, and `mote up --tls DIR`; keep ca.key
        /// off the hosts.
        #[arg(long, requires = "placement")]
        app: bool,
        /// The placement file whose hosts get certificates.
        #[arg(long, value_name = "FILE", requires = "app")]
        placement: Option<PathBuf>,
    },
    /// Work with attestations.
    Attest {
        #[command(subcommand)]
        action: AttestAction,
    },
    /// Scaffold a new service: a contract with a worked example and a Rust
    /// guest crate that builds and passes `mote check` unchanged.
    New {
        /// The service's name, dotted lowercase, e.g. pricing.discount.
        name: String,
        /// The app folder to create it in (default: the current folder).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Make it an entry point (`visibility = "public"`): served on the
        /// public address. Without it the service is internal.
        #[arg(long)]
        public: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AttestAction {
    /// Check attestations: the signature, that the signer is trusted, that
    /// the verification passed, and (when given) that the contract and the
    /// artefact are the ones attested. Exit status: 0 all valid, 1 some
    /// invalid, 2 the command could not run.
    Check {
        /// Attestation files (JSON).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// A public key file to trust (repeatable).
        #[arg(long = "trusted-key", value_name = "PUBLIC_KEY", required = true)]
        trusted_keys: Vec<PathBuf>,
        /// The contract that must be the one attested.
        #[arg(long)]
        contract: Option<PathBuf>,
        /// The component (.wasm) that must be the one attested.
        #[arg(long)]
        artefact: Option<PathBuf>,
    },
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Rendered diagnostics with source snippets.
    Human,
    /// A single JSON document on stdout.
    Json,
}

/// Exit statuses shared by every command.
pub(crate) mod exit {
    /// The command ran and found problems in its input, or the service
    /// answered with a declared error.
    pub const PROBLEMS: u8 = 1;
    /// The command could not run.
    pub const USAGE: u8 = 2;
    /// The platform failed the call.
    pub const PLATFORM: u8 = 3;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Verification provokes contract violations on purpose and reports
    // them itself; the runtime's warnings about each would only be noise.
    let default_filter = match cli.command {
        Command::Verify(_) | Command::Up(_) | Command::Strength(_) => "error",
        _ => "warn",
    };
    let _telemetry = telemetry::init(default_filter);
    match cli.command {
        Command::Check {
            paths,
            format,
            against,
            placement,
        } => check::run(&paths, format, against.as_deref(), placement.as_deref()),
        Command::Build { dir, target_dir } => run::build(&dir, target_dir),
        Command::Call {
            dir,
            service,
            input,
            target_dir,
            store,
        } => run::call(&dir, &service, input, target_dir, store.as_deref()),
        Command::New { name, dir, public } => new::run(&name, &dir, public),
        Command::Verify(request) => verify::run(request),
        Command::Up(request) => up::run(*request),
        Command::Strength(request) => strength::run(request),
        Command::Graph {
            dir,
            format,
            placement,
        } => graph::run(&dir, format, placement.as_deref()),
        Command::Deploy { target } => deploy::run(target),
        Command::Docs {
            dir,
            out,
            attest_dir,
        } => docs::run(&dir, &out, attest_dir),
        Command::Diff {
            old,
            new,
            format,
            seed,
            samples,
        } => diff::run(&old, &new, format, mote_diff::Options { seed, samples }),
        Command::Keygen {
            out,
            app: true,
            placement: Some(placement),
        } => keygen_app::keygen_app(&placement, &out),
        Command::Keygen { out, .. } => attest::keygen(&out),
        Command::Attest {
            action:
                AttestAction::Check {
                    files,
                    trusted_keys,
                    contract,
                    artefact,
                },
        } => attest::check(
            &files,
            &trusted_keys,
            contract.as_deref(),
            artefact.as_deref(),
        ),
    }
}
