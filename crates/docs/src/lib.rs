//! A static site of an app's contracts, as rustdoc is for a crate.
//!
//! Nobody reads a nanoservice's implementation; people read its contract.
//! [`site`] renders the contracts of an app for a reader: an index of
//! services with their verification status and the call graph as a
//! picture, and a page per service with its schemas as tables, its
//! conditions highlighted, its errors, examples, effects, limits, flow,
//! callers and callees. Every page works without JavaScript, but for the
//! index's search box, which filters the index in the browser.
//!
//! Every text that comes from a contract is escaped (maud escapes by
//! default); nothing in a contract can become markup.
//!
//! Architecture invariant: reads checked contracts and attestations, and
//! writes files; it runs nothing.

mod cel;
pub mod graph;
mod page;
pub mod schema;
mod try_form;

use std::path::{Path, PathBuf};

use mote_contract::Contract;
use page::Mode;
use serde_json::Value;

/// What is known about whether a service keeps its contract.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// A signed attestation of a passing run covers this very contract.
    Verified {
        /// The signer's public key, shortened to 16 hex digits.
        signer: String,
        /// When it was signed, if the attestation says.
        date: Option<String>,
        /// The contract's strength score (0 to 1), if it was measured.
        strength: Option<f64>,
    },
    /// An attestation exists but does not vouch for this contract: it is
    /// for an earlier version of it, or it does not check.
    Failed {
        /// Why it does not count.
        why: String,
    },
    /// No attestation.
    NotVerified,
}

impl Status {
    /// What an attestation (if any) says about `contract`: its signature
    /// is checked against the key it names, and it must be a pass for this
    /// contract's hash. Whether that key is trusted is for `mote attest
    /// check` to say; the site shows the signer.
    pub fn of(contract: &Contract, attestation: Option<&Value>) -> Status {
        let Some(attestation) = attestation else {
            return Status::NotVerified;
        };
        let key = attestation
            .get("public_key")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let checked = mote_verify::attest::public_key_from_hex(key).and_then(|signer| {
            mote_verify::attest::check(attestation, &[signer], Some(&contract.hash.to_hex()), None)
        });
        match checked {
            Ok(()) => Status::Verified {
                signer: key.chars().take(16).collect(),
                date: attestation
                    .get("signed_at")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                strength: attestation.get("strength").and_then(Value::as_f64),
            },
            Err(e) => Status::Failed { why: e.to_string() },
        }
    }

    /// One word for the index.
    pub fn label(&self) -> &'static str {
        match self {
            Status::Verified { .. } => "verified",
            Status::Failed { .. } => "failed",
            Status::NotVerified => "not verified",
        }
    }
}

/// One service of the site.
#[derive(Debug, Clone, Copy)]
pub struct ServiceDoc<'a> {
    /// How the app names it: its name, or `name@SERIES` when the app holds
    /// several series of it (`mote_contract::versions::keys`). Its page,
    /// links and the console's figures go by this key.
    pub key: &'a str,
    /// Its contract.
    pub contract: &'a Contract,
    /// What is known about its verification.
    pub status: &'a Status,
}

/// A rendered site: file paths (relative to the site's folder) and their
/// contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// Every file, the index first.
    pub files: Vec<(PathBuf, String)>,
}

/// The stylesheet, for screens from phones up and for print.
const STYLE: &str = include_str!("../assets/style.css");

/// The index's search: filters the table as one types.
const SEARCH: &str = include_str!("../assets/search.js");

/// The console's script: polls the host's figures while a page is in
/// view, and sends the try-it form.
const CONSOLE: &str = include_str!("../assets/console.js");

/// The page of the service with key `key`, relative to the site's
/// folder.
pub fn page_path(key: &str) -> PathBuf {
    PathBuf::from("services").join(format!("{key}.html"))
}

/// The site of an app's services (`title` names the app).
pub fn site(title: &str, services: &[ServiceDoc<'_>]) -> Site {
    render(title, services, Mode::Static)
}

/// The same site as the live console of `mote up`: each page also has
/// places for the host's figures, and each service page a form to try
/// it, which `console.js` fills in and sends. The host serves these
/// files under `/console/`, next to `api/live` (the figures, as JSON)
/// and `api/try/{service}` (a traced call).
pub fn console(title: &str, services: &[ServiceDoc<'_>]) -> Site {
    render(title, services, Mode::Console)
}

fn render(title: &str, services: &[ServiceDoc<'_>], mode: Mode) -> Site {
    let mut sorted: Vec<ServiceDoc<'_>> = services.to_vec();
    sorted.sort_by(|a, b| a.key.cmp(b.key));
    let mut files = vec![(
        PathBuf::from("index.html"),
        page::index(title, &sorted, mode),
    )];
    let known: Vec<&str> = sorted.iter().map(|s| s.key).collect();
    let edges = page::calls(&sorted);
    for service in &sorted {
        files.push((
            page_path(service.key),
            page::service(title, service, &known, &edges, mode),
        ));
    }
    files.push((PathBuf::from("style.css"), STYLE.to_string()));
    files.push((PathBuf::from("search.js"), SEARCH.to_string()));
    if mode == Mode::Console {
        files.push((PathBuf::from("console.js"), CONSOLE.to_string()));
    }
    Site { files }
}

/// The index page alone.
pub fn index(title: &str, services: &[ServiceDoc<'_>]) -> String {
    page::index(title, services, Mode::Static)
}

/// Writes `site` into the folder `out`, replacing what was there only
/// once every file is written: a failure leaves the old site whole.
pub fn write(site: &Site, out: &Path) -> std::io::Result<()> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "site".into());
    let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let written = (|| {
        for (path, text) in &site.files {
            let target = partial.join(path);
            if let Some(folder) = target.parent() {
                std::fs::create_dir_all(folder)?;
            }
            std::fs::write(target, text)?;
        }
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(e);
    }
    let previous = parent.join(format!(".{name}.previous-{}", std::process::id()));
    if out.exists() {
        std::fs::rename(out, &previous)?;
    }
    if let Err(e) = std::fs::rename(&partial, out) {
        if previous.exists() {
            let _ = std::fs::rename(&previous, out);
        }
        let _ = std::fs::remove_dir_all(&partial);
        return Err(e);
    }
    let _ = std::fs::remove_dir_all(&previous);
    Ok(())
}
