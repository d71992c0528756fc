//! The guest target, installed on demand, one installer at a time.
//!
//! `rustup target add` is not safe to run twice at once: two copies race on
//! the same download file and one fails. Builds started together (two
//! terminals, or a test suite's parallel tests) therefore take a file lock
//! around the install: the first installs, the others wait for it and then
//! find the target there.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{BuildError, WASM_TARGET};

/// Whether the target had to be installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetStatus {
    /// It was there already (or another process installed it meanwhile).
    Present,
    /// It was missing and this process installed it.
    Installed,
}

/// Makes sure rustc can build for the guest target, installing it with
/// rustup if it is missing. `MOTE_RUSTUP` names another rustup-compatible
/// program to use. The lock lives in rustup's home (`RUSTUP_HOME`, else
/// `~/.rustup`), which every process sharing the toolchain shares.
pub fn ensure_wasm_target() -> Result<TargetStatus, BuildError> {
    let rustup = std::env::var_os("MOTE_RUSTUP").unwrap_or_else(|| OsString::from("rustup"));
    ensure_wasm_target_with(&rustup, &lock_dir())
}

/// [`ensure_wasm_target`] with an explicit installer and lock folder.
pub fn ensure_wasm_target_with(
    rustup: &OsStr,
    lock_dir: &Path,
) -> Result<TargetStatus, BuildError> {
    if is_installed(rustup)? {
        return Ok(TargetStatus::Present);
    }
    let _lock = InstallLock::acquire(lock_dir)?;
    // Whoever held the lock before us may have installed it.
    if is_installed(rustup)? {
        return Ok(TargetStatus::Present);
    }
    let added = Command::new(rustup)
        .args(["target", "add", WASM_TARGET])
        .output()
        .map_err(|e| BuildError::Target(format!("cannot run {}: {e}", rustup.display())))?;
    if added.status.success() {
        Ok(TargetStatus::Installed)
    } else {
        Err(BuildError::Target(
            String::from_utf8_lossy(&added.stderr).trim().to_string(),
        ))
    }
}

fn is_installed(rustup: &OsStr) -> Result<bool, BuildError> {
    let listed = Command::new(rustup)
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| BuildError::Target(format!("cannot run {}: {e}", rustup.display())))?;
    Ok(String::from_utf8_lossy(&listed.stdout)
        .lines()
        .any(|l| l.trim() == WASM_TARGET))
}

fn lock_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("RUSTUP_HOME") {
        return PathBuf::from(home);
    }
    match std::env::var_os("HOME") {
        Some(home) => Path::new(&home).join(".rustup"),
        None => std::env::temp_dir(),
    }
}

/// An exclusive lock on `mote-target-install.lock`, released on drop (and
/// by the operating system if the process dies holding it).
struct InstallLock(File);

impl InstallLock {
    fn acquire(dir: &Path) -> Result<InstallLock, BuildError> {
        let io = |e: std::io::Error| BuildError::Io {
            path: dir.join("mote-target-install.lock"),
            source: e,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("mote-target-install.lock"))
            .map_err(io)?;
        file.lock().map_err(io)?;
        Ok(InstallLock(file))
    }
}

impl Drop for InstallLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// A stand-in for rustup that takes a while to install and fails when
    /// a second copy starts installing while the first still is, as the
    /// real one does when two downloads race.
    fn slow_racy_installer(dir: &Path) -> PathBuf {
        let script = dir.join("rustup");
        let state = dir.join("state");
        std::fs::create_dir_all(&state).unwrap();
        let text = format!(
            r#"#!/bin/sh
state="{state}"
case "$1 $2" in
  "target list")
    [ -f "$state/installed" ] && echo "{target}"
    exit 0 ;;
  "target add")
    if ! mkdir "$state/installing" 2>/dev/null; then
      echo "could not rename 'downloaded' file: No such file or directory" >&2
      exit 1
    fi
    sleep 1
    touch "$state/installed"
    echo x >> "$state/installs"
    rmdir "$state/installing"
    exit 0 ;;
esac
exit 2
"#,
            state = state.display(),
            target = WASM_TARGET
        );
        executable(&script, &text);
        script
    }

    /// Writes an executable script at `path` through a child process,
    /// never through a descriptor of this one: a test thread forking while
    /// this process held the script open for writing would hand that
    /// descriptor to its child, and running the script would then fail
    /// with "Text file busy".
    fn executable(path: &Path, text: &str) {
        let mut writer = Command::new("sh")
            .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
            .arg(path)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut writer.stdin.take().unwrap(), text.as_bytes()).unwrap();
        assert!(writer.wait().unwrap().success());
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mote-build-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn builds_started_together_install_the_target_once_and_all_succeed() {
        let dir = scratch("race");
        let rustup = slow_racy_installer(&dir);
        let lock = dir.join("lock");
        let outcomes: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..6)
                .map(|_| scope.spawn(|| ensure_wasm_target_with(rustup.as_os_str(), &lock)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let installed = outcomes
            .iter()
            .filter(|o| matches!(o, Ok(TargetStatus::Installed)))
            .count();
        for outcome in &outcomes {
            assert!(outcome.is_ok(), "{outcome:?}");
        }
        assert_eq!(installed, 1, "{outcomes:?}");
        let installs = std::fs::read_to_string(dir.join("state/installs")).unwrap();
        assert_eq!(installs.lines().count(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_stand_in_fails_when_two_installs_overlap_so_the_lock_is_what_saves_them() {
        let dir = scratch("overlap");
        let rustup = slow_racy_installer(&dir);
        let results: Vec<bool> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        Command::new(&rustup)
                            .args(["target", "add", WASM_TARGET])
                            .status()
                            .unwrap()
                            .success()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|ok| **ok).count(), 1, "{results:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failing_installer_is_reported() {
        let dir = scratch("fails");
        let script = dir.join("rustup");
        executable(
            &script,
            "#!/bin/sh\n[ \"$2\" = add ] && echo 'no network' >&2 && exit 1\nexit 0\n",
        );
        let error = ensure_wasm_target_with(script.as_os_str(), &dir).unwrap_err();
        assert!(error.to_string().contains("no network"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
