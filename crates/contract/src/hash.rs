//! The canonical hash of a contract: sha-256 over a canonical JSON form of
//! its meaning, so that formatting, comments, key order and spelled-out
//! defaults do not change it, while any change of meaning does.

use std::fmt;
use std::fmt::Write as _;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Prefix hashed before the canonical form, so a future change of the
/// canonical form can never collide with this one.
const DOMAIN: &str = "mote-contract/v1\n";

/// The sha-256 of a contract's canonical form.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContractHash([u8; 32]);

impl ContractHash {
    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, without the `sha256:` prefix.
    pub fn to_hex(&self) -> String {
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }
}

impl fmt::Display for ContractHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

impl fmt::Debug for ContractHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Hashes the canonical serialization of `meaning`.
pub(crate) fn hash(meaning: &Value) -> ContractHash {
    let mut text = String::from(DOMAIN);
    write_canonical(meaning, &mut text);
    ContractHash(Sha256::digest(text.as_bytes()).into())
}

/// The canonical text of a JSON value: compact, object keys sorted, integral
/// numbers written as integers. Equal meaning gives equal text, so it is
/// what hashes and signatures are computed over.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

/// Compact JSON with object keys sorted by code point and integral numbers
/// written as integers (`1.0` and `1` mean the same in a schema).
pub(crate) fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(members) => {
            let mut keys: Vec<&String> = members.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&members[key.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
                let _ = write!(out, "{}", f as i64);
            }
            _ => out.push_str(&n.to_string()),
        },
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_and_integral_floats_do_not_matter() {
        assert_eq!(
            hash(&json!({"a": 1, "b": [1, 2]})),
            hash(&json!({"b": [1, 2.0], "a": 1.0}))
        );
    }

    #[test]
    fn any_value_change_matters() {
        let base = hash(&json!({"a": 1, "b": [1, 2]}));
        assert_ne!(base, hash(&json!({"a": 1, "b": [2, 1]})));
        assert_ne!(base, hash(&json!({"a": "1", "b": [1, 2]})));
        assert_ne!(base, hash(&json!({"a": 1.5, "b": [1, 2]})));
    }
}
