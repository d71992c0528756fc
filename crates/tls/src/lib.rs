//! Mutual TLS between the hosts of one mote app.
//!
//! An app split over hosts by a placement has its own certificate
//! authority. Each host holds a certificate from it that names the host
//! (`NAME.hosts.mote.internal`, see [`identity`]), and nothing else is
//! trusted: a host accepts a connection from another host only when the
//! other side presents a certificate of the same authority, and a host
//! calling another checks that the certificate it is shown names the host
//! it meant to reach, whatever address it dialled.
//!
//! [`issue`] creates the authority (once) and the host certificates, as
//! PEM files in one folder; [`PeerTls::load`] reads one host's share of
//! that folder into the rustls configurations both sides of a connection
//! need; [`hosts_named`] says which hosts a verified peer certificate
//! names, so that the callee can hold a caller to its own services.
//!
//! The files, in the folder given to both:
//! - `ca.pem`: the authority's certificate, which every host trusts;
//! - `ca.key`: the authority's private key, needed only to issue more
//!   host certificates (keep it off the hosts);
//! - `NAME.pem`, `NAME.key`: host NAME's certificate and private key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// The authority's certificate in a TLS folder.
pub const AUTHORITY_CERTIFICATE: &str = "ca.pem";
/// The authority's private key in a TLS folder.
pub const AUTHORITY_KEY: &str = "ca.key";

/// The DNS name under which host `host` is known to the other hosts of
/// its app: the subject its certificate is issued for and checked
/// against. It does not resolve; hosts are dialled at their placement
/// URLs, and this name only says who must answer there.
pub fn identity(host: &str) -> String {
    format!("{host}.hosts.mote.internal")
}

/// Why TLS between hosts cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A file the folder should hold is not there.
    #[error("{} is missing ({hint})", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
        /// How it is made.
        hint: &'static str,
    },
    /// A file is not the PEM it should be.
    #[error("{}: not a PEM {what}: {why}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What it should hold.
        what: &'static str,
        /// What the parser said.
        why: String,
    },
    /// A host name cannot be put in a certificate.
    #[error("`{0}` cannot name a host in a certificate")]
    HostName(String),
    /// Making a key or a certificate failed.
    #[error("cannot issue a certificate: {0}")]
    Issue(#[from] rcgen::Error),
    /// rustls refused the keys or the certificates.
    #[error("cannot set up TLS: {0}")]
    Config(String),
}

/// What [`issue`] wrote.
#[derive(Debug)]
pub struct Issued {
    /// Whether the authority was created now (otherwise the folder's was
    /// reused).
    pub new_authority: bool,
    /// The certificate and key files written, per host.
    pub hosts: Vec<(String, PathBuf, PathBuf)>,
}

/// The validity of the authority, in days.
const AUTHORITY_DAYS: i64 = 3650;
/// The validity of a host certificate, in days: re-run `issue` to renew.
const HOST_DAYS: i64 = 825;

