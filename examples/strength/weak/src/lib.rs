use mote_guest::{Failure, service};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    qty: i64,
    unit_cents: i64,
}

#[derive(Serialize)]
struct Output {
    total_cents: i64,
    label: String,
}

fn handle(input: Input) -> Result<Output, Failure> {
    if input.qty > 50 {
        return Err(Failure::new("too_many", "at most 50 per order line"));
    }
    if input.qty > 40 {
        return Err(Failure::new("bulk", "more than 40: ask for a bulk quote"));
    }
    Ok(Output {
        total_cents: input.qty * input.unit_cents,
        label: format!("{} × {}", input.qty, input.unit_cents),
    })
}

service!(handle);
