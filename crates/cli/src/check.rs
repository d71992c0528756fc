//! `mote check`: report every problem in every contract.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use miette::{GraphicalReportHandler, GraphicalTheme};
use mote_contract::{CallGraph, Checked, Contract, Diagnostic, GraphProblem, Severity, check_file};

use crate::{Format, exit};

pub fn run(
    paths: &[PathBuf],
    format: Format,
    against: Option<&str>,
    placement: Option<&Path>,
) -> ExitCode {
    let files = match mote_build::contract_files(paths) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    if files.is_empty() {
        eprintln!(
            "error: no {} found under {}",
            mote_build::CONTRACT_FILE,
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return ExitCode::from(exit::USAGE);
    }
    let results: Vec<Checked> = files.iter().map(|f| check_file(f)).collect();
    let mut problems: Vec<String> = graph_problems(paths, &results)
        .iter()
        .map(|p| format!("error[call-graph]: {p}"))
        .collect();
    problems.extend(valueless_schemas(&results));
    if let Some(reference) = against {
        match unannounced_changes(paths, &results, reference) {
            Ok(found) => problems.extend(found),
            Err(e) => {
                eprintln!("error: cannot read the contracts at `{reference}`: {e}");
                return ExitCode::from(exit::USAGE);
            }
        }
    }
    let notes = reachability(paths, &results);
    let placed = placement.map(|file| placement_problems(file, &results));
    let placed = placed.as_deref().unwrap_or_default();
    let printed = match format {
        Format::Human => print_human(&results, &problems, &notes, placed),
        Format::Json => print_json(&results, &problems, &notes, placed),
    };
    if let Err(e) = printed {
        // A closed pipe (`mote check | head`) is not worth a panic.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write output: {e}");
        }
    }
    if results.iter().any(Checked::has_errors) || !problems.is_empty() || !placed.is_empty() {
        ExitCode::from(exit::PROBLEMS)
    } else {
        ExitCode::SUCCESS
    }
}

/// Contracts whose version does not announce their change since
/// `reference` (a folder, or a git revision of the paths checked).
fn unannounced_changes(
    paths: &[PathBuf],
    results: &[Checked],
    reference: &str,
) -> Result<Vec<String>, String> {
    let scratch;
    let files = if Path::new(reference).exists() {
        mote_build::contract_files(&[PathBuf::from(reference)]).map_err(|e| e.to_string())?
    } else {
        scratch = Scratch::new()?;
        mote_build::contracts_at_revision(reference, paths, &scratch.0)
            .map_err(|e| e.to_string())?
    };
    let before: Vec<Contract> = files
        .iter()
        .filter_map(|f| mote_contract::load(f).ok())
        .collect();
    let mut problems = Vec::new();
    let now: Vec<&Contract> = results.iter().filter_map(|r| r.contract.as_ref()).collect();
    let then: Vec<&Contract> = before.iter().collect();
    // Each contract against the one it continues: its own series, or the
    // series a major bumped in place replaced.
    for (then, now) in mote_diff::pair(&then, &now).pairs {
        let Some(result) = results
            .iter()
            .find(|r| r.contract.as_ref().is_some_and(|c| std::ptr::eq(c, now)))
        else {
            continue;
        };
        let diff = mote_diff::diff(then, now, &mote_diff::Options::default());
        if diff.version_ok() {
            continue;
        }
        let first = diff
            .changes
            .iter()
            .find(|c| c.bump == diff.required)
            .map(|c| format!("{} ({})", c.what, c.class.as_str()))
            .unwrap_or_default();
        let needs = match diff.made {
            None => format!("{} is lower than {}", diff.new_version, diff.old_version),
            Some(_) => format!(
                "{} → {} needs a {} bump, at least {}",
                diff.old_version,
                diff.new_version,
                diff.required,
                diff.least_version()
            ),
        };
        problems.push(format!(
            "error[unannounced-change]: {}: `{}` changed since {reference}: {needs}: {first}; `mote diff` lists every change",
            result.file.path().display(),
            diff.service
        ));
    }
    Ok(problems)
}

/// A folder of its own under the system's temporary folder, removed when
/// dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!("mote-against-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Schemas no value can be generated for: an input schema nobody can
/// call with, or an output schema no answer can satisfy. Verification
/// could not exercise either.
fn valueless_schemas(results: &[Checked]) -> Vec<String> {
    let mut problems = Vec::new();
    for result in results {
        let Some(contract) = &result.contract else {
            continue;
        };
        for (section, schema) in [("input", &contract.input), ("output", &contract.output)] {
            if !mote_verify::generate::has_values(schema) {
                problems.push(format!(
                    "error[schema-unsatisfiable]: {}: `[{section}]` admits no value mote can produce (contradictory bounds or `allOf` branches?), so nothing could be verified against it",
                    result.file.path().display()
                ));
            }
        }
    }
    problems
}

/// The call-graph problems of each folder argument: a folder is an app,
/// so its contracts must call each other soundly. Contract files named one
/// by one are checked alone.
fn graph_problems(paths: &[PathBuf], results: &[Checked]) -> Vec<GraphProblem> {
    let mut problems = Vec::new();
    for dir in paths.iter().filter(|p| p.is_dir()) {
        let app: Vec<&Contract> = results
            .iter()
            .filter(|r| r.file.path().starts_with(dir))
            .filter_map(|r| r.contract.as_ref())
            .collect();
        for problem in CallGraph::new(app).problems() {
            if !problems.contains(&problem) {
                problems.push(problem);
            }
        }
    }
    problems
}

