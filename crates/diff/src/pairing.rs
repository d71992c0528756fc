//! Which contract of one version of an app continues which of another:
//! the pairs `mote diff` compares when given two apps, and those
//! `mote check --against` holds to the version rule.

use mote_contract::Contract;
use mote_contract::versions::{keys, series};

/// The contracts of two versions of an app, matched.
#[derive(Debug, Default)]
pub struct Pairing<'a> {
    /// (old, new): one service's contract before and after.
    pub pairs: Vec<(&'a Contract, &'a Contract)>,
    /// The old app's services with no successor, by their key there.
    pub removed: Vec<String>,
    /// The new app's services with no predecessor, by their key there.
    pub added: Vec<String>,
}

/// Matches the contracts of `old` with those of `new`. A contract
/// continues the one of its name in its series; failing that, one of its
/// name whose series the new app no longer holds (a major bumped in
/// place), newest with newest. A new series beside the old ones is
/// added, not a change to them: their callers keep what they had.
pub fn pair<'a>(old: &[&'a Contract], new: &[&'a Contract]) -> Pairing<'a> {
    let key_list = |side: &[&Contract]| {
        keys(
            side.iter()
                .map(|c| (c.service.name.as_str(), &c.service.version)),
        )
    };
    let (old_keys, new_keys) = (key_list(old), key_list(new));
    let same_series = |a: &Contract, b: &Contract| {
        a.service.name == b.service.name && series(&a.service.version) == series(&b.service.version)
    };
    let mut old_taken = vec![false; old.len()];
    let mut new_taken = vec![false; new.len()];
    let mut pairs = Vec::new();
    for (n, now) in new.iter().enumerate() {
        if let Some(o) = (0..old.len()).find(|&o| !old_taken[o] && same_series(old[o], now)) {
            old_taken[o] = true;
            new_taken[n] = true;
            pairs.push((o, n));
        }
    }
    // A series the new app no longer holds, continued by a new series of
    // the same name: newest with newest.
    let mut by_version: Vec<usize> = (0..new.len()).filter(|&n| !new_taken[n]).collect();
    by_version.sort_by(|a, b| new[*b].service.version.cmp(&new[*a].service.version));
    for n in by_version {
        let gone = (0..old.len())
            .filter(|&o| {
                !old_taken[o]
                    && old[o].service.name == new[n].service.name
                    && !new.iter().any(|c| same_series(c, old[o]))
            })
            .max_by(|a, b| old[*a].service.version.cmp(&old[*b].service.version));
        if let Some(o) = gone {
            old_taken[o] = true;
            new_taken[n] = true;
            pairs.push((o, n));
        }
    }
    pairs.sort_by(|a, b| new_keys[a.1].cmp(&new_keys[b.1]));
    Pairing {
        pairs: pairs.iter().map(|&(o, n)| (old[o], new[n])).collect(),
        removed: (0..old.len())
            .filter(|&o| !old_taken[o])
            .map(|o| old_keys[o].clone())
            .collect(),
        added: (0..new.len())
            .filter(|&n| !new_taken[n])
            .map(|n| new_keys[n].clone())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract(name: &str, version: &str) -> Contract {
        let text = format!(
            "[service]\nname = \"{name}\"\nversion = \"{version}\"\nsummary = \"A test service.\"\n\n[input]\ntype = \"integer\"\n\n[output]\ntype = \"integer\"\n\n[behavior]\nensures = [\"output == input\"]\n"
        );
        let checked =
            mote_contract::check_source(mote_contract::SourceFile::new("contract.toml", text));
        checked
            .contract
            .unwrap_or_else(|| panic!("{:#?}", checked.diagnostics))
    }

    fn versions_of(pairing: &Pairing<'_>) -> Vec<(String, String)> {
        pairing
            .pairs
            .iter()
            .map(|(o, n)| {
                (
                    format!("{} {}", o.service.name, o.service.version),
                    format!("{} {}", n.service.name, n.service.version),
                )
            })
            .collect()
    }

    #[test]
    fn a_contract_continues_its_own_series_and_a_new_series_beside_it_is_added() {
        let old = [
            contract("tax.vat", "1.0.0"),
            contract("cart.total", "1.0.0"),
        ];
        let new = [
            contract("tax.vat", "1.1.0"),
            contract("tax.vat", "2.0.0"),
            contract("cart.total", "1.0.1"),
        ];
        let pairing = pair(
            &old.iter().collect::<Vec<_>>(),
            &new.iter().collect::<Vec<_>>(),
        );
        assert_eq!(
            versions_of(&pairing),
            [
                ("cart.total 1.0.0".into(), "cart.total 1.0.1".into()),
                ("tax.vat 1.0.0".into(), "tax.vat 1.1.0".into()),
            ]
        );
        assert_eq!(pairing.added, ["tax.vat@2"]);
        assert!(pairing.removed.is_empty());
    }

    #[test]
    fn a_major_bumped_in_place_continues_the_old_one_and_a_dropped_series_is_removed() {
        let old = [contract("tax.vat", "1.4.0")];
        let new = [contract("tax.vat", "2.0.0")];
        let pairing = pair(
            &old.iter().collect::<Vec<_>>(),
            &new.iter().collect::<Vec<_>>(),
        );
        assert_eq!(
            versions_of(&pairing),
            [("tax.vat 1.4.0".into(), "tax.vat 2.0.0".into())]
        );

        let old = [contract("tax.vat", "1.4.0"), contract("tax.vat", "2.0.0")];
        let new = [contract("tax.vat", "2.1.0")];
        let pairing = pair(
            &old.iter().collect::<Vec<_>>(),
            &new.iter().collect::<Vec<_>>(),
        );
        assert_eq!(
            versions_of(&pairing),
            [("tax.vat 2.0.0".into(), "tax.vat 2.1.0".into())]
        );
        assert_eq!(pairing.removed, ["tax.vat@1"]);
        assert!(pairing.added.is_empty());
    }
}