/// The fixed name of every app authority. Issued certificates repeat it
/// as their issuer, so it must be the same each time the authority is
/// loaded; apps are told apart by their keys, not their names.
fn authority_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "mote app certificate authority");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// Creates the app's authority in `dir` unless it holds one, then issues
/// a certificate and key for each of `hosts`, replacing earlier ones
/// (they stay valid: the authority is the same). Each file is written
/// whole or not at all; keys are readable by their owner only.
pub fn issue(dir: &Path, hosts: &[&str]) -> Result<Issued, TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let cert_path = dir.join(AUTHORITY_CERTIFICATE);
    let key_path = dir.join(AUTHORITY_KEY);
    let now = time::OffsetDateTime::now_utc();
    let (authority_key, new_authority) = match (cert_path.exists(), key_path.exists()) {
        (true, true) => (read_key_pair(&key_path)?, false),
        (false, false) => {
            let key = KeyPair::generate()?;
            let mut params = authority_params();
            params.not_before = now - time::Duration::hours(1);
            params.not_after = now + time::Duration::days(AUTHORITY_DAYS);
            let certificate = params.self_signed(&key)?;
            write_file(&key_path, &pem("PRIVATE KEY", &key.serialize_der()), true)?;
            write_file(&cert_path, &pem("CERTIFICATE", certificate.der()), false)?;
            (key, true)
        }
        (true, false) => {
            return Err(TlsError::Missing {
                path: key_path,
                hint: "the authority's key is needed to issue host certificates; without it, start over in an empty folder",
            });
        }
        (false, true) => {
            return Err(TlsError::Missing {
                path: cert_path,
                hint: "the folder holds an authority key without its certificate; start over in an empty folder",
            });
        }
    };
    let issuer = Issuer::new(authority_params(), &authority_key);
    let mut written = Vec::new();
    for host in hosts {
        let name = identity(host);
        let san = name
            .clone()
            .try_into()
            .map_err(|_| TlsError::HostName((*host).to_string()))?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, name);
        params.distinguished_name = subject;
        params.subject_alt_names = vec![SanType::DnsName(san)];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(HOST_DAYS);
        let certificate = params.signed_by(&key, &issuer)?;
        let host_key = dir.join(format!("{host}.key"));
        let host_cert = dir.join(format!("{host}.pem"));
        write_file(&host_key, &pem("PRIVATE KEY", &key.serialize_der()), true)?;
        write_file(&host_cert, &pem("CERTIFICATE", certificate.der()), false)?;
        written.push(((*host).to_string(), host_cert, host_key));
    }
    Ok(Issued {
        new_authority,
        hosts: written,
    })
}

/// `der` as a PEM block labelled `label`.
fn pem(label: &str, der: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// Writes `text` to `path` through a temporary file and a rename, so a
/// reader sees the old file or the new one, never half of one. A
/// `secret` is readable by its owner only.
fn write_file(path: &Path, text: &str, secret: bool) -> Result<(), TlsError> {
    let io = |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let partial = path.with_extension("partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(&partial).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&partial, path).map_err(io)
}

fn missing_or_io(
    path: &Path,
    hint: &'static str,
) -> impl Fn(rustls_pki_types::pem::Error) -> TlsError {
    let path = path.to_path_buf();
    move |error| match error {
        rustls_pki_types::pem::Error::Io(source)
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            TlsError::Missing {
                path: path.clone(),
                hint,
            }
        }
        rustls_pki_types::pem::Error::Io(source) => TlsError::Io {
            path: path.clone(),
            source,
        },
        other => TlsError::Pem {
            path: path.clone(),
            what: "file",
            why: other.to_string(),
        },
    }
}

const MADE_BY: &str = "made by `mote keygen --app`";

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(missing_or_io(path, MADE_BY))
}

fn read_key_pair(path: &Path) -> Result<KeyPair, TlsError> {
    let key = read_key(path)?;
    KeyPair::try_from(&key).map_err(|e| TlsError::Pem {
        path: path.to_path_buf(),
        what: "private key",
        why: e.to_string(),
    })
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(missing_or_io(path, MADE_BY))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(missing_or_io(path, MADE_BY))?;
    if certificates.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            what: "certificate",
            why: "it holds no certificate".into(),
        });
    }
    Ok(certificates)
}

/// One host's side of mutual TLS: the configuration its peer address
/// accepts connections with (a certificate of the app's authority
/// required) and the one it calls other hosts with (its own certificate
/// shown, theirs checked).
#[derive(Clone)]
pub struct PeerTls {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerTls")
    }
}

impl PeerTls {
    /// Reads host `host`'s certificate and key and the authority's
    /// certificate from `dir`.
    pub fn load(dir: &Path, host: &str) -> Result<PeerTls, TlsError> {
        let authority = read_certificates(&dir.join(AUTHORITY_CERTIFICATE))?;
        let chain = read_certificates(&dir.join(format!("{host}.pem")))?;
        let key = read_key(&dir.join(format!("{host}.key")))?;
        PeerTls::new(authority, chain, key)
    }

