//! The site of the bundled shop, of a contract written to attack it, and
//! the verification status read from attestations.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use std::path::{Path, PathBuf};

use mote_contract::Contract;
use mote_docs::{ServiceDoc, Site, Status};
use serde_json::{Value, json};

fn shop() -> Vec<Contract> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop");
    let mut contracts: Vec<Contract> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path().join("contract.toml"))
        .filter(|p| p.is_file())
        .map(|p| mote_contract::load(&p).unwrap())
        .collect();
    contracts.sort_by(|a, b| a.service.name.cmp(&b.service.name));
    contracts
}

fn render(contracts: &[Contract], statuses: &[Status]) -> Site {
    let docs: Vec<ServiceDoc<'_>> = contracts
        .iter()
        .zip(statuses)
        .map(|(contract, status)| ServiceDoc {
            key: contract.service.name.as_str(),
            contract,
            status,
        })
        .collect();
    mote_docs::site("shop", &docs)
}

fn file<'a>(site: &'a Site, path: &str) -> &'a str {
    site.files
        .iter()
        .find(|(p, _)| p == Path::new(path))
        .map(|(_, text)| text.as_str())
        .unwrap_or_else(|| panic!("no {path} in the site"))
}

#[test]
fn the_index_lists_every_service_and_the_graph_links_to_their_pages() {
    let contracts = shop();
    let statuses = vec![Status::NotVerified; contracts.len()];
    let site = render(&contracts, &statuses);
    let index = file(&site, "index.html");
    for contract in &contracts {
        let name = contract.service.name.as_str();
        assert!(
            index.contains(&format!(r#"<a href="services/{name}.html">"#)),
            "{name}"
        );
        file(&site, &format!("services/{name}.html"));
    }
    assert!(index.contains("<svg"), "the call graph is drawn");
    assert!(
        index.contains(r#"<a href="services/tax.vat.html"><rect"#),
        "graph nodes are links"
    );
    assert!(index.contains(r#"<input id="search""#) && index.contains("search.js"));
    assert!(index.contains("not verified"));
}

#[test]
fn a_service_page_shows_its_fields_conditions_errors_examples_and_neighbours() {
    let contracts = shop();
    let statuses = vec![Status::NotVerified; contracts.len()];
    let site = render(&contracts, &statuses);
    let vat = file(&site, "services/tax.vat.html");
    for expected in [
        "<code>net_cents</code>",
        "≤ 100000000",
        "one of &quot;NL&quot;, &quot;DE&quot;, &quot;BE&quot;",
        "<code>zero_amount</code>",
        "422",
        r#"<span class="cel-var">input</span>"#,
        "Called by: ",
        r#"<a href="shop.checkout.html">"#,
        "timeout_ms",
    ] {
        assert!(
            vat.contains(expected),
            "`{expected}` missing from tax.vat's page"
        );
    }
    let checkout = file(&site, "services/shop.checkout.html");
    assert!(
        checkout.contains(r#"<section id="flow">"#),
        "a flow shows its steps"
    );
    assert!(checkout.contains("becomes"), "and its error mapping");
    assert!(checkout.contains(r#"<a href="tax.vat.html">"#));
}

const HOSTILE: &str = r#"[service]
name = "evil.text"
version = "1.0.0"
summary = "<script>alert('summary')</script>"

[input]
type = "object"
required = ["x"]
additionalProperties = false
properties.x = { type = "string", maxLength = 10, description = "<img src=x onerror=alert(1)>" }

[output]
type = "object"
required = ["y"]
additionalProperties = false
properties.y = { type = "string" }

[[error]]
code = "bad"
summary = "</td><script>alert('title')</script>"
status = 422
when = "input.x == '<script>alert(2)</script>'"

[[example]]
input = { x = "<b>hi</b>" }
output = { y = "</pre><script>alert(3)</script>" }
"#;

#[test]
fn hostile_text_in_a_contract_renders_as_text_never_as_markup() {
    let contract = mote_contract::check_source(mote_contract::SourceFile::new(
        "evil.toml",
        HOSTILE.to_string(),
    ))
    .contract
    .expect("a valid contract");
    let site = render(&[contract], &[Status::NotVerified]);
    for (path, text) in &site.files {
        if path.extension().is_some_and(|e| e == "html") {
            assert_eq!(
                text.matches("<script").count(),
                usize::from(path == Path::new("index.html")),
                "{}: only the index's own script tag may appear:\n{text}",
                path.display()
            );
            assert!(!text.contains("<img"), "{}", path.display());
            assert!(!text.contains("<b>"), "{}", path.display());
        }
    }
    let page = file(&site, "services/evil.text.html");
    assert!(
        page.contains("&lt;script&gt;alert(&#39;summary&#39;)")
            || page.contains("&lt;script&gt;alert('summary')"),
        "{page}"
    );
}

fn keyed_attestation(contract: &Contract, passed_for: &str) -> Value {
    let key = mote_verify::attest::KeyPair::generate().unwrap();
    let target = |input: &Value| {
        let net = input["net_cents"].as_i64().unwrap_or(0);
        if net == 0 {
            return mote_verify::Answer::Error {
                code: "zero_amount".into(),
                message: String::new(),
            };
        }
        let rate = if input["country"] == "DE" { 19 } else { 21 };
        mote_verify::Answer::Output(Ok(
            json!({"vat_cents": (net * rate + 50) / 100, "rate_pct": rate}),
        ))
    };
    let report = mote_verify::verify(
        contract,
        &target,
        &mote_verify::Options {
            cases: 50,
            ..mote_verify::Options::default()
        },
    );
    assert!(report.passed(), "{report:?}");
    let subject = mote_verify::attest::Subject {
        version: "1.0.0",
        contract_sha256: passed_for,
        artefact_sha256: "00",
        precompiled: None,
    };
    mote_verify::attest::attest(&report, &subject, Some(0.97), &key)
}

#[test]
fn the_status_comes_from_an_attestation_of_this_very_contract() {
    let contracts = shop();
    let vat = contracts
        .iter()
        .find(|c| c.service.name.as_str() == "tax.vat")
        .unwrap();
    let hash = vat.hash.to_hex();
    match Status::of(vat, Some(&keyed_attestation(vat, &hash))) {
        Status::Verified {
            signer,
            date,
            strength,
        } => {
            assert_eq!(signer.len(), 16);
            assert!(date.is_some_and(|d| d.ends_with('Z')));
            assert_eq!(strength, Some(0.97));
        }
        other => panic!("{other:?}"),
    }
    let stale = Status::of(vat, Some(&keyed_attestation(vat, "not-this-contract")));
    assert!(matches!(stale, Status::Failed { .. }), "{stale:?}");
    let mut forged = keyed_attestation(vat, &hash);
    forged["strength"] = json!(1.0);
    assert!(matches!(
        Status::of(vat, Some(&forged)),
        Status::Failed { .. }
    ));
    assert_eq!(Status::of(vat, None), Status::NotVerified);
}

#[test]
fn writing_replaces_the_old_site_whole() {
    let contracts = shop();
    let statuses = vec![Status::NotVerified; contracts.len()];
    let site = render(&contracts, &statuses);
    let out: PathBuf = std::env::temp_dir().join(format!("mote-docs-site-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(out.join("services")).unwrap();
    std::fs::write(out.join("services/gone.html"), "old").unwrap();
    mote_docs::write(&site, &out).unwrap();
    assert!(out.join("index.html").is_file());
    assert!(out.join("services/tax.vat.html").is_file());
    assert!(
        !out.join("services/gone.html").exists(),
        "the old site is replaced"
    );
    let leftovers: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .contains(&format!("mote-docs-site-{}.", std::process::id()))
        })
        .collect();
    assert!(leftovers.is_empty(), "no partial or previous copies remain");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn the_console_renders_hostile_text_as_text_too() {
    let contract = mote_contract::check_source(mote_contract::SourceFile::new(
        "evil.toml",
        HOSTILE.to_string(),
    ))
    .contract
    .expect("a valid contract");
    let status = [Status::NotVerified];
    let docs = [ServiceDoc {
        key: contract.service.name.as_str(),
        contract: &contract,
        status: &status[0],
    }];
    let site = mote_docs::console("shop", &docs);
    let page = file(&site, "services/evil.text.html");
    assert_eq!(
        page.matches("<script").count(),
        1,
        "console.js alone:\n{page}"
    );
    assert_eq!(file(&site, "index.html").matches("<script").count(), 2);
    assert!(!page.contains("<b>"), "{page}");
    // The try form holds the example's value, escaped, as the field's value.
    assert!(page.contains(r#"value="&lt;b&gt;hi&lt;/b&gt;""#), "{page}");
}

#[test]
fn the_console_adds_live_places_and_a_try_form_that_the_static_site_lacks() {
    let contracts = shop();
    let statuses = vec![Status::NotVerified; contracts.len()];
    let docs: Vec<ServiceDoc<'_>> = contracts
        .iter()
        .zip(&statuses)
        .map(|(contract, status)| ServiceDoc {
            key: contract.service.name.as_str(),
            contract,
            status,
        })
        .collect();
    let console = mote_docs::console("shop", &docs);
    let site = render(&contracts, &statuses);
    let live = file(&console, "services/shop.checkout.html");
    let still = file(&site, "services/shop.checkout.html");
    for place in [
        r#"id="live""#,
        r#"id="try-form""#,
        r#"data-field="country""#,
        r#"data-kind="choice""#,
        r#"data-field="items""#,
        r#"data-kind="json""#,
        r#"data-field="weight_grams""#,
    ] {
        assert!(
            live.contains(place),
            "{place} missing from the console page"
        );
        assert!(!still.contains(place), "{place} in the static page");
    }
    // The form starts from the first example.
    assert!(
        live.contains(r#"<option value="&quot;NL&quot;" selected>"#),
        "{live}"
    );
    assert!(live.contains(r#"value="800""#), "{live}");
    assert!(file(&console, "index.html").contains(r#"data-live="rate" data-of="shop.checkout""#));
    assert!(
        console
            .files
            .iter()
            .any(|(p, _)| p == Path::new("console.js"))
    );
    assert!(!site.files.iter().any(|(p, _)| p == Path::new("console.js")));
}

#[test]
fn a_service_page_shows_the_stores_its_contract_declares() {
    let contract = mote_contract::check_source(mote_contract::SourceFile::new(
        "contract.toml",
        r#"
[service]
name = "inventory.reserve"
version = "1.0.0"
summary = "Reserves stock."

[input]
type = "string"

[output]
type = "integer"

[store.stock]
key = { type = "string", pattern = "^[A-Z]{3}-[0-9]{3}$" }
value = { type = "integer", minimum = 0 }
access = "read-write"
"#,
    ))
    .contract
    .expect("a valid contract");
    let site = render(&[contract], &[Status::NotVerified]);
    let page = file(&site, "services/inventory.reserve.html");
    assert!(
        page.contains("Store <code>stock</code> (read-write)"),
        "{page}"
    );
    assert!(page.contains("^[A-Z]{3}-[0-9]{3}$"), "{page}");
    let index = file(&site, "index.html");
    assert!(index.contains("store stock (read-write)"), "{index}");
}