/// Warnings about who can reach each folder argument's services: an app
/// with no public service serves nothing on its public address, and an
/// internal service no service calls is reachable only by operators.
fn reachability(paths: &[PathBuf], results: &[Checked]) -> Vec<String> {
    let mut notes = Vec::new();
    for dir in paths.iter().filter(|p| p.is_dir()) {
        let app: Vec<&Contract> = results
            .iter()
            .filter(|r| r.file.path().starts_with(dir))
            .filter_map(|r| r.contract.as_ref())
            .collect();
        if app.is_empty() {
            continue;
        }
        let graph = CallGraph::new(app);
        if !graph.has_entry_point() {
            notes.push(format!(
                "warning[no-entry-point]: {}: no service is public, so the public address serves nothing; mark the entry points with visibility = \"public\"",
                dir.display()
            ));
        }
        for name in graph.unreachable() {
            notes.push(format!(
                "warning[unreachable]: `{name}` is internal and no service of {} calls it: only the admin address, mote call and mote verify reach it",
                dir.display()
            ));
        }
    }
    notes
}

/// Every problem of the placement file for the services checked.
fn placement_problems(file: &Path, results: &[Checked]) -> Vec<Diagnostic> {
    let placement = match mote_placement::Placement::load(file) {
        Ok(placement) => placement,
        Err(problems) => return problems,
    };
    let contracts: Vec<&Contract> = results.iter().filter_map(|r| r.contract.as_ref()).collect();
    let mut problems = placement.check(contracts.iter().map(|c| c.service.name.as_str()));
    problems.extend(placement.check_stores(&store_users(contracts.iter().copied())));
    problems
}

/// Each store the contracts declare, with the services declaring it: what
/// `Placement::check_stores` holds against the hosts.
pub(crate) fn store_users<'c>(
    contracts: impl Iterator<Item = &'c Contract>,
) -> BTreeMap<&'c str, Vec<&'c str>> {
    let mut stores: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for contract in contracts {
        for store in &contract.stores {
            stores
                .entry(store.name.as_str())
                .or_default()
                .push(contract.service.name.as_str());
        }
    }
    stores
}

fn count(results: &[Checked], severity: Severity) -> usize {
    results
        .iter()
        .flat_map(|r| &r.diagnostics)
        .filter(|d| d.severity() == severity)
        .count()
}

/// A diagnostic rendered for people, with its source snippet, for
/// standard error (colour only on a terminal, and never with NO_COLOR).
pub(crate) fn render(diagnostic: &Diagnostic) -> String {
    render_in(diagnostic, std::io::stderr().is_terminal())
}

fn render_in(diagnostic: &Diagnostic, terminal: bool) -> String {
    let theme = if terminal && std::env::var_os("NO_COLOR").is_none() {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let mut rendered = String::new();
    if GraphicalReportHandler::new_themed(theme)
        .render_report(&mut rendered, diagnostic)
        .is_err()
    {
        rendered = format!("{}: {}\n", diagnostic.kind(), diagnostic.message());
    }
    rendered
}

fn print_human(
    results: &[Checked],
    problems: &[String],
    notes: &[String],
    placement: &[Diagnostic],
) -> std::io::Result<()> {
    let terminal = std::io::stdout().is_terminal();
    let render = |diagnostic: &Diagnostic| render_in(diagnostic, terminal);
    let mut out = std::io::stdout().lock();
    for result in results {
        for diagnostic in &result.diagnostics {
            writeln!(out, "{}", render(diagnostic))?;
        }
        if let Some(contract) = &result.contract {
            writeln!(
                out,
                "ok    {} {}  {}  ({})",
                contract.service.name,
                contract.service.version,
                short_hash(&contract.hash.to_string()),
                result.file.path().display()
            )?;
        } else {
            writeln!(out, "FAIL  {}", result.file.path().display())?;
        }
    }
    for problem in problems {
        writeln!(out, "{problem}")?;
    }
    for note in notes {
        writeln!(out, "{note}")?;
    }
    for diagnostic in placement {
        writeln!(out, "{}", render(diagnostic))?;
    }
    let failed = results.iter().filter(|r| r.has_errors()).count();
    writeln!(
        out,
        "\nchecked {} contract(s): {} ok, {} with errors ({} error(s), {} warning(s)); {} problem(s) and {} warning(s) across contracts",
        results.len(),
        results.len() - failed,
        failed,
        count(results, Severity::Error),
        count(results, Severity::Warning),
        problems.len() + placement.len(),
        notes.len(),
    )
}

fn short_hash(hash: &str) -> &str {
    &hash[..hash.len().min("sha256:".len() + 12)]
}

fn print_json(
    results: &[Checked],
    problems: &[String],
    notes: &[String],
    placement: &[Diagnostic],
) -> std::io::Result<()> {
    let contracts: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            serde_json::json!({
                "path": r.file.path().display().to_string(),
                "ok": !r.has_errors(),
                "service": r.contract.as_ref().map(|c| c.service.name.to_string()),
                "version": r.contract.as_ref().map(|c| c.service.version.to_string()),
                "hash": r.contract.as_ref().map(|c| c.hash.to_string()),
                "diagnostics": r.diagnostics.iter().map(|d| d.to_json()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let report = serde_json::json!({
        "contracts": contracts,
        "errors": count(results, Severity::Error),
        "warnings": count(results, Severity::Warning),
        "problems": problems,
        "app_warnings": notes,
        "placement": placement.iter().map(Diagnostic::to_json).collect::<Vec<_>>(),
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{report:#}")
}