    /// The configurations for a host showing `chain` (signed with `key`)
    /// and trusting only `authority`. TLS 1.3 only: both ends are mote.
    pub fn new(
        authority: Vec<CertificateDer<'static>>,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<PeerTls, TlsError> {
        let config = |e: rustls::Error| TlsError::Config(e.to_string());
        let provider = provider();
        let mut roots = RootCertStore::empty();
        for certificate in authority {
            roots.add(certificate).map_err(config)?;
        }
        let roots = Arc::new(roots);
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
        let mut server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(config)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(config)?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(config)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(config)?;
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(PeerTls {
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }

    /// Accepts connections from the app's other hosts.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(Arc::clone(&self.server))
    }

    /// Connects to the app's other hosts.
    pub fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(Arc::clone(&self.client))
    }
}

/// The name a caller checks the certificate of host `host` against.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(identity(host)).map_err(|_| TlsError::HostName(host.to_string()))
}

/// Which of `hosts` the peer certificate `certificate` (already verified
/// against the app's authority during the handshake) is issued to.
pub fn hosts_named<'h>(
    certificate: &CertificateDer<'_>,
    hosts: impl IntoIterator<Item = &'h str>,
) -> Vec<String> {
    let Ok(certificate) = webpki::EndEntityCert::try_from(certificate) else {
        return Vec::new();
    };
    hosts
        .into_iter()
        .filter(|host| {
            server_name(host)
                .is_ok_and(|name| certificate.verify_is_valid_for_subject_name(&name).is_ok())
        })
        .map(str::to_string)
        .collect()
}

/// The crypto provider both sides use; exposed so that a test can make a
/// client of its own with the same algorithms.
///
/// *ring*, not aws-lc-rs: it builds in seconds where aws-lc's C library
/// takes minutes on a two-core machine, and every newcomer pays that
/// build. rustls marks it deprecated because its key exchange is not
/// post-quantum; traffic between hosts recorded now could be decrypted
/// by a future quantum computer. Moving to aws-lc-rs is this function.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mote-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn issues_an_authority_once_and_certificates_per_host() {
        let dir = scratch("issue");
        let first = issue(&dir, &["front", "back"]).unwrap();
        assert!(first.new_authority);
        assert_eq!(first.hosts.len(), 2);
        let authority = std::fs::read(dir.join(AUTHORITY_CERTIFICATE)).unwrap();
        let second = issue(&dir, &["extra"]).unwrap();
        assert!(!second.new_authority);
        assert_eq!(
            std::fs::read(dir.join(AUTHORITY_CERTIFICATE)).unwrap(),
            authority,
            "the authority is kept"
        );
        for host in ["front", "back", "extra"] {
            let tls = PeerTls::load(&dir, host);
            assert!(tls.is_ok(), "{host}: {tls:?}");
            let chain = read_certificates(&dir.join(format!("{host}.pem"))).unwrap();
            assert_eq!(
                hosts_named(&chain[0], ["front", "back", "extra"]),
                vec![host.to_string()]
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for key in ["ca.key", "front.key"] {
                let mode = std::fs::metadata(dir.join(key))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o077, 0, "{key} is readable by others");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refuses_half_an_authority_and_names_missing_files() {
        let dir = scratch("half");
        issue(&dir, &["front"]).unwrap();
        std::fs::remove_file(dir.join(AUTHORITY_KEY)).unwrap();
        let error = issue(&dir, &["back"]).unwrap_err().to_string();
        assert!(error.contains("ca.key is missing"), "{error}");
        let error = PeerTls::load(&dir, "nobody").unwrap_err().to_string();
        assert!(
            error.contains("nobody.pem is missing") && error.contains("mote keygen --app"),
            "{error}"
        );
        std::fs::write(dir.join("front.pem"), "not a certificate").unwrap();
        let error = PeerTls::load(&dir, "front").unwrap_err().to_string();
        assert!(error.contains("holds no certificate"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_certificate_names_no_other_host() {
        let dir = scratch("names");
        issue(&dir, &["front"]).unwrap();
        let chain = read_certificates(&dir.join("front.pem")).unwrap();
        assert!(hosts_named(&chain[0], ["back", "fron", "front.evil"]).is_empty());
        assert!(hosts_named(&CertificateDer::from(vec![1, 2, 3]), ["front"]).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
