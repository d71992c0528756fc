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
    reserved: u64,
    on_hand: u64,
}

static STOCK: Store<u64> = Store::new("stock");

fn handle(input: Input) -> Result<Output, Failure> {
    let on_hand = STOCK.get(&input.sku)?.unwrap_or(0);
    if on_hand < input.qty {
        return Err(Failure::new(
            "insufficient_stock",
            format!("{on_hand} of {} on hand, {} asked for", input.sku, input.qty),
        ));
    }
    let left = on_hand - input.qty;
    STOCK.put(&input.sku, &left)?;
    Ok(Output {
        sku: input.sku,
        reserved: input.qty,
        on_hand: left,
    })
}

service!(handle);
