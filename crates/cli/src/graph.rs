//! `mote graph`: the app's call graph, and what is wrong with it.

use std::path::Path;
use std::process::ExitCode;

use mote_contract::{CallGraph, Contract};

use crate::exit;

/// How the graph is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// A Mermaid flowchart (renders on GitHub and in most docs tools).
    Mermaid,
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
}

pub fn run(dir: &Path, format: GraphFormat, placement: Option<&Path>) -> ExitCode {
    let contracts = match contracts_under(dir) {
        Ok(contracts) => contracts,
        Err(code) => return code,
    };
    let placement = match placement.map(mote_placement::Placement::load).transpose() {
        Ok(placement) => placement,
        Err(problems) => {
            for problem in problems {
                eprintln!("error[{}]: {problem}", problem.kind());
            }
            return ExitCode::from(exit::PROBLEMS);
        }
    };
    // A placement places a name: every series of it goes to one host.
    let host_of = |service: &str| {
        placement
            .as_ref()
            .and_then(|p| p.host_of(service))
            .map(|h| h.name.clone())
    };
    let graph = CallGraph::new(&contracts);
    match format {
        GraphFormat::Mermaid => print!("{}", graph.mermaid_placed(host_of)),
        GraphFormat::Dot => print!("{}", graph.dot_placed(host_of)),
    }
    // Who has yet to move to the newest series, where the app holds
    // several of one service.
    for older in graph.older_series_in_use() {
        eprintln!(
            "note: `{}` is an older series than `{}`; still called by {}",
            older.key,
            older.newest,
            older
                .callers
                .iter()
                .map(|caller| format!("`{caller}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let problems = graph.problems();
    for problem in &problems {
        eprintln!("error: {problem}");
    }
    let misplaced = placement.as_ref().map_or_else(Vec::new, |p| {
        p.check(contracts.iter().map(|c| c.service.name.as_str()))
    });
    for problem in &misplaced {
        eprintln!("error[{}]: {problem}", problem.kind());
    }
    if problems.is_empty() && misplaced.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::PROBLEMS)
    }
}

/// Every contract under `dir`; a contract with errors stops the command,
/// since its calls cannot be known.
pub(crate) fn contracts_under(dir: &Path) -> Result<Vec<Contract>, ExitCode> {
    let files = mote_build::contract_files(&[dir.to_path_buf()]).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(exit::USAGE)
    })?;
    if files.is_empty() {
        eprintln!(
            "error: no {} found under {}",
            mote_build::CONTRACT_FILE,
            dir.display()
        );
        return Err(ExitCode::from(exit::USAGE));
    }
    let mut contracts = Vec::new();
    for file in files {
        let checked = mote_contract::check_file(&file);
        match checked.contract {
            Some(contract) => contracts.push(contract),
            None => {
                eprintln!(
                    "error: {} has errors; run `mote check` on it",
                    file.display()
                );
                return Err(ExitCode::from(exit::PROBLEMS));
            }
        }
    }
    Ok(contracts)
}
