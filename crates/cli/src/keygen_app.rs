//! `mote keygen --app`: the certificates for mutual TLS between the hosts
//! of a placement.

use std::path::Path;
use std::process::ExitCode;

use crate::exit;

/// Issues the app's authority (if `out` holds none) and a certificate per
/// host of the placement file `placement`.
pub fn keygen_app(placement: &Path, out: &Path) -> ExitCode {
    let placement = match mote_placement::Placement::load(placement) {
        Ok(placement) => placement,
        Err(problems) => {
            for problem in &problems {
                eprintln!("{}", crate::check::render(problem));
            }
            return ExitCode::from(exit::PROBLEMS);
        }
    };
    let hosts: Vec<&str> = placement.hosts.iter().map(|h| h.name.as_str()).collect();
    let issued = match mote_tls::issue(out, &hosts) {
        Ok(issued) => issued,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let authority = out.join(mote_tls::AUTHORITY_CERTIFICATE);
    let authority_key = out.join(mote_tls::AUTHORITY_KEY);
    if issued.new_authority {
        println!(
            "authority: {} (every host trusts it) and {} (keep it private, off the hosts; it issues more host certificates)",
            authority.display(),
            authority_key.display()
        );
    } else {
        println!(
            "authority: {} (kept; the hosts' certificates below are issued by it)",
            authority.display()
        );
    }
    for (host, certificate, key) in &issued.hosts {
        println!(
            "host {host}: {} and {} (identity {})",
            certificate.display(),
            key.display(),
            mote_tls::identity(host)
        );
    }
    if !placement.mutual_tls() {
        println!(
            "note: the placement's URLs are http://; make them https:// for the hosts to use these certificates"
        );
    }
    println!(
        "start each host with: mote up DIR --placement FILE --host NAME --tls {}",
        out.display()
    );
    ExitCode::SUCCESS
}
