//! `mote verify`: every service of an app against its contract.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mote_app::InProcess;
use mote_verify::strength::{StrengthOptions, StrengthReport};
use mote_verify::{Options, Report};

use crate::run::JudgedApp;
use crate::{Format, exit};

/// The arguments of `mote verify`.
#[derive(Debug, clap::Args)]
pub struct Request {
    #[command(flatten)]
    pub app: JudgedApp,
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
    /// Sign an attestation for every service that passes with this
    /// secret key (from `mote keygen`).
    #[arg(long, value_name = "SECRET_KEY")]
    pub key: Option<PathBuf>,
    /// Where attestations go (default: TARGET_DIR/mote-attestations).
    #[arg(long, value_name = "DIR")]
    pub attest_dir: Option<PathBuf>,
    /// Verify the service behind this HTTP endpoint (POST of the JSON
    /// input) instead of an app's components; DIR is then its contract: a
    /// contract.toml, or a folder holding one. Static checks (imports,
    /// effects) are not possible from outside and are skipped.
    #[arg(long, value_name = "URL", conflicts_with_all = ["key", "services"])]
    pub url: Option<String>,
    /// With --url: the longest one HTTP call may take, in milliseconds.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub timeout_ms: u64,
    /// With --url: network time allowed on top of the contract's
    /// `timeout_ms` for each answer; a slower answer is a `timeout`.
    #[arg(long, default_value_t = 50, value_name = "MS")]
    pub latency_allowance_ms: u64,
    /// With --url: cases in flight at once (1 to 64). The cases and the
    /// counterexample depend on the seed alone, not on this number; an
    /// answer that breaks the latency limit in company is tried again
    /// alone before it counts.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Also write the results as JUnit XML (one test case per service),
    /// for CI systems.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Let a service's calls reach the real callees instead of doubles
    /// built from the callees' contracts.
    #[arg(long)]
    pub real_callees: bool,
    /// Fail (exit 1, no attestation) when a contract pins less than this
    /// share (0 to 1) of its answers' mutants; see `mote strength`.
    #[arg(long, value_name = "SCORE")]
    pub min_strength: Option<f64>,
}

/// One service's verification, ready to print.
struct Outcome {
    report: Report,
    version: String,
    replay: String,
    /// How its calls were answered, when doubles stood in for callees.
    doubles: Option<serde_json::Value>,
    /// How strongly the contract pins the answers (when it passed).
    strength: Option<StrengthReport>,
    /// The attestation written, if any.
    attestation: Option<PathBuf>,
    /// Over HTTP: the slowest answer, in ms, and its input.
    slowest: Option<serde_json::Value>,
}

impl Outcome {
    /// Passed, and strong enough when a minimum strength is asked for.
    fn passed(&self, min_strength: Option<f64>) -> bool {
        self.report.passed()
            && match (&self.strength, min_strength) {
                (Some(strength), Some(min)) => strength.score() >= min,
                _ => true,
            }
    }
}

