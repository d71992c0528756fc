//! `Input` and `Output` are generated from `contract.toml` by `contract!()`.

use mote_guest::{Failure, contract, service};

contract!();

fn handle(input: Input) -> Result<Output, Failure> {
    if input.net_cents == 0 {
        return Err(Failure::new("zero_amount", "nothing to tax"));
    }
    let rate_bp = match (input.category, input.country) {
        (InputCategory::Standard, InputCountry::De) => 1900,
        (InputCategory::Standard, InputCountry::Fr) => 2000,
        (InputCategory::Standard, InputCountry::Nl | InputCountry::Be) => 2100,
        (InputCategory::Reduced, InputCountry::Nl) => 900,
        (InputCategory::Reduced, InputCountry::De) => 700,
        (InputCategory::Reduced, InputCountry::Be) => 600,
        (InputCategory::Reduced, InputCountry::Fr) => 550,
    };
    Ok(Output {
        vat_cents: (input.net_cents * rate_bp + 5000) / 10000,
        rate_bp,
    })
}

service!(handle);
