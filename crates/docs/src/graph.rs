//! The call graph as an SVG picture: callers above their callees, in
//! layers, each node a link to its service's page. Laid out here, with no
//! external tool: layers by longest path from the entry points, order
//! within a layer by the mean position of each node's callers.

use std::collections::{BTreeMap, BTreeSet};

use maud::{Markup, html};

/// Pixels per character of a node's label (a monospace estimate).
const CHAR_WIDTH: usize = 8;
const NODE_HEIGHT: usize = 32;
const LAYER_GAP: usize = 56;
const NODE_GAP: usize = 24;
const MARGIN: usize = 16;

/// A node placed in the picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// The service.
    pub name: String,
    /// Left edge.
    pub x: usize,
    /// Top edge.
    pub y: usize,
    /// Width.
    pub width: usize,
}

/// Places `nodes` with `edges` (caller, callee) between them; edges to
/// unknown nodes are ignored, and a cycle cannot make it loop.
pub fn layout(nodes: &[String], edges: &[(String, String)]) -> (Vec<Placed>, usize, usize) {
    let known: BTreeSet<&str> = nodes.iter().map(String::as_str).collect();
    let mut callees: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut callers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges {
        if known.contains(from.as_str()) && known.contains(to.as_str()) && from != to {
            callees.entry(from).or_default().push(to);
            callers.entry(to).or_default().push(from);
        }
    }
    // Layer: longest path from a node without callers, bounded by the
    // node count so that a cycle ends.
    let mut layer: BTreeMap<&str, usize> = known.iter().map(|n| (*n, 0)).collect();
    for _ in 0..known.len() {
        let mut changed = false;
        for (from, tos) in &callees {
            let below = layer[from] + 1;
            for to in tos {
                if layer[to] < below && below < known.len() {
                    layer.insert(to, below);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let depth = layer.values().copied().max().map_or(0, |d| d + 1);
    let mut rows: Vec<Vec<&str>> = vec![Vec::new(); depth];
    for (node, l) in &layer {
        rows[*l].push(node);
    }
    // Order each layer by the mean index of its callers in the layer
    // above, names breaking ties.
    for l in 1..rows.len() {
        let above: BTreeMap<&str, usize> = rows[l - 1]
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, i))
            .collect();
        let key = |n: &str| -> (usize, String) {
            let positions: Vec<usize> = callers
                .get(n)
                .map(|cs| cs.iter().filter_map(|c| above.get(c).copied()).collect())
                .unwrap_or_default();
            let mean = if positions.is_empty() {
                usize::MAX
            } else {
                positions.iter().sum::<usize>() * 100 / positions.len()
            };
            (mean, n.to_string())
        };
        rows[l].sort_by_key(|n| key(n));
    }
    let width_of = |n: &str| (n.chars().count() * CHAR_WIDTH + 24).max(80);
    let row_widths: Vec<usize> = rows
        .iter()
        .map(|r| {
            r.iter().map(|n| width_of(n)).sum::<usize>() + NODE_GAP * r.len().saturating_sub(1)
        })
        .collect();
    let widest = row_widths.iter().copied().max().unwrap_or(0);
    let mut placed = Vec::new();
    for (l, row) in rows.iter().enumerate() {
        let mut x = MARGIN + (widest - row_widths[l]) / 2;
        for node in row {
            let width = width_of(node);
            placed.push(Placed {
                name: (*node).to_string(),
                x,
                y: MARGIN + l * (NODE_HEIGHT + LAYER_GAP),
                width,
            });
            x += width + NODE_GAP;
        }
    }
    let height = MARGIN * 2 + depth * NODE_HEIGHT + depth.saturating_sub(1) * LAYER_GAP;
    (placed, widest + MARGIN * 2, height)
}

/// The picture, each node linking to `link(name)`.
pub fn svg(nodes: &[String], edges: &[(String, String)], link: &dyn Fn(&str) -> String) -> Markup {
    let (placed, width, height) = layout(nodes, edges);
    let at: BTreeMap<&str, &Placed> = placed.iter().map(|p| (p.name.as_str(), p)).collect();
    html! {
        svg.graph xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Call graph"
            viewBox=(format!("0 0 {width} {height}")) width=(width) height=(height) {
            defs {
                marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" {}
                }
            }
            @for (from, to) in edges {
                @if let (Some(a), Some(b)) = (at.get(from.as_str()), at.get(to.as_str())) {
                    line.edge x1=(a.x + a.width / 2) y1=(a.y + NODE_HEIGHT) x2=(b.x + b.width / 2) y2=(b.y) marker-end="url(#arrow)" {}
                }
            }
            @for node in &placed {
                a href=(link(&node.name)) {
                    rect.node x=(node.x) y=(node.y) width=(node.width) height=(NODE_HEIGHT) rx="6" {}
                    text x=(node.x + node.width / 2) y=(node.y + NODE_HEIGHT / 2 + 5) text-anchor="middle" { (node.name) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn callers_sit_above_their_callees_and_nodes_do_not_overlap() {
        let nodes = names(&[
            "shop.checkout",
            "cart.total",
            "tax.vat",
            "shipping.quote",
            "alone",
        ]);
        let edges = vec![
            ("shop.checkout".to_string(), "cart.total".to_string()),
            ("shop.checkout".to_string(), "tax.vat".to_string()),
            ("cart.total".to_string(), "tax.vat".to_string()),
        ];
        let (placed, width, height) = layout(&nodes, &edges);
        let y = |n: &str| placed.iter().find(|p| p.name == n).unwrap().y;
        assert!(y("shop.checkout") < y("cart.total"));
        assert!(
            y("cart.total") < y("tax.vat"),
            "longest path decides the layer"
        );
        for a in &placed {
            assert!(a.x + a.width <= width && a.y + NODE_HEIGHT <= height);
            for b in &placed {
                if a.name != b.name && a.y == b.y {
                    assert!(
                        a.x + a.width <= b.x || b.x + b.width <= a.x,
                        "{a:?} overlaps {b:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_cycle_ends_and_labels_are_escaped() {
        let nodes = names(&["a", "b", "<x>"]);
        let edges = vec![
            ("a".to_string(), "b".to_string()),
            ("b".to_string(), "a".to_string()),
        ];
        let (placed, _, _) = layout(&nodes, &edges);
        assert_eq!(placed.len(), 3);
        let picture = svg(&nodes, &edges, &|n| format!("services/{n}.html")).into_string();
        assert!(
            picture.contains("&lt;x&gt;") && !picture.contains("<x>"),
            "{picture}"
        );
    }
}
