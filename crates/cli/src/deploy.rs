//! `mote deploy kubernetes`: the manifests and the image recipe of an app
//! split by a placement.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mote_deploy::{Autoscale, File, Options};

use crate::exit;

/// Where `mote deploy` writes for.
#[derive(Debug, clap::Subcommand)]
pub enum Target {
    /// Write Kubernetes manifests (JSON, for `kubectl apply -f OUTDIR`)
    /// and a Dockerfile: per host of the placement a Deployment, a
    /// Service named APP-HOST and, with --autoscale, an autoscaler; one
    /// ConfigMap with the placement as the cluster sees it (each host at
    /// its Service, over mutual TLS). Nothing is sent to a cluster.
    Kubernetes(Request),
}

/// The arguments of `mote deploy kubernetes`.
#[derive(Debug, clap::Args)]
pub struct Request {
    /// The app folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The placement file: which host serves which services.
    #[arg(long, value_name = "FILE")]
    pub placement: PathBuf,
    /// The folder to write the manifests and the Dockerfile to.
    #[arg(long, value_name = "OUTDIR")]
    pub out: PathBuf,
    /// The image the pods run, built from the written Dockerfile.
    #[arg(long)]
    pub image: String,
    /// The public key (from `mote keygen`) whose attestations the hosts
    /// trust; the image runs `mote up --require-attestation` with it.
    #[arg(long, value_name = "PUBLIC_KEY")]
    pub trusted_key: PathBuf,
    /// Pods per host (hosts with --autoscale scale on their own).
    #[arg(long, default_value_t = 2)]
    pub replicas: i32,
    /// Autoscale a host's pods on CPU: HOST=MIN:MAX (repeatable).
    #[arg(long, value_name = "HOST=MIN:MAX", value_parser = parse_autoscale)]
    pub autoscale: Vec<(String, Autoscale)>,
    /// The app's name in object names (default: the app folder's name).
    #[arg(long)]
    pub app_name: Option<String>,
    /// The folder `mote keygen --app` wrote: checked to hold every host's
    /// certificate, and named in the commands that make the Secrets.
    #[arg(long, value_name = "DIR")]
    pub tls: Option<PathBuf>,
}

/// The average CPU use, in percent of the request, autoscalers aim at.
const CPU_TARGET_PERCENT: i32 = 70;

fn parse_autoscale(text: &str) -> Result<(String, Autoscale), String> {
    let shape = || format!("`{text}` is not HOST=MIN:MAX, e.g. front=2:10");
    let (host, range) = text.split_once('=').ok_or_else(shape)?;
    let (min, max) = range.split_once(':').ok_or_else(shape)?;
    let min: i32 = min.trim().parse().map_err(|_| shape())?;
    let max: i32 = max.trim().parse().map_err(|_| shape())?;
    if min < 1 || max < min {
        return Err(format!(
            "`{text}`: MIN must be at least 1 and MAX at least MIN"
        ));
    }
    Ok((
        host.trim().to_string(),
        Autoscale {
            min,
            max,
            cpu_percent: CPU_TARGET_PERCENT,
        },
    ))
}

pub fn run(target: Target) -> ExitCode {
    let Target::Kubernetes(request) = target;
    match kubernetes(&request) {
        Ok(code) | Err(code) => code,
    }
}

