//! The stores a stateful service's case starts from.
//!
//! Each generated input gets its own starting contents, drawn from the
//! stores' key and value schemas and fixed by the input and the run's
//! seed, so that calling the same input again (to confirm a failure, to
//! check determinism, while shrinking) starts from the same stores. Keys
//! are drawn so that the input's own keys both hit and miss: every string
//! of the input that is a valid key is present three times in four, next
//! to up to two keys of the store's own.

use proptest::prelude::Rng;
use proptest::strategy::{BoxedStrategy, Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::Value;
use sha2::{Digest, Sha256};

use mote_contract::{Contract, MemoryStores};

use crate::generate::{self, Hints};

/// Draws starting stores for the inputs of one contract.
pub struct StoreDraw {
    seed: u64,
    stores: Vec<DrawnStore>,
}

struct DrawnStore {
    name: String,
    key: mote_contract::Schema,
    keys: BoxedStrategy<Value>,
    values: BoxedStrategy<Value>,
}

/// The most keys of a store's own drawn beside the input's.
const OWN_KEYS: u64 = 2;

impl StoreDraw {
    /// The draw for `contract`'s stores, fixed by `seed`; `None` for a
    /// contract without stores.
    pub fn new(contract: &Contract, seed: u64) -> Option<StoreDraw> {
        if contract.stores.is_empty() {
            return None;
        }
        let hints = Hints::from_contract(contract);
        let stores = contract
            .stores
            .iter()
            .filter_map(|store| {
                Some(DrawnStore {
                    name: store.name.clone(),
                    key: mote_contract::Schema::from_json(store.key.json().clone()).ok()?,
                    keys: generate::values_with(&store.key, &hints),
                    values: generate::values_with(&store.value, &hints),
                })
            })
            .collect();
        Some(StoreDraw { seed, stores })
    }

    /// The stores the call of `input` starts from.
    pub fn before(&self, input: &Value) -> MemoryStores {
        let digest = Sha256::new()
            .chain_update(self.seed.to_le_bytes())
            .chain_update(input.to_string().as_bytes())
            .finalize();
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        let mut runner = generate::runner(u64::from_le_bytes(bytes));
        let mut strings = Vec::new();
        strings_in(input, &mut strings);
        let mut contents = MemoryStores::default();
        for store in &self.stores {
            let mut entries = std::collections::BTreeMap::new();
            for key in &strings {
                let hit = !runner.rng().next_u32().is_multiple_of(4);
                if hit
                    && store.key.is_valid(&Value::from(key.as_str()))
                    && let Some(value) = draw(&mut runner, &store.values)
                {
                    entries.insert(key.clone(), value);
                }
            }
            let own = u64::from(runner.rng().next_u32()) % (OWN_KEYS + 1);
            for _ in 0..own {
                if let (Some(Value::String(key)), Some(value)) = (
                    draw(&mut runner, &store.keys),
                    draw(&mut runner, &store.values),
                ) {
                    entries.entry(key).or_insert(value);
                }
            }
            if !entries.is_empty() {
                contents.stores.insert(store.name.clone(), entries);
            }
        }
        contents
    }
}

/// One value of `strategy`, if it can make one.
fn draw(runner: &mut TestRunner, strategy: &BoxedStrategy<Value>) -> Option<Value> {
    strategy.new_tree(runner).ok().map(|tree| tree.current())
}

fn strings_in(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if !out.contains(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings_in(v, out)),
        Value::Object(members) => members.values().for_each(|v| strings_in(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contract() -> Contract {
        let text = r#"
[service]
name = "inventory.reserve"
version = "1.0.0"
summary = "s"
[input]
type = "object"
required = ["sku"]
properties.sku = { type = "string", pattern = "^[A-Z]{3}-[0-9]{3}$" }
[output]
type = "integer"
[store.stock]
key = { type = "string", pattern = "^[A-Z]{3}-[0-9]{3}$" }
value = { type = "integer", minimum = 0, maximum = 10 }
"#;
        mote_contract::check_source(mote_contract::SourceFile::new("c.toml", text))
            .contract
            .unwrap_or_else(|| panic!("the test contract checks"))
    }

    #[test]
    fn the_same_input_starts_from_the_same_stores_and_keys_hit_and_miss() {
        let contract = contract();
        let draw = StoreDraw::new(&contract, 7).unwrap_or_else(|| panic!("has stores"));
        let (mut hits, mut misses) = (0, 0);
        for n in 0..200 {
            let sku = format!("ABC-{n:03}");
            let input = json!({"sku": sku});
            let before = draw.before(&input);
            assert_eq!(before, draw.before(&input), "deterministic");
            let stock = before.stores.get("stock");
            for (key, value) in stock.into_iter().flatten() {
                assert!(contract.stores[0].key.is_valid(&json!(key)), "{key}");
                assert!(contract.stores[0].value.is_valid(value), "{value}");
            }
            if stock.is_some_and(|s| s.contains_key(&sku)) {
                hits += 1;
            } else {
                misses += 1;
            }
        }
        assert!(hits > 100 && misses > 20, "hits {hits}, misses {misses}");
        assert!(StoreDraw::new(&contract, 8).is_some());
    }
}
