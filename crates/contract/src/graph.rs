//! The call graph of an app: who calls whom, through `effects.calls` and
//! flow steps. The graph is where logic fragmented across services becomes
//! visible again, and where an app is refused before it runs: a call to a
//! service that does not exist, a callee at a version the caller does not
//! accept, a flow mapping an error its callee never returns, or a cycle.
//!
//! An app may hold several series of one service (see [`crate::versions`]):
//! services are named by their keys, and each call goes to the newest
//! version its range accepts, so the graph shows who still calls an older
//! series.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::model::{CallTarget, Contract, Visibility};
use crate::versions;

/// The services of one app and the calls between them.
#[derive(Debug)]
pub struct CallGraph<'a> {
    /// Every service by its key.
    services: BTreeMap<String, &'a Contract>,
    /// The keys of each name's versions, oldest first.
    by_name: BTreeMap<&'a str, Vec<(&'a semver::Version, String)>>,
    /// Series held twice: (name, series).
    repeated: Vec<(String, String)>,
    edges: Vec<Edge<'a>>,
}

/// Services with their keys and contracts, in key order.
type Services<'g, 'a> = Vec<(&'g str, &'a Contract)>;

/// One declared call.
#[derive(Debug, Clone)]
pub struct Edge<'a> {
    /// The calling service's key.
    pub caller: String,
    /// The callee and the versions the caller accepts.
    pub target: &'a CallTarget,
    /// The flow step making the call; `None` for `effects.calls`.
    pub step: Option<&'a str>,
    /// The key of the version the call reaches: the newest of the app's
    /// that the range accepts; `None` when there is none.
    pub callee: Option<String>,
}

impl Edge<'_> {
    /// How renderings label the call: the step (for a flow) and the
    /// accepted versions.
    pub fn label(&self) -> String {
        match self.step {
            Some(step) => format!("{step}: {}", self.target.versions),
            None => self.target.versions.to_string(),
        }
    }
}

/// An older series of a service that some services still call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OlderSeriesInUse {
    /// The older series' key (`tax.vat@1`).
    pub key: String,
    /// The newest series' key (`tax.vat@2`).
    pub newest: String,
    /// The keys of the services whose calls reach the older series.
    pub callers: Vec<String>,
}

/// A reason the app cannot run as declared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphProblem {
    /// A caller names a service the app does not have.
    #[error("`{caller}` calls `{callee}`, which is not a service of this app")]
    MissingService {
        /// The caller.
        caller: String,
        /// The missing callee.
        callee: String,
    },
    /// The callee exists only at versions outside the caller's range.
    #[error("`{caller}` calls `{callee}@{range}`, but the app has `{callee}` {version}")]
    VersionOutOfRange {
        /// The caller.
        caller: String,
        /// The callee.
        callee: String,
        /// The range the caller accepts.
        range: String,
        /// The versions the app has, oldest first.
        version: String,
    },
    /// Two services of the app are versions of one name in one series:
    /// a call could not tell them apart.
    #[error(
        "the app has `{name}` twice in series {series}; versions of one service sit side by side only in different series (e.g. 1.x and 2.x)"
    )]
    SameSeries {
        /// The name.
        name: String,
        /// The series both are in.
        series: String,
    },
    /// A flow maps an error code its callee does not declare.
    #[error(
        "`{flow}` maps `{callee}/{code}` in `on_error`, but `{callee}` declares no error `{code}`"
    )]
    UnknownCalleeError {
        /// The flow.
        flow: String,
        /// The callee.
        callee: String,
        /// The code it does not declare.
        code: String,
    },
    /// Services call each other in a circle; a call could recurse forever.
    #[error("call cycle: {}", .services.join(" -> "))]
    Cycle {
        /// The services on the cycle, the first repeated at the end.
        services: Vec<String>,
    },
    /// Two services declare one store with different key or value
    /// schemas: they would read each other's data as something else.
    #[error(
        "`{first}` and `{second}` declare store `{store}` with different {part} schemas; every service using a store declares the same key and value"
    )]
    StoreDisagrees {
        /// The store.
        store: String,
        /// The first service, in name order.
        first: String,
        /// A later one that declares it otherwise.
        second: String,
        /// `key` or `value`.
        part: &'static str,
    },
}

