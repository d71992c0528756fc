//! Contract files as they were at a git revision, so that a change can be
//! compared with what was committed (`mote check --against REF`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::CONTRACT_FILE;

/// Why the contracts of a revision could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    /// git could not be run, or refused.
    #[error("`git {args}` failed: {message}")]
    Git {
        /// The arguments given to git.
        args: String,
        /// What git said (or why it could not start).
        message: String,
    },
    /// A file could not be written to the copy.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, RevisionError> {
    let failed = |message: String| RevisionError::Git {
        args: args.join(" "),
        message,
    };
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    Ok(output.stdout)
}

/// Writes every `contract.toml` under each of `paths` as it was at git
/// revision `revision` into the folder `into` (keeping their paths
/// relative to the repository), and returns the files written. A path
/// that did not exist at the revision contributes nothing.
pub fn contracts_at_revision(
    revision: &str,
    paths: &[PathBuf],
    into: &Path,
) -> Result<Vec<PathBuf>, RevisionError> {
    let mut written = Vec::new();
    for path in paths {
        let dir = if path.is_dir() {
            path.clone()
        } else {
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        };
        let prefix = String::from_utf8_lossy(&git(&dir, &["rev-parse", "--show-prefix"])?)
            .trim()
            .to_string();
        let within = if path.is_dir() {
            prefix.clone()
        } else {
            format!(
                "{prefix}{}",
                path.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            )
        };
        let root = String::from_utf8_lossy(&git(&dir, &["rev-parse", "--show-toplevel"])?)
            .trim()
            .to_string();
        let root = PathBuf::from(root);
        let mut args = vec!["ls-tree", "-r", "--name-only", revision];
        if !within.is_empty() {
            args.extend(["--", within.as_str()]);
        }
        let listing = git(&root, &args)?;
        for file in String::from_utf8_lossy(&listing).lines() {
            if !file.ends_with(CONTRACT_FILE) || file.split('/').any(|s| s == "target") {
                continue;
            }
            let text = git(&root, &["show", &format!("{revision}:{file}")])?;
            let target = into.join(file);
            let io = |source| RevisionError::Io {
                path: target.clone(),
                source,
            };
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            std::fs::write(&target, text).map_err(io)?;
            written.push(target);
        }
    }
    written.sort();
    written.dedup();
    Ok(written)
}
