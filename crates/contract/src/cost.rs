//! How long a CEL expression can take, at worst, on the largest input and
//! output its contract allows: so that no `requires`, `when`, `ensures` or
//! flow expression can hold a host's thread for long, whatever a client
//! sends. CEL evaluation cannot be interrupted, so its cost is bounded
//! before the contract is accepted.
//!
//! The model counts steps: one per node evaluated, plus the length of
//! every list or string a node walks (`in`, `matches`, `contains`,
//! `sum`, concatenation, comparing collections), and each iteration of a
//! macro (`all`, `exists`, `map`, `filter`) multiplies its body's cost by
//! the size of the list it iterates. A list's size is its schema's
//! `maxItems`, a string's its `maxLength`; without one it is as large as
//! the bytes of the document it comes from allow (`max_input_bytes` for
//! the input, the host's answer limit for the output).
//!
//! The limit is relative: at most [`STEPS_PER_BYTE`] steps per byte of the
//! largest document the expression reads. So the work a request causes
//! grows no faster than the request (or the answer) itself: a few passes
//! over the input are fine, an iteration nested in another over unbounded
//! lists is not.

use cel::common::ast::{EntryExpr, Expr as Node, IdedExpr, LiteralValue};
use serde_json::Value;

use crate::expr::Expr;

/// The most steps one expression may take per byte of the largest
/// document it reads (the input; the output or a flow step's answer too,
/// where it reads them).
pub const STEPS_PER_BYTE: f64 = 64.0;

/// The most bytes of output the cost model assumes a service may answer
/// (the host's default answer limit).
pub const OUTPUT_BUDGET_BYTES: u64 = 4 * 1024 * 1024;

/// The most bytes of JSON one value in a store may take: the host refuses
/// a larger write, and the model assumes a value read from a store is at
/// most this large.
pub const STORE_VALUE_BYTES: u64 = 64 * 1024;

/// The input size the model assumes when a contract sets no
/// `max_input_bytes` (the host's default).
pub const DEFAULT_INPUT_BUDGET_BYTES: u64 = 1024 * 1024;

/// What the model knows about the documents an expression reads.
pub(crate) struct CostModel<'a> {
    pub(crate) input: Option<&'a Value>,
    pub(crate) output: Option<&'a Value>,
    pub(crate) input_bytes: u64,
    /// The stores the contract declares, by name, with their value
    /// schemas.
    pub(crate) stores: Vec<(&'a str, &'a Value)>,
}

/// An expression's worst case, and what makes it so.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cost {
    pub(crate) steps: f64,
    /// The list walked by the outermost iteration, when an iteration is
    /// what drives the cost.
    pub(crate) driver: Option<String>,
}

/// A value the walk knows the shape of: where in which schema it comes
/// from (if anywhere), and how large it can be.
#[derive(Clone)]
struct Shape<'a> {
    schema: Option<(&'a Value, &'a Value)>,
    /// The most elements (list, map) or characters (string) it can have.
    size: f64,
    /// The most bytes of the document it is part of.
    budget: f64,
    /// How to name it in a message.
    name: String,
}

struct Evaluated<'a> {
    steps: f64,
    shape: Shape<'a>,
    driver: Option<String>,
}

struct Walk<'a> {
    model: &'a CostModel<'a>,
    bound: Vec<(String, Shape<'a>)>,
}

impl CostModel<'_> {
    /// What a `when` sees: the input, and the stores as the call found
    /// them if the contract declares any.
    pub(crate) fn when_scope(&self) -> &'static [&'static str] {
        if self.stores.is_empty() {
            &["input"]
        } else {
            &["input", "before"]
        }
    }

    /// What an `ensures` sees: the input, the output, and the stores
    /// before and after the call if the contract declares any.
    pub(crate) fn ensures_scope(&self) -> &'static [&'static str] {
        if self.stores.is_empty() {
            &["input", "output"]
        } else {
            &["input", "output", "before", "after"]
        }
    }

    /// The most steps an expression that sees the names in `scope` may
    /// take.
    pub(crate) fn limit(&self, scope: &[&str]) -> f64 {
        let largest = if scope.iter().all(|name| *name == "input") {
            self.input_bytes
        } else {
            self.input_bytes.max(OUTPUT_BUDGET_BYTES)
        };
        STEPS_PER_BYTE * largest as f64
    }

    /// The worst case of `expr`.
    pub(crate) fn cost(&self, expr: &Expr) -> Cost {
        let mut walk = Walk {
            model: self,
            bound: Vec::new(),
        };
        let evaluated = walk.visit(expr.ast());
        Cost {
            steps: evaluated.steps,
            driver: evaluated.driver,
        }
    }

    fn unknown(&self, name: String) -> Shape<'static> {
        let budget = self.input_bytes.max(OUTPUT_BUDGET_BYTES) as f64;
        Shape {
            schema: None,
            size: budget,
            budget,
            name,
        }
    }
}

