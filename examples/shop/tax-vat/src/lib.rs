use mote_guest::{Failure, service};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    net_cents: i64,
    country: String,
}

#[derive(Serialize)]
struct Output {
    vat_cents: i64,
    rate_pct: i64,
}

fn handle(input: Input) -> Result<Output, Failure> {
    if input.net_cents == 0 {
        return Err(Failure::new("zero_amount", "nothing to tax"));
    }
    let rate_pct = if input.country == "DE" { 19 } else { 21 };
    Ok(Output {
        vat_cents: (input.net_cents * rate_pct + 50) / 100,
        rate_pct,
    })
}

service!(handle);
