//! Finding contract files under the paths a user names.

use std::io;
use std::path::{Path, PathBuf};

/// The file name that marks a service folder.
pub const CONTRACT_FILE: &str = "contract.toml";

/// Expands each path: a file stands for itself, a folder for every
/// `contract.toml` below it (skipping hidden folders and `target`), sorted
/// so output is stable. A path that does not exist is an error.
pub fn contract_files(paths: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        if metadata.is_dir() {
            let mut below = Vec::new();
            walk(path, &mut below)?;
            below.sort();
            found.extend(below);
        } else {
            found.push(path.clone());
        }
    }
    found.dedup();
    Ok(found)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            if !name.starts_with('.') && name != "target" {
                walk(&path, found)?;
            }
        } else if name == CONTRACT_FILE {
            found.push(path);
        }
    }
    Ok(())
}