impl<'a> Walk<'a> {
    fn leaf(&self, steps: f64, size: f64, name: &str) -> Evaluated<'a> {
        Evaluated {
            steps,
            shape: Shape {
                name: name.to_string(),
                ..plain(size)
            },
            driver: None,
        }
    }

    fn visit(&mut self, expr: &IdedExpr) -> Evaluated<'a> {
        match &expr.expr {
            Node::Unspecified => self.leaf(1.0, 1.0, "a value"),
            Node::Literal(literal) => {
                let size = match literal {
                    LiteralValue::String(s) => s.inner().chars().count() as f64,
                    LiteralValue::Bytes(b) => b.inner().len() as f64,
                    _ => 1.0,
                };
                self.leaf(1.0, size, "a literal")
            }
            Node::Ident(name) => self.ident(name),
            Node::Select(select) if self.store_value(&select.operand).is_some() => {
                let shape = self
                    .store_value(&select.operand)
                    .unwrap_or_else(|| plain(1.0));
                Evaluated {
                    steps: 3.0,
                    shape,
                    driver: None,
                }
            }
            Node::Select(select) => {
                let operand = self.visit(&select.operand);
                let shape = child(&operand.shape, Some(&select.field));
                Evaluated {
                    steps: operand.steps + 1.0,
                    shape,
                    driver: operand.driver,
                }
            }
            Node::Call(call) => {
                let target = call.target.as_ref().map(|t| self.visit(t));
                let args: Vec<Evaluated<'a>> = call.args.iter().map(|a| self.visit(a)).collect();
                let inner: f64 = target.iter().chain(&args).map(|e| e.steps).sum();
                let driver = target.iter().chain(&args).find_map(|e| e.driver.clone());
                let sizes: Vec<f64> = target.iter().chain(&args).map(|e| e.shape.size).collect();
                let largest = sizes.iter().copied().fold(1.0, f64::max);
                let (work, shape) = match call.func_name.as_str() {
                    // Indexing: an element of the operand.
                    "_[_]" => {
                        let of = target.as_ref().or(args.first()).map(|e| &e.shape);
                        let indexed = call.target.as_deref().or(call.args.first());
                        let shape = match (indexed.and_then(|i| self.store_value(i)), of) {
                            (Some(value), _) => value,
                            (None, Some(shape)) => child(shape, None),
                            (None, None) => self.model.unknown("an element".into()),
                        };
                        (1.0, shape)
                    }
                    // Walk a list or a string once.
                    "@in" | "matches" | "contains" | "startsWith" | "endsWith" | "sum" | "min"
                    | "max" | "_==_" | "_!=_" => (largest, plain(1.0)),
                    // Concatenation copies both sides.
                    "_+_" => {
                        let total: f64 = sizes.iter().sum();
                        (total, plain(total))
                    }
                    _ => (1.0, plain(largest.min(1.0))),
                };
                Evaluated {
                    steps: inner + work,
                    shape: Shape {
                        name: call.func_name.clone(),
                        ..shape
                    },
                    driver,
                }
            }
            Node::List(list) => {
                let items: Vec<Evaluated<'a>> =
                    list.elements.iter().map(|e| self.visit(e)).collect();
                let steps = items.iter().map(|e| e.steps).sum::<f64>() + items.len() as f64;
                let driver = items.iter().find_map(|e| e.driver.clone());
                Evaluated {
                    steps,
                    shape: plain(items.len() as f64),
                    driver,
                }
            }
            Node::Map(map) => {
                let mut steps = 0.0;
                let mut driver = None;
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(pair) = &entry.expr {
                        for part in [&pair.key, &pair.value] {
                            let e = self.visit(part);
                            steps += e.steps + 1.0;
                            driver = driver.or(e.driver);
                        }
                    }
                }
                Evaluated {
                    steps,
                    shape: plain(map.entries.len() as f64),
                    driver,
                }
            }
            Node::Struct(st) => {
                let mut steps = 1.0;
                for entry in &st.entries {
                    if let EntryExpr::StructField(field) = &entry.expr {
                        steps += self.visit(&field.value).steps;
                    }
                }
                self.leaf(steps, 1.0, "a struct")
            }
            Node::Comprehension(c) => {
                let range = self.visit(&c.iter_range);
                let init = self.visit(&c.accu_init);
                let element = child(&range.shape, None);
                let iterations = range.shape.size.max(1.0);
                let depth = self.bound.len();
                self.bound.push((
                    c.accu_var.clone(),
                    Shape {
                        name: "the result so far".into(),
                        ..plain(iterations)
                    },
                ));
                self.bound.push((c.iter_var.clone(), element.clone()));
                if let Some(second) = &c.iter_var2 {
                    self.bound.push((second.clone(), element));
                }
                let condition = self.visit(&c.loop_cond);
                let step = self.visit(&c.loop_step);
                self.bound.truncate(depth + 1);
                let result = self.visit(&c.result);
                self.bound.truncate(depth);
                let body = condition.steps + step.steps;
                Evaluated {
                    steps: range.steps + init.steps + iterations * body + result.steps,
                    shape: Shape {
                        name: format!("a list built from {}", range.shape.name),
                        ..plain(iterations)
                    },
                    driver: range
                        .driver
                        .or(Some(range.shape.name.clone()))
                        .filter(|_| iterations * body > body),
                }
            }
        }
    }

    /// The shape of a value looked up in `operand`, when `operand` is a
    /// store (`before.NAME`, `after.NAME`): one read, of a value its schema
    /// describes, at most [`STORE_VALUE_BYTES`] long.
    fn store_value(&self, operand: &IdedExpr) -> Option<Shape<'a>> {
        let Node::Select(select) = &operand.expr else {
            return None;
        };
        let Node::Ident(state) = &select.operand.expr else {
            return None;
        };
        if !crate::stores::STATE_NAMES.contains(&state.as_str())
            || self.bound.iter().any(|(n, _)| n == state)
        {
            return None;
        }
        let (_, schema) = self
            .model
            .stores
            .iter()
            .find(|(name, _)| *name == select.field)?;
        Some(shape_of(
            schema,
            schema,
            STORE_VALUE_BYTES as f64,
            format!("a value of store `{}`", select.field),
        ))
    }

    fn ident(&self, name: &str) -> Evaluated<'a> {
        if let Some((_, shape)) = self.bound.iter().rev().find(|(n, _)| n == name) {
            return Evaluated {
                steps: 1.0,
                shape: shape.clone(),
                driver: None,
            };
        }
        let model = self.model;
        let document = match name {
            "input" => model.input.map(|s| (s, model.input_bytes)),
            "output" => model.output.map(|s| (s, OUTPUT_BUDGET_BYTES)),
            _ => None,
        };
        let shape = match document {
            Some((schema, bytes)) => shape_of(schema, schema, bytes as f64, name.to_string()),
            None => model.unknown(format!("`{name}`")),
        };
        Evaluated {
            steps: 1.0,
            shape,
            driver: None,
        }
    }
}

