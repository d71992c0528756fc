//! The pages: the index of services and one page per service.

use maud::{DOCTYPE, Markup, html};
use mote_contract::{Contract, Expected};

use crate::cel::highlight;
use crate::schema::rows;
use crate::{ServiceDoc, Status, graph};

/// What the pages are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A static site: the contracts alone.
    Static,
    /// The live console of `mote up`: the contracts with the host's
    /// figures, filled in by `console.js`, and a form to try each service.
    Console,
}

/// A whole page: `root` is the way back to the site's folder (`""` or
/// `"../"`), `search` adds the index's script, `service` names the
/// service a page is about.
fn layout(
    app: &str,
    title: &str,
    root: &str,
    body: Markup,
    search: bool,
    mode: Mode,
    service: Option<&str>,
) -> String {
    let tag = match mode {
        Mode::Static => " · contracts",
        Mode::Console => " · console",
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (app) }
                link rel="stylesheet" href={ (root) "style.css" };
                // No icon: otherwise a browser asks the host for one.
                link rel="icon" href="data:,";
            }
            body data-root=(root) data-service=[service] {
                header { a.home href={ (root) "index.html" } { (app) } span.tag { (tag) } }
                main { (body) }
                @if search { script src={ (root) "search.js" } {} }
                @if mode == Mode::Console { script src={ (root) "console.js" } {} }
            }
        }
    }
    .into_string()
}

fn effects_summary(contract: &Contract) -> String {
    let mut parts: Vec<String> = Vec::new();
    if contract.flow.is_some() {
        parts.push("flow".into());
    }
    if !contract.effects.calls.is_empty() {
        parts.push(format!("calls {}", contract.effects.calls.len()));
    }
    if contract.effects.clock {
        parts.push("clock".into());
    }
    if contract.effects.random {
        parts.push("random".into());
    }
    for store in &contract.stores {
        parts.push(format!("store {} ({})", store.name, store.access.as_str()));
    }
    let effects = if parts.is_empty() {
        "pure".to_string()
    } else {
        parts.join(", ")
    };
    format!("{}; {effects}", contract.service.visibility.as_str())
}

fn status_badge(status: &Status) -> Markup {
    let class = match status {
        Status::Verified { .. } => "status ok",
        Status::Failed { .. } => "status bad",
        Status::NotVerified => "status none",
    };
    html! { span class=(class) { (status.label()) } }
}

