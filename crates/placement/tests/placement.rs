//! Placement files, good and bad: every problem is named, with its line.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use mote_contract::{Diagnostic, SourceFile};
use mote_placement::{Placement, parse};

const SHOP: [&str; 8] = [
    "cart.discount",
    "cart.total",
    "catalog.price",
    "shipping.quote",
    "shop.checkout",
    "stock.check",
    "tax.vat",
    "tax.other",
];

fn placement(text: &str) -> Result<Placement, Vec<Diagnostic>> {
    parse(SourceFile::new("placement.toml", text))
}

/// The kind and line of each problem, file order.
fn problems(text: &str) -> Vec<(String, usize)> {
    let found = match placement(text) {
        Ok(placement) => placement.check(SHOP),
        Err(problems) => problems,
    };
    found
        .iter()
        .map(|d| {
            (
                d.kind().as_str().to_string(),
                d.start().map_or(0, |p| p.line),
            )
        })
        .collect()
}

#[test]
fn a_front_and_a_back_host_place_every_service() {
    let text = r#"
[host.front]
url = "http://127.0.0.1:9001"
services = ["shop.checkout"]

[host.back]
url = "http://127.0.0.1:9002/"
rest = true
"#;
    let placement = placement(text).unwrap();
    assert!(placement.check(SHOP).is_empty());
    assert_eq!(placement.host_of("shop.checkout").unwrap().name, "front");
    assert_eq!(placement.host_of("tax.vat").unwrap().name, "back");
    assert_eq!(
        placement.host("back").unwrap().url,
        "http://127.0.0.1:9002/"
    );
    assert!(placement.host("nowhere").is_none());
}

#[test]
fn a_service_placed_twice_or_not_at_all_or_unknown_is_named_where_it_is_written() {
    let text = r#"
[host.a]
url = "http://127.0.0.1:1"
services = ["shop.checkout", "tax.vat"]

[host.b]
url = "http://localhost:2"
services = ["tax.vat", "no.such", "cart.total", "cart.discount", "catalog.price", "shipping.quote", "stock.check"]
"#;
    assert_eq!(
        problems(text),
        [
            ("placed-twice".into(), 8),
            ("unknown-service".into(), 8),
            ("unplaced".into(), 1),
        ]
    );
    let found = placement(text).unwrap().check(SHOP);
    assert!(
        found[0].message().contains("hosts `a` and `b`"),
        "{}",
        found[0].message()
    );
    assert!(
        found[2].message().contains("`tax.other`"),
        "{}",
        found[2].message()
    );
}

#[test]
fn malformed_hosts_are_refused_with_their_line() {
    let cases: [(&str, &str, usize); 10] = [
        ("[host.a]\nservices = [\"tax.vat\"]\n", "missing-key", 1),
        (
            "[host.a]\nurl = \"https://a:1/x\"\nrest = true\n",
            "invalid-value",
            2,
        ),
        (
            "[host.a]\nurl = \"http://a:1/v1\"\nrest = true\n",
            "invalid-value",
            2,
        ),
        (
            "[host.a]\nurl = \"ftp://a\"\nrest = true\n",
            "invalid-value",
            2,
        ),
        ("[host.a]\nurl = 9001\nrest = true\n", "wrong-type", 2),
        (
            "[host.a]\nurl = \"http://a:1\"\nrest = true\nreplicas = 3\n",
            "unknown-key",
            4,
        ),
        ("[host.a]\nurl = \"http://a:1\"\n", "missing-key", 1),
        (
            "[host.Front]\nurl = \"http://a:1\"\nrest = true\n",
            "invalid-name",
            1,
        ),
        ("[hosts.a]\nurl = \"http://a:1\"\n", "unknown-key", 1),
        ("[host.a\nurl = \"http://a:1\"\n", "toml-syntax", 1),
    ];
    for (text, kind, line) in cases {
        let found = problems(text);
        assert!(
            found.contains(&(kind.to_string(), line)),
            "{text:?}: expected {kind} on line {line}, got {found:?}"
        );
    }
}

