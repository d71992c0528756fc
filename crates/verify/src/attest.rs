//! Attestations: a signed record that a given contract and a given
//! artefact passed verification, with what was checked. A host can refuse
//! anything without one from a key it trusts; any change to the contract
//! or to the artefact invalidates it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A trusted public key, as [`check`] takes them.
pub use ed25519_dalek::VerifyingKey;
use ed25519_dalek::{Signature, Signer, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Report;

/// The format tag written into every attestation.
pub const FORMAT: &str = "mote-attestation/v1";

/// A key pair for signing attestations.
pub struct KeyPair {
    signing: SigningKey,
}

/// Why an attestation or a key was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestError {
    /// The text is not an attestation.
    #[error("not a mote attestation: {0}")]
    Malformed(String),
    /// A key file does not hold a key.
    #[error("not a key: {0}")]
    BadKey(String),
    /// The signature does not verify.
    #[error("the signature does not match the attestation's content")]
    BadSignature,
    /// It was signed by a key that is not trusted.
    #[error("signed by {0}, which is not a trusted key")]
    Untrusted(String),
    /// It attests a different contract.
    #[error("the contract changed: attested {attested}, now {actual}")]
    ContractChanged {
        /// The hash attested.
        attested: String,
        /// The hash now.
        actual: String,
    },
    /// It attests a different artefact.
    #[error("the artefact changed: attested {attested}, now {actual}")]
    ArtefactChanged {
        /// The hash attested.
        attested: String,
        /// The hash now.
        actual: String,
    },
    /// It records a failed verification.
    #[error("it records a verification that did not pass")]
    NotPassed,
}

impl KeyPair {
    /// A fresh key pair from the operating system's randomness.
    pub fn generate() -> Result<KeyPair, AttestError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| AttestError::BadKey(format!("no randomness available: {e}")))?;
        Ok(KeyPair {
            signing: SigningKey::from_bytes(&seed),
        })
    }

    /// Reads the secret key written by [`KeyPair::secret_hex`].
    pub fn from_secret_hex(text: &str) -> Result<KeyPair, AttestError> {
        let bytes = decode_hex::<32>(text.trim())
            .ok_or_else(|| AttestError::BadKey("expected 64 hex digits".into()))?;
        Ok(KeyPair {
            signing: SigningKey::from_bytes(&bytes),
        })
    }

    /// The secret key as hex, for a file only its owner can read.
    pub fn secret_hex(&self) -> String {
        hex(self.signing.as_bytes())
    }

    /// The public key as hex, for anyone who checks attestations.
    pub fn public_hex(&self) -> String {
        hex(self.signing.verifying_key().as_bytes())
    }
}

/// Parses a public key written by [`KeyPair::public_hex`].
pub fn public_key_from_hex(text: &str) -> Result<VerifyingKey, AttestError> {
    let bytes = decode_hex::<32>(text.trim())
        .ok_or_else(|| AttestError::BadKey("expected 64 hex digits".into()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| AttestError::BadKey(e.to_string()))
}

/// The sha-256 of an artefact, as attestations write it.
pub fn artefact_hash(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// What an attestation is about: a contract and the code that ran.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The service's version.
    pub version: &'a str,
    /// The contract's canonical hash.
    pub contract_sha256: &'a str,
    /// The component's sha-256 (for a flow, the contract's hash).
    pub artefact_sha256: &'a str,
    /// The compiled code that ran, when a component did: the engine it
    /// was compiled for, and its sha-256. A host running on the same
    /// engine runs exactly this code or compiles the component afresh.
    pub precompiled: Option<Precompiled<'a>>,
}

/// Compiled code, as an attestation binds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Precompiled<'a> {
    /// The engine settings the code is for.
    pub engine: &'a str,
    /// The code's sha-256.
    pub sha256: &'a str,
}

/// The compiled code an attestation binds, if it binds any.
pub fn precompiled(attestation: &Value) -> Option<Precompiled<'_>> {
    let bound = attestation.get("precompiled")?;
    Some(Precompiled {
        engine: bound.get("engine")?.as_str()?,
        sha256: bound.get("sha256")?.as_str()?,
    })
}

/// Signs an attestation of `report` for `subject`.
pub fn attest(
    report: &Report,
    subject: &Subject<'_>,
    strength: Option<f64>,
    key: &KeyPair,
) -> Value {
    let coverage: BTreeMap<&String, &u32> = report.coverage.iter().collect();
    let precompiled = subject
        .precompiled
        .map(|p| json!({"engine": p.engine, "sha256": p.sha256}));
    let mut body = json!({
        "format": FORMAT,
        "service": report.service,
        "version": subject.version,
        "contract_sha256": subject.contract_sha256,
        "artefact_sha256": subject.artefact_sha256,
        "precompiled": precompiled,
        "seed": report.seed,
        "examples": report.examples,
        "cases": report.cases,
        "dropped": report.dropped,
        "coverage": coverage,
        "passed": report.passed(),
        "strength": strength,
        "verifier": format!("mote {}", env!("CARGO_PKG_VERSION")),
        "signed_at": utc_timestamp(std::time::SystemTime::now()),
        "public_key": key.public_hex(),
    });
    let signature = key
        .signing
        .sign(mote_contract::canonical_json(&body).as_bytes());
    if let Value::Object(members) = &mut body {
        members.insert(
            "signature".into(),
            Value::String(hex(&signature.to_bytes())),
        );
    }
    body
}

