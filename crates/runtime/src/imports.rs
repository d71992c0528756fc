//! The static effect check: what a component imports must be allowed by its
//! contract, or it is refused when it loads, before it ever runs.
//!
//! mote links no WASI. A guest reaches the host only through
//! `mote:service`: `types` and `host` (`log`, and `call` gated per callee
//! by `effects.calls`) for every service, `clock` and `random` only for a
//! service whose contract declares them.

use mote_contract::Effects;

/// An import the contract does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedImport {
    /// The imported interface, e.g. `wasi:sockets/tcp@0.2.3`.
    pub import: String,
    /// Why it is refused and which `[effects]` entry, if any, would allow it.
    pub reason: String,
}

/// Checks each imported interface against the contract's effects.
pub fn check<'a>(
    imports: impl IntoIterator<Item = &'a str>,
    effects: &Effects,
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
fn refusal(name: &str, effects: &Effects) -> Option<String> {
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
        " (no files: keep state out of the service)"
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

    fn effects(clock: bool, random: bool) -> Effects {
        Effects {
            clock,
            random,
            ..Effects::default()
        }
    }

    #[test]
    fn mote_s_own_interfaces_pass() {
        let imports = ["mote:service/types@0.1.0", "mote:service/host@0.1.0"];
        assert!(check(imports, &effects(false, false)).is_empty());
    }

    #[test]
    fn clock_and_random_need_their_declaration_and_say_which() {
        let imports = ["mote:service/clock@0.1.0", "mote:service/random@0.1.0"];
        let refused = check(imports, &effects(false, false));
        assert_eq!(refused.len(), 2);
        assert!(refused[0].reason.contains("clock = true"), "{refused:?}");
        assert!(refused[1].reason.contains("random = true"), "{refused:?}");
        assert!(check(imports, &effects(true, true)).is_empty());
        assert_eq!(check(imports, &effects(true, false)).len(), 1);
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
            &effects(true, true),
        );
        assert_eq!(refused.len(), 6);
        assert!(refused.iter().take(5).all(|r| r.reason.contains("no WASI")));
        assert!(refused[2].reason.contains("calls"));
        assert!(refused[4].reason.contains("clock = true"));
        assert!(refused[5].reason.contains("[effects]"));
    }
}