impl<'a> CallGraph<'a> {
    /// The graph of these contracts (one per service; versions of one
    /// name in different series are different services).
    pub fn new(contracts: impl IntoIterator<Item = &'a Contract>) -> Self {
        let contracts: Vec<&'a Contract> = contracts.into_iter().collect();
        let keys = versions::keys(
            contracts
                .iter()
                .map(|c| (c.service.name.as_str(), &c.service.version)),
        );
        let mut services = BTreeMap::new();
        let mut by_name: BTreeMap<&'a str, Vec<(&'a semver::Version, String)>> = BTreeMap::new();
        let mut repeated = Vec::new();
        for (contract, key) in contracts.iter().zip(&keys) {
            let name = contract.service.name.as_str();
            let version = &contract.service.version;
            let list = by_name.entry(name).or_default();
            let series = versions::series(version);
            if list.iter().any(|(v, _)| versions::series(v) == series) {
                let pair = (name.to_string(), series);
                if !repeated.contains(&pair) {
                    repeated.push(pair);
                }
                continue;
            }
            list.push((version, key.clone()));
            list.sort_by(|a, b| a.0.cmp(b.0));
            services.insert(key.clone(), *contract);
        }
        let mut graph = CallGraph {
            services,
            by_name,
            repeated,
            edges: Vec::new(),
        };
        let mut edges = Vec::new();
        for (key, contract) in &graph.services {
            let calls = contract.effects.calls.iter().map(|target| (target, None));
            let steps = contract
                .flow
                .iter()
                .flat_map(|flow| flow.steps.iter())
                .map(|step| (&step.call, Some(step.id.as_str())));
            for (target, step) in calls.chain(steps) {
                edges.push(Edge {
                    caller: key.clone(),
                    target,
                    step,
                    callee: graph.resolve(target).map(str::to_string),
                });
            }
        }
        graph.edges = edges;
        graph
    }

    /// The key of the version a call to `target` reaches: the newest the
    /// range accepts.
    pub fn resolve(&self, target: &CallTarget) -> Option<&str> {
        let versions = self.by_name.get(target.service.as_str())?;
        versions::newest_matching(
            &target.versions,
            versions.iter().map(|(v, key)| (*v, key.as_str())),
        )
    }

    /// The key of each service, in key order, with its contract.
    pub fn services(&self) -> impl Iterator<Item = (&str, &'a Contract)> {
        self.services.iter().map(|(key, c)| (key.as_str(), *c))
    }

    /// Internal services no service of the app calls: only the admin
    /// address, `mote call` and `mote verify` reach them. An older series
    /// every caller has left is among them.
    pub fn unreachable(&self) -> Vec<&str> {
        self.services
            .iter()
            .filter(|(key, contract)| {
                contract.service.visibility == Visibility::Internal
                    && !self
                        .edges
                        .iter()
                        .any(|e| e.callee.as_deref() == Some(key.as_str()))
            })
            .map(|(key, _)| key.as_str())
            .collect()
    }

    /// Whether any service of the app is an entry point.
    pub fn has_entry_point(&self) -> bool {
        self.services
            .values()
            .any(|c| c.service.visibility == Visibility::Public)
    }

    /// Every declared call, callers in key order.
    pub fn edges(&self) -> impl Iterator<Item = &Edge<'a>> {
        self.edges.iter()
    }

    /// The keys of every series but the newest of each name.
    fn older_series(&self) -> Vec<&str> {
        self.by_name
            .values()
            .filter_map(|versions| versions.split_last())
            .flat_map(|(_, older)| older.iter().map(|(_, key)| key.as_str()))
            .collect()
    }

    /// Each older series of a name the app holds in several, with the
    /// services whose calls still reach it: who has yet to move on.
    pub fn older_series_in_use(&self) -> Vec<OlderSeriesInUse> {
        let mut found = Vec::new();
        for versions in self.by_name.values() {
            let Some(((_, newest), older)) = versions.split_last() else {
                continue;
            };
            for (_, key) in older {
                let mut callers: Vec<String> = self
                    .edges
                    .iter()
                    .filter(|e| e.callee.as_deref() == Some(key.as_str()))
                    .map(|e| e.caller.clone())
                    .collect();
                callers.dedup();
                if !callers.is_empty() {
                    found.push(OlderSeriesInUse {
                        key: key.clone(),
                        newest: newest.clone(),
                        callers,
                    });
                }
            }
        }
        found
    }

    /// Every problem, in a stable order: series held twice, missing
    /// callees and version mismatches per call, unknown mapped errors,
    /// then cycles and store disagreements.
    pub fn problems(&self) -> Vec<GraphProblem> {
        let mut problems: Vec<GraphProblem> = self
            .repeated
            .iter()
            .map(|(name, series)| GraphProblem::SameSeries {
                name: name.clone(),
                series: series.clone(),
            })
            .collect();
        for edge in self.edges() {
            let callee = edge.target.service.as_str();
            match (self.by_name.get(callee), &edge.callee) {
                (None, _) => problems.push(GraphProblem::MissingService {
                    caller: edge.caller.clone(),
                    callee: callee.to_string(),
                }),
                (Some(versions), None) => problems.push(GraphProblem::VersionOutOfRange {
                    caller: edge.caller.clone(),
                    callee: callee.to_string(),
                    range: edge.target.versions.to_string(),
                    version: versions
                        .iter()
                        .map(|(v, _)| v.to_string())
                        .collect::<Vec<_>>()
                        .join(" and "),
                }),
                (Some(_), Some(_)) => {}
            }
        }
        for (key, contract) in &self.services {
            let Some(flow) = &contract.flow else { continue };
            for mapping in &flow.on_error {
                // The version this flow's steps reach under that name.
                let Some(callee) = self
                    .edges
                    .iter()
                    .filter(|e| e.caller == *key && e.target.service == mapping.service)
                    .find_map(|e| e.callee.as_deref())
                    .and_then(|callee| self.services.get(callee))
                else {
                    continue;
                };
                if callee.error(&mapping.code).is_none() {
                    problems.push(GraphProblem::UnknownCalleeError {
                        flow: key.clone(),
                        callee: mapping.service.to_string(),
                        code: mapping.code.clone(),
                    });
                }
            }
        }
        problems.extend(self.cycles());
        problems.extend(self.store_disagreements());
        problems
    }

    /// Each store declared with other schemas than by the first service
    /// (in key order) that declares it.
    fn store_disagreements(&self) -> Vec<GraphProblem> {
        let mut first: BTreeMap<&str, (&str, &crate::Store)> = BTreeMap::new();
        let mut problems = Vec::new();
        for (key, contract) in &self.services {
            for store in &contract.stores {
                let Some((by, earlier)) = first.get(store.name.as_str()) else {
                    first.insert(&store.name, (key, store));
                    continue;
                };
                let part = if earlier.key.json() != store.key.json() {
                    "key"
                } else if earlier.value.json() != store.value.json() {
                    "value"
                } else {
                    continue;
                };
                problems.push(GraphProblem::StoreDisagrees {
                    store: store.name.clone(),
                    first: (*by).to_string(),
                    second: key.clone(),
                    part,
                });
            }
        }
        problems
    }

    /// The services (by key) that declare each store, by store name: who
    /// may read and who may write what.
    pub fn stores(&self) -> BTreeMap<&'a str, Vec<(&str, crate::StoreAccess)>> {
        let mut stores: BTreeMap<&str, Vec<(&str, crate::StoreAccess)>> = BTreeMap::new();
        for (key, contract) in &self.services {
            for store in &contract.stores {
                stores
                    .entry(store.name.as_str())
                    .or_default()
                    .push((key, store.access));
            }
        }
        stores
    }

    /// One cycle per back edge of a depth-first walk in key order.
    fn cycles(&self) -> Vec<GraphProblem> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Unseen,
            OnPath,
            Done,
        }
        let names: Vec<&str> = self.services.keys().map(String::as_str).collect();
        let index = |name: &str| names.iter().position(|n| *n == name);
        let mut callees: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
        for edge in &self.edges {
            if let (Some(from), Some(to)) =
                (index(&edge.caller), edge.callee.as_deref().and_then(&index))
                && !callees[from].contains(&to)
            {
                callees[from].push(to);
            }
        }
        for list in &mut callees {
            list.sort_unstable();
        }
        let mut marks = vec![Mark::Unseen; names.len()];
        let mut cycles = Vec::new();
        for root in 0..names.len() {
            if marks[root] != Mark::Unseen {
                continue;
            }
            // An explicit stack of (node, next callee to visit).
            let mut path: Vec<(usize, usize)> = vec![(root, 0)];
            marks[root] = Mark::OnPath;
            while let Some(&mut (node, ref mut next)) = path.last_mut() {
                if let Some(&callee) = callees[node].get(*next) {
                    *next += 1;
                    match marks[callee] {
                        Mark::Unseen => {
                            marks[callee] = Mark::OnPath;
                            path.push((callee, 0));
                        }
                        Mark::OnPath => {
                            let start = path.iter().position(|(n, _)| *n == callee).unwrap_or(0);
                            let mut services: Vec<String> = path[start..]
                                .iter()
                                .map(|(n, _)| names[*n].to_string())
                                .collect();
                            services.push(names[callee].to_string());
                            cycles.push(GraphProblem::Cycle { services });
                        }
                        Mark::Done => {}
                    }
                } else {
                    marks[node] = Mark::Done;
                    path.pop();
                }
            }
        }
        cycles
    }

    /// The graph as a Mermaid flowchart.
    pub fn mermaid(&self) -> String {
        self.mermaid_placed(|_| None)
    }

    /// The services `host_of` places nowhere, and those it places, by host.
    fn by_host(
        &self,
        host_of: &impl Fn(&str) -> Option<String>,
    ) -> (Services<'_, 'a>, BTreeMap<String, Services<'_, 'a>>) {
        let mut unplaced = Vec::new();
        let mut hosts: BTreeMap<String, Services<'_, 'a>> = BTreeMap::new();
        for (key, &contract) in &self.services {
            match host_of(contract.service.name.as_str()) {
                Some(host) => hosts
                    .entry(host)
                    .or_default()
                    .push((key.as_str(), contract)),
                None => unplaced.push((key.as_str(), contract)),
            }
        }
        (unplaced, hosts)
    }

    /// [`CallGraph::mermaid`] with each service inside the host
    /// `host_of` names (a subgraph per host; `None` leaves it outside),
    /// and the calls that cross hosts dotted.
    pub fn mermaid_placed(&self, host_of: impl Fn(&str) -> Option<String>) -> String {
        let id = |key: &str| key.replace(['.', '-'], "_").replace('@', "_v");
        let mut out = String::from("flowchart LR\n");
        let node = |out: &mut String, name: &str, contract: &Contract, indent: &str| {
            let kind = if contract.flow.is_some() {
                " (flow)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "{indent}{}[\"{name} {}{kind}\"]",
                id(name),
                contract.service.version
            );
        };
        let (unplaced, hosts) = self.by_host(&host_of);
        for (name, contract) in unplaced {
            node(&mut out, name, contract, "  ");
        }
        for (host, services) in &hosts {
            let _ = writeln!(out, "  subgraph host_{}[\"host {host}\"]", id(host));
            for (name, contract) in services {
                node(&mut out, name, contract, "    ");
            }
            out.push_str("  end\n");
        }
        for (key, contract) in &self.services {
            if contract.service.visibility == Visibility::Public {
                let _ = writeln!(out, "  class {} entry", id(key));
            }
        }
        let older = self.older_series();
        for key in &older {
            let _ = writeln!(out, "  class {} older", id(key));
        }
        if !older.is_empty() {
            out.push_str("  classDef older stroke-dasharray:4 3\n");
        }
        if self
            .services
            .values()
            .any(|c| c.service.visibility == Visibility::Public)
        {
            out.push_str("  classDef entry stroke-width:3px\n");
        }
        for edge in self.edges() {
            let callee = edge
                .callee
                .as_deref()
                .unwrap_or(edge.target.service.as_str());
            let arrow = if crosses(&host_of, &edge.caller, callee) {
                "-.->"
            } else {
                "-->"
            };
            let _ = writeln!(
                out,
                "  {} {arrow}|\"{}\"| {}",
                id(&edge.caller),
                edge.label(),
                id(callee)
            );
        }
        // Stores as cylinders: a reader points at its store, a writer
        // both ways.
        for (store, users) in self.stores() {
            let _ = writeln!(out, "  store_{}[(\"store {store}\")]", id(store));
            for (service, access) in users {
                let arrow = match access {
                    crate::StoreAccess::Read => "-->",
                    crate::StoreAccess::ReadWrite => "<-->",
                };
                let _ = writeln!(
                    out,
                    "  {} {arrow}|\"{}\"| store_{}",
                    id(service),
                    access.as_str(),
                    id(store)
                );
            }
        }
        out
    }

    /// The graph in Graphviz DOT.
    pub fn dot(&self) -> String {
        self.dot_placed(|_| None)
    }

    /// [`CallGraph::dot`] with each service inside the host `host_of`
    /// names (a cluster per host), and the calls that cross hosts dashed.
    pub fn dot_placed(&self, host_of: impl Fn(&str) -> Option<String>) -> String {
        let mut out = String::from("digraph mote {\n  rankdir=LR;\n  node [shape=box];\n");
        let older = self.older_series();
        let node = |out: &mut String, name: &str, contract: &Contract, indent: &str| {
            let public = contract.service.visibility == Visibility::Public;
            let words: Vec<&str> = [
                (contract.flow.is_some(), "rounded"),
                (public, "bold"),
                (older.contains(&name), "dashed"),
            ]
            .into_iter()
            .filter_map(|(on, word)| on.then_some(word))
            .collect();
            let style = match words.as_slice() {
                [] => String::new(),
                [word] => format!(", style={word}"),
                words => format!(", style=\"{}\"", words.join(",")),
            } + if public { ", penwidth=2" } else { "" };
            let _ = writeln!(
                out,
                "{indent}\"{name}\" [label=\"{name}\\n{}\"{style}];",
                contract.service.version
            );
        };
        let (unplaced, hosts) = self.by_host(&host_of);
        for (name, contract) in unplaced {
            node(&mut out, name, contract, "  ");
        }
        for (host, services) in &hosts {
            let _ = writeln!(
                out,
                "  subgraph \"cluster_{host}\" {{\n    label=\"host {host}\";"
            );
            for (name, contract) in services {
                node(&mut out, name, contract, "    ");
            }
            out.push_str("  }\n");
        }
        for edge in self.edges() {
            let callee = edge
                .callee
                .as_deref()
                .unwrap_or(edge.target.service.as_str());
            let style = if crosses(&host_of, &edge.caller, callee) {
                ", style=dashed"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\" [label=\"{}\"{style}];",
                edge.caller,
                callee,
                edge.label()
            );
        }
        for (store, users) in self.stores() {
            let _ = writeln!(
                out,
                "  \"store {store}\" [shape=cylinder, label=\"store {store}\"];"
            );
            for (service, access) in users {
                let dir = match access {
                    crate::StoreAccess::Read => "",
                    crate::StoreAccess::ReadWrite => ", dir=both",
                };
                let _ = writeln!(
                    out,
                    "  \"{service}\" -> \"store {store}\" [label=\"{}\", style=dotted{dir}];",
                    access.as_str()
                );
            }
        }
        out.push_str("}\n");
        out
    }
}

/// Whether a call from `caller` to `callee` (keys) goes from one host to
/// another; a placement places every series of a name together.
fn crosses(host_of: &impl Fn(&str) -> Option<String>, caller: &str, callee: &str) -> bool {
    let name = |key| versions::ServiceRef::parse(key).name;
    match (host_of(name(caller)), host_of(name(callee))) {
        (Some(from), Some(to)) => from != to,
        _ => false,
    }
}
