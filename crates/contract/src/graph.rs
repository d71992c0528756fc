//! The call graph of an app: who calls whom, through `effects.calls` and
//! flow steps. The graph is where logic fragmented across services becomes
//! visible again, and where an app is refused before it runs: a call to a
//! service that does not exist, a callee at a version the caller does not
//! accept, a flow mapping an error its callee never returns, or a cycle.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::model::{CallTarget, Contract, Visibility};

/// The services of one app and the calls between them.
#[derive(Debug)]
pub struct CallGraph<'a> {
    services: BTreeMap<&'a str, &'a Contract>,
    edges: Vec<Edge<'a>>,
}

/// Services with their contracts, in name order.
type Services<'a> = Vec<(&'a str, &'a Contract)>;

/// One declared call.
#[derive(Debug, Clone, Copy)]
pub struct Edge<'a> {
    /// The calling service.
    pub caller: &'a str,
    /// The callee and the versions the caller accepts.
    pub target: &'a CallTarget,
    /// The flow step making the call; `None` for `effects.calls`.
    pub step: Option<&'a str>,
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
    /// The callee exists at a version outside the caller's range.
    #[error("`{caller}` calls `{callee}@{range}`, but the app has `{callee}` {version}")]
    VersionOutOfRange {
        /// The caller.
        caller: String,
        /// The callee.
        callee: String,
        /// The range the caller accepts.
        range: String,
        /// The version the app has.
        version: String,
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
    /// The graph of these contracts (one per service).
    pub fn new(contracts: impl IntoIterator<Item = &'a Contract>) -> Self {
        let mut services = BTreeMap::new();
        let mut edges = Vec::new();
        for contract in contracts {
            let caller = contract.service.name.as_str();
            services.insert(caller, contract);
            for target in &contract.effects.calls {
                edges.push(Edge {
                    caller,
                    target,
                    step: None,
                });
            }
            if let Some(flow) = &contract.flow {
                for step in &flow.steps {
                    edges.push(Edge {
                        caller,
                        target: &step.call,
                        step: Some(&step.id),
                    });
                }
            }
        }
        CallGraph { services, edges }
    }

    /// Internal services no service of the app calls: only the admin
    /// address, `mote call` and `mote verify` reach them.
    pub fn unreachable(&self) -> Vec<&'a str> {
        self.services
            .iter()
            .filter(|(name, contract)| {
                contract.service.visibility == Visibility::Internal
                    && !self
                        .edges
                        .iter()
                        .any(|e| e.target.service.as_str() == **name)
            })
            .map(|(name, _)| *name)
            .collect()
    }

    /// Whether any service of the app is an entry point.
    pub fn has_entry_point(&self) -> bool {
        self.services
            .values()
            .any(|c| c.service.visibility == Visibility::Public)
    }

    /// Every declared call, callers in name order.
    pub fn edges(&self) -> impl Iterator<Item = &Edge<'a>> {
        let mut edges: Vec<&Edge<'a>> = self.edges.iter().collect();
        edges.sort_by_key(|e| e.caller);
        edges.into_iter()
    }

    /// Every problem, in a stable order: missing callees and version
    /// mismatches per call, unknown mapped errors, then cycles.
    pub fn problems(&self) -> Vec<GraphProblem> {
        let mut problems = Vec::new();
        for edge in self.edges() {
            let callee = edge.target.service.as_str();
            match self.services.get(callee) {
                None => problems.push(GraphProblem::MissingService {
                    caller: edge.caller.to_string(),
                    callee: callee.to_string(),
                }),
                Some(contract) if !edge.target.versions.matches(&contract.service.version) => {
                    problems.push(GraphProblem::VersionOutOfRange {
                        caller: edge.caller.to_string(),
                        callee: callee.to_string(),
                        range: edge.target.versions.to_string(),
                        version: contract.service.version.to_string(),
                    });
                }
                Some(_) => {}
            }
        }
        for (name, contract) in &self.services {
            let Some(flow) = &contract.flow else { continue };
            for mapping in &flow.on_error {
                let Some(callee) = self.services.get(mapping.service.as_str()) else {
                    continue;
                };
                if callee.error(&mapping.code).is_none() {
                    problems.push(GraphProblem::UnknownCalleeError {
                        flow: (*name).to_string(),
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
    /// (in name order) that declares it.
    fn store_disagreements(&self) -> Vec<GraphProblem> {
        let mut first: BTreeMap<&str, (&str, &crate::Store)> = BTreeMap::new();
        let mut problems = Vec::new();
        for (name, contract) in &self.services {
            for store in &contract.stores {
                let Some((by, earlier)) = first.get(store.name.as_str()) else {
                    first.insert(&store.name, (name, store));
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
                    second: (*name).to_string(),
                    part,
                });
            }
        }
        problems
    }

    /// The services that declare each store, by store name: who may read
    /// and who may write what.
    pub fn stores(&self) -> BTreeMap<&'a str, Vec<(&'a str, crate::StoreAccess)>> {
        let mut stores: BTreeMap<&str, Vec<(&str, crate::StoreAccess)>> = BTreeMap::new();
        for (name, contract) in &self.services {
            for store in &contract.stores {
                stores
                    .entry(store.name.as_str())
                    .or_default()
                    .push((name, store.access));
            }
        }
        stores
    }

    /// One cycle per back edge of a depth-first walk in name order.
    fn cycles(&self) -> Vec<GraphProblem> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Unseen,
            OnPath,
            Done,
        }
        let names: Vec<&str> = self.services.keys().copied().collect();
        let index = |name: &str| names.iter().position(|n| *n == name);
        let mut callees: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
        for edge in &self.edges {
            if let (Some(from), Some(to)) =
                (index(edge.caller), index(edge.target.service.as_str()))
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
    ) -> (Services<'_>, BTreeMap<String, Services<'_>>) {
        let mut unplaced = Vec::new();
        let mut hosts: BTreeMap<String, Services<'_>> = BTreeMap::new();
        for (&name, &contract) in &self.services {
            match host_of(name) {
                Some(host) => hosts.entry(host).or_default().push((name, contract)),
                None => unplaced.push((name, contract)),
            }
        }
        (unplaced, hosts)
    }

    /// [`CallGraph::mermaid`] with each service inside the host
    /// `host_of` names (a subgraph per host; `None` leaves it outside),
    /// and the calls that cross hosts dotted.
    pub fn mermaid_placed(&self, host_of: impl Fn(&str) -> Option<String>) -> String {
        let id = |name: &str| name.replace(['.', '-'], "_");
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
        for (name, contract) in &self.services {
            if contract.service.visibility == Visibility::Public {
                let _ = writeln!(out, "  class {} entry", id(name));
            }
        }
        if self
            .services
            .values()
            .any(|c| c.service.visibility == Visibility::Public)
        {
            out.push_str("  classDef entry stroke-width:3px\n");
        }
        for edge in self.edges() {
            let callee = edge.target.service.as_str();
            let arrow = if crosses(&host_of, edge.caller, callee) {
                "-.->"
            } else {
                "-->"
            };
            let _ = writeln!(
                out,
                "  {} {arrow}|\"{}\"| {}",
                id(edge.caller),
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
        let node = |out: &mut String, name: &str, contract: &Contract, indent: &str| {
            let style = match (contract.flow.is_some(), contract.service.visibility) {
                (true, Visibility::Public) => ", style=\"rounded,bold\", penwidth=2",
                (false, Visibility::Public) => ", style=bold, penwidth=2",
                (true, Visibility::Internal) => ", style=rounded",
                (false, Visibility::Internal) => "",
            };
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
            let callee = edge.target.service.as_str();
            let style = if crosses(&host_of, edge.caller, callee) {
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

/// Whether a call from `caller` to `callee` goes from one host to another.
fn crosses(host_of: &impl Fn(&str) -> Option<String>, caller: &str, callee: &str) -> bool {
    match (host_of(caller), host_of(callee)) {
        (Some(from), Some(to)) => from != to,
        _ => false,
    }
}