/// A value computed by the expression itself, of at most `size` elements.
fn plain(size: f64) -> Shape<'static> {
    Shape {
        schema: None,
        size,
        budget: size,
        name: "a computed value".into(),
    }
}

/// The shape of a value described by `schema` (within `root`) in a
/// document of at most `budget` bytes.
fn shape_of<'a>(schema: &'a Value, root: &'a Value, budget: f64, name: String) -> Shape<'a> {
    let schema = resolve(schema, root);
    let bound = |key: &str| {
        keyword(schema, root, key)
            .and_then(Value::as_u64)
            .map(|n| n as f64)
    };
    let kind = keyword(schema, root, "type").and_then(Value::as_str);
    let enumerated = keyword(schema, root, "enum")
        .and_then(Value::as_array)
        .map(|values| values.iter().collect::<Vec<_>>())
        .or_else(|| keyword(schema, root, "const").map(|v| vec![v]));
    let size = if let Some(values) = enumerated {
        // An enumerated value is no larger than the largest listed.
        values
            .iter()
            .map(|v| match v {
                Value::String(s) => s.chars().count() as f64,
                Value::Array(items) => items.len() as f64,
                Value::Object(members) => members.len() as f64,
                _ => 1.0,
            })
            .fold(1.0, f64::max)
    } else {
        match kind {
            Some("integer" | "number" | "boolean" | "null") => 1.0,
            // A JSON array takes at least two bytes per element (`0,`).
            Some("array") => bound("maxItems").unwrap_or(budget / 2.0),
            Some("string") => bound("maxLength").unwrap_or(budget),
            _ => bound("maxItems")
                .or_else(|| bound("maxLength"))
                .unwrap_or(budget),
        }
    };
    Shape {
        schema: Some((schema, root)),
        size: size.min(budget),
        budget,
        name,
    }
}

