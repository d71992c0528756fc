//! Finds the services of a mote app and builds their WebAssembly components.
//!
//! An app is a folder; every folder below it holding a `contract.toml` is a
//! service. A service with a `Cargo.toml` next to its contract is built with
//! `cargo build --release --target wasm32-unknown-unknown` into a core
//! module, which is then turned into a component in process (wit-component):
//! no WASI, no external tool. A flow has no code to build. All services of
//! an app share one cargo target directory, so their common dependencies
//! compile once.
//!
//! Building runs the service's build scripts and procedural macros on the
//! host, unsandboxed, as any `cargo build` does: build only source you are
//! willing to run. A host that serves attested artefacts never builds.
//!
//! Architecture invariant: knows nothing of wasmtime; it turns source into
//! `.wasm` components and stops there.

mod component;
mod revision;
mod target;

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use component::componentize;
pub use revision::{RevisionError, contracts_at_revision};
pub use target::{TargetStatus, ensure_wasm_target, ensure_wasm_target_with};

/// The file that marks a service folder.
pub const CONTRACT_FILE: &str = "contract.toml";

/// The target guests are built for.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The folder of the target directory that holds the components.
pub const COMPONENTS_DIR: &str = "mote-components";

/// A service folder found in an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSource {
    /// The folder.
    pub dir: PathBuf,
    /// Its `contract.toml`.
    pub contract: PathBuf,
    /// The cargo package next to the contract, if there is one.
    pub package: Option<String>,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A file or folder could not be read.
    #[error("{path}: {source}")]
    Io {
        /// What was being read.
        path: PathBuf,
        /// Why it failed.
        source: io::Error,
    },
    /// The service's Cargo.toml has no `[package] name`.
    #[error("{manifest}: no [package] name")]
    NoPackage {
        /// The manifest.
        manifest: PathBuf,
    },
    /// The compiler rejected the service.
    #[error("building {service} failed:\n{output}")]
    Compiler {
        /// The service folder.
        service: PathBuf,
        /// What cargo and rustc printed.
        output: String,
    },
    /// The guest target is missing and could not be installed.
    #[error(
        "the {WASM_TARGET} target is not installed and `rustup target add {WASM_TARGET}` failed: {0}"
    )]
    Target(String),
    /// The compiled module could not be made into a mote component.
    #[error("{}: cannot make a component of the compiled module: {message}", .module.display())]
    Componentize {
        /// The core module cargo produced.
        module: PathBuf,
        /// Why not, e.g. an import mote does not provide.
        message: String,
    },
}

/// Every contract file under `paths`: a file stands for itself, a folder
/// for every `contract.toml` below it (skipping hidden folders and
/// `target`), in sorted order. A path that does not exist is an error.
pub fn contract_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, BuildError> {
    let mut found = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path).map_err(|source| BuildError::Io {
            path: path.clone(),
            source,
        })?;
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

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), BuildError> {
    let io = |source| BuildError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        if entry.file_type().map_err(io)?.is_dir() {
            if !name.starts_with('.') && name != "target" {
                walk(&path, found)?;
            }
        } else if name == CONTRACT_FILE {
            found.push(path);
        }
    }
    Ok(())
}

/// The services of the app in `app`, sorted by folder.
pub fn discover(app: &Path) -> Result<Vec<ServiceSource>, BuildError> {
    contract_files(&[app.to_path_buf()])?
        .into_iter()
        .map(|contract| {
            let dir = contract
                .parent()
                .map_or_else(PathBuf::new, Path::to_path_buf);
            let manifest = dir.join("Cargo.toml");
            let package = if manifest.is_file() {
                Some(package_name(&manifest)?)
            } else {
                None
            };
            Ok(ServiceSource {
                dir,
                contract,
                package,
            })
        })
        .collect()
}

fn package_name(manifest: &Path) -> Result<String, BuildError> {
    let text = std::fs::read_to_string(manifest).map_err(|source| BuildError::Io {
        path: manifest.to_path_buf(),
        source,
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| BuildError::Io {
        path: manifest.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
    })?;
    table
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .ok_or_else(|| BuildError::NoPackage {
            manifest: manifest.to_path_buf(),
        })
}

/// Builds one service's component into `target_dir` and returns the path
/// of the component. Cargo decides what changed; an unchanged service is
/// not rebuilt, and an unchanged module is not rewritten. Returns `None`
/// for a service without a Cargo package (a flow, or a component built
/// some other way).
pub fn build(service: &ServiceSource, target_dir: &Path) -> Result<Option<PathBuf>, BuildError> {
    let Some(package) = &service.package else {
        return Ok(None);
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .arg("build")
        .args([
            "--release",
            "--target",
            WASM_TARGET,
            "--color",
            "never",
            "--manifest-path",
        ])
        .arg(service.dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir)
        .output()
        .map_err(|source| BuildError::Io {
            path: service.dir.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(BuildError::Compiler {
            service: service.dir.clone(),
            output: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    let module = core_module(target_dir, package);
    let component = artefact(target_dir, package);
    componentize(&module, &component)?;
    Ok(Some(component))
}

/// Where cargo puts the core module of `package`.
pub fn core_module(target_dir: &Path, package: &str) -> PathBuf {
    target_dir
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{}.wasm", package.replace('-', "_")))
}

/// Where the component of `package` is written: what the host loads and
/// what attestations bind.
pub fn artefact(target_dir: &Path, package: &str) -> PathBuf {
    target_dir
        .join(COMPONENTS_DIR)
        .join(format!("{}.wasm", package.replace('-', "_")))
}
