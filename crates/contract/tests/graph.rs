//! The call graph of an app: every way an app's calls can be wrong is
//! named, and the renderings show every call.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use std::path::Path;

use mote_contract::{CallGraph, Contract, GraphProblem, SourceFile, check_source};

/// A component service calling `calls` (each `name@range`).
fn service(name: &str, version: &str, calls: &[&str]) -> Contract {
    service_erring(name, version, "refused", calls)
}

/// [`service`] whose one error has the code `code`.
fn service_erring(name: &str, version: &str, code: &str, calls: &[&str]) -> Contract {
    let calls: Vec<String> = calls.iter().map(|c| format!("{c:?}")).collect();
    let effects = if calls.is_empty() {
        String::new()
    } else {
        format!("[effects]\ncalls = [{}]\n", calls.join(", "))
    };
    compile(&format!(
        r#"
[service]
name = "{name}"
version = "{version}"
summary = "A service of the graph tests."

[input]
type = "object"

[output]
type = "object"

[[error]]
code = "{code}"
summary = "Refuses."
when = "size(input) == 0"

{effects}
"#
    ))
}

/// A flow with one step per callee and `on_error` entries.
fn flow(name: &str, steps: &[&str], on_error: &[(&str, &str)]) -> Contract {
    let steps: Vec<String> = steps
        .iter()
        .enumerate()
        .map(|(i, call)| format!("{{ id = \"s{i}\", call = \"{call}\", input = \"input\" }}"))
        .collect();
    let mapped: Vec<String> = on_error
        .iter()
        .map(|(from, to)| format!("\"{from}\" = \"{to}\""))
        .collect();
    compile(&format!(
        r#"
[service]
name = "{name}"
version = "1.0.0"
summary = "A flow of the graph tests."

[input]
type = "object"

[output]
type = "object"

[[error]]
code = "failed"
summary = "A step failed."

[flow]
steps = [{}]
output = "s0"
on_error = {{ {} }}
"#,
        steps.join(", "),
        mapped.join(", ")
    ))
}

fn compile(text: &str) -> Contract {
    let checked = check_source(SourceFile::new("contract.toml", text));
    checked
        .contract
        .unwrap_or_else(|| panic!("{:#?}\n{text}", checked.diagnostics))
}

#[test]
fn a_sound_app_has_no_problems() {
    let app = [
        service("a.one", "1.2.0", &["b.two@^1"]),
        service("b.two", "1.0.0", &[]),
        flow(
            "c.flow",
            &["a.one@^1", "b.two@>=1, <2"],
            &[("b.two/refused", "failed")],
        ),
    ];
    assert_eq!(CallGraph::new(&app).problems(), vec![]);
}

#[test]
fn a_missing_callee_and_a_version_outside_the_range_are_named() {
    let app = [
        service("a.one", "1.0.0", &["b.two@^2", "z.gone@^1"]),
        service("b.two", "1.4.0", &[]),
    ];
    assert_eq!(
        CallGraph::new(&app).problems(),
        vec![
            GraphProblem::VersionOutOfRange {
                caller: "a.one".into(),
                callee: "b.two".into(),
                range: "^2".into(),
                version: "1.4.0".into(),
            },
            GraphProblem::MissingService {
                caller: "a.one".into(),
                callee: "z.gone".into(),
            },
        ]
    );
}

#[test]
fn cycles_are_named_with_their_path() {
    let app = [
        service("a.one", "1.0.0", &["b.two@^1"]),
        service("b.two", "1.0.0", &["c.three@^1"]),
        service("c.three", "1.0.0", &["a.one@^1"]),
        service("d.self", "1.0.0", &["d.self@^1"]),
    ];
    let problems = CallGraph::new(&app).problems();
    assert_eq!(
        problems,
        vec![
            GraphProblem::Cycle {
                services: vec!["a.one", "b.two", "c.three", "a.one"]
                    .into_iter()
                    .map(String::from)
                    .collect()
            },
            GraphProblem::Cycle {
                services: vec!["d.self".to_string(), "d.self".to_string()]
            },
        ]
    );
    assert_eq!(
        problems[0].to_string(),
        "call cycle: a.one -> b.two -> c.three -> a.one"
    );
}

