//! `mote diff`: what changed between two versions of contracts, and
//! whether callers break.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mote_contract::{Contract, versions};
use mote_diff::{Basis, Change, Class, ContractDiff, Options, Pairing};
use serde_json::json;

use crate::{Format, exit};

/// One side of the comparison: its contracts (one per name and series).
type Side = Vec<Contract>;

pub fn run(old: &Path, new: &Path, format: Format, options: Options) -> ExitCode {
    let (old_side, new_side) = match (load(old), load(new)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    // Two single contracts are two versions of one, whatever their names;
    // two apps are matched service by service (and series by series).
    let Pairing {
        pairs,
        removed,
        added,
    } = if old_side.len() == 1 && new_side.len() == 1 {
        Pairing {
            pairs: vec![(&old_side[0], &new_side[0])],
            ..Pairing::default()
        }
    } else {
        mote_diff::pair(
            &old_side.iter().collect::<Vec<_>>(),
            &new_side.iter().collect::<Vec<_>>(),
        )
    };
    let diffs: Vec<ContractDiff> = pairs
        .iter()
        .map(|(o, n)| mote_diff::diff(o, n, &options))
        .collect();
    let ok = removed.is_empty() && diffs.iter().all(|d| !d.breaking() && d.version_ok());
    match format {
        Format::Human => print_human(&diffs, &removed, &added, &new_side),
        Format::Json => {
            let json = json!({
                "ok": ok,
                "services": diffs.iter().map(|d| diff_json(d, &new_side)).collect::<Vec<_>>(),
                "removed_services": removed,
                "added_services": added,
            });
            println!("{json:#}");
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::PROBLEMS)
    }
}

/// Every contract under `path`; a contract that does not check, or two
/// versions of one name in one series, stop the command.
fn load(path: &Path) -> Result<Side, String> {
    let files = mote_build::contract_files(&[path.to_path_buf()]).map_err(|e| e.to_string())?;
    if files.is_empty() {
        return Err(format!(
            "no {} found under {}",
            mote_build::CONTRACT_FILE,
            path.display()
        ));
    }
    let mut side = Side::new();
    for file in files {
        let contract = mote_contract::load(&file)
            .map_err(|e| format!("{e}; run `mote check {}` for details", file.display()))?;
        let series = versions::series(&contract.service.version);
        if let Some(first) = side.iter().find(|c| {
            c.service.name == contract.service.name
                && versions::series(&c.service.version) == series
        }) {
            return Err(format!(
                "`{}` is defined twice in series {series} under {}: {} and {}",
                contract.service.name,
                path.display(),
                first.path.display(),
                PathBuf::from(&file).display()
            ));
        }
        side.push(contract);
    }
    Ok(side)
}

/// The flows of the new app that map `service`'s error `code` in
/// `on_error`.
fn mapped_by(app: &Side, service: &str, code: &str) -> Vec<String> {
    app.iter()
        .filter(|c| {
            c.flow.as_ref().is_some_and(|f| {
                f.on_error
                    .iter()
                    .any(|m| m.service.as_str() == service && m.code == code)
            })
        })
        .map(|c| c.service.name.to_string())
        .collect()
}

fn basis(change: &Change) -> String {
    match change.basis {
        Basis::Structural => "structural".into(),
        Basis::Sampled { samples } => format!("sampled, {samples} per side"),
    }
}

fn print_human(diffs: &[ContractDiff], removed: &[String], added: &[String], app: &Side) {
    for name in removed {
        println!("breaking    `{name}` is gone: its callers find no such service");
    }
    for name in added {
        println!("compatible  `{name}` is new");
    }
    for d in diffs {
        let count = |class| d.changes.iter().filter(|c| c.class == class).count();
        let version = match d.made {
            None => format!("FAIL: {} is lower than {}", d.new_version, d.old_version),
            Some(_) if !d.version_ok() => format!(
                "FAIL: needs a {} bump, at least {}",
                d.required,
                d.least_version()
            ),
            Some(_) if d.changes.is_empty() => "no change in meaning".to_string(),
            Some(_) => format!("needs a {} bump: ok", d.required),
        };
        println!(
            "{} {} → {}: {} breaking, {} for review, {} compatible; {version}",
            d.service,
            d.old_version,
            d.new_version,
            count(Class::Breaking),
            count(Class::Review),
            count(Class::Compatible)
        );
        for change in &d.changes {
            println!(
                "  {:<11} {:<9} {} ({})",
                change.class.as_str(),
                change.area.as_str(),
                change.what,
                basis(change)
            );
            println!("  {:<21} {}", "", change.why);
            if let Some(witness) = &change.witness {
                println!("  {:<21} witness: {witness}", "");
            }
            if let Some(code) = &change.removed_error {
                let flows = mapped_by(app, &d.service, code);
                if !flows.is_empty() {
                    println!(
                        "  {:<21} still mapped in `on_error` by: {}",
                        "",
                        flows.join(", ")
                    );
                }
            }
        }
    }
}

fn diff_json(d: &ContractDiff, app: &Side) -> serde_json::Value {
    json!({
        "service": d.service,
        "old_version": d.old_version.to_string(),
        "new_version": d.new_version.to_string(),
        "breaking": d.breaking(),
        "required_bump": d.required.as_str(),
        "made_bump": d.made.map(|b| b.as_str()),
        "version_ok": d.version_ok(),
        "least_version": d.least_version().to_string(),
        "changes": d.changes.iter().map(|c| json!({
            "class": c.class.as_str(),
            "area": c.area.as_str(),
            "what": c.what,
            "why": c.why,
            "basis": match c.basis { Basis::Structural => "structural", Basis::Sampled { .. } => "sampled" },
            "samples": match c.basis { Basis::Structural => None, Basis::Sampled { samples } => Some(samples) },
            "witness": c.witness,
            "bump": c.bump.as_str(),
            "mapped_by": c.removed_error.as_ref().map(|code| mapped_by(app, &d.service, code)),
        })).collect::<Vec<_>>(),
    })
}
