//! Compiled components on disk, keyed by the sha-256 of the component and
//! the engine's settings, so an unchanged service is never recompiled and
//! an artefact is never used by an engine it was not built for.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::{LoadError, Precompiled};

/// Where the artefact for `wasm` lives in `dir`.
fn artefact_path(engine: &Engine, dir: &Path, wasm: &[u8]) -> PathBuf {
    let digest = Sha256::digest(wasm);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let mut engine_hash = DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    dir.join(format!("{hex}-{:016x}.cwasm", engine_hash.finish()))
}

/// Ensures the artefact for `wasm` is in the cache.
pub(crate) fn precompile(
    engine: &Engine,
    dir: &Path,
    service: &str,
    wasm: &[u8],
) -> Result<Precompiled, LoadError> {
    let path = artefact_path(engine, dir, wasm);
    if path.is_file() {
        return Ok(Precompiled {
            path,
            compiled: false,
        });
    }
    let bytes = engine
        .precompile_component(wasm)
        .map_err(|e| LoadError::Compile {
            service: service.to_string(),
            message: e.to_string(),
        })?;
    write_atomically(&path, &bytes)?;
    Ok(Precompiled {
        path,
        compiled: true,
    })
}

/// The component for `wasm`, from the cache when possible.
pub(crate) fn load(
    engine: &Engine,
    dir: &Path,
    service: &str,
    wasm: &[u8],
) -> Result<Component, LoadError> {
    let Precompiled { path, .. } = precompile(engine, dir, service, wasm)?;
    // SAFETY: the file was written by `precompile` above, by this engine
    // configuration (the name includes its compatibility hash), and is only
    // ever replaced whole by an atomic rename. wasmtime additionally checks
    // the artefact's header against the engine.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize_file(engine, &path) };
    component.map_err(|e| LoadError::Compile {
        service: service.to_string(),
        message: format!("cached artefact {} is unusable: {e}", path.display()),
    })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, bytes).map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}
