//! Any bytes as a CEL expression and a JSON input: compiling and
//! evaluating never panic, whatever the expression or the value.
//! The input is split at the first NUL: expression, then JSON.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mote_contract::{Bindings, Expr};

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let (source, json) = text.split_once('\0').unwrap_or((&text, "{}"));
    let Ok(expr) = Expr::compile(source, &["input", "output"]) else {
        return;
    };
    let value: serde_json::Value = serde_json::from_str(json).unwrap_or(serde_json::Value::Null);
    let bindings = Bindings::new().with("input", &value).with("output", &value);
    let _ = expr.eval_bool(&bindings);
    let _ = expr.eval_json(&bindings);
    let _ = expr.literals();
});
