//! Placement: which host of an app serves which of its services.
//!
//! The seed keeps the deployment boundary apart from the logical
//! decomposition: the same contracts and the same code run in one process
//! or split over hosts, and only a placement file says which. It names
//! each host, the URL the other hosts reach it at, and the services it
//! serves; one host may take `rest = true`, every service not placed
//! elsewhere:
//!
//! ```toml
//! [host.front]
//! url = "http://127.0.0.1:9001"
//! services = ["shop.checkout"]
//!
//! [host.back]
//! url = "http://127.0.0.1:9002"
//! rest = true
//! ```
//!
//! With `https://` URLs (all of them, or none), the hosts call each other
//! over mutual TLS with certificates of the app's own authority (`mote
//! keygen --app`); with `http://`, over plain HTTP, which `mote up`
//! allows on loopback only.
//!
//! [`parse`] reads the file, reporting every problem with its line;
//! [`Placement::check`] holds it against the app's services.
//!
//! Architecture invariant: reads a placement file and service names;
//! knows nothing of how services run or talk.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use mote_contract::{Diagnostic, DiagnosticKind, SourceFile};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One host of a placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Its name, the key under `[host]`.
    pub name: String,
    /// How the other hosts reach it: `http://host:port` or
    /// `https://host:port`, no path.
    pub url: String,
    /// The services placed on it by name, with where each was written.
    pub services: Vec<(String, Range<usize>)>,
    /// Whether it serves every service not placed elsewhere.
    pub rest: bool,
    /// Where its table was written.
    pub span: Range<usize>,
}

/// A parsed placement file.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The file, for diagnostics.
    pub file: Arc<SourceFile>,
    /// The hosts, in the file's order.
    pub hosts: Vec<Host>,
}

/// Reads a placement file: every problem of its shape is reported, each
/// with where it was written.
pub fn parse(file: SourceFile) -> Result<Placement, Vec<Diagnostic>> {
    let file = Arc::new(file);
    let error = |kind, message: String, span: Range<usize>| {
        Diagnostic::error(&file, kind, message).at(span)
    };
    let (document, syntax) = DeTable::parse_recoverable(file.text());
    let mut problems: Vec<Diagnostic> = syntax
        .into_iter()
        .map(|e| {
            let span = e.span().unwrap_or(0..0);
            error(DiagnosticKind::TomlSyntax, e.message().to_string(), span)
        })
        .collect();
    if !problems.is_empty() {
        return Err(problems);
    }
    let root = document.get_ref();
    let mut hosts = Vec::new();
    for (key, value) in root.iter() {
        if key.get_ref() != "host" {
            problems.push(
                error(
                    DiagnosticKind::UnknownKey,
                    format!("`{}` is not a placement key", key.get_ref()),
                    key.span(),
                )
                .hint("a placement file holds only `[host.NAME]` tables"),
            );
            continue;
        }
        let DeValue::Table(table) = value.get_ref() else {
            problems.push(error(
                DiagnosticKind::WrongType,
                "`host` must be a table of hosts, `[host.NAME]`".into(),
                value.span(),
            ));
            continue;
        };
        for (name, host) in table.iter() {
            if let Some(host) = parse_host(&file, name, host, &mut problems) {
                hosts.push(host);
            }
        }
    }
    if hosts.is_empty() && problems.is_empty() {
        problems.push(
            error(
                DiagnosticKind::MissingKey,
                "the placement names no host".into(),
                0..0,
            )
            .hint("add a `[host.NAME]` table with `url` and `services` or `rest = true`"),
        );
    }
    // In the file's order, whatever order the TOML table keeps.
    hosts.sort_by_key(|h| h.span.start);
    for (i, host) in hosts.iter().enumerate() {
        let url = host.url.trim_end_matches('/');
        if let Some(first) = hosts[..i]
            .iter()
            .find(|h| h.url.trim_end_matches('/') == url)
        {
            problems.push(
                error(
                    DiagnosticKind::InvalidValue,
                    format!(
                        "hosts `{}` and `{}` have the same URL `{url}`",
                        first.name, host.name
                    ),
                    host.span.clone(),
                )
                .hint("each host is reached at a URL of its own"),
            );
        }
    }
    if let Some(first) = hosts.first() {
        let tls = first.url.starts_with("https://");
        for host in &hosts[1..] {
            if host.url.starts_with("https://") != tls {
                problems.push(
                    error(
                        DiagnosticKind::InvalidValue,
                        format!(
                            "host `{}` is reached over {} but `{}` over {}",
                            host.name,
                            scheme(&host.url),
                            first.name,
                            scheme(&first.url)
                        ),
                        host.span.clone(),
                    )
                    .hint("the hosts of one app all use https:// (mutual TLS) or all http://"),
                );
            }
        }
    }
    problems.sort_by_key(|d| d.span().map_or(0, |s| s.start));
    let rest: Vec<&Host> = hosts.iter().filter(|h| h.rest).collect();
    if let [_, second, ..] = rest.as_slice() {
        problems.push(error(
            DiagnosticKind::PlacedTwice,
            format!(
                "hosts `{}` and `{}` both take the rest; only one may",
                rest[0].name, second.name
            ),
            second.span.clone(),
        ));
    }
    if problems.is_empty() {
        Ok(Placement { file, hosts })
    } else {
        Err(problems)
    }
}