/// Checks an attestation: well-formed, signed by one of `trusted`, passed,
/// and — when given — about exactly this contract and artefact.
pub fn check(
    attestation: &Value,
    trusted: &[VerifyingKey],
    contract_hash: Option<&str>,
    artefact_hash: Option<&str>,
) -> Result<(), AttestError> {
    let Value::Object(members) = attestation else {
        return Err(AttestError::Malformed("expected a JSON object".into()));
    };
    if members.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(AttestError::Malformed(format!("`format` is not {FORMAT}")));
    }
    let field = |name: &str| {
        members
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| AttestError::Malformed(format!("`{name}` is missing")))
    };
    let signature = decode_hex::<64>(field("signature")?)
        .map(|b| Signature::from_bytes(&b))
        .ok_or_else(|| AttestError::Malformed("`signature` is not 128 hex digits".into()))?;
    let signer = public_key_from_hex(field("public_key")?)?;
    let mut body = members.clone();
    body.remove("signature");
    signer
        .verify_strict(
            mote_contract::canonical_json(&Value::Object(body)).as_bytes(),
            &signature,
        )
        .map_err(|_| AttestError::BadSignature)?;
    if !trusted.contains(&signer) {
        return Err(AttestError::Untrusted(hex(signer.as_bytes())));
    }
    if members.get("passed") != Some(&Value::Bool(true)) {
        return Err(AttestError::NotPassed);
    }
    if let Some(actual) = contract_hash {
        let attested = field("contract_sha256")?;
        if attested != actual {
            return Err(AttestError::ContractChanged {
                attested: attested.into(),
                actual: actual.into(),
            });
        }
    }
    if let Some(actual) = artefact_hash {
        let attested = field("artefact_sha256")?;
        if attested != actual {
            return Err(AttestError::ArtefactChanged {
                attested: attested.into(),
                actual: actual.into(),
            });
        }
    }
    Ok(())
}

/// `time` as an RFC 3339 UTC timestamp to the second
/// (`2026-12-02T07:31:38Z`), for the date an attestation was signed.
pub fn utc_timestamp(time: std::time::SystemTime) -> String {
    let seconds = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    // The proleptic Gregorian date of a day count since 1970-01-01, by
    // 400-year eras of 146,097 days starting on 0000-03-01.
    let shifted = i64::try_from(days).unwrap_or(i64::MAX / 2) + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3_600,
        of_day % 3_600 / 60,
        of_day % 60
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn decode_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            service: "tax.vat".into(),
            seed: 7,
            examples: 3,
            cases: 1000,
            dropped: 0,
            coverage: [
                ("success".to_string(), 990),
                ("zero_amount".to_string(), 10),
            ]
            .into(),
            unreached: Vec::new(),
            counterexample: None,
            starved: None,
            edge_combinations: 0,
            encodings: 0,
            refusals: 0,
            concurrent_batches: 0,
        }
    }

    fn subject() -> Subject<'static> {
        Subject {
            version: "1.0.0",
            contract_sha256: "sha256:c",
            artefact_sha256: "sha256:a",
            precompiled: Some(Precompiled {
                engine: "e1",
                sha256: "sha256:p",
            }),
        }
    }

    #[test]
    fn the_compiled_code_is_bound_and_read_back() {
        let key = KeyPair::generate().unwrap();
        let a = attest(&report(), &subject(), None, &key);
        assert_eq!(
            precompiled(&a),
            Some(Precompiled {
                engine: "e1",
                sha256: "sha256:p"
            })
        );
        let mut swapped = a.clone();
        swapped["precompiled"]["sha256"] = json!("sha256:other");
        let trusted = [public_key_from_hex(&key.public_hex()).unwrap()];
        assert_eq!(
            check(&swapped, &trusted, None, None),
            Err(AttestError::BadSignature)
        );
    }

    #[test]
    fn timestamps_are_utc_dates_across_leap_years_and_eras() {
        let at = |seconds: u64| {
            utc_timestamp(std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds))
        };
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(at(1_796_196_698), "2026-12-02T07:31:38Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn a_signed_attestation_checks_and_any_change_breaks_it() {
        let key = KeyPair::generate().unwrap();
        let trusted = [public_key_from_hex(&key.public_hex()).unwrap()];
        let a = attest(&report(), &subject(), Some(0.75), &key);
        assert_eq!(
            check(&a, &trusted, Some("sha256:c"), Some("sha256:a")),
            Ok(())
        );
        assert!(matches!(
            check(&a, &trusted, Some("sha256:other"), None),
            Err(AttestError::ContractChanged { .. })
        ));
        assert!(matches!(
            check(&a, &trusted, None, Some("sha256:other")),
            Err(AttestError::ArtefactChanged { .. })
        ));
        let mut tampered = a.clone();
        tampered["cases"] = json!(5);
        assert_eq!(
            check(&tampered, &trusted, None, None),
            Err(AttestError::BadSignature)
        );
        let stranger = KeyPair::generate().unwrap();
        let untrusted = [public_key_from_hex(&stranger.public_hex()).unwrap()];
        assert!(matches!(
            check(&a, &untrusted, None, None),
            Err(AttestError::Untrusted(_))
        ));
    }

    #[test]
    fn keys_round_trip_through_hex_and_garbage_is_refused() {
        let key = KeyPair::generate().unwrap();
        let again = KeyPair::from_secret_hex(&key.secret_hex()).unwrap();
        assert_eq!(key.public_hex(), again.public_hex());
        assert!(KeyPair::from_secret_hex("nothex").is_err());
        assert!(public_key_from_hex("00").is_err());
        assert!(check(&json!({"format": FORMAT}), &[], None, None).is_err());
    }

    #[test]
    fn a_failed_run_does_not_attest_a_pass() {
        let key = KeyPair::generate().unwrap();
        let trusted = [public_key_from_hex(&key.public_hex()).unwrap()];
        let mut failed = report();
        failed.unreached = vec!["zero_amount".into()];
        let a = attest(&failed, &subject(), None, &key);
        assert_eq!(check(&a, &trusted, None, None), Err(AttestError::NotPassed));
    }
}
