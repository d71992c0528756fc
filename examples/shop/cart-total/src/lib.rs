//! `Input`, its line type and `Output` are generated from `contract.toml`.

use mote_guest::{Failure, contract, service};

contract!();

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
