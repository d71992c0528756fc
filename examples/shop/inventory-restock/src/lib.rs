use mote_guest::{Failure, Store, service};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    sku: String,
    qty: u64,
}

#[derive(Serialize)]
struct Output {
    sku: String,
    on_hand: u64,
}

const CAPACITY: u64 = 1_000_000;

static STOCK: Store<u64> = Store::new("stock");

fn handle(input: Input) -> Result<Output, Failure> {
    let on_hand = STOCK.get(&input.sku)?.unwrap_or(0) + input.qty;
    if on_hand > CAPACITY {
        return Err(Failure::new(
            "over_capacity",
            format!("{} would have {on_hand} units", input.sku),
        ));
    }
    STOCK.put(&input.sku, &on_hand)?;
    Ok(Output {
        sku: input.sku,
        on_hand,
    })
}

service!(handle);
