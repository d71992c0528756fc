use mote_guest::{Failure, service};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    country: String,
    weight_grams: i64,
}

#[derive(Serialize)]
struct Output {
    shipping_cents: i64,
}

fn handle(input: Input) -> Result<Output, Failure> {
    if input.country == "BE" && input.weight_grams > 20_000 {
        return Err(Failure::new(
            "too_heavy_for_country",
            "parcels to Belgium are limited to 20 kg",
        ));
    }
    let base = if input.country == "NL" { 495 } else { 695 };
    let started_kilograms = (input.weight_grams + 999) / 1000;
    Ok(Output {
        shipping_cents: base + started_kilograms * 100,
    })
}

service!(handle);
