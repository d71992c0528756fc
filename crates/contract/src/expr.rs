//! CEL expressions: compiled once when the contract loads, checked for
//! variables out of scope and unknown functions, evaluated against JSON.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, LazyLock};

use cel::common::ast::{EntryExpr, Expr as Node, IdedExpr};
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::extractors::Arguments;
use cel::{Context, Env, ExecutionError, Program, Value};

use crate::stores::{StatesVal, StoreRead};

/// The functions mote adds to standard CEL: list aggregates.
pub const EXTENSION_FUNCTIONS: [&str; 3] = ["sum", "min", "max"];

/// Identifiers CEL resolves by itself: its type names.
const TYPE_IDENTIFIERS: [&str; 10] = [
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
];

static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// A compiled CEL expression and the text it was written as.
pub struct Expr {
    source: String,
    program: Program,
    free_variables: Vec<String>,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expr").field(&self.source).finish()
    }
}

/// A problem found while compiling an expression. Locations are ranges of
/// character (not byte) indices within the expression's own text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompileError {
    /// The text is not CEL.
    Syntax {
        /// The parser's description.
        message: String,
        /// Where the parser stopped.
        location: Option<Range<usize>>,
    },
    /// A name that is neither in scope nor a CEL type.
    UnknownVariable {
        /// The name used.
        name: String,
        /// Where it is used.
        location: Option<Range<usize>>,
    },
    /// A function that neither CEL nor mote provides.
    UnknownFunction {
        /// The name called.
        name: String,
        /// Where it is called.
        location: Option<Range<usize>>,
    },
    /// A store used other than by key, or one the contract does not
    /// declare.
    StoreRead {
        /// What is wrong and how to read it instead.
        message: String,
        /// Where the store is used.
        location: Option<Range<usize>>,
    },
}

impl CompileError {
    /// Where in the expression the problem is, in characters.
    pub fn location(&self) -> Option<Range<usize>> {
        match self {
            CompileError::Syntax { location, .. }
            | CompileError::UnknownVariable { location, .. }
            | CompileError::UnknownFunction { location, .. }
            | CompileError::StoreRead { location, .. } => location.clone(),
        }
    }
}

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// CEL failed: a missing field, a type mismatch, an overflow, ...
    #[error("{0}")]
    Execution(String),
    /// A condition gave something other than true or false.
    #[error("expected true or false, got {0}")]
    NotBool(String),
    /// A value-building expression gave something JSON cannot hold.
    #[error("the result cannot be written as JSON: {0}")]
    NotJson(String),
}

impl Expr {
    /// Compiles `source` for a place where exactly the names in `scope` are
    /// defined. Reports every unknown name and function, not just the first.
    pub fn compile(source: &str, scope: &[&str]) -> Result<Expr, Vec<CompileError>> {
        let program = ENV.compile(source).map_err(|errors| {
            errors
                .errors
                .iter()
                .map(|e| CompileError::Syntax {
                    message: e.msg.clone(),
                    location: line_column_to_chars(source, e.pos),
                })
                .collect::<Vec<_>>()
        })?;
        let mut walk = ScopeWalk {
            source,
            program: &program,
            bound: Vec::new(),
            scope,
            free: Vec::new(),
            errors: Vec::new(),
        };
        walk.visit(program.expression());
        if !walk.errors.is_empty() {
            return Err(walk.errors);
        }
        let free_variables = walk.free;
        Ok(Expr {
            source: source.to_string(),
            program,
            free_variables,
        })
    }

    /// The expression as written in the contract.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The expression's syntax tree, for static analyses.
    pub(crate) fn ast(&self) -> &IdedExpr {
        self.program.expression()
    }

    /// Where a node of [`Expr::ast`] is, in characters of the source.
    pub(crate) fn location_of(&self, node: &IdedExpr) -> Option<Range<usize>> {
        let (start, stop) = self.program.source_info().offset_for(node.id)?;
        Some(start as usize..stop as usize + 1)
    }

    /// The names from the scope that the expression actually uses.
    pub fn free_variables(&self) -> &[String] {
        &self.free_variables
    }

