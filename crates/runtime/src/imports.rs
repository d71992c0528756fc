//! The static effect check: what a component imports must be allowed by its
//! contract, or it is refused when it loads, before it ever runs.
//!
//! mote links no WASI. A guest reaches the host only through
//! `mote:service`: `types` and `host` (`log`, and `call` gated per callee
//! by `effects.calls`) for every service, `clock` and `random` only for a
//! service whose contract declares them, `store` only for one that declares
//! a store and `store-write` only for one that may write one.

use mote_contract::{Contract, StoreAccess};

/// What a contract lets a component import beyond `host`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Grants {
    pub(crate) clock: bool,
    pub(crate) random: bool,
    /// It declares a store.
    pub(crate) read_stores: bool,
    /// It declares a store `access = "read-write"`.
    pub(crate) write_stores: bool,
}

impl Grants {
    /// Every interface of `mote:service`: what any component may import
    /// before its contract is known.
    pub(crate) const ALL: Grants = Grants {
        clock: true,
        random: true,
        read_stores: true,
        write_stores: true,
    };

    /// What `contract` grants.
    pub(crate) fn of(contract: &Contract) -> Grants {
        Grants {
            clock: contract.effects.clock,
            random: contract.effects.random,
            read_stores: !contract.stores.is_empty(),
            write_stores: contract
                .stores
                .iter()
                .any(|s| s.access == StoreAccess::ReadWrite),
        }
    }
}

/// An import the contract does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedImport {
    /// The imported interface, e.g. `wasi:sockets/tcp@0.2.3`.
    pub import: String,
    /// Why it is refused and which `[effects]` entry, if any, would allow it.
    pub reason: String,
}

/// Checks each imported interface against the contract's effects.
pub(crate) fn check<'a>(
    imports: impl IntoIterator<Item = &'a str>,
    effects: Grants,
) -> Vec<RefusedImport> {
    imports
        .into_iter()
        .filter_map(|name| {
            refusal(name, effects).map(|reason| RefusedImport {
                import: name.to_string(),
                reason,
            })
        })
        .collect()
}

/// Why `name` may not be imported under `effects`, if it may not.
fn refusal(name: &str, effects: Grants) -> Option<String> {
    let interface = name.split('@').next().unwrap_or(name);
    match interface {
        "mote:service/types" | "mote:service/host" => None,
        "mote:service/clock" if effects.clock => None,
        "mote:service/clock" => Some(
            "the service reads the clock, which its contract does not declare: add `clock = true` to `[effects]`".into(),
        ),
        "mote:service/random" if effects.random => None,
        "mote:service/random" => Some(
            "the service asks for randomness, which its contract does not declare: add `random = true` to `[effects]`".into(),
        ),
        "mote:service/store" if effects.read_stores => None,
        "mote:service/store" => Some(
            "the service reads stores, but its contract declares none: add a `[store.NAME]` section".into(),
        ),
        "mote:service/store-write" if effects.write_stores => None,
        "mote:service/store-write" => Some(
            "the service writes to stores, but its contract declares none it may write: give the store `access = \"read-write\"`".into(),
        ),
        _ if interface.starts_with("wasi:") => Some(format!(
            "mote grants no WASI{}; a service reaches the host only through mote:service. Build it for wasm32-unknown-unknown (`mote build` does), where std's files, clocks, sockets and streams are unsupported",
            wasi_detail(interface)
        )),
        _ => Some("no `[effects]` entry allows this interface".into()),
    }
}

fn wasi_detail(interface: &str) -> &'static str {
    if interface.starts_with("wasi:sockets/") {
        " (no network: reach other services through `[effects] calls = [\"name@range\"]`)"
    } else if interface.starts_with("wasi:filesystem/") {
        " (no files: declare a `[store.NAME]` and use mote_guest::Store)"
    } else if interface.starts_with("wasi:clocks/") {
        " (for the time, declare `[effects] clock = true` and use mote_guest::clock)"
    } else if interface.starts_with("wasi:random/") {
        " (for randomness, declare `[effects] random = true` and use mote_guest::random)"
    } else if interface.starts_with("wasi:http/") {
        " (no outbound HTTP)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn effects(clock: bool, random: bool) -> Grants {
        Grants {
            clock,
            random,
            ..Grants::default()
        }
    }

    #[test]
    fn mote_s_own_interfaces_pass() {
        let imports = ["mote:service/types@0.1.0", "mote:service/host@0.1.0"];
        assert!(check(imports, effects(false, false)).is_empty());
    }

    #[test]
    fn clock_and_random_need_their_declaration_and_say_which() {
        let imports = ["mote:service/clock@0.1.0", "mote:service/random@0.1.0"];
        let refused = check(imports, effects(false, false));
        assert_eq!(refused.len(), 2);
        assert!(refused[0].reason.contains("clock = true"), "{refused:?}");
        assert!(refused[1].reason.contains("random = true"), "{refused:?}");
        assert!(check(imports, effects(true, true)).is_empty());
        assert_eq!(check(imports, effects(true, false)).len(), 1);
    }

    #[test]
    fn stores_need_a_declaration_and_writes_a_writable_one() {
        let imports = ["mote:service/store@0.1.0", "mote:service/store-write@0.1.0"];
        let refused = check(imports, Grants::default());
        assert_eq!(refused.len(), 2);
        assert!(refused[0].reason.contains("[store.NAME]"), "{refused:?}");
        assert!(refused[1].reason.contains("read-write"), "{refused:?}");
        let read_only = Grants {
            read_stores: true,
            ..Grants::default()
        };
        let refused = check(imports, read_only);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].import, "mote:service/store-write@0.1.0");
        assert!(check(imports, Grants::ALL).is_empty());
    }

    #[test]
    fn every_wasi_interface_is_refused_with_a_reason() {
        let refused = check(
            [
                "wasi:io/streams@0.2.3",
                "wasi:cli/environment@0.2.3",
                "wasi:sockets/tcp@0.2.3",
                "wasi:filesystem/preopens@0.2.3",
                "wasi:clocks/monotonic-clock@0.2.3",
                "acme:secret/thing",
            ],
            effects(true, true),
        );
        assert_eq!(refused.len(), 6);
        assert!(refused.iter().take(5).all(|r| r.reason.contains("no WASI")));
        assert!(refused[2].reason.contains("calls"));
        assert!(refused[4].reason.contains("clock = true"));
        assert!(refused[5].reason.contains("[effects]"));
    }
}
