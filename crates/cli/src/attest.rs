//! `mote keygen` and `mote attest check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mote_verify::attest::{self, KeyPair};

use crate::exit;

/// The file names `mote keygen` writes.
pub const SECRET_FILE: &str = "mote-key.secret";
/// The public half.
pub const PUBLIC_FILE: &str = "mote-key.pub";

pub fn keygen(dir: &Path) -> ExitCode {
    let secret = dir.join(SECRET_FILE);
    let public = dir.join(PUBLIC_FILE);
    if secret.exists() || public.exists() {
        eprintln!(
            "error: {} or {} already exists; nothing was written",
            secret.display(),
            public.display()
        );
        return ExitCode::from(exit::USAGE);
    }
    let key = match KeyPair::generate() {
        Ok(key) => key,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| write_private(&secret, &format!("{}\n", key.secret_hex())))
        .and_then(|()| std::fs::write(&public, format!("{}\n", key.public_hex())));
    match written {
        Ok(()) => {
            println!(
                "secret key: {} (keep it private; sign with mote verify --key)",
                secret.display()
            );
            println!(
                "public key: {} (give it to hosts: mote attest check --trusted-key)",
                public.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = std::fs::remove_file(&secret);
            eprintln!("error: cannot write the key pair: {e}");
            ExitCode::from(exit::USAGE)
        }
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// Reads the signing key `mote verify --key` names.
pub fn read_key(path: &Path) -> Result<KeyPair, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    KeyPair::from_secret_hex(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn check(
    files: &[PathBuf],
    trusted: &[PathBuf],
    contract: Option<&Path>,
    artefact: Option<&Path>,
) -> ExitCode {
    let mut keys = Vec::new();
    for path in trusted {
        match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| attest::public_key_from_hex(&t).map_err(|e| e.to_string()))
        {
            Ok(key) => keys.push(key),
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::from(exit::USAGE);
            }
        }
    }
    let contract_hash = match contract.map(mote_contract::load).transpose() {
        Ok(c) => c.map(|c| c.hash.to_string()),
        Err(e) => {
            eprintln!("error: {e}; run `mote check` on it");
            return ExitCode::from(exit::USAGE);
        }
    };
    let artefact_hash = match artefact.map(std::fs::read).transpose() {
        Ok(bytes) => bytes.map(|b| attest::artefact_hash(&b)),
        Err(e) => {
            eprintln!("error: cannot read the artefact: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let mut all_valid = true;
    for file in files {
        let parsed = std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string()));
        let verdict = match parsed {
            Ok(value) => attest::check(
                &value,
                &keys,
                contract_hash.as_deref(),
                artefact_hash.as_deref(),
            )
            .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match verdict {
            Ok(()) => println!("valid    {}", file.display()),
            Err(why) => {
                all_valid = false;
                println!("INVALID  {}: {why}", file.display());
            }
        }
    }
    if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::PROBLEMS)
    }
}