/// Verifies the service behind `--url` against the contract at DIR.
fn run_url(request: &Request, url: &str) -> ExitCode {
    let path = if request.app.dir.is_dir() {
        request.app.dir.join(mote_build::CONTRACT_FILE)
    } else {
        request.app.dir.clone()
    };
    let contract = match mote_contract::load(&path) {
        Ok(contract) => contract,
        Err(e) => {
            eprintln!("error: {e}; run `mote check` on it");
            return ExitCode::from(exit::USAGE);
        }
    };
    if let Some(store) = contract.stores.first() {
        eprintln!(
            "error: `{}` keeps state in store `{}`; over HTTP mote cannot set the stores each case starts from, so its conditions over `before` and `after` cannot be judged. Verify it in process: mote verify DIR --service {}",
            contract.service.name, store.name, contract.service.name
        );
        return ExitCode::from(exit::USAGE);
    }
    let timeout = std::time::Duration::from_millis(request.timeout_ms.max(1));
    let target = match mote_server::HttpTarget::new(url, &contract, timeout) {
        Ok(target) => target.with_latency_allowance(std::time::Duration::from_millis(
            request.latency_allowance_ms,
        )),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let seed = request.seed.unwrap_or_else(random_seed);
    let options = Options {
        seed,
        cases: request.cases,
        allow_unreached: request.allow_unreached.clone(),
        jobs: Some(usize::from(request.jobs)),
        check_refusals: true,
    };
    let bar = progress_bar(
        contract.service.name.as_str(),
        request.cases,
        request.format,
    );
    let report = mote_verify::verify_with_progress(&contract, &target, &options, &|n| {
        bar.set_position(u64::from(n))
    });
    bar.finish_and_clear();
    let replay = format!(
        "mote verify --url {url} {} --seed {seed} --cases {} --jobs {}",
        path.display(),
        request.cases,
        request.jobs
    );
    let version = contract.service.version.to_string();
    let slowest = target.slowest().map(
        |(took, input)| serde_json::json!({"ms": took.as_secs_f64() * 1000.0, "input": input}),
    );
    finish(
        request,
        seed,
        &[Outcome {
            report,
            version,
            replay,
            doubles: None,
            strength: None,
            attestation: None,
            slowest,
        }],
    )
}

/// Prints the reports as asked, writes JUnit when asked, and gives the
/// exit status.
fn finish(request: &Request, seed: u64, reports: &[Outcome]) -> ExitCode {
    match request.format {
        Format::Human => {
            for outcome in reports {
                print_human(&outcome.report, &outcome.version, &outcome.replay);
                if let Some(strength) = &outcome.strength {
                    let verdict = match request.min_strength {
                        Some(min) if strength.score() < min => {
                            format!(", below --min-strength {min}: FAIL")
                        }
                        _ => String::new(),
                    };
                    println!(
                        "      strength: {:.1} % of {} answer mutants rejected, {} holes{verdict} (mote strength {} --service {} lists them)",
                        strength.score() * 100.0,
                        strength.mutants,
                        strength.survivors.len(),
                        request.app.dir.display(),
                        outcome.report.service
                    );
                }
                if let Some(path) = &outcome.attestation {
                    println!("      attested: {}", path.display());
                }
                if let Some(slowest) = &outcome.slowest {
                    println!(
                        "      slowest answer: {:.1} ms, for {}",
                        slowest["ms"].as_f64().unwrap_or_default(),
                        slowest["input"].as_str().unwrap_or_default()
                    );
                }
                if let Some(d) = &outcome.doubles {
                    println!(
                        "      callees: doubles answered {} with an output and {} with a declared error, refused {} inputs; {} calls went to the real callee",
                        d["outputs"], d["errors"], d["refused"], d["declined"]
                    );
                }
            }
        }
        Format::Json => {
            let json: Vec<serde_json::Value> = reports
                .iter()
                .map(|o| {
                    let mut json = report_json(&o.report);
                    json["passed"] = o.passed(request.min_strength).into();
                    json["doubles"] = o.doubles.clone().unwrap_or(serde_json::Value::Null);
                    json["strength"] = o
                        .strength
                        .as_ref()
                        .map(crate::strength::report_json)
                        .unwrap_or(serde_json::Value::Null);
                    json["attestation"] = o
                        .attestation
                        .as_ref()
                        .map(|p| p.display().to_string().into())
                        .unwrap_or(serde_json::Value::Null);
                    json["slowest"] = o.slowest.clone().unwrap_or(serde_json::Value::Null);
                    json
                })
                .collect();
            println!("{:#}", serde_json::json!({"seed": seed, "reports": json}));
        }
    }
    if let Some(path) = &request.junit
        && let Err(e) = write_junit(path, reports, request.min_strength)
    {
        eprintln!("error: cannot write {}: {e}", path.display());
        return ExitCode::from(exit::USAGE);
    }
    if reports.iter().all(|o| o.passed(request.min_strength)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::PROBLEMS)
    }
}

