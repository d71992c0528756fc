//! Verifications `mote up` remembers, so that a restart re-verifies only
//! what changed.
//!
//! A record names exactly what passed: the contract's hash, the
//! component's, the compiled code's, the seed and the case count, and the
//! mote version that judged it. Any difference means "not remembered".
//! Records are unsigned: they save time on a machine that trusts its own
//! build folder. Hosts that trust nothing local serve signed attestations
//! (`mote up --require-attestation`).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::LoadedService;

/// Where records live, below the target folder.
pub const REMEMBERED_DIR: &str = "mote-verified";

/// The seed `mote up` verifies a service with: fixed by what is verified,
/// so that a start is reproducible and a restart of the same service
/// replays the same inputs.
pub fn startup_seed(service: &LoadedService) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(b"mote-up-seed\0");
    hasher.update(service.contract().hash.to_string().as_bytes());
    hasher.update(b"\0");
    hasher.update(service.artefact_sha256().as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

fn record_path(target_dir: &Path, service: &LoadedService) -> PathBuf {
    target_dir
        .join(REMEMBERED_DIR)
        .join(format!("{}.json", service.key()))
}

fn record(service: &LoadedService, seed: u64, cases: u32) -> Value {
    json!({
        "service": service.key(),
        "contract_sha256": service.contract().hash.to_string(),
        "artefact_sha256": service.artefact_sha256(),
        "precompiled_sha256": service.artefact.as_ref().map(|a| a.precompiled_sha256.clone()),
        "seed": seed,
        "cases": cases,
        "verifier": format!("mote {}", env!("CARGO_PKG_VERSION")),
    })
}

/// The seed and case count of a remembered pass of exactly this service
/// with at least `cases` cases, if there is one.
pub fn remembered_pass(
    target_dir: &Path,
    service: &LoadedService,
    cases: u32,
) -> Option<(u64, u32)> {
    let text = std::fs::read_to_string(record_path(target_dir, service)).ok()?;
    let found: Value = serde_json::from_str(&text).ok()?;
    let seed = found.get("seed")?.as_u64()?;
    let passed_cases = u32::try_from(found.get("cases")?.as_u64()?).ok()?;
    let expected = record(service, seed, passed_cases);
    (found == expected && passed_cases >= cases).then_some((seed, passed_cases))
}

/// Remembers that this service passed with `seed` and `cases`. The file is
/// replaced atomically.
pub fn remember_pass(
    target_dir: &Path,
    service: &LoadedService,
    seed: u64,
    cases: u32,
) -> std::io::Result<()> {
    let path = record_path(target_dir, service);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let temporary = path.with_extension(format!("json.tmp{}", std::process::id()));
    std::fs::write(&temporary, format!("{:#}\n", record(service, seed, cases)))?;
    std::fs::rename(&temporary, &path)
}
