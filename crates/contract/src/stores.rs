//! Stores in conditions: `before.NAME[key]` and `after.NAME[key]`.
//!
//! A store is a map of unbounded size, so a condition never holds one
//! whole. `before` and `after` are lazy maps that read one key when the
//! expression asks for it, through a [`StoreRead`] the caller provides (a
//! call's transaction, or an example's listed contents). The check below
//! keeps every use of a store to what a lookup can answer: `S[key]`,
//! `S.key`, `has(S.key)` and `key in S`. A comprehension over a store, its
//! `size()` or comparing it whole is refused when the contract loads.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use cel::ExecutionError;
use cel::common::ast::{EntryExpr, Expr as Node, IdedExpr};
use cel::common::traits::{Container, Indexer};
use cel::common::types::{self, CelString, Type};
use cel::common::value::{CowVal, StaticVal, Val};

use crate::expr::{CompileError, Expr, to_cel};

/// The names conditions use for the stores as the call found them and as
/// it leaves them.
pub const STATE_NAMES: [&str; 2] = ["before", "after"];

/// Reads one key of one store, for a condition that looks it up.
pub trait StoreRead: Send + Sync + fmt::Debug {
    /// The value at `key` in `store`, or `None` if the key is absent. An
    /// `Err` is a failure to read (the backend is unreachable), not an
    /// absent key; the evaluation fails with it.
    fn read(&self, store: &str, key: &str) -> Result<Option<serde_json::Value>, String>;
}

/// Stores held whole in memory, by store then key: the contents an
/// example lists, or a verifier's generated state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryStores {
    /// Each store's entries.
    pub stores: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
}

impl StoreRead for MemoryStores {
    fn read(&self, store: &str, key: &str) -> Result<Option<serde_json::Value>, String> {
        Ok(self.stores.get(store).and_then(|s| s.get(key)).cloned())
    }
}

/// `before` or `after`: a map from store name to a lazy store.
#[derive(Debug, Clone)]
pub(crate) struct StatesVal {
    pub(crate) reader: Arc<dyn StoreRead>,
}

/// One store of `before` or `after`, read a key at a time.
#[derive(Debug, Clone)]
struct StoreVal {
    store: String,
    reader: Arc<dyn StoreRead>,
}

fn key_of(index: &dyn Val) -> Result<&str, ExecutionError> {
    index
        .downcast_ref::<CelString>()
        .map(CelString::inner)
        .ok_or_else(|| ExecutionError::UnexpectedType {
            got: index.get_type().name().to_string(),
            want: "string".to_string(),
        })
}

impl Indexer for StatesVal {
    fn get<'b, 'v>(&'b self, index: &dyn Val) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        let store = key_of(index)?;
        Ok(CowVal::Owned(Box::new(StoreVal {
            store: store.to_string(),
            reader: Arc::clone(&self.reader),
        })))
    }

    fn steal<'v>(self: Box<Self>, index: &dyn Val) -> Result<Box<dyn Val + 'v>, ExecutionError>
    where
        Self: 'v,
    {
        self.get(index).map(CowVal::into_owned)
    }
}

impl StoreVal {
    fn lookup(&self, index: &dyn Val) -> Result<Option<serde_json::Value>, ExecutionError> {
        let key = key_of(index)?;
        self.reader
            .read(&self.store, key)
            .map_err(|why| ExecutionError::function_error(&format!("store `{}`", self.store), why))
    }
}

impl Indexer for StoreVal {
    fn get<'b, 'v>(&'b self, index: &dyn Val) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        match self.lookup(index)? {
            Some(value) => Ok(CowVal::Owned(to_cel(&value))),
            None => Err(ExecutionError::no_such_key(key_of(index)?)),
        }
    }

    fn steal<'v>(self: Box<Self>, index: &dyn Val) -> Result<Box<dyn Val + 'v>, ExecutionError>
    where
        Self: 'v,
    {
        self.get(index).map(CowVal::into_owned)
    }
}

impl Container for StoreVal {
    fn contains(&self, value: &dyn Val) -> Result<bool, ExecutionError> {
        self.lookup(value).map(|found| found.is_some())
    }
}