/// JUnit XML: one test suite, one test case per service, a failure with
/// the counterexample, unreached outcomes or starvation when it failed.
fn write_junit(
    path: &std::path::Path,
    reports: &[Outcome],
    min_strength: Option<f64>,
) -> std::io::Result<()> {
    let failures = reports.iter().filter(|o| !o.passed(min_strength)).count();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str(&format!(
        "<testsuites name=\"mote verify\" tests=\"{}\" failures=\"{failures}\">\n  <testsuite name=\"mote verify\" tests=\"{}\" failures=\"{failures}\">\n",
        reports.len(),
        reports.len()
    ));
    for outcome in reports {
        let Outcome {
            report,
            version,
            replay,
            ..
        } = outcome;
        xml.push_str(&format!(
            "    <testcase classname=\"mote.verify\" name=\"{} {}\">\n",
            escape(&report.service),
            escape(version)
        ));
        let coverage: Vec<String> = report
            .coverage
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let summary = format!(
            "seed {}; {} examples, {} generated cases, {} dropped by requires; coverage: {}",
            report.seed,
            report.examples,
            report.cases,
            report.dropped,
            coverage.join(", ")
        );
        if !outcome.passed(min_strength) {
            let mut lines = Vec::new();
            let message = if let Some(c) = &report.counterexample {
                lines.push(format!("input:    {}", c.input));
                lines.push(format!("expected: {}", c.violation.expected));
                lines.push(format!("actual:   {}", c.violation.actual));
                format!("{}: {}", c.violation.oracle, c.violation.message)
            } else if let Some(why) = &report.starved {
                format!("starved: {why}")
            } else if report.unreached.is_empty() {
                let score = outcome.strength.as_ref().map_or(0.0, StrengthReport::score);
                format!(
                    "strength {:.1} % is below --min-strength {}",
                    score * 100.0,
                    min_strength.unwrap_or_default()
                )
            } else {
                format!("unreached: {}", report.unreached.join(", "))
            };
            lines.push(format!("replay:   {replay}"));
            xml.push_str(&format!(
                "      <failure message=\"{}\" type=\"mote-verify\">{}</failure>\n",
                escape(&message),
                escape(&lines.join("\n"))
            ));
        }
        xml.push_str(&format!(
            "      <system-out>{}</system-out>\n    </testcase>\n",
            escape(&summary)
        ));
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    let temporary = path.with_extension("xml.tmp");
    std::fs::write(&temporary, xml)?;
    std::fs::rename(&temporary, path)
}

/// XML text and attribute escaping; characters XML 1.0 cannot carry at
/// all become U+FFFD.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

pub fn run(request: Request) -> ExitCode {
    if let Some(url) = &request.url {
        return run_url(&request, url);
    }
    let target_dir = request.app.target_dir();
    let (built, runtime) = match request.app.load() {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
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
        jobs: None,
        check_refusals: true,
    };
    let mut reports = Vec::new();
    for service in &built {
        let name = service.key();
        let contract = service.contract();
        if !request.app.selects(service) {
            continue;
        }
        let target = if request.real_callees {
            InProcess::new(&runtime, name)
        } else {
            InProcess::alone(&runtime, contract, seed)
        };
        let bar = progress_bar(name, request.cases, request.format);
        let mut report = mote_verify::verify_with_progress(contract, &target, &options, &|n| {
            bar.set_position(u64::from(n))
        });
        bar.finish_and_clear();
        // Named as the app names it, so that two series are told apart.
        report.service = name.to_string();
        let doubles = target.double_counts().map(|c| {
            let read =
                |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
            serde_json::json!({
                "outputs": read(&c.outputs),
                "errors": read(&c.errors),
                "refused": read(&c.refused),
                "declined": read(&c.declined),
            })
        });
        // Strength means something only for an implementation that keeps
        // its contract.
        let strength = report.passed().then(|| {
            let options = StrengthOptions {
                seed,
                inputs: request.cases.clamp(1, 1000),
            };
            mote_verify::strength::strength(contract, &target, &options)
        });
        let strong_enough = match (&strength, request.min_strength) {
            (Some(strength), Some(min)) => strength.score() >= min,
            _ => true,
        };
        let mut attestation = None;
        if let Some(key) = &key
            && report.passed()
            && strong_enough
        {
            let score = strength.as_ref().map(StrengthReport::score);
            match write_attestation(&report, score, service, key, &attest_dir) {
                Ok(path) => attestation = Some(path),
                Err(e) => {
                    eprintln!("error: cannot write the attestation of {name}: {e}");
                    return ExitCode::from(exit::USAGE);
                }
            }
        }
        let replay = replay_command(&request.app.dir, name, seed, request.cases);
        reports.push(Outcome {
            report,
            version: contract.service.version.to_string(),
            replay,
            doubles,
            strength,
            attestation,
            slowest: None,
        });
    }
    finish(&request, seed, &reports)
}

/// A progress bar on standard error for one service's generated cases;
/// hidden when standard error is not a terminal or the output is JSON.
pub(crate) fn progress_bar(service: &str, cases: u32, format: Format) -> indicatif::ProgressBar {
    if format == Format::Json {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(u64::from(cases));
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix:>20} [{bar:30}] {pos}/{len} cases ({per_sec}, {eta} left)",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(service.to_string());
    bar
}

/// The command that replays exactly one service's run.
pub(crate) fn replay_command(
    dir: &std::path::Path,
    service: &str,
    seed: u64,
    cases: u32,
) -> String {
    format!(
        "mote verify {} --service {service} --seed {seed} --cases {cases}",
        dir.display()
    )
}

/// Where the attestation of the service with key `key` and name `name`
/// is: `KEY.json`, written by `mote verify --key`; failing that, when the
/// key has a series, `NAME.json`, written before the app held a second
/// series of the service (the hashes it binds decide whether it is still
/// this version's).
pub(crate) fn attestation_file(dir: &Path, key: &str, name: &str) -> PathBuf {
    let own = dir.join(format!("{key}.json"));
    let earlier = dir.join(format!("{name}.json"));
    if key != name && !own.exists() && earlier.exists() {
        earlier
    } else {
        own
    }
}

/// Signs and writes the attestation of a passing service, atomically. It
/// binds the contract, the component and the compiled code that ran, as
/// loaded: nothing is read again.
pub(crate) fn write_attestation(
    report: &Report,
    strength: Option<f64>,
    service: &mote_app::LoadedService,
    key: &mote_verify::attest::KeyPair,
    dir: &std::path::Path,
) -> std::io::Result<PathBuf> {
    let contract = service.contract();
    let version = contract.service.version.to_string();
    let contract_sha256 = contract.hash.to_string();
    let artefact_sha256 = service.artefact_sha256();
    let subject = mote_verify::attest::Subject {
        version: &version,
        contract_sha256: &contract_sha256,
        artefact_sha256: &artefact_sha256,
        precompiled: service
            .artefact
            .as_ref()
            .map(|a| mote_verify::attest::Precompiled {
                engine: &a.engine,
                sha256: &a.precompiled_sha256,
            }),
    };
    let attestation = mote_verify::attest::attest(report, &subject, strength, key);
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{}.json", service.key()));
    let temporary = dir.join(format!(".{}.json.tmp{}", service.key(), std::process::id()));
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

/// Prints one service's report, with the command that replays it.
pub(crate) fn print_human(report: &Report, version: &str, replay: &str) {
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
    println!(
        "      {} inputs combining fields' edge values; {} inputs written other ways (40.0 for 40, escapes, member order); {} inputs the contract refuses",
        report.edge_combinations, report.encodings, report.refusals
    );
    if report.concurrent_batches > 0 {
        println!(
            "      {} batches of calls run at once against one set of stores, each as some serial order answers",
            report.concurrent_batches
        );
    }
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
        println!("      replay: {replay}");
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
        "edge_combinations": report.edge_combinations,
        "encodings": report.encodings,
        "refusals": report.refusals,
        "concurrent_batches": report.concurrent_batches,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attestation_written_before_a_second_series_is_still_found() {
        let dir =
            std::env::temp_dir().join(format!("mote-attestation-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Nothing written yet: the key's own file is where one would be.
        assert_eq!(
            attestation_file(&dir, "tax.vat@1", "tax.vat"),
            dir.join("tax.vat@1.json")
        );
        std::fs::write(dir.join("tax.vat.json"), "{}").unwrap();
        assert_eq!(
            attestation_file(&dir, "tax.vat@1", "tax.vat"),
            dir.join("tax.vat.json")
        );
        // The key's own file wins once there is one.
        std::fs::write(dir.join("tax.vat@1.json"), "{}").unwrap();
        assert_eq!(
            attestation_file(&dir, "tax.vat@1", "tax.vat"),
            dir.join("tax.vat@1.json")
        );
        assert_eq!(
            attestation_file(&dir, "tax.vat", "tax.vat"),
            dir.join("tax.vat.json")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