    /// The string and number literals written in the expression, e.g.
    /// `'VIP20'` and `5000` in `input.code == 'VIP20' && input.n < 5000`.
    /// A test generator uses them: they mark where behaviour changes.
    pub fn literals(&self) -> Vec<serde_json::Value> {
        let mut found = Vec::new();
        collect_literals(self.program.expression(), &mut found);
        found
    }

    /// Evaluates a condition; anything but a boolean result is an error.
    pub fn eval_bool(&self, bindings: &Bindings) -> Result<bool, EvalError> {
        match self.eval(bindings)? {
            Value::Bool(b) => Ok(b),
            other => Err(EvalError::NotBool(display(&other))),
        }
    }

    /// Evaluates an expression that builds a value, as JSON.
    pub fn eval_json(&self, bindings: &Bindings) -> Result<serde_json::Value, EvalError> {
        let value = self.eval(bindings)?;
        value.json().map_err(|e| EvalError::NotJson(e.to_string()))
    }

    fn eval(&self, bindings: &Bindings) -> Result<Value, EvalError> {
        BASE_CONTEXT.with(|base| {
            let mut context = base.new_inner_scope();
            context.set_variable_resolver(bindings);
            self.program
                .execute(&context)
                .map_err(|e| EvalError::Execution(describe(&e)))
        })
    }
}

thread_local! {
    /// The standard environment plus mote's functions, built once per
    /// thread; each evaluation adds its variables in a child scope.
    static BASE_CONTEXT: Context<'static, 'static> = {
        let mut context = Context::with_env(Arc::clone(&ENV));
        register_extensions(&mut context);
        context
    };
}

fn collect_literals(expr: &IdedExpr, found: &mut Vec<serde_json::Value>) {
    use cel::common::ast::LiteralValue;
    let mut visit = |e: &IdedExpr| collect_literals(e, found);
    match &expr.expr {
        Node::Literal(literal) => {
            let value = match literal {
                LiteralValue::String(s) => serde_json::Value::from(s.inner()),
                LiteralValue::Int(i) => serde_json::Value::from(*i.inner()),
                LiteralValue::UInt(u) => serde_json::Value::from(*u.inner()),
                LiteralValue::Double(d) => serde_json::Number::from_f64(*d.inner())
                    .map_or(serde_json::Value::Null, serde_json::Value::Number),
                _ => return,
            };
            found.push(value);
        }
        Node::Unspecified | Node::Ident(_) => {}
        Node::Select(select) => visit(&select.operand),
        Node::Call(call) => {
            if let Some(target) = &call.target {
                visit(target);
            }
            call.args.iter().for_each(visit);
        }
        Node::List(list) => list.elements.iter().for_each(visit),
        Node::Map(map) => map.entries.iter().for_each(|e| visit_entry(&e.expr, found)),
        Node::Struct(st) => st.entries.iter().for_each(|e| visit_entry(&e.expr, found)),
        Node::Comprehension(c) => {
            for part in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                visit(part);
            }
        }
    }
}

fn visit_entry(entry: &EntryExpr, found: &mut Vec<serde_json::Value>) {
    match entry {
        EntryExpr::StructField(field) => collect_literals(&field.value, found),
        EntryExpr::MapEntry(pair) => {
            collect_literals(&pair.key, found);
            collect_literals(&pair.value, found);
        }
    }
}

/// The variables an expression is evaluated with, converted from JSON once
/// so that every expression evaluated with them reads them in place.
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    values: Vec<(String, Arc<dyn Val>)>,
}

impl Bindings {
    /// No variables.
    pub fn new() -> Self {
        Bindings::default()
    }

    /// Binds `name` to a JSON value, replacing any earlier binding.
    pub fn bind(&mut self, name: &str, value: &serde_json::Value) -> &mut Self {
        let value: Arc<dyn Val> = Arc::from(to_cel(value));
        match self.values.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.values.push((name.to_string(), value)),
        }
        self
    }

    /// Binds `name` (`before` or `after`) to stores read through
    /// `reader`, a key at a time, as the expression looks keys up.
    pub fn bind_stores(&mut self, name: &str, reader: Arc<dyn StoreRead>) -> &mut Self {
        let value: Arc<dyn Val> = Arc::new(StatesVal { reader });
        match self.values.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.values.push((name.to_string(), value)),
        }
        self
    }

    /// A copy with one more binding.
    pub fn with(mut self, name: &str, value: &serde_json::Value) -> Self {
        self.bind(name, value);
        self
    }
}