/// The parts of `Val` both lazy maps share; `$container` says whether
/// `key in value` is answered (for a store) or an error (for `before`).
macro_rules! lazy_map_val {
    ($ty:ty, $container:literal) => {
        impl Val for $ty {
            fn get_type(&self) -> &Type {
                <Self as Val>::cel_type()
            }
            fn cel_type() -> &'static Type {
                &types::MAP_TYPE
            }
            fn as_indexer<'b, 'v>(&'b self) -> Option<&'b (dyn Indexer + 'v)>
            where
                Self: 'v,
            {
                Some(self)
            }
            fn as_container(&self) -> Option<&dyn Container> {
                if $container { Some(self) } else { None }
            }
            fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v> {
                Box::new(self.clone())
            }
            fn as_any(&self) -> Option<&dyn Any> {
                Some(self)
            }
        }
        impl StaticVal for $ty {}
    };
}

impl Container for StatesVal {
    fn contains(&self, _value: &dyn Val) -> Result<bool, ExecutionError> {
        Err(ExecutionError::function_error(
            "in",
            "stores are read one at a time",
        ))
    }
}

lazy_map_val!(StatesVal, false);
lazy_map_val!(StoreVal, true);

/// Checks that an expression reads stores only by key, and only stores
/// the contract declares. `stores` are the declared names.
pub(crate) fn check_reads(expr: &Expr, stores: &[&str]) -> Vec<CompileError> {
    let mut walk = ReadWalk {
        expr,
        stores,
        bound: Vec::new(),
        errors: Vec::new(),
    };
    walk.visit(expr.ast(), Use::Other);
    walk.errors
}

/// How the parent uses a node.
#[derive(Clone, Copy, PartialEq)]
enum Use {
    /// Indexed (`n[k]`), selected from (`n.k`), or searched (`k in n`).
    Lookup,
    /// Anything else.
    Other,
}

struct ReadWalk<'a> {
    expr: &'a Expr,
    stores: &'a [&'a str],
    bound: Vec<String>,
    errors: Vec<CompileError>,
}

