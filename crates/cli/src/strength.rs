//! `mote strength`: how much of each service's behaviour its contract pins.

use std::process::ExitCode;

use mote_app::InProcess;
use mote_verify::strength::{StrengthOptions, StrengthReport, strength};

use crate::run::JudgedApp;
use crate::{Format, exit};

/// The arguments of `mote strength`.
#[derive(Debug, clap::Args)]
pub struct Request {
    #[command(flatten)]
    pub app: JudgedApp,
    /// The seed; the same seed gives the same inputs (default: 0).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Inputs whose answers are mutated, per service.
    #[arg(long, default_value_t = 1000)]
    pub inputs: u32,
    /// Fail (exit 1) when a service scores below this (0 to 1).
    #[arg(long, value_name = "SCORE")]
    pub min_strength: Option<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(request: Request) -> ExitCode {
    let (built, runtime) = match request.app.load() {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let options = StrengthOptions {
        seed: request.seed,
        inputs: request.inputs,
    };
    let mut reports = Vec::new();
    for service in &built {
        let contract = service.contract();
        if !request.app.selects(service) {
            continue;
        }
        let target = InProcess::alone(&runtime, contract, request.seed);
        let mut report = strength(contract, &target, &options);
        report.service = service.key().to_string();
        reports.push((report, contract.is_pure()));
    }
    match request.format {
        Format::Human => {
            for (report, pure) in &reports {
                print_human(report, *pure);
            }
        }
        Format::Json => {
            let json: Vec<serde_json::Value> = reports
                .iter()
                .map(|(report, _)| report_json(report))
                .collect();
            println!(
                "{:#}",
                serde_json::json!({ "seed": request.seed, "reports": json })
            );
        }
    }
    let weak: Vec<&StrengthReport> = reports
        .iter()
        .map(|(report, _)| report)
        .filter(|r| request.min_strength.is_some_and(|min| r.score() < min))
        .collect();
    for report in &weak {
        eprintln!(
            "error: {} scores {:.1} %, below --min-strength {}",
            report.service,
            report.score() * 100.0,
            request.min_strength.unwrap_or_default()
        );
    }
    if weak.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::PROBLEMS)
    }
}

/// One service's strength for people: the score, per path, each hole with
/// an input, overlapping errors.
pub(crate) fn print_human(report: &StrengthReport, pure: bool) {
    println!(
        "{}  strength {:.1} %  ({} of {} mutants rejected, {} inputs, seed {})",
        report.service,
        report.score() * 100.0,
        report.killed,
        report.mutants,
        report.inputs,
        report.seed
    );
    for (path, (killed, made)) in &report.paths {
        println!(
            "      {path:<32} {:>5.1} %  ({killed}/{made})",
            100.0 * f64::from(*killed) / f64::from((*made).max(1))
        );
    }
    for hole in &report.survivors {
        println!(
            "      hole: `{}` {} for input {} and the contract still holds\n            answer {}, accepted {}",
            hole.path,
            describe_mutation(&hole.mutation),
            hole.input,
            hole.original,
            hole.mutant
        );
    }
    for path in report.free_paths() {
        println!(
            "      free: nothing in the contract constrains `{path}`; any value there passes{}",
            if pure {
                ", even for the same input"
            } else {
                ""
            }
        );
    }
    for (codes, input) in &report.overlaps {
        println!(
            "      overlap: the `when` of {} all hold for input {input}; only the first is ever returned there",
            codes
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if report.broken > 0 {
        println!(
            "      note: {} answers already broke the contract and were not mutated; run mote verify",
            report.broken
        );
    }
}

fn describe_mutation(mutation: &str) -> String {
    match mutation {
        "+1" => "can be one more".into(),
        "-1" => "can be one less".into(),
        "doubled" => "can be doubled".into(),
        "changed" => "can be changed".into(),
        "emptied" => "can be empty".into(),
        "flipped" => "can be flipped".into(),
        "dropped" => "can be left out".into(),
        "unwritten" => "can be left as it was before the call".into(),
        "member added" => "can carry an extra member".into(),
        "element removed" => "can lose an element".into(),
        "element duplicated" => "can repeat an element".into(),
        other => format!("can be turned from {other}"),
    }
}

/// One service's strength as JSON.
pub(crate) fn report_json(report: &StrengthReport) -> serde_json::Value {
    serde_json::json!({
        "service": report.service,
        "score": report.score(),
        "inputs": report.inputs,
        "mutants": report.mutants,
        "killed": report.killed,
        "broken": report.broken,
        "free_paths": report.free_paths(),
        "paths": report.paths.iter().map(|(path, (killed, made))| {
            (path.clone(), serde_json::json!({"killed": killed, "mutants": made}))
        }).collect::<serde_json::Map<_, _>>(),
        "survivors": report.survivors.iter().map(|s| serde_json::json!({
            "path": s.path,
            "mutation": s.mutation,
            "input": s.input,
            "original": s.original,
            "mutant": s.mutant,
        })).collect::<Vec<_>>(),
        "overlaps": report.overlaps.iter().map(|(codes, input)| serde_json::json!({
            "codes": codes,
            "input": input,
        })).collect::<Vec<_>>(),
    })
}
