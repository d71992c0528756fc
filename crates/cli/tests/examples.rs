//! Every example app keeps its contracts under seeds nobody chose: the
//! first thing a new user runs must not depend on luck. Each run draws
//! fresh seeds (printed, so that a failure replays), many cases each.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use std::path::{Path, PathBuf};
use std::process::Command;

/// Seeds per app, and generated cases per service and seed.
const SEEDS: usize = 5;
const CASES: &str = "5000";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Seeds that differ from run to run.
fn fresh_seeds() -> Vec<u64> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    (0..SEEDS as u64)
        .map(|i| {
            let mut x = nanos
                ^ (u64::from(std::process::id()) << 32)
                ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            // splitmix64: spread the bits.
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^ (x >> 31)
        })
        .collect()
}

#[test]
fn every_example_app_passes_verification_under_fresh_seeds() {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
    let apps: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert!(apps.len() >= 2, "{apps:?}");
    let seeds = fresh_seeds();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = apps
            .iter()
            .flat_map(|app| seeds.iter().map(move |seed| (app, *seed)))
            .map(|(app, seed)| {
                let target = &target;
                scope.spawn(move || {
                    let out = Command::new(env!("CARGO_BIN_EXE_mote"))
                        .args(["verify"])
                        .arg(app)
                        .args([
                            "--cases",
                            CASES,
                            "--seed",
                            &seed.to_string(),
                            "--target-dir",
                        ])
                        .arg(target)
                        .current_dir(root())
                        .env("NO_COLOR", "1")
                        .output()
                        .unwrap();
                    (app, seed, out)
                })
            })
            .collect();
        runs.into_iter()
            .map(|run| run.join().unwrap())
            .filter(|(_, _, out)| !out.status.success())
            .map(|(app, seed, out)| {
                format!(
                    "{} with seed {seed}:\n{}{}",
                    app.display(),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            })
            .collect()
    });
    println!("seeds: {seeds:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