#[test]
fn a_cycle_through_a_flow_is_found() {
    let app = [
        service("a.one", "1.0.0", &["f.flow@^1"]),
        flow("f.flow", &["a.one@^1"], &[]),
    ];
    assert!(matches!(
        CallGraph::new(&app).problems().as_slice(),
        [GraphProblem::Cycle { .. }]
    ));
}

#[test]
fn mapping_an_error_the_callee_does_not_declare_is_named() {
    let app = [
        service("b.two", "1.0.0", &[]),
        flow("c.flow", &["b.two@^1"], &[("b.two/no_such", "failed")]),
    ];
    assert_eq!(
        CallGraph::new(&app).problems(),
        vec![GraphProblem::UnknownCalleeError {
            flow: "c.flow".into(),
            callee: "b.two".into(),
            code: "no_such".into(),
        }]
    );
}

#[test]
fn the_shop_is_sound_and_renders_every_call() {
    let shop = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop");
    let mut contracts = Vec::new();
    for entry in std::fs::read_dir(&shop).unwrap() {
        let path = entry.unwrap().path().join("contract.toml");
        if path.exists() {
            contracts.push(mote_contract::load(&path).unwrap());
        }
    }
    let graph = CallGraph::new(&contracts);
    assert_eq!(graph.problems(), vec![]);
    let calls = graph.edges().count();
    assert!(calls >= 3, "the checkout flow alone makes three calls");
    // Each service using a store is drawn with an edge to it, too.
    let store_uses: usize = graph.stores().values().map(Vec::len).sum();
    assert_eq!(store_uses, 2, "restock and reserve share `stock`");
    let mermaid = graph.mermaid();
    let dot = graph.dot();
    assert!(mermaid.starts_with("flowchart LR\n"));
    assert!(dot.starts_with("digraph mote {"));
    assert_eq!(mermaid.matches("-->").count(), calls + store_uses);
    assert_eq!(dot.matches(" -> ").count(), calls + store_uses);
    assert!(mermaid.contains("shop_checkout -->|\"net: ^1\"| cart_total"));
    assert!(dot.contains("\"shop.checkout\" -> \"tax.vat@1\" [label=\"vat: ^1\"];"));

    // Placed over two hosts: a cluster each, and the calls that cross
    // them drawn apart from those that stay.
    let host_of = |name: &str| {
        Some(
            if name == "shop.checkout" || name == "cart.total" {
                "front"
            } else {
                "back"
            }
            .to_string(),
        )
    };
    let mermaid = graph.mermaid_placed(host_of);
    assert!(
        mermaid.contains("subgraph host_front[\"host front\"]"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("subgraph host_back[\"host back\"]"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("shop_checkout -->|\"net: ^1\"| cart_total"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("shop_checkout -.->|\"vat: ^1\"| tax_vat_v1"),
        "{mermaid}"
    );
    assert_eq!(
        mermaid.matches("-->").count() + mermaid.matches("-.->").count(),
        calls + store_uses
    );
    let dot = graph.dot_placed(host_of);
    assert!(dot.contains("subgraph \"cluster_front\" {"), "{dot}");
    assert!(
        dot.contains("\"shop.checkout\" -> \"tax.vat@1\" [label=\"vat: ^1\", style=dashed];"),
        "{dot}"
    );
    assert!(
        dot.contains("\"shop.checkout\" -> \"cart.total\" [label=\"net: ^1\"];"),
        "{dot}"
    );
}

/// A service declaring `stores`, each `(name, key pattern, value type,
/// access)`.
fn stateful(name: &str, stores: &[(&str, &str, &str, &str)]) -> Contract {
    let stores: String = stores
        .iter()
        .map(|(store, pattern, value, access)| {
            format!(
                "[store.{store}]\nkey = {{ type = \"string\", pattern = \"{pattern}\" }}\nvalue = {{ type = \"{value}\" }}\naccess = \"{access}\"\n"
            )
        })
        .collect();
    compile(&format!(
        r#"
[service]
name = "{name}"
version = "1.0.0"
summary = "A stateful service of the graph tests."

[input]
type = "object"

[output]
type = "object"

[[error]]
code = "refused"
summary = "Refuses."

{stores}
"#
    ))
}

/// A service using only the store `stock`.
fn stock(name: &str, key_pattern: &str, value: &str, access: &str) -> Contract {
    stateful(name, &[("stock", key_pattern, value, access)])
}

#[test]
fn every_declaration_of_a_store_must_agree_and_the_graph_says_who_uses_it() {
    let restock = stock("inventory.restock", "^[A-Z]+$", "integer", "read-write");
    let reserve = stock("inventory.reserve", "^[A-Z]+$", "integer", "read-write");
    let report = stock("inventory.report", "^[A-Z]+$", "integer", "read");
    assert!(!restock.is_pure(), "a service with a store is not pure");
    let agreeing = [restock, reserve, report];
    let graph = CallGraph::new(&agreeing);
    assert!(graph.problems().is_empty(), "{:?}", graph.problems());
    let users = &graph.stores()["stock"];
    assert_eq!(
        users
            .iter()
            .map(|(s, a)| format!("{s}:{}", a.as_str()))
            .collect::<Vec<_>>(),
        [
            "inventory.report:read",
            "inventory.reserve:read-write",
            "inventory.restock:read-write"
        ]
    );

    let mermaid = graph.mermaid();
    assert!(
        mermaid.contains("store_stock[(\"store stock\")]"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("inventory_report -->|\"read\"| store_stock"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("inventory_restock <-->|\"read-write\"| store_stock"),
        "{mermaid}"
    );
    let dot = graph.dot();
    assert!(dot.contains("\"store stock\" [shape=cylinder"), "{dot}");
    assert!(
        dot.contains("\"inventory.reserve\" -> \"store stock\" [label=\"read-write\", style=dotted, dir=both]"),
        "{dot}"
    );

    let other_key = stock("inventory.audit", "^[a-z]+$", "integer", "read");
    let other_value = stock("inventory.count", "^[A-Z]+$", "string", "read");
    let restock = stock("inventory.restock", "^[A-Z]+$", "integer", "read-write");
    let disagreeing = [restock, other_key, other_value];
    let problems: Vec<String> = CallGraph::new(&disagreeing)
        .problems()
        .iter()
        .map(|p| match p {
            GraphProblem::StoreDisagrees {
                first,
                second,
                part,
                ..
            } => format!("{first} {second} {part}"),
            other => panic!("unexpected {other}"),
        })
        .collect();
    assert_eq!(
        problems,
        [
            "inventory.audit inventory.count key",
            "inventory.audit inventory.restock key"
        ]
    );
}

#[test]
fn two_series_of_one_service_sit_side_by_side_and_each_call_reaches_the_newest_its_range_accepts() {
    let app = [
        service("tax.vat", "1.3.0", &[]),
        service("tax.vat", "2.0.1", &[]),
        service("shop.old", "1.0.0", &["tax.vat@^1"]),
        service("shop.new", "1.0.0", &["tax.vat@^2"]),
        service("shop.any", "1.0.0", &["tax.vat@>=1"]),
    ];
    let graph = CallGraph::new(&app);
    assert_eq!(graph.problems(), vec![]);
    let keys: Vec<&str> = graph.services().map(|(key, _)| key).collect();
    assert_eq!(
        keys,
        ["shop.any", "shop.new", "shop.old", "tax.vat@1", "tax.vat@2"]
    );
    let reached: Vec<(&str, Option<&str>)> = graph
        .edges()
        .map(|e| (e.caller.as_str(), e.callee.as_deref()))
        .collect();
    assert_eq!(
        reached,
        [
            ("shop.any", Some("tax.vat@2")),
            ("shop.new", Some("tax.vat@2")),
            ("shop.old", Some("tax.vat@1")),
        ]
    );
    assert_eq!(
        graph.older_series_in_use(),
        [mote_contract::OlderSeriesInUse {
            key: "tax.vat@1".into(),
            newest: "tax.vat@2".into(),
            callers: vec!["shop.old".into()],
        }]
    );
    // The renderings name each series and mark the older one.
    let mermaid = graph.mermaid();
    assert!(
        mermaid.contains("shop_old -->|\"^1\"| tax_vat_v1"),
        "{mermaid}"
    );
    assert!(mermaid.contains("class tax_vat_v1 older"), "{mermaid}");
    assert!(!mermaid.contains("class tax_vat_v2 older"), "{mermaid}");
    let dot = graph.dot();
    assert!(
        dot.contains("\"tax.vat@1\" [label=\"tax.vat@1\\n1.3.0\", style=dashed];"),
        "{dot}"
    );
    assert!(dot.contains("\"shop.old\" -> \"tax.vat@1\""), "{dot}");

    // Once its last caller moves on, the older series is unreachable.
    let moved = [
        service("tax.vat", "1.3.0", &[]),
        service("tax.vat", "2.0.1", &[]),
        service("shop.new", "1.0.0", &["tax.vat@^2"]),
    ];
    let graph = CallGraph::new(&moved);
    assert_eq!(graph.older_series_in_use(), []);
    assert!(graph.unreachable().contains(&"tax.vat@1"));
}

#[test]
fn one_series_held_twice_or_a_range_no_series_meets_is_named() {
    let app = [
        service("tax.vat", "1.0.0", &[]),
        service("tax.vat", "1.2.0", &[]),
        service("tax.vat", "0.3.0", &[]),
        service("tax.vat", "0.4.0", &[]),
        service("shop.checkout", "1.0.0", &["tax.vat@^3"]),
    ];
    let problems = CallGraph::new(&app).problems();
    assert_eq!(
        problems,
        vec![
            GraphProblem::SameSeries {
                name: "tax.vat".into(),
                series: "1".into(),
            },
            GraphProblem::VersionOutOfRange {
                caller: "shop.checkout".into(),
                callee: "tax.vat".into(),
                range: "^3".into(),
                version: "0.3.0 and 0.4.0 and 1.0.0".into(),
            },
        ]
    );
    assert!(problems[0].to_string().contains("twice in series 1"));
}

#[test]
fn a_flow_maps_the_errors_of_the_series_its_steps_reach() {
    let app = [
        service_erring("tax.vat", "1.0.0", "zero_amount", &[]),
        service_erring("tax.vat", "2.0.0", "nothing_to_tax", &[]),
        flow(
            "shop.checkout",
            &["tax.vat@^1"],
            &[("tax.vat/nothing_to_tax", "failed")],
        ),
    ];
    assert_eq!(
        CallGraph::new(&app).problems(),
        vec![GraphProblem::UnknownCalleeError {
            flow: "shop.checkout".into(),
            callee: "tax.vat".into(),
            code: "nothing_to_tax".into(),
        }]
    );
}

#[test]
fn a_cycle_runs_through_the_series_calls_reach() {
    // a@1 calls b, b calls a@^2: no cycle; b calling a@^1 closes one.
    let open = [
        service("a.one", "1.0.0", &["b.two@^1"]),
        service("a.one", "2.0.0", &[]),
        service("b.two", "1.0.0", &["a.one@^2"]),
    ];
    assert_eq!(CallGraph::new(&open).problems(), vec![]);
    let closed = [
        service("a.one", "1.0.0", &["b.two@^1"]),
        service("a.one", "2.0.0", &[]),
        service("b.two", "1.0.0", &["a.one@^1"]),
    ];
    assert_eq!(
        CallGraph::new(&closed).problems(),
        vec![GraphProblem::Cycle {
            services: vec!["a.one@1".into(), "b.two".into(), "a.one@1".into()]
        }]
    );
}