/// The shape of a field (`Some(name)`) or an element (`None`) of `parent`.
fn child<'a>(parent: &Shape<'a>, field: Option<&str>) -> Shape<'a> {
    let name = match field {
        Some(field) => format!("{}.{field}", parent.name),
        None => format!("an element of {}", parent.name),
    };
    let Some((schema, root)) = parent.schema else {
        return Shape {
            schema: None,
            size: parent.budget,
            budget: parent.budget,
            name,
        };
    };
    let sub = match field {
        Some(field) => keyword(schema, root, "properties")
            .and_then(|p| p.get(field))
            .or_else(|| keyword(schema, root, "additionalProperties").filter(|v| v.is_object())),
        None => keyword(schema, root, "items")
            .filter(|v| v.is_object())
            .or_else(|| keyword(schema, root, "additionalProperties").filter(|v| v.is_object())),
    };
    match sub {
        Some(sub) => shape_of(sub, root, parent.budget, name),
        None => Shape {
            schema: None,
            size: parent.budget,
            budget: parent.budget,
            name,
        },
    }
}

/// Follows `$ref`s (a few levels) to the schema that says something.
fn resolve<'a>(mut schema: &'a Value, root: &'a Value) -> &'a Value {
    for _ in 0..8 {
        match schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|pointer| root.pointer(pointer))
        {
            Some(target) => schema = target,
            None => break,
        }
    }
    schema
}

/// A keyword of `schema`, or of the first `allOf` branch that has it.
fn keyword<'a>(schema: &'a Value, root: &'a Value, key: &str) -> Option<&'a Value> {
    let schema = resolve(schema, root);
    schema.get(key).or_else(|| {
        schema
            .get("allOf")
            .and_then(Value::as_array)
            .and_then(|branches| branches.iter().find_map(|b| resolve(b, root).get(key)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limit(input_bytes: u64) -> f64 {
        CostModel {
            input: None,
            output: None,
            input_bytes,
            stores: Vec::new(),
        }
        .limit(&["input"])
    }

    fn cost(source: &str, input: &Value, input_bytes: u64) -> Cost {
        let expr = Expr::compile(source, &["input", "output"]).unwrap_or_else(|e| panic!("{e:?}"));
        let model = CostModel {
            input: Some(input),
            output: Some(&json!({"type": "integer"})),
            input_bytes,
            stores: Vec::new(),
        };
        model.cost(&expr)
    }

    fn items(max: Option<u64>) -> Value {
        let mut list = json!({"type": "array", "items": {"type": "object", "properties": {
            "tags": {"type": "array", "items": {"type": "string"}},
            "qty": {"type": "integer"}
        }}});
        if let Some(max) = max {
            list["maxItems"] = json!(max);
        }
        json!({"type": "object", "properties": {"items": list}})
    }

    #[test]
    fn simple_conditions_cost_a_handful_of_steps() {
        let input = json!({"type": "object", "properties": {
            "a": {"type": "integer"}, "b": {"type": "number"}, "s": {"type": "string", "maxLength": 8}
        }});
        let c = cost(
            "input.a + 1 == 2 && input.b < 3 && input.s == 'x'",
            &input,
            1 << 20,
        );
        assert!(c.steps < 40.0, "{c:?}");
    }

    #[test]
    fn one_pass_over_the_largest_input_is_allowed() {
        let c = cost("input.items.all(i, i.qty > 0)", &items(None), 1 << 20);
        assert!(c.steps > 1_000_000.0 && c.steps < limit(1 << 20), "{c:?}");
        assert_eq!(c.driver.as_deref(), Some("input.items"));
    }

    #[test]
    fn nested_iteration_over_unbounded_lists_explodes() {
        let nested = "input.items.all(i, input.items.exists(j, j.qty == i.qty))";
        let c = cost(nested, &items(None), 1 << 20);
        assert!(c.steps > limit(1 << 20), "{c:?}");
        // Bounded lists make the same expression cheap.
        let c = cost(nested, &items(Some(50)), 1 << 20);
        assert!(c.steps < 100_000.0, "{c:?}");
    }

    #[test]
    fn walking_strings_inside_an_iteration_counts_their_length() {
        let c = cost(
            "input.items.all(i, i.tags.exists(t, t.matches('^a+$')))",
            &items(Some(100)),
            1 << 20,
        );
        assert!(c.steps > limit(1 << 20), "{c:?}");
    }

    #[test]
    fn a_smaller_input_limit_bounds_what_schemas_leave_open() {
        let nested = "input.items.all(i, input.items.exists(j, j.qty == i.qty))";
        let c = cost(nested, &items(None), 100);
        assert!(c.steps < limit(100) * 100.0, "{c:?}");
        assert!(
            c.steps < cost(nested, &items(None), 1 << 20).steps / 1e6,
            "{c:?}"
        );
    }
}
