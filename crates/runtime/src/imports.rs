//! The static effect check: what a component imports must be allowed by its
//! contract, or it is refused when it loads, before it ever runs.

/// An import the contract does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedImport {
    /// The imported interface, e.g. `wasi:sockets/tcp@0.2.3`.
    pub import: String,
    /// Why it is refused and which `[effects]` entry, if any, would allow it.
    pub reason: String,
}

/// Interfaces every service may import. Clocks and randomness are always
/// linkable, but an undeclared one is served deterministically (a fixed
/// clock, a seeded generator), so a pure service stays pure.
const ALWAYS_ALLOWED: &[&str] = &[
    "wasi:io/",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-",
    "wasi:clocks/",
    "wasi:random/",
    "mote:service/types",
    "mote:service/host",
];

/// Checks each import name. Every effect a contract can declare today
/// (`calls`, `clock`, `random`) is served through always-linkable
/// interfaces, so the answer does not depend on the contract yet.
pub fn check<'a>(imports: impl IntoIterator<Item = &'a str>) -> Vec<RefusedImport> {
    imports
        .into_iter()
        .filter(|name| !ALWAYS_ALLOWED.iter().any(|prefix| name.starts_with(prefix)))
        .map(|name| RefusedImport {
            import: name.to_string(),
            reason: reason(name),
        })
        .collect()
}

fn reason(name: &str) -> String {
    if name.starts_with("wasi:sockets/") {
        "network access is not an effect a nanoservice can declare; reach other services through `[effects] calls = [\"name@range\"]`".into()
    } else if name.starts_with("wasi:http/") {
        "outbound HTTP will be the `[effects] http` entry, which mote does not support yet".into()
    } else if name.starts_with("wasi:filesystem/") {
        "mote grants no filesystem: no `[effects]` entry allows files; keep state out of the service".into()
    } else {
        "no `[effects]` entry allows this interface".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interfaces_a_std_guest_needs_pass() {
        let imports = [
            "wasi:io/error@0.2.3",
            "wasi:io/streams@0.2.3",
            "wasi:cli/stdout@0.2.3",
            "wasi:cli/environment@0.2.3",
            "wasi:clocks/wall-clock@0.2.3",
            "wasi:random/insecure-seed@0.2.3",
            "mote:service/host@0.1.0",
        ];
        assert!(check(imports).is_empty());
    }

    #[test]
    fn sockets_http_and_files_are_refused_with_a_reason() {
        let refused = check([
            "wasi:sockets/tcp@0.2.3",
            "wasi:http/outgoing-handler@0.2.3",
            "wasi:filesystem/preopens@0.2.3",
            "acme:secret/thing",
        ]);
        assert_eq!(refused.len(), 4);
        assert!(refused[0].reason.contains("calls"));
        assert!(refused[1].reason.contains("http"));
        assert!(refused[2].reason.contains("filesystem"));
        assert!(refused[3].reason.contains("[effects]"));
    }
}