fn kubernetes(request: &Request) -> Result<ExitCode, ExitCode> {
    let usage = |message: String| {
        eprintln!("error: {message}");
        ExitCode::from(exit::USAGE)
    };
    let contracts = crate::graph::contracts_under(&request.dir)?;
    let placement = mote_placement::Placement::load(&request.placement).map_err(|problems| {
        for problem in &problems {
            eprintln!("{}", crate::check::render(problem));
        }
        ExitCode::from(exit::PROBLEMS)
    })?;
    // The file's URLs are not the cluster's (each host is reached at its
    // Service, over mutual TLS), so only the placing itself is checked.
    let problems = placement.check_placing(contracts.iter().map(|c| c.service.name.as_str()));
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("{}", crate::check::render(problem));
        }
        return Err(ExitCode::from(exit::PROBLEMS));
    }
    for (host, _) in &request.autoscale {
        if placement.host(host).is_none() {
            return Err(usage(format!(
                "--autoscale names host `{host}`, which {} does not place",
                request.placement.display()
            )));
        }
    }
    if request.replicas < 1 {
        return Err(usage("--replicas must be at least 1".into()));
    }
    let trusted_key = std::fs::read_to_string(&request.trusted_key)
        .map_err(|e| usage(format!("{}: {e}", request.trusted_key.display())))?;
    let trusted_key = trusted_key.trim();
    mote_verify::attest::public_key_from_hex(trusted_key).map_err(|e| {
        usage(format!(
            "{} is not a public key from `mote keygen`: {e}",
            request.trusted_key.display()
        ))
    })?;
    if let Some(tls) = &request.tls {
        for host in &placement.hosts {
            mote_tls::PeerTls::load(tls, &host.name).map_err(|e| {
                usage(format!(
                    "{e} (make the hosts' certificates with `mote keygen --app --placement {} --out {}`)",
                    request.placement.display(),
                    tls.display()
                ))
            })?;
        }
    }
    let app = request
        .app_name
        .clone()
        .unwrap_or_else(|| mote_deploy::app_name(&crate::docs::app_title(&request.dir)));
    let options = Options {
        app: app.clone(),
        image: request.image.clone(),
        replicas: request.replicas,
        autoscale: request
            .autoscale
            .iter()
            .cloned()
            .collect::<BTreeMap<_, _>>(),
    };
    let mut files = mote_deploy::kubernetes(&placement, &contracts, &options)
        .map_err(|e| usage(e.to_string()))?;
    files.push(File {
        name: "Dockerfile".into(),
        text: mote_deploy::dockerfile(trusted_key),
    });
    files.push(File {
        name: "Dockerfile.dockerignore".into(),
        text: mote_deploy::dockerignore(),
    });
    write_all(&request.out, &files)
        .map_err(|e| usage(format!("cannot write to {}: {e}", request.out.display())))?;
    for file in &files {
        println!("wrote {}", request.out.join(&file.name).display());
    }
    let tls = request
        .tls
        .as_deref()
        .map_or_else(|| "TLS_DIR".to_string(), |p| p.display().to_string());
    println!("\nNext:");
    println!(
        "  1. the image: mote verify {dir} --key KEY; cp \"$(command -v mote)\" {dir}/; docker build -f {out}/Dockerfile -t {image} {dir}",
        dir = request.dir.display(),
        out = request.out.display(),
        image = request.image
    );
    println!("  2. a Secret per host, from `mote keygen --app` (ca.key stays out of the cluster):");
    for host in &placement.hosts {
        println!(
            "       {}",
            mote_deploy::secret_command(&app, &host.name, &tls)
        );
    }
    if contracts.iter().any(|c| !c.stores.is_empty()) {
        println!(
            "     and the URL of the app's PostgreSQL, where the hosts serving stateful services keep their stores (a pod's own files do not outlive it):"
        );
        println!("       {}", mote_deploy::store_secret_command(&app));
    }
    println!("  3. kubectl apply -f {}", request.out.display());
    println!(
        "End users are not authenticated by mote: put the ingress or gateway that does it in front of the Services' `http` port ({}), and pass its identity header with `mote up --identity-header`.",
        mote_deploy::PUBLIC_PORT
    );
    println!(
        "Checked here: the manifests are well-formed Kubernetes objects. Not checked: a live cluster."
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes every file whole (a temporary file renamed into place), after
/// all were made; files already in `out` that are not among them stay.
fn write_all(out: &Path, files: &[File]) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    for file in files {
        let path = out.join(&file.name);
        let partial = out.join(format!(".{}.partial", file.name));
        std::fs::write(&partial, &file.text)?;
        std::fs::rename(&partial, &path)?;
    }
    Ok(())
}
