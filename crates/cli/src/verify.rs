//! `mote verify`: every service of an app against its contract.

use std::path::PathBuf;
use std::process::ExitCode;

use mote_app::InProcess;
use mote_runtime::RuntimeConfig;
use mote_verify::{Options, Report};

use crate::{Format, exit};

/// The arguments of `mote verify`.
#[derive(Debug, clap::Args)]
pub struct Request {
    /// The app folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Verify only these services (default: all with a component).
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// The seed; the same seed replays the same inputs (default: random).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Generated cases per service, beyond the examples.
    #[arg(long, default_value_t = 1000)]
    pub cases: u32,
    /// An outcome (error code, or `success`) that may go unreached.
    #[arg(long = "allow-unreached", value_name = "CODE")]
    pub allow_unreached: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Where build output goes (default: DIR/target).
    #[arg(long, value_name = "TARGET_DIR")]
    pub target_dir: Option<PathBuf>,
    /// Sign an attestation for every service that passes with this
    /// secret key (from `mote keygen`).
    #[arg(long, value_name = "SECRET_KEY")]
    pub key: Option<PathBuf>,
    /// Where attestations go (default: TARGET_DIR/mote-attestations).
    #[arg(long, value_name = "DIR")]
    pub attest_dir: Option<PathBuf>,
}

pub fn run(request: Request) -> ExitCode {
    if !request.dir.is_dir() {
        eprintln!("error: {} is not a folder", request.dir.display());
        return ExitCode::from(exit::USAGE);
    }
    let target_dir = request
        .target_dir
        .clone()
        .unwrap_or_else(|| mote_app::default_target_dir(&request.dir));
    let built = match mote_app::build(&request.dir, &target_dir, &mut |_| {}) {
        Ok(built) => built,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let runtime =
        match mote_app::load_built(&built, &target_dir, RuntimeConfig::default(), &mut |_| {}) {
            Ok(runtime) => runtime,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(exit::USAGE);
            }
        };
    for wanted in &request.services {
        if !built
            .iter()
            .any(|b| b.contract.service.name.as_str() == wanted)
        {
            eprintln!(
                "error: {} has no service named `{wanted}`",
                request.dir.display()
            );
            return ExitCode::from(exit::USAGE);
        }
    }
    let key = match request
        .key
        .as_deref()
        .map(crate::attest::read_key)
        .transpose()
    {
        Ok(key) => key,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let attest_dir = request
        .attest_dir
        .clone()
        .unwrap_or_else(|| target_dir.join("mote-attestations"));
    let seed = request.seed.unwrap_or_else(random_seed);
    let options = Options {
        seed,
        cases: request.cases,
        allow_unreached: request.allow_unreached.clone(),
    };
    let mut reports = Vec::new();
    for service in &built {
        let name = service.contract.service.name.as_str();
        if !request.services.is_empty() && !request.services.iter().any(|s| s == name) {
            continue;
        }
        let report =
            mote_verify::verify(&service.contract, &InProcess::new(&runtime, name), &options);
        if request.format == Format::Human {
            print_human(
                &report,
                &service.contract.service.version.to_string(),
                &request.dir,
                request.cases,
            );
        }
        if let Some(key) = &key
            && report.passed()
        {
            match write_attestation(&report, service, key, &attest_dir) {
                Ok(path) if request.format == Format::Human => {
                    println!("      attested: {}", path.display())
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("error: cannot write the attestation of {name}: {e}");
                    return ExitCode::from(exit::USAGE);
                }
            }
        }
        reports.push(report);
    }
    if request.format == Format::Json {
        let json: Vec<serde_json::Value> = reports.iter().map(report_json).collect();
        println!("{:#}", serde_json::json!({"seed": seed, "reports": json}));
    }
    if reports.iter().all(Report::passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::PROBLEMS)
    }
}

/// Signs and writes the attestation of a passing service, atomically.
pub(crate) fn write_attestation(
    report: &Report,
    service: &mote_app::BuiltService,
    key: &mote_verify::attest::KeyPair,
    dir: &std::path::Path,
) -> std::io::Result<PathBuf> {
    let bytes = std::fs::read(service.artefact())?;
    let attestation = mote_verify::attest::attest(
        report,
        &service.contract.service.version.to_string(),
        &service.contract.hash.to_string(),
        &mote_verify::attest::artefact_hash(&bytes),
        key,
    );
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{}.json", report.service));
    let temporary = dir.join(format!(
        ".{}.json.tmp{}",
        report.service,
        std::process::id()
    ));
    std::fs::write(&temporary, format!("{attestation:#}\n"))?;
    std::fs::rename(&temporary, &path)?;
    Ok(path)
}

pub(crate) fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32)
}

/// Prints one service's report; the replay line names `dir` and `cases`.
pub(crate) fn print_human(report: &Report, version: &str, dir: &std::path::Path, cases: u32) {
    let verdict = if report.passed() { "PASS" } else { "FAIL" };
    println!(
        "{verdict}  {} {version}  seed {}  {} examples, {} generated cases, {} dropped by requires",
        report.service, report.seed, report.examples, report.cases, report.dropped
    );
    let coverage: Vec<String> = report
        .coverage
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!("      coverage: {}", coverage.join(", "));
    for outcome in &report.unreached {
        println!(
            "      unreached: no input reached `{outcome}`, so nothing shows the service handles it (--allow-unreached {outcome} to accept)"
        );
    }
    if let Some(why) = &report.starved {
        println!("      starved: {why}");
    }
    if let Some(c) = &report.counterexample {
        println!("      {}: {}", c.violation.oracle, c.violation.message);
        println!("        input:    {}", c.input);
        println!("        expected: {}", c.violation.expected);
        println!("        actual:   {}", c.violation.actual);
        println!(
            "      replay: mote verify {} --service {} --seed {} --cases {}",
            dir.display(),
            report.service,
            report.seed,
            cases
        );
    }
}

fn report_json(report: &Report) -> serde_json::Value {
    serde_json::json!({
        "service": report.service,
        "passed": report.passed(),
        "seed": report.seed,
        "examples": report.examples,
        "cases": report.cases,
        "dropped": report.dropped,
        "coverage": report.coverage,
        "unreached": report.unreached,
        "starved": report.starved,
        "counterexample": report.counterexample.as_ref().map(|c| serde_json::json!({
            "input": c.input,
            "oracle": c.violation.oracle.as_str(),
            "message": c.violation.message,
            "expected": c.violation.expected,
            "actual": c.violation.actual,
            "from_example": c.from_example,
        })),
    })
}
