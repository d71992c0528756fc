use mote_guest::{Failure, service};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    code: String,
    subtotal_cents: i64,
}

#[derive(Serialize)]
struct Output {
    discount_pct: i64,
}

fn handle(input: Input) -> Result<Output, Failure> {
    match input.code.as_str() {
        "WELCOME10" => Ok(Output { discount_pct: 10 }),
        "VIP20" if input.subtotal_cents < 5000 => Err(Failure::new(
            "below_minimum",
            "VIP20 needs a subtotal of at least 50.00",
        )),
        "VIP20" => Ok(Output { discount_pct: 20 }),
        other => Err(Failure::new(
            "unknown_code",
            format!("no discount code {other}"),
        )),
    }
}

service!(handle);
