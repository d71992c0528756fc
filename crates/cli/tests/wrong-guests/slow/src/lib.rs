//! Never finishes for Germany. A wrong twin of the shop's `tax.vat`, which `mote verify`
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
    if matches!(input.country, InputCountry::De) {
        let mut spins: u64 = 0;
        loop {
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
    }
    Ok(Output {
        vat_cents: (input.net_cents * rate_pct + 50) / 100,
        rate_pct,
    })
}

service!(handle);
