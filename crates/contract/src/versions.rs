//! Versions side by side: an app may hold several incompatible versions of
//! one service (`tax.vat` 1.x and 2.x), so that callers move from one to
//! the next when they are ready rather than all at once.
//!
//! Two versions can sit side by side when Cargo would not take one for the
//! other: they are in different *series* (`1.4.0` is in series `1`, `0.3.1`
//! in `0.3`). Within an app a service is named by its *key*: the name alone
//! while the app holds one series of it, `name@SERIES` for each series once
//! it holds several, so that a key never changes what it names without its
//! spelling changing too. Clients may also write a *reference*: a key, the
//! bare name (the newest series), or `name@SERIES` whatever the app holds.

use std::collections::BTreeMap;

use semver::Version;

/// The series of `version`: the versions Cargo treats as compatible with
/// it share it. `1.4.0` → `1`, `0.3.1` → `0.3`, `0.0.7` → `0.0.7`.
pub fn series(version: &Version) -> String {
    match (version.major, version.minor) {
        (0, 0) => format!("0.0.{}", version.patch),
        (0, minor) => format!("0.{minor}"),
        (major, _) => major.to_string(),
    }
}

/// `name@SERIES`: the spelling that names one series of a service whatever
/// else the app holds; what one host sends another.
pub fn qualified(name: &str, version: &Version) -> String {
    format!("{name}@{}", series(version))
}

/// The key of each service of an app, in the order given: the name alone
/// when the app holds one series of that name, [`qualified`] otherwise.
pub fn keys<'a>(services: impl IntoIterator<Item = (&'a str, &'a Version)>) -> Vec<String> {
    let services: Vec<(&str, &Version)> = services.into_iter().collect();
    let mut series_of: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, version) in &services {
        let list = series_of.entry(name).or_default();
        let this = series(version);
        if !list.contains(&this) {
            list.push(this);
        }
    }
    services
        .iter()
        .map(|(name, version)| {
            if series_of.get(name).is_some_and(|list| list.len() > 1) {
                qualified(name, version)
            } else {
                (*name).to_string()
            }
        })
        .collect()
}

/// A service as a client names it: `tax.vat` (the newest series the app
/// holds) or `tax.vat@2` (series 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceRef<'a> {
    /// The service's name.
    pub name: &'a str,
    /// The series asked for; `None` for the newest.
    pub series: Option<&'a str>,
}

impl<'a> ServiceRef<'a> {
    /// Reads `name` or `name@SERIES`; never fails (a reference to nothing
    /// simply picks nothing).
    pub fn parse(text: &'a str) -> Self {
        match text.split_once('@') {
            Some((name, series)) => ServiceRef {
                name,
                series: Some(series),
            },
            None => ServiceRef {
                name: text,
                series: None,
            },
        }
    }

    /// Among `versions` of this reference's name, the one it names: the
    /// version of its series, or the newest when it names none.
    pub fn pick<'v, T>(&self, versions: impl IntoIterator<Item = (&'v Version, T)>) -> Option<T> {
        let versions = versions.into_iter();
        match self.series {
            Some(wanted) => versions
                .filter(|(version, _)| series(version) == wanted)
                .max_by(|a, b| a.0.cmp(b.0))
                .map(|(_, item)| item),
            None => versions.max_by(|a, b| a.0.cmp(b.0)).map(|(_, item)| item),
        }
    }
}

/// Among `versions` of a callee, the newest a caller's range accepts.
pub fn newest_matching<'v, T>(
    range: &semver::VersionReq,
    versions: impl IntoIterator<Item = (&'v Version, T)>,
) -> Option<T> {
    versions
        .into_iter()
        .filter(|(version, _)| range.matches(version))
        .max_by(|a, b| a.0.cmp(b.0))
        .map(|(_, item)| item)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn series_follow_cargos_compatibility() {
        assert_eq!(series(&v("1.4.0")), "1");
        assert_eq!(series(&v("2.0.0-rc.1")), "2");
        assert_eq!(series(&v("0.3.1")), "0.3");
        assert_eq!(series(&v("0.0.7")), "0.0.7");
    }

    #[test]
    fn keys_qualify_only_names_held_in_several_series() {
        let (one, one_b, two, other) = (v("1.0.0"), v("1.2.0"), v("2.1.0"), v("0.3.0"));
        let keys = keys([("tax.vat", &one), ("cart.total", &other), ("tax.vat", &two)]);
        assert_eq!(keys, ["tax.vat@1", "cart.total", "tax.vat@2"]);
        // Two versions of one series are one key (the app refuses them).
        assert_eq!(
            super::keys([("a", &one), ("a", &one_b)]),
            ["a".to_string(), "a".to_string()]
        );
    }

    #[test]
    fn references_pick_their_series_or_the_newest() {
        let versions = [v("1.3.0"), v("2.0.1"), v("0.4.0")];
        let pick = |text: &str| {
            ServiceRef::parse(text).pick(versions.iter().map(|version| (version, version.clone())))
        };
        assert_eq!(pick("tax.vat"), Some(v("2.0.1")));
        assert_eq!(pick("tax.vat@1"), Some(v("1.3.0")));
        assert_eq!(pick("tax.vat@0.4"), Some(v("0.4.0")));
        assert_eq!(pick("tax.vat@3"), None);
        assert_eq!(pick("tax.vat@"), None);
    }

    #[test]
    fn a_range_takes_the_newest_it_accepts() {
        let versions = [v("1.3.0"), v("2.0.1")];
        let range = |text: &str| semver::VersionReq::parse(text).unwrap();
        let pick = |r: &str| newest_matching(&range(r), versions.iter().map(|x| (x, x)));
        assert_eq!(pick("^1"), Some(&versions[0]));
        assert_eq!(pick(">=1"), Some(&versions[1]));
        assert_eq!(pick("^3"), None);
    }
}
