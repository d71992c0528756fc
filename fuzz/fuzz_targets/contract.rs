//! Any bytes as a contract file: checking never panics, a refused contract
//! says why, and checking the same text twice gives the same hash.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mote_contract::{SourceFile, check_source};

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let first = check_source(SourceFile::new("fuzz.toml", text.clone()));
    match &first.contract {
        Some(contract) => {
            assert!(!first.has_errors());
            let again = check_source(SourceFile::new("fuzz.toml", text));
            let again = again.contract.expect("the same text checks the same way");
            assert_eq!(contract.hash, again.hash);
        }
        None => assert!(first.has_errors(), "a refused contract says why"),
    }
});
