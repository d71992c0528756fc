//! Black-box verification of nanoservices from their contracts.
//!
//! This crate will hold the whole of `mote verify`: input generation,
//! oracles, shrinking, coverage, reports and attestations. Today it holds
//! its foundation, [`generate`]: values for any schema mote accepts, valid
//! by construction and shrinkable, built on proptest.
//!
//! Architecture invariant: knows nothing of how a service is deployed.

pub mod generate;