#[test]
fn two_hosts_taking_the_rest_or_sharing_a_url_and_an_empty_file_are_refused() {
    let two = "[host.a]\nurl = \"http://a:1\"\nrest = true\n[host.b]\nurl = \"http://b:1\"\nrest = true\n";
    assert_eq!(problems(two), [("placed-twice".into(), 4)]);
    assert_eq!(problems("# nothing\n"), [("missing-key".into(), 1)]);
    let same = "[host.a]\nurl = \"http://a:1\"\nrest = true\n[host.b]\nurl = \"http://a:1/\"\nservices = [\"tax.vat\"]\n";
    assert_eq!(problems(same), [("invalid-value".into(), 4)]);
}

#[test]
fn https_hosts_mean_mutual_tls_and_schemes_are_not_mixed() {
    let tls = placement(
        "[host.a]\nurl = \"https://a:1\"\nrest = true\n[host.b]\nurl = \"https://b:1\"\nservices = [\"tax.vat\"]\n",
    )
    .unwrap();
    assert!(tls.mutual_tls());
    let plain = placement("[host.a]\nurl = \"http://a:1\"\nrest = true\n").unwrap();
    assert!(!plain.mutual_tls());
    let mixed = "[host.a]\nurl = \"https://a:1\"\nrest = true\n[host.b]\nurl = \"http://b:1\"\nservices = [\"tax.vat\"]\n";
    assert_eq!(problems(mixed), [("invalid-value".into(), 4)]);
    let found = placement(mixed).unwrap_err();
    assert!(
        found[0]
            .message()
            .contains("`b` is reached over http but `a` over https"),
        "{}",
        found[0].message()
    );
}

#[test]
fn plain_http_hosts_must_be_on_this_machine() {
    let on = |url: &str| {
        placement(&format!("[host.a]\nurl = \"{url}\"\nrest = true\n"))
            .unwrap()
            .check(SHOP)
            .iter()
            .map(|d| d.kind().as_str().to_string())
            .collect::<Vec<_>>()
    };
    for url in [
        "http://127.0.0.1:9001",
        "http://127.8.0.1:9001",
        "http://localhost:9001",
        "http://[::1]:9001/",
        "https://10.0.0.2:9001",
        "https://shop-back.default.svc:9001",
    ] {
        assert!(on(url).is_empty(), "{url}: {:?}", on(url));
    }
    for url in [
        "http://10.0.0.2:9001",
        "http://shop-back:9001",
        "http://[::2]:1",
    ] {
        assert_eq!(on(url), ["invalid-value"], "{url}");
    }
}

#[test]
fn a_store_shared_across_hosts_is_refused_where_it_is_split() {
    let split = placement(
        "[host.front]\nurl = \"http://127.0.0.1:1\"\nservices = [\"shop.checkout\", \"stock.check\"]\n\n[host.back]\nurl = \"http://127.0.0.1:2\"\nrest = true\n",
    )
    .unwrap();
    let together =
        std::collections::BTreeMap::from([("stock", vec!["shop.checkout", "stock.check"])]);
    assert!(split.check_stores(&together).is_empty());
    let apart = std::collections::BTreeMap::from([("stock", vec!["stock.check", "tax.vat"])]);
    let found = split.check_stores(&apart);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kind().as_str(), "store-split");
    assert_eq!(found[0].start().unwrap().line, 5);
    assert!(
        found[0]
            .message()
            .contains("`stock.check` on host `front` and by `tax.vat` on host `back`"),
        "{}",
        found[0].message()
    );
}

#[test]
fn an_unreadable_file_is_an_io_problem() {
    let missing = std::path::Path::new("/nonexistent/placement.toml");
    let problems = Placement::load(missing).unwrap_err();
    assert_eq!(problems[0].kind().as_str(), "io");
    assert!(
        problems[0]
            .message()
            .contains("/nonexistent/placement.toml")
    );
}

#[test]
fn a_name_the_app_holds_in_several_majors_is_placed_and_named_once() {
    let text = r#"
[host.a]
url = "http://127.0.0.1:1"
services = ["shop.checkout"]
"#;
    // tax.vat comes once per major the app holds.
    let found = placement(text)
        .unwrap()
        .check_placing(["shop.checkout", "tax.vat", "tax.vat"]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].message().matches("tax.vat").count(),
        1,
        "{}",
        found[0].message()
    );
}
