use mote_guest::{Failure, service};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    sku: String,
}

#[derive(Serialize)]
struct Output {
    sku: String,
    unit_cents: i64,
}

const CATALOGUE: [(&str, i64); 4] = [
    ("MUG-001", 1299),
    ("TEE-002", 2499),
    ("CAP-003", 1850),
    ("BAG-004", 3999),
];

fn handle(input: Input) -> Result<Output, Failure> {
    let (_, unit_cents) = CATALOGUE
        .iter()
        .find(|(sku, _)| *sku == input.sku)
        .ok_or_else(|| Failure::new("unknown_sku", format!("no product {}", input.sku)))?;
    Ok(Output {
        sku: input.sku,
        unit_cents: *unit_cents,
    })
}

service!(handle);
