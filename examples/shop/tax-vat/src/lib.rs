//! `Input` and `Output` are generated from `contract.toml` by `contract!()`.

use mote_guest::{Failure, contract, service};

contract!();

fn handle(input: Input) -> Result<Output, Failure> {
    if input.net_cents == 0 {
        return Err(Failure::new("zero_amount", "nothing to tax"));
    }
    let rate_pct = match input.country {
        InputCountry::De => 19,
        InputCountry::Nl | InputCountry::Be => 21,
    };
    Ok(Output {
        vat_cents: (input.net_cents * rate_pct + 50) / 100,
        rate_pct,
    })
}

service!(handle);
