use mote_guest::{Failure, service};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Line {
    unit_cents: i64,
    qty: i64,
}

#[derive(Deserialize)]
struct Input {
    items: Vec<Line>,
    discount_pct: i64,
}

#[derive(Serialize)]
struct Output {
    subtotal_cents: i64,
    discount_cents: i64,
    total_cents: i64,
}

fn handle(input: Input) -> Result<Output, Failure> {
    if input.items.is_empty() {
        return Err(Failure::new("empty_cart", "the cart has no items"));
    }
    let subtotal_cents: i64 = input.items.iter().map(|l| l.unit_cents * l.qty).sum();
    let discount_cents = subtotal_cents * input.discount_pct / 100;
    Ok(Output {
        subtotal_cents,
        discount_cents,
        total_cents: subtotal_cents - discount_cents,
    })
}

service!(handle);