fn parse_host(
    file: &Arc<SourceFile>,
    name: &Spanned<std::borrow::Cow<'_, str>>,
    host: &Spanned<DeValue<'_>>,
    problems: &mut Vec<Diagnostic>,
) -> Option<Host> {
    let error =
        |kind, message: String, span: Range<usize>| Diagnostic::error(file, kind, message).at(span);
    let host_name = name.get_ref().to_string();
    let DeValue::Table(table) = host.get_ref() else {
        problems.push(error(
            DiagnosticKind::WrongType,
            format!("host `{host_name}` must be a table"),
            host.span(),
        ));
        return None;
    };
    if host_name.is_empty()
        || !host_name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        problems.push(
            error(
                DiagnosticKind::InvalidName,
                format!("`{host_name}` is not a host name"),
                name.span(),
            )
            .hint("lowercase letters, digits and `-`: it becomes a DNS label"),
        );
    }
    let before = problems.len();
    let mut url = None;
    let mut services = Vec::new();
    let mut rest = false;
    let mut listed = false;
    for (key, value) in table.iter() {
        match (key.get_ref().as_ref(), value.get_ref()) {
            ("url", DeValue::String(text)) => match check_url(text) {
                Ok(()) => url = Some(text.to_string()),
                Err(why) => problems.push(error(
                    DiagnosticKind::InvalidValue,
                    format!("host `{host_name}`: `{text}` is not a host URL: {why}"),
                    value.span(),
                )),
            },
            ("services", DeValue::Array(items)) => {
                listed = true;
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::String(service) => {
                            services.push((service.to_string(), item.span()));
                        }
                        _ => problems.push(error(
                            DiagnosticKind::WrongType,
                            "each service is its name as a string".into(),
                            item.span(),
                        )),
                    }
                }
            }
            ("rest", DeValue::Boolean(b)) => rest = *b,
            ("url" | "services" | "rest", _) => problems.push(error(
                DiagnosticKind::WrongType,
                format!(
                    "`{}` must be {}",
                    key.get_ref(),
                    match key.get_ref().as_ref() {
                        "url" => "a string",
                        "services" => "an array of service names",
                        _ => "true or false",
                    }
                ),
                value.span(),
            )),
            (other, _) => problems.push(
                error(
                    DiagnosticKind::UnknownKey,
                    format!("`{other}` is not a key of a host"),
                    key.span(),
                )
                .hint("a host has `url`, `services` and `rest`"),
            ),
        }
    }
    let Some(url) = url else {
        if problems.len() == before {
            problems.push(
                error(
                    DiagnosticKind::MissingKey,
                    format!("host `{host_name}` has no `url`"),
                    name.span(),
                )
                .hint("the URL the other hosts reach it at, e.g. url = \"https://10.0.0.2:9001\""),
            );
        }
        return None;
    };
    if !listed && !rest {
        problems.push(
            error(
                DiagnosticKind::MissingKey,
                format!("host `{host_name}` serves nothing"),
                name.span(),
            )
            .hint("give it `services = [...]` or `rest = true`"),
        );
    }
    (problems.len() == before).then(|| Host {
        name: host_name,
        url,
        services,
        rest,
        span: host.span(),
    })
}

/// Whether the host part of `authority` (`host:port`) is this machine.
fn is_loopback(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn scheme(url: &str) -> &str {
    url.split_once("://").map_or(url, |(scheme, _)| scheme)
}

/// Whether `url` is `http://authority` or `https://authority` with
/// nothing after but a `/`.
fn check_url(url: &str) -> Result<(), &'static str> {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return Err("it must start with http:// or https://");
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() {
        return Err("it has no host");
    }
    if authority.contains(['/', '?', '#', '@', ' ']) {
        return Err("it must be the host and port alone, with no path");
    }
    Ok(())
}

impl Placement {
    /// Reads and parses the placement file at `path`.
    pub fn load(path: &std::path::Path) -> Result<Placement, Vec<Diagnostic>> {
        match SourceFile::read(path) {
            Ok(file) => parse(file),
            Err(e) => {
                let file = Arc::new(SourceFile::new(path, ""));
                Err(vec![Diagnostic::error(
                    &file,
                    DiagnosticKind::Io,
                    format!("cannot read {}: {e}", path.display()),
                )])
            }
        }
    }