/// Evaluation looks variables up here, borrowing them: nothing is copied
/// per expression.
impl VariableResolver for Bindings {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        self.values
            .iter()
            .find(|(name, _)| name == variable)
            .map(|(_, value)| CowVal::Borrowed(value.as_ref()))
    }
}

/// Converts JSON to CEL: integers become `int` when they fit, so contract
/// arithmetic such as `input.n * 2` works without `uint` casts.
pub(crate) fn to_cel(value: &serde_json::Value) -> Box<dyn Val> {
    use serde_json::Value as J;
    match value {
        J::Null => Box::new(CelNull),
        J::Bool(b) => Box::new(CelBool::from(*b)),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                Box::new(CelInt::from(i))
            } else if let Some(u) = n.as_u64() {
                Box::new(CelUInt::from(u))
            } else {
                Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        J::String(s) => Box::new(CelString::from(s.clone())),
        J::Array(items) => Box::new(CelList::from(items.iter().map(to_cel).collect::<Vec<_>>())),
        J::Object(members) => Box::new(CelMap::from(
            members
                .iter()
                .map(|(k, v)| (CelMapKey::from(k.clone()), to_cel(v)))
                .collect::<HashMap<_, _>>(),
        )),
    }
}

fn display(value: &Value) -> String {
    match value.json() {
        Ok(json) => json.to_string(),
        Err(_) => format!("{value:?}"),
    }
}

fn describe(error: &ExecutionError) -> String {
    match error {
        ExecutionError::NoSuchKey(key) => format!("no field `{key}`"),
        other => other.to_string(),
    }
}

/// Turns the parser's 1-based (line, column) into a one-character range.
fn line_column_to_chars(source: &str, (line, column): (isize, isize)) -> Option<Range<usize>> {
    let line = usize::try_from(line).ok().filter(|l| *l > 0)?;
    let column = usize::try_from(column).ok().filter(|c| *c > 0)?;
    let before: usize = source
        .split_inclusive('\n')
        .take(line - 1)
        .map(|l| l.chars().count())
        .sum();
    let start = before + column - 1;
    Some(start..start + 1)
}

fn register_extensions(context: &mut Context<'_, '_>) {
    // The names are not standard CEL functions, so registering cannot clash.
    let _ = context.add_function("sum", sum);
    let _ = context.add_function("min", cel::functions::min);
    let _ = context.add_function("max", cel::functions::max);
}

/// `sum(list)`: the sum of a list of numbers; `int` unless a `double` is in
/// it; 0 for the empty list; an error on overflow or a non-number.
fn sum(Arguments(args): Arguments) -> Result<Value, ExecutionError> {
    let [Value::List(items)] = args.as_slice() else {
        return Err(ExecutionError::function_error(
            "sum",
            "expects one argument, a list of numbers",
        ));
    };
    let mut int_total: i64 = 0;
    let mut float_total: Option<f64> = None;
    for item in items.iter() {
        match item {
            Value::Int(i) => {
                int_total = int_total
                    .checked_add(*i)
                    .ok_or_else(|| ExecutionError::function_error("sum", "integer overflow"))?;
            }
            Value::UInt(u) => {
                let i = i64::try_from(*u)
                    .map_err(|_| ExecutionError::function_error("sum", "integer overflow"))?;
                int_total = int_total
                    .checked_add(i)
                    .ok_or_else(|| ExecutionError::function_error("sum", "integer overflow"))?;
            }
            Value::Float(f) => *float_total.get_or_insert(0.0) += f,
            other => {
                return Err(ExecutionError::function_error(
                    "sum",
                    format!("cannot add {}", display(other)),
                ));
            }
        }
    }
    Ok(match float_total {
        // Precision loss above 2^53 is inherent to mixing ints and doubles.
        Some(f) => Value::Float(f + int_total as f64),
        None => Value::Int(int_total),
    })
}

