//! Leaves out rate_pct for Belgium. A wrong twin of the shop's `tax.vat`,
//! which `mote verify` must catch with a shrunk counterexample. (Its types
//! are written by hand: the generated ones would not let it omit a field.)

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
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_pct: Option<i64>,
}

fn handle(input: Input) -> Result<Output, Failure> {
    if input.net_cents == 0 {
        return Err(Failure::new("zero_amount", "nothing to tax"));
    }
    let rate_pct = if input.country == "DE" { 19 } else { 21 };
    Ok(Output {
        vat_cents: (input.net_cents * rate_pct + 50) / 100,
        rate_pct: (input.country != "BE").then_some(rate_pct),
    })
}

service!(handle);