    /// Whether the hosts call each other over mutual TLS: their URLs are
    /// `https://` (a parsed placement never mixes the two).
    pub fn mutual_tls(&self) -> bool {
        self.hosts.iter().all(|h| h.url.starts_with("https://"))
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The host serving `service`: the one that lists it, or else the one
    /// that takes the rest.
    pub fn host_of(&self, service: &str) -> Option<&Host> {
        self.hosts
            .iter()
            .find(|h| h.services.iter().any(|(s, _)| s == service))
            .or_else(|| self.hosts.iter().find(|h| h.rest))
    }

    /// Every problem of this placement for an app with `services`: a
    /// service placed twice, a service on no host, a name the app does not
    /// have; and a plain `http://` host that is not on this machine, since
    /// nothing would prove who calls it (`mote up` keeps such a peer
    /// address on loopback).
    pub fn check<'a>(&self, services: impl IntoIterator<Item = &'a str>) -> Vec<Diagnostic> {
        let mut problems = self.check_transport();
        problems.extend(self.check_placing(services));
        problems
    }

    /// The stores (`stores`: each store's name and the services that
    /// declare it) that services on different hosts share. A SQLite store
    /// (the default) lives on one host, so each such store is a problem,
    /// named at the host that splits it off; `mote up --store postgres://`
    /// shares stores between hosts and does not ask.
    pub fn check_stores(&self, stores: &BTreeMap<&str, Vec<&str>>) -> Vec<Diagnostic> {
        let mut problems = Vec::new();
        for (store, services) in stores {
            let mut first: Option<(&str, &Host)> = None;
            for service in services {
                let Some(host) = self.host_of(service) else {
                    continue;
                };
                match first {
                    None => first = Some((service, host)),
                    Some((by, there)) if there.name != host.name => {
                        problems.push(
                            Diagnostic::error(
                                &self.file,
                                DiagnosticKind::StoreSplit,
                                format!(
                                    "store `{store}` is used by `{by}` on host `{}` and by `{service}` on host `{}`; a SQLite store (the default) lives on one host",
                                    there.name, host.name
                                ),
                            )
                            .at(host.span.clone())
                            .hint("place the services that share a store on one host, or serve every host with one PostgreSQL store (`mote up --store postgres://...`)"),
                        );
                        break;
                    }
                    Some(_) => {}
                }
            }
        }
        problems
    }

    /// The problems of the hosts' URLs alone: a plain `http://` host that
    /// is not on this machine.
    pub fn check_transport(&self) -> Vec<Diagnostic> {
        let mut problems = Vec::new();
        for host in &self.hosts {
            if let Some(authority) = host.url.strip_prefix("http://")
                && !is_loopback(authority.trim_end_matches('/'))
            {
                problems.push(
                    Diagnostic::error(
                        &self.file,
                        DiagnosticKind::InvalidValue,
                        format!(
                            "host `{}` is reached over plain HTTP at `{}`, which is not this machine: nothing would prove who calls it",
                            host.name, host.url
                        ),
                    )
                    .at(host.span.clone())
                    .hint("use https:// URLs and `mote keygen --app` for mutual TLS; http:// is for hosts on one machine (127.0.0.1, localhost)"),
                );
            }
        }
        problems
    }

    /// The problems of placing `services`, the app's, on the hosts: a
    /// service placed twice, a service on no host, a name the app does not
    /// have.
    pub fn check_placing<'a>(
        &self,
        services: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Diagnostic> {
        // A name may come once per series the app holds; every series of
        // a name is placed together.
        let mut app: Vec<&str> = Vec::new();
        for service in services {
            if !app.contains(&service) {
                app.push(service);
            }
        }
        let mut problems = Vec::new();
        let mut placed: BTreeMap<&str, &Host> = BTreeMap::new();
        for host in &self.hosts {
            for (service, span) in &host.services {
                if let Some(first) = placed.insert(service, host) {
                    let elsewhere = if first.name == host.name {
                        format!("twice on host `{}`", host.name)
                    } else {
                        format!("on hosts `{}` and `{}`", first.name, host.name)
                    };
                    problems.push(
                        Diagnostic::error(
                            &self.file,
                            DiagnosticKind::PlacedTwice,
                            format!("`{service}` is placed {elsewhere}"),
                        )
                        .at(span.clone())
                        .hint("a service is served by exactly one host"),
                    );
                }
                if !app.contains(&service.as_str()) {
                    problems.push(
                        Diagnostic::error(
                            &self.file,
                            DiagnosticKind::UnknownService,
                            format!("the app has no service `{service}`"),
                        )
                        .at(span.clone()),
                    );
                }
            }
        }
        if !self.hosts.iter().any(|h| h.rest) {
            let unplaced: Vec<&str> = app
                .iter()
                .copied()
                .filter(|s| !placed.contains_key(s))
                .collect();
            if !unplaced.is_empty() {
                problems.push(
                    Diagnostic::error(
                        &self.file,
                        DiagnosticKind::Unplaced,
                        format!("no host serves {}", names(&unplaced)),
                    )
                    .at(0..0)
                    .hint("list them under a host's `services`, or give one host `rest = true`"),
                );
            }
        }
        problems
    }
}

fn names(services: &[&str]) -> String {
    services
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