/// Whether the standard CEL environment defines a function by this name.
/// The environment does not list its overloads, but declaring a function
/// under a taken name is refused, which tells us the name is taken.
fn is_standard_function(name: &str) -> bool {
    let mut probe = Context::with_env(Arc::clone(&ENV));
    probe.add_function(name, || 0_i64).is_err()
}

/// Operators appear in the AST as calls with reserved names: `_+_`,
/// `!_`, `-_`, `@in`, `@not_strictly_false`, ...
fn is_operator(name: &str) -> bool {
    name.starts_with('_') || name.starts_with('@') || name.ends_with('_')
}

struct ScopeWalk<'a> {
    source: &'a str,
    program: &'a Program,
    bound: Vec<String>,
    scope: &'a [&'a str],
    free: Vec<String>,
    errors: Vec<CompileError>,
}

impl ScopeWalk<'_> {
    /// The node's characters; the parser records inclusive bounds.
    fn location(&self, expr: &IdedExpr) -> Option<Range<usize>> {
        let (start, stop) = self.program.source_info().offset_for(expr.id)?;
        Some(start as usize..stop as usize + 1)
    }

    /// A call node is located at its `(`; widen that to the function's
    /// name when the name is written right before it.
    fn name_before(&self, location: Option<Range<usize>>, name: &str) -> Option<Range<usize>> {
        let at = location?;
        let before: String = self.source.chars().take(at.start).collect();
        if before.ends_with(name) {
            let start = at.start - name.chars().count();
            Some(start..at.start)
        } else {
            Some(at)
        }
    }

    fn visit(&mut self, expr: &IdedExpr) {
        match &expr.expr {
            Node::Unspecified | Node::Literal(_) => {}
            Node::Ident(name) => self.ident(expr, name),
            Node::Select(select) => self.visit(&select.operand),
            Node::Call(call) => {
                if !is_operator(&call.func_name)
                    && !EXTENSION_FUNCTIONS.contains(&call.func_name.as_str())
                    && !is_standard_function(&call.func_name)
                {
                    self.errors.push(CompileError::UnknownFunction {
                        name: call.func_name.clone(),
                        location: self.name_before(self.location(expr), &call.func_name),
                    });
                }
                if let Some(target) = &call.target {
                    self.visit(target);
                }
                for arg in &call.args {
                    self.visit(arg);
                }
            }
            Node::List(list) => list.elements.iter().for_each(|e| self.visit(e)),
            Node::Map(map) => map.entries.iter().for_each(|e| self.entry(&e.expr)),
            Node::Struct(st) => st.entries.iter().for_each(|e| self.entry(&e.expr)),
            Node::Comprehension(c) => {
                self.visit(&c.iter_range);
                self.visit(&c.accu_init);
                let depth = self.bound.len();
                self.bound.push(c.accu_var.clone());
                self.visit(&c.result);
                self.bound.push(c.iter_var.clone());
                if let Some(second) = &c.iter_var2 {
                    self.bound.push(second.clone());
                }
                self.visit(&c.loop_cond);
                self.visit(&c.loop_step);
                self.bound.truncate(depth);
            }
        }
    }

    fn entry(&mut self, entry: &EntryExpr) {
        match entry {
            EntryExpr::StructField(field) => self.visit(&field.value),
            EntryExpr::MapEntry(pair) => {
                self.visit(&pair.key);
                self.visit(&pair.value);
            }
        }
    }

    fn ident(&mut self, expr: &IdedExpr, name: &str) {
        if self.bound.iter().any(|b| b == name) || TYPE_IDENTIFIERS.contains(&name) {
            return;
        }
        if self.scope.contains(&name) {
            if !self.free.iter().any(|f| f == name) {
                self.free.push(name.to_string());
            }
            return;
        }
        self.errors.push(CompileError::UnknownVariable {
            name: name.to_string(),
            location: self.location(expr),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(source: &str, input: serde_json::Value) -> Result<bool, EvalError> {
        let expr = Expr::compile(source, &["input"])
            .map_err(|e| EvalError::Execution(format!("{e:?}")))?;
        expr.eval_bool(&Bindings::new().with("input", &input))
    }

    #[test]
    fn json_integers_are_cel_ints() {
        assert_eq!(eval("input.n * 2 == 10", json!({"n": 5})), Ok(true));
        assert_eq!(eval("input.n - 10 < 0", json!({"n": 5})), Ok(true));
    }

    #[test]
    fn aggregates_work_on_lists() {
        let items = json!({"xs": [3, 1, 2]});
        assert_eq!(eval("sum(input.xs) == 6", items.clone()), Ok(true));
        assert_eq!(eval("min(input.xs) == 1", items.clone()), Ok(true));
        assert_eq!(eval("max(input.xs) == 3", items.clone()), Ok(true));
        assert_eq!(eval("sum([]) == 0", items.clone()), Ok(true));
        assert_eq!(eval("sum([1.5, 1]) == 2.5", items), Ok(true));
        assert!(eval("sum(['a'])", json!({})).is_err());
        assert!(eval("sum([9223372036854775807, 1]) > 0", json!({})).is_err());
    }

    #[test]
    fn macros_bind_their_own_variables() {
        let input = json!({"items": [{"qty": 1}, {"qty": 2}]});
        assert_eq!(
            eval("input.items.all(i, i.qty > 0)", input.clone()),
            Ok(true)
        );
        assert_eq!(
            eval("sum(input.items.map(i, i.qty)) == 3", input.clone()),
            Ok(true)
        );
        assert_eq!(eval("input.items.exists(i, i.qty == 2)", input), Ok(true));
    }

    #[test]
    fn out_of_scope_names_are_reported_with_positions() {
        let errors = Expr::compile("input.a == output.b && y", &["input"]).unwrap_err();
        let names: Vec<_> = errors
            .iter()
            .filter_map(|e| match e {
                CompileError::UnknownVariable { name, location } => {
                    Some((name.clone(), location.clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(names.len(), 2);
        assert_eq!(names[0].0, "output");
        assert_eq!(names[0].1, Some(11..17));
        assert_eq!(names[1].0, "y");
    }

    #[test]
    fn macro_variables_do_not_leak() {
        assert!(Expr::compile("input.xs.all(x, x > 0) && x > 0", &["input"]).is_err());
    }

    #[test]
    fn unknown_functions_are_reported_known_ones_are_not() {
        let errors = Expr::compile("1 < summ(input.xs)", &["input"]).unwrap_err();
        assert_eq!(errors[0].location(), Some(4..8));
        for ok in [
            "size(input.s) > 0",
            "input.s.startsWith('a') || input.s.endsWith('b') || input.s.contains('c')",
            "input.s.matches('^a+$')",
            "int(input.f) == 1 && string(input.n) == '1' && double(input.n) > 0.0",
            "type(input.n) == int",
            "has(input.opt)",
            "1 in [1] && input.n % 2 == 0 ? true : false",
        ] {
            assert!(Expr::compile(ok, &["input"]).is_ok(), "{ok}");
        }
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let errors = Expr::compile("input.a +", &["input"]).unwrap_err();
        assert_eq!(errors[0].location(), Some(9..10));
    }

    #[test]
    fn literals_are_listed() {
        let expr = Expr::compile(
            "input.code == 'VIP20' && input.n < 5000 && {'MUG-001': 1299}[input.sku] > 1.5",
            &["input"],
        )
        .unwrap();
        let literals = expr.literals();
        for want in [
            json!("VIP20"),
            json!(5000),
            json!("MUG-001"),
            json!(1299),
            json!(1.5),
        ] {
            assert!(literals.contains(&want), "{want} missing from {literals:?}");
        }
    }

    #[test]
    fn non_boolean_conditions_are_errors() {
        assert!(matches!(
            eval("input.n", json!({"n": 1})),
            Err(EvalError::NotBool(_))
        ));
    }

    #[test]
    fn value_expressions_build_json() {
        let expr =
            Expr::compile("{'total': input.a + input.b, 'tags': ['x']}", &["input"]).unwrap();
        let out = expr
            .eval_json(&Bindings::new().with("input", &json!({"a": 1, "b": 2})))
            .unwrap();
        assert_eq!(out, json!({"total": 3, "tags": ["x"]}));
    }
}
