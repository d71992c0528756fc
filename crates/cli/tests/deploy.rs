//! `mote deploy kubernetes` as a user runs it: what it writes, and what it
//! refuses before writing anything.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mote(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mote"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// A fresh folder holding an attestation key pair and the shop's host
/// certificates.
fn keys(tag: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("deploy-{tag}"));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_text = dir.to_str().unwrap();
    assert!(mote(&["keygen", "--out", dir_text]).status.success());
    let tls = dir.join("tls");
    let made = mote(&[
        "keygen",
        "--app",
        "--placement",
        "examples/shop/placement.toml",
        "--out",
        tls.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{made:?}");
    dir
}

fn deploy(keys: &Path, out: &Path, extra: &[&str]) -> Output {
    let public = keys.join("mote-key.pub");
    let tls = keys.join("tls");
    let mut args = vec![
        "deploy",
        "kubernetes",
        "examples/shop",
        "--placement",
        "examples/shop/placement.toml",
        "--out",
        out.to_str().unwrap(),
        "--image",
        "registry.example/shop:1",
        "--trusted-key",
        public.to_str().unwrap(),
        "--tls",
        tls.to_str().unwrap(),
    ];
    args.extend(extra);
    mote(&args)
}

#[test]
fn the_shop_deploys_as_manifests_a_dockerfile_and_the_secret_commands() {
    let keys = keys("ok");
    let out = keys.join("out");
    let done = deploy(&keys, &out, &["--autoscale", "front=2:6"]);
    assert!(done.status.success(), "{done:?}");
    for file in [
        "placement.configmap.json",
        "front.deployment.json",
        "front.service.json",
        "front.autoscaler.json",
        "back.deployment.json",
        "back.service.json",
        "Dockerfile",
        "Dockerfile.dockerignore",
    ] {
        assert!(out.join(file).is_file(), "{file}");
    }
    let public = std::fs::read_to_string(keys.join("mote-key.pub")).unwrap();
    let dockerfile = std::fs::read_to_string(out.join("Dockerfile")).unwrap();
    assert!(dockerfile.contains(public.trim()), "{dockerfile}");
    let said = String::from_utf8_lossy(&done.stdout);
    assert!(
        said.contains("kubectl create secret generic shop-front-tls")
            && said.contains("front.key")
            && said.contains("Not checked: a live cluster"),
        "{said}"
    );
}

#[test]
fn bad_requests_are_refused_before_anything_is_written() {
    let keys = keys("refused");
    let out = keys.join("out");
    let refusals: [(&[&str], &str); 3] = [
        (&["--autoscale", "front=5:2"], "MAX at least MIN"),
        (&["--autoscale", "nowhere=1:2"], "host `nowhere`"),
        (&["--replicas", "0"], "--replicas must be at least 1"),
    ];
    for (extra, why) in refusals {
        let refused = deploy(&keys, &out, extra);
        assert_eq!(refused.status.code(), Some(2), "{extra:?}: {refused:?}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(why), "{extra:?}: {stderr}");
    }
    std::fs::remove_file(keys.join("tls/back.key")).unwrap();
    let refused = deploy(&keys, &out, &[]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("back.key is missing"),
        "{refused:?}"
    );
    std::fs::write(keys.join("mote-key.pub"), "not a key\n").unwrap();
    let refused = deploy(&keys, &out, &[]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(!out.exists(), "nothing was written");
}
