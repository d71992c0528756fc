use mote_guest::{Failure, service};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    sku: String,
    qty: i64,
}

#[derive(Serialize)]
struct Output {
    in_stock: bool,
    available: i64,
}

const SNAPSHOT: [(&str, i64); 4] = [
    ("MUG-001", 120),
    ("TEE-002", 35),
    ("CAP-003", 0),
    ("BAG-004", 8),
];

fn handle(input: Input) -> Result<Output, Failure> {
    let (_, available) = SNAPSHOT
        .iter()
        .find(|(sku, _)| *sku == input.sku)
        .ok_or_else(|| Failure::new("unknown_sku", format!("{} is not stocked", input.sku)))?;
    Ok(Output {
        in_stock: input.qty <= *available,
        available: *available,
    })
}

service!(handle);
