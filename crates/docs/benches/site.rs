//! `mote docs` at scale: 1,000 services, each calling the next, rendered
//! into a site. Measures the index alone and the whole site written to
//! disk, beside a same-run baseline: serialising every contract's JSON
//! (the least any renderer of the contracts must do).
//!
//! Run: `cargo bench -p mote-docs --bench site`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that fails should stop

use std::path::Path;
use std::time::Instant;

use mote_docs::{ServiceDoc, Status};

const SERVICES: usize = 1_000;

fn main() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop/tax-vat/contract.toml"),
    )
    .unwrap();
    let contracts: Vec<mote_contract::Contract> = (0..SERVICES)
        .map(|i| {
            let mut t = text.replace("name = \"tax.vat\"", &format!("name = \"bench.s{i:04}\""));
            if i + 1 < SERVICES && i % 10 != 9 {
                t = t.replace(
                    "[limits]",
                    &format!(
                        "[effects]\ncalls = [\"bench.s{:04}@^1\"]\n\n[limits]",
                        i + 1
                    ),
                );
            }
            mote_contract::check_source(mote_contract::SourceFile::new("c.toml", t))
                .contract
                .unwrap()
        })
        .collect();
    let statuses = vec![Status::NotVerified; SERVICES];
    let docs: Vec<ServiceDoc<'_>> = contracts
        .iter()
        .zip(&statuses)
        .map(|(contract, status)| ServiceDoc {
            key: contract.service.name.as_str(),
            contract,
            status,
        })
        .collect();

    let runs = 5;
    let best = |f: &dyn Fn() -> usize| {
        (0..runs)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(f());
                started.elapsed()
            })
            .min()
            .unwrap()
    };
    let baseline = best(&|| contracts.iter().map(|c| c.json.to_string().len()).sum());
    let index = best(&|| mote_docs::index("bench", &docs).len());
    let out = std::env::temp_dir().join(format!("mote-docs-bench-{}", std::process::id()));
    let whole = best(&|| {
        let site = mote_docs::site("bench", &docs);
        mote_docs::write(&site, &out).unwrap();
        site.files.len()
    });
    let _ = std::fs::remove_dir_all(&out);
    println!("== mote docs, {SERVICES} services (best of {runs})");
    println!(
        "baseline: every contract's JSON serialised   {:>9.1} ms",
        baseline.as_secs_f64() * 1e3
    );
    println!(
        "the index (table, search, call graph)        {:>9.1} ms",
        index.as_secs_f64() * 1e3
    );
    println!(
        "the whole site, rendered and written         {:>9.1} ms",
        whole.as_secs_f64() * 1e3
    );
}