impl ReadWalk<'_> {
    fn is_state(&self, expr: &IdedExpr) -> Option<&'static str> {
        match &expr.expr {
            Node::Ident(name) if !self.bound.iter().any(|b| b == name) => {
                STATE_NAMES.into_iter().find(|s| s == name)
            }
            _ => None,
        }
    }

    fn refuse(&mut self, expr: &IdedExpr, message: String) {
        self.errors.push(CompileError::StoreRead {
            message,
            location: self.location(expr),
        });
    }

    /// `before.NAME` from the `b` to the end of the name: the parser
    /// places a selection at its dot.
    fn refuse_store(
        &mut self,
        select: &IdedExpr,
        operand: &IdedExpr,
        field: &str,
        message: String,
    ) {
        let location = match (self.location(operand), self.location(select)) {
            (Some(start), Some(dot)) => Some(start.start..dot.end + field.chars().count()),
            (_, dot) => dot,
        };
        self.errors
            .push(CompileError::StoreRead { message, location });
    }

    fn location(&self, expr: &IdedExpr) -> Option<Range<usize>> {
        self.expr.location_of(expr)
    }

    fn visit(&mut self, expr: &IdedExpr, usage: Use) {
        if let Some(state) = self.is_state(expr) {
            self.refuse(
                expr,
                format!("`{state}` is read one store at a time: `{state}.NAME[key]`"),
            );
            return;
        }
        match &expr.expr {
            Node::Unspecified | Node::Literal(_) | Node::Ident(_) => {}
            Node::Select(select) => {
                if let Some(state) = self.is_state(&select.operand) {
                    let store = select.field.as_str();
                    if !self.stores.contains(&store) {
                        let declared = if self.stores.is_empty() {
                            "none".to_string()
                        } else {
                            self.stores.join(", ")
                        };
                        self.refuse_store(
                            expr,
                            &select.operand,
                            store,
                            format!("`{state}.{store}`: the contract declares no store `{store}` (declared: {declared})"),
                        );
                    } else if usage != Use::Lookup || select.test {
                        self.refuse_store(
                            expr,
                            &select.operand,
                            store,
                            format!("`{state}.{store}` is a store of unbounded size: read it by key, `{state}.{store}[key]` or `key in {state}.{store}`"),
                        );
                    }
                    return;
                }
                self.visit(&select.operand, Use::Lookup);
            }
            Node::Call(call) => {
                let lookup_target = match call.func_name.as_str() {
                    "_[_]" | "_[?_]" => Some(0),
                    "@in" => Some(1),
                    _ => None,
                };
                let mut parts: Vec<&IdedExpr> = Vec::new();
                if let Some(target) = &call.target {
                    parts.push(target);
                }
                parts.extend(call.args.iter());
                for (i, part) in parts.into_iter().enumerate() {
                    let usage = if lookup_target == Some(i) {
                        Use::Lookup
                    } else {
                        Use::Other
                    };
                    self.visit(part, usage);
                }
            }
            Node::List(list) => list.elements.iter().for_each(|e| self.visit(e, Use::Other)),
            Node::Map(map) => map.entries.iter().for_each(|e| self.entry(&e.expr)),
            Node::Struct(st) => st.entries.iter().for_each(|e| self.entry(&e.expr)),
            Node::Comprehension(c) => {
                self.visit(&c.iter_range, Use::Other);
                self.visit(&c.accu_init, Use::Other);
                let depth = self.bound.len();
                self.bound.push(c.accu_var.clone());
                self.visit(&c.result, Use::Other);
                self.bound.push(c.iter_var.clone());
                if let Some(second) = &c.iter_var2 {
                    self.bound.push(second.clone());
                }
                self.visit(&c.loop_cond, Use::Other);
                self.visit(&c.loop_step, Use::Other);
                self.bound.truncate(depth);
            }
        }
    }

    fn entry(&mut self, entry: &EntryExpr) {
        match entry {
            EntryExpr::StructField(field) => self.visit(&field.value, Use::Other),
            EntryExpr::MapEntry(pair) => {
                self.visit(&pair.key, Use::Other);
                self.visit(&pair.value, Use::Other);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Bindings;
    use serde_json::json;

    const SCOPE: [&str; 4] = ["input", "output", "before", "after"];

    fn stock() -> Arc<dyn StoreRead> {
        let mut stores = MemoryStores::default();
        stores.stores.insert(
            "stock".into(),
            BTreeMap::from([("MUG-001".to_string(), json!(5))]),
        );
        Arc::new(stores)
    }

    fn eval(source: &str) -> Result<bool, String> {
        let expr = Expr::compile(source, &SCOPE).map_err(|e| format!("{e:?}"))?;
        let reader = stock();
        let mut bindings = Bindings::new();
        bindings
            .bind(
                "input",
                &json!({"sku": "MUG-001", "missing": "CUP-002", "qty": 2}),
            )
            .bind_stores("before", Arc::clone(&reader))
            .bind_stores("after", reader);
        expr.eval_bool(&bindings).map_err(|e| e.to_string())
    }

    fn refusals(source: &str) -> Vec<String> {
        let expr = Expr::compile(source, &SCOPE).unwrap_or_else(|e| panic!("{e:?}"));
        check_reads(&expr, &["stock"])
            .into_iter()
            .map(|e| match e {
                CompileError::StoreRead { message, .. } => message,
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn stores_are_read_by_key() {
        assert_eq!(eval("before.stock[input.sku] == 5"), Ok(true));
        assert_eq!(eval("input.sku in before.stock"), Ok(true));
        assert_eq!(eval("input.missing in after.stock"), Ok(false));
        assert_eq!(
            eval("!(input.missing in before.stock) || before.stock[input.missing] < input.qty"),
            Ok(true)
        );
        assert!(eval("before.stock[input.missing] == 0").is_err());
        assert_eq!(
            eval("[input.sku].all(k, before.stock[k] > input.qty)"),
            Ok(true)
        );
    }

    #[test]
    fn lookups_pass_the_check_and_whole_stores_do_not() {
        for ok in [
            "before.stock[input.sku] >= 0",
            "input.sku in before.stock && has(after.stock.x) == false",
            "input.items.all(i, before.stock[i.sku] >= i.qty)",
        ] {
            assert_eq!(refusals(ok), Vec::<String>::new(), "{ok}");
        }
        for (bad, says) in [
            ("size(before.stock) > 0", "unbounded size"),
            ("before.stock.all(k, k != '')", "unbounded size"),
            ("before.stock == after.stock", "unbounded size"),
            ("before.stokc[input.sku] > 0", "no store `stokc`"),
            ("before == after", "one store at a time"),
        ] {
            let found = refusals(bad);
            assert!(found.iter().any(|m| m.contains(says)), "{bad}: {found:?}");
        }
    }
}
