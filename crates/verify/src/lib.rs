//! Black-box verification of nanoservices from their contracts.
//!
//! [`verify`] runs a service's examples, then inputs generated from its
//! input schema ([`generate`]), through every oracle the contract implies
//! ([`oracle`]): the output schema, each `ensures`, the error partition,
//! declared codes, determinism for pure services, and the platform's
//! limits. A failure shrinks to a minimal counterexample; coverage counts
//! the cases that reached success and each declared error, and an outcome
//! never reached fails the run. Runs are reproducible from their seed.
//!
//! A passing run can be signed into an attestation ([`attest`]) bound to
//! the contract's hash and the artefact's sha-256.
//!
//! Not yet here: callee doubles and `--url` targets.
//!
//! Architecture invariant: knows nothing of how a service is deployed; it
//! sees a [`Target`].

pub mod attest;
pub mod combine;
pub mod double;
pub mod generate;
pub mod oracle;
pub mod refuse;
pub mod state;
pub mod strength;
mod target;
mod verify;

pub use target::{Answer, Target};
pub use verify::{Counterexample, Options, Report, describe, verify, verify_with_progress};