/// Every call in the app by keys: (caller, callee), the callee being the
/// series the call's range reaches (its bare name when none does).
pub(crate) fn calls(services: &[ServiceDoc<'_>]) -> Vec<(String, String)> {
    let graph = mote_contract::CallGraph::new(services.iter().map(|s| s.contract));
    // The graph keys services by the set it was given; map them back to
    // the keys the pages go by (the same unless the set is part of an app).
    let doc_keys: std::collections::HashMap<*const mote_contract::Contract, &str> = services
        .iter()
        .map(|s| (std::ptr::from_ref(s.contract), s.key))
        .collect();
    let page_keys: std::collections::HashMap<&str, &str> = graph
        .services()
        .filter_map(|(key, contract)| Some((key, *doc_keys.get(&std::ptr::from_ref(contract))?)))
        .collect();
    let key_of = |graph_key: &str| -> String {
        page_keys
            .get(graph_key)
            .copied()
            .unwrap_or(graph_key)
            .to_string()
    };
    let mut out: Vec<(String, String)> = graph
        .edges()
        .map(|edge| {
            let callee = match &edge.callee {
                Some(callee) => key_of(callee),
                None => edge.target.service.to_string(),
            };
            (key_of(&edge.caller), callee)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

pub(crate) fn index(app: &str, services: &[ServiceDoc<'_>], mode: Mode) -> String {
    let live = mode == Mode::Console;
    let names: Vec<String> = services.iter().map(|s| s.key.to_string()).collect();
    let edges = calls(services);
    let body = html! {
        h1 { (app) }
        p.lead { (services.len()) " services. Each page shows what a service promises: its contract, not its code." }
        input #search type="search" placeholder="Search services by name or summary" aria-label="Search services" hidden;
        table #services {
            thead { tr {
                th { "Service" } th { "Version" } th { "Summary" } th { "Reach; effects" } th { "Verification" }
                @if live { th { "Calls/s" } th { "Errors" } th { "p50" } th { "p99" } }
            } }
            tbody {
                @for s in services {
                    @let c = s.contract;
                    tr data-search=(format!("{} {}", s.key, c.service.summary).to_lowercase()) {
                        td { a href={ "services/" (s.key) ".html" } { code { (s.key) } } }
                        td { (c.service.version.to_string()) }
                        td { (c.service.summary) }
                        td { (effects_summary(c)) }
                        td {
                            (status_badge(s.status))
                            @if let Status::Verified { signer, date, strength } = s.status {
                                span.detail {
                                    " by " code { (signer) }
                                    @if let Some(date) = date { " on " (date) }
                                    @if let Some(strength) = strength { ", strength " (format!("{:.0} %", strength * 100.0)) }
                                }
                            }
                        }
                        @if live {
                            @for figure in ["rate", "errors", "p50", "p99"] {
                                td.live data-live=(figure) data-of=(s.key) { "–" }
                            }
                        }
                    }
                }
            }
        }
        p #no-match hidden { "No service matches." }
        h2 { "Call graph" }
        @if edges.is_empty() {
            p { "No service calls another." }
        } @else {
            div.graph-box { (graph::svg(&names, &edges, &|n| format!("services/{n}.html"))) }
        }
    };
    layout(app, "Services", "", body, true, mode, None)
}

fn link(name: &str, known: &[&str]) -> Markup {
    html! {
        @if known.contains(&name) {
            a href={ (name) ".html" } { code { (name) } }
        } @else {
            code { (name) }
        }
    }
}

fn schema_table(schema: &serde_json::Value) -> Markup {
    let rows = rows(schema);
    html! {
        div.scroll { table.schema {
            thead { tr { th { "Field" } th { "Type" } th { "Limits" } th { "Required" } th { "Description" } } }
            tbody {
                @for row in &rows {
                    tr {
                        td { @if row.path.is_empty() { em { "(the value)" } } @else { code { (row.path) } } }
                        td { (row.kind) }
                        td { @for (i, limit) in row.limits.iter().enumerate() { @if i > 0 { br; } (limit) } }
                        td { @if row.path.is_empty() { "" } @else if row.required { "yes" } @else { "no" } }
                        td { (row.description) }
                    }
                }
            }
        } }
    }
}

fn json_block(value: &serde_json::Value) -> Markup {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    html! { pre.json { (text) } }
}

/// The page of one service; `known` are the app's service names and
/// `edges` its calls, as [`calls`] gives them (both computed once for the
/// whole site, not once per page).
pub(crate) fn service(
    app: &str,
    doc: &ServiceDoc<'_>,
    known: &[&str],
    edges: &[(String, String)],
    mode: Mode,
) -> String {
    let live = mode == Mode::Console;
    let c = doc.contract;
    let name = doc.key;
    let callers: Vec<&str> = edges
        .iter()
        .filter(|(_, to)| to == name)
        .map(|(from, _)| from.as_str())
        .collect();
    let callees: Vec<&str> = edges
        .iter()
        .filter(|(from, _)| from == name)
        .map(|(_, to)| to.as_str())
        .collect();
    let io = ["input", "output"];
    let steps: Vec<&str> = c
        .flow
        .as_ref()
        .map(|f| f.steps.iter().map(|s| s.id.as_str()).collect())
        .unwrap_or_default();
    let mut flow_variables = vec!["input"];
    flow_variables.extend(&steps);
    let limits = [
        ("timeout_ms", c.limits.timeout_ms),
        ("max_input_bytes", c.limits.max_input_bytes),
        ("memory_mib", c.limits.memory_mib),
        ("fuel", c.limits.fuel),
    ];
    // The app's other series of this service, when it holds several.
    let series_prefix = format!("{}@", c.service.name);
    let other_series: Vec<&str> = known
        .iter()
        .copied()
        .filter(|key| key.starts_with(&series_prefix) && *key != name)
        .collect();
    let body = html! {
        h1 { code { (name) } " " span.version { (c.service.version.to_string()) " · " (c.service.visibility.as_str()) } }
        p.lead { (c.service.summary) }
        @if !other_series.is_empty() {
            p #series { "Other majors in this app: "
                @for (i, key) in other_series.iter().enumerate() { @if i > 0 { ", " } (link(key, known)) }
                ". Each caller gets the newest its range accepts." }
        }
        p {
            (status_badge(doc.status))
            @match doc.status {
                Status::Verified { signer, date, strength } => {
                    " Attested by " code { (signer) }
                    @if let Some(date) = date { " on " (date) }
                    @if let Some(strength) = strength { "; the contract pins " (format!("{:.1} %", strength * 100.0)) " of answer mutants" }
                    "."
                }
                Status::Failed { why } => { " The attestation does not vouch for this contract: " (why) }
                Status::NotVerified => { " No attestation: run " code { "mote verify --key" } " to sign one." }
            }
        }
        nav.toc {
            @if live { a href="#live" { "Now" } a href="#try" { "Try it" } }
            a href="#input" { "Input" } a href="#output" { "Output" } a href="#conditions" { "Conditions" }
            a href="#errors" { "Errors" } a href="#examples" { "Examples" } a href="#effects" { "Effects and limits" }
            @if c.flow.is_some() { a href="#flow" { "Flow" } }
            a href="#neighbours" { "Callers and callees" }
        }
        @if live { (live_section()) (crate::try_form::form(c)) }
        section #input { h2 { "Input" } (schema_table(&c.json["input"])) }
        section #output { h2 { "Output" } (schema_table(&c.json["output"])) }
        section #conditions {
            h2 { "Conditions" }
            h3 { "Requires" }
            @if c.behavior.requires.is_empty() { p { "Nothing beyond the input schema." } }
            @else { ul.conditions { @for e in &c.behavior.requires { li { (highlight(e.source(), &io)) } } } }
            h3 { "Ensures, on every success" }
            @if c.behavior.ensures.is_empty() { p { "Nothing beyond the output schema." } }
            @else { ul.conditions { @for e in &c.behavior.ensures { li { (highlight(e.source(), &io)) } } } }
        }
        section #errors {
            h2 { "Errors" }
            p { "The first error whose condition holds is the one returned; none holding means success." }
            @if c.errors.is_empty() { p { "None declared." } }
            @else {
                div.scroll { table {
                    thead { tr { th { "Code" } th { "Status" } th { "Title" } th { "When" } } }
                    tbody { @for e in &c.errors { tr {
                        td { code { (e.code) } } td { (e.status) } td { (e.summary) }
                        td {
                            @match &e.when {
                                Some(when) => { (highlight(when.source(), &io)) }
                                None => {
                                    @let from: Vec<_> = c.flow.iter().flat_map(|f| &f.on_error).filter(|m| m.becomes == e.code).collect();
                                    @if from.is_empty() { em { "may be returned on any input" } }
                                    @else {
                                        "when " @for (i, m) in from.iter().enumerate() {
                                            @if i > 0 { " or " } (link(m.service.as_str(), known)) " fails with " code { (m.code) }
                                        }
                                    }
                                }
                            }
                        }
                    } } }
                } }
            }
        }
        section #examples {
            h2 { "Examples" }
            @if c.examples.is_empty() { p { "None." } }
            @for (i, example) in c.examples.iter().enumerate() {
                div.example {
                    h3 { @match &example.name { Some(n) => { (n) } None => { "Example " (i + 1) } } }
                    div.pair {
                        div { p.caption { "Request" } (json_block(&example.input)) }
                        div {
                            @match &example.expected {
                                Expected::Output(output) => { p.caption { "Answer" } (json_block(output)) }
                                Expected::Error(code) => {
                                    p.caption { "Error" }
                                    @let status = c.errors.iter().find(|e| &e.code == code).map_or(422, |e| e.status);
                                    pre.json { (status) " " code { (code) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        section #effects {
            h2 { "Effects and limits" }
            ul {
                li { "Clock: " @if c.effects.clock { "reads the real clock" } @else { "none" } }
                li { "Randomness: " @if c.effects.random { "reads real randomness" } @else { "none" } }
                li { "Calls: " @if c.effects.calls.is_empty() { "none" }
                    @for (i, call) in c.effects.calls.iter().enumerate() {
                        @if i > 0 { ", " } (link(call.service.as_str(), known)) " " (call.versions.to_string())
                    }
                }
            }
            table.limits { tbody { @for (limit, value) in limits { tr {
                td { code { (limit) } } td { @match value { Some(v) => { (v) } None => { "host default" } } }
            } } } }
            @for store in &c.stores {
                h3 { "Store " code { (store.name) } " (" (store.access.as_str()) ")" }
                p.caption { "Keys" }
                (schema_table(store.key.json()))
                p.caption { "Values" }
                (schema_table(store.value.json()))
            }
        }
        @if let Some(flow) = &c.flow {
            section #flow {
                h2 { "Flow" }
                p { "Each step calls one service; a step waits only for the steps its input uses." }
                div.scroll { table {
                    thead { tr { th { "Step" } th { "Calls" } th { "Input" } th { "After" } } }
                    tbody { @for step in &flow.steps { tr {
                        td { code { (step.id) } }
                        td { (link(step.call.service.as_str(), known)) " " (step.call.versions.to_string()) }
                        td { (highlight(step.input.source(), &flow_variables)) }
                        td { @if step.depends_on.is_empty() { "—" } @else { (step.depends_on.join(", ")) } }
                    } } }
                } }
                h3 { "Output" }
                p { (highlight(flow.output.source(), &flow_variables)) }
                @if !flow.on_error.is_empty() {
                    h3 { "Errors of steps" }
                    div.scroll { table { tbody { @for m in &flow.on_error { tr {
                        td { (link(m.service.as_str(), known)) " " code { (m.code) } } td { "becomes" } td { code { (m.becomes) } }
                    } } } } }
                }
            }
        }
        section #neighbours {
            h2 { "Callers and callees" }
            p { "Called by: " @if callers.is_empty() { "no service of this app" }
                @for (i, caller) in callers.iter().enumerate() { @if i > 0 { ", " } (link(caller, known)) } }
            p { "Calls: " @if callees.is_empty() { "no other service" }
                @for (i, callee) in callees.iter().enumerate() { @if i > 0 { ", " } (link(callee, known)) } }
        }
        p.hash { "Contract hash " code { (c.hash.to_string()) } }
    };
    layout(app, name, "../", body, false, mode, Some(name))
}

/// The host's figures for one service, filled in by `console.js`.
fn live_section() -> Markup {
    html! {
        section #live {
            h2 { "Now" }
            p.detail #live-window { "Over the last minute; updated every few seconds while this page is in view." }
            dl.figures {
                div { dt { "Calls/s" } dd data-live="rate" { "–" } }
                div { dt { "Error rate" } dd data-live="error-rate" { "–" } }
                div { dt { "p50" } dd data-live="p50" { "–" } }
                div { dt { "p99" } dd data-live="p99" { "–" } }
            }
            h3 { "Calls per 5 s, last 5 minutes" }
            div #chart role="img" aria-label="Calls and failures per five seconds" {}
            h3 { "Errors by code" }
            p #errors-by-code { "None in the last minute." }
            h3 { "Last failures" }
            p #no-failures { "None since the host started." }
            div.scroll { table #failures hidden {
                thead { tr { th { "When (UTC)" } th { "Code" } th { "Call id" } } }
                tbody {}
            } }
        }
    }
}
