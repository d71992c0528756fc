//! Truncates instead of rounding half up. A wrong twin of the shop's `tax.vat`, which `mote verify`
//! must catch with a shrunk counterexample.

use mote_guest::{Failure, contract, service};

contract!();

fn rate(input: &Input) -> i64 {
    match input.country {
        InputCountry::De => 19,
        InputCountry::Nl | InputCountry::Be => 21,
    }
}

fn handle(input: Input) -> Result<Output, Failure> {
    if input.net_cents == 0 {
        return Err(Failure::new("zero_amount", "nothing to tax"));
    }
    let rate_pct = rate(&input);
    Ok(Output {
        vat_cents: input.net_cents * rate_pct / 100,
        rate_pct,
    })
}

service!(handle);
