//! Compiled components on disk, keyed by the sha-256 of the component and
//! the engine's settings, so an unchanged service is never recompiled and
//! an artefact is never used by an engine it was not built for.
//!
//! The compiled code that runs is identified by its own sha-256, which
//! attestations bind. A load that expects a given hash never runs cached
//! code with another: it compiles the component afresh instead (and puts
//! the result back into the cache), so replacing a file in the cache can
//! never change what an attested service runs.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::{CompiledCode, LoadError, LoadedArtefact, Precompiled};

/// `sha256:` and the hex digest of `bytes`, as attestations write hashes.
pub fn sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Where the artefact for `wasm` lives in `dir`.
fn artefact_path(engine: &Engine, dir: &Path, wasm: &[u8]) -> PathBuf {
    let hex = sha256(wasm);
    let hex = hex.trim_start_matches("sha256:");
    dir.join(format!("{hex}-{:016x}.cwasm", engine_id(engine)))
}

/// The engine settings that compiled code depends on, as a number.
fn engine_id(engine: &Engine) -> u64 {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.finish()
}

fn compile_error(service: &str, e: impl std::fmt::Display) -> LoadError {
    LoadError::Compile {
        service: service.to_string(),
        message: e.to_string(),
    }
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
        .map_err(|e| compile_error(service, e))?;
    write_atomically(&path, &bytes)?;
    Ok(Precompiled {
        path,
        compiled: true,
    })
}

/// The component for `wasm` and the identity of the code it runs: from
/// the cache (`dir`) when it holds acceptable code, compiled now otherwise.
/// The cached file is read once; the bytes hashed are the bytes loaded.
pub(crate) fn load(
    engine: &Engine,
    dir: Option<&Path>,
    service: &str,
    wasm: &[u8],
    code: &CompiledCode,
) -> Result<(Component, LoadedArtefact), LoadError> {
    let component_sha256 = sha256(wasm);
    let path = dir.map(|dir| artefact_path(engine, dir, wasm));
    let cached = path.as_deref().and_then(|p| std::fs::read(p).ok());
    let acceptable = cached.filter(|bytes| match code {
        CompiledCode::Cached => true,
        CompiledCode::Expect(expected) => sha256(bytes) == *expected,
        CompiledCode::Fresh => false,
    });
    let (bytes, compiled) = match acceptable {
        Some(bytes) => (bytes, false),
        None => {
            let bytes = engine
                .precompile_component(wasm)
                .map_err(|e| compile_error(service, e))?;
            if let Some(path) = &path {
                write_atomically(path, &bytes)?;
            }
            (bytes, true)
        }
    };
    let precompiled_sha256 = sha256(&bytes);
    // SAFETY: the bytes are either compiled just now by this engine, or
    // read from the cache this runtime writes (its name includes the
    // engine's compatibility hash), which a caller that attested the code
    // has checked by hash above. wasmtime also checks the artefact's
    // header against the engine.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize(engine, &bytes) };
    let component = component.map_err(|e| {
        compile_error(
            service,
            format!(
                "compiled artefact{} is unusable: {e}",
                path.map(|p| format!(" {}", p.display()))
                    .unwrap_or_default()
            ),
        )
    })?;
    Ok((
        component,
        LoadedArtefact {
            component_sha256,
            precompiled_sha256,
            engine: format!("{:016x}", engine_id(engine)),
            compiled,
        },
    ))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = path.with_extension(format!("tmp{}-{unique}", std::process::id()));
    std::fs::write(&temporary, bytes).map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}
