//! `mote docs`: the app's contracts as a static site.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mote_contract::Contract;
use mote_docs::{ServiceDoc, Status};

use crate::exit;

pub fn run(dir: &Path, out: &Path, attest_dir: Option<PathBuf>) -> ExitCode {
    let files = match mote_build::contract_files(&[dir.to_path_buf()]) {
        Ok(files) if !files.is_empty() => files,
        Ok(_) => {
            eprintln!(
                "error: no {} found under {}",
                mote_build::CONTRACT_FILE,
                dir.display()
            );
            return ExitCode::from(exit::USAGE);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let mut contracts: Vec<Contract> = Vec::new();
    let mut broken = 0;
    for file in &files {
        match mote_contract::load(file) {
            Ok(contract) => contracts.push(contract),
            Err(e) => {
                eprintln!("error: {e}; run `mote check {}`", file.display());
                broken += 1;
            }
        }
    }
    if broken > 0 {
        eprintln!("error: {broken} contract(s) do not check; no site written");
        return ExitCode::from(exit::PROBLEMS);
    }
    let attest_dir =
        attest_dir.unwrap_or_else(|| mote_app::default_target_dir(dir).join("mote-attestations"));
    let keys = mote_contract::versions::keys(
        contracts
            .iter()
            .map(|c| (c.service.name.as_str(), &c.service.version)),
    );
    let statuses: Vec<Status> = contracts
        .iter()
        .zip(&keys)
        .map(|(c, key)| {
            let path = crate::verify::attestation_file(&attest_dir, key, c.service.name.as_str());
            let attestation = std::fs::read_to_string(&path)
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok());
            Status::of(c, attestation.as_ref())
        })
        .collect();
    let docs: Vec<ServiceDoc<'_>> = contracts
        .iter()
        .zip(&statuses)
        .zip(&keys)
        .map(|((contract, status), key)| ServiceDoc {
            key,
            contract,
            status,
        })
        .collect();
    let title = app_title(dir);
    let site = mote_docs::site(&title, &docs);
    if let Err(e) = mote_docs::write(&site, out) {
        eprintln!("error: cannot write the site to {}: {e}", out.display());
        return ExitCode::from(exit::USAGE);
    }
    let verified = statuses
        .iter()
        .filter(|s| matches!(s, Status::Verified { .. }))
        .count();
    println!(
        "wrote {} ({} services, {verified} verified): open {}",
        out.display(),
        docs.len(),
        out.join("index.html").display()
    );
    ExitCode::SUCCESS
}

/// An app's name, as its pages title it: its folder's name.
pub(crate) fn app_title(dir: &Path) -> String {
    std::fs::canonicalize(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "app".into())
}
