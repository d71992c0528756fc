//! `mote build` and `mote call`: an app folder into a runtime.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use miette::{GraphicalReportHandler, GraphicalTheme};
use mote_app::{AppError, Progress};
use mote_runtime::{Failure, RuntimeConfig};

use crate::exit;

pub(crate) fn report_progress(event: Progress<'_>) {
    match event {
        Progress::TargetInstalled => eprintln!(
            "   Installed the {0} target (rustup target add {0})",
            mote_build::WASM_TARGET
        ),
        Progress::Building(source) => eprintln!("    Building {}", source.dir.display()),
        Progress::Ready {
            contract,
            wasm,
            compiled,
        } => eprintln!(
            "       Ready {} {} ({}, {})",
            contract.service.name,
            contract.service.version,
            if compiled { "compiled" } else { "cached" },
            wasm.display()
        ),
        Progress::Flow(contract) => eprintln!(
            "        Flow {} {}",
            contract.service.name, contract.service.version
        ),
    }
}

pub(crate) fn render_app_error(error: &AppError) {
    eprintln!("error: {error}");
    if let AppError::Contract { diagnostics, .. } = error {
        let theme = if std::io::stderr().is_terminal() {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme);
        for d in diagnostics.iter().filter(|d| d.is_error()) {
            let mut out = String::new();
            if handler.render_report(&mut out, d).is_ok() {
                eprintln!("{out}");
            }
        }
    }
}

fn target(dir: &Path, target_dir: Option<PathBuf>) -> PathBuf {
    target_dir.unwrap_or_else(|| mote_app::default_target_dir(dir))
}

pub fn build(dir: &Path, target_dir: Option<PathBuf>) -> ExitCode {
    if !dir.is_dir() {
        eprintln!("error: {} is not a folder", dir.display());
        return ExitCode::from(exit::USAGE);
    }
    match mote_app::load(
        dir,
        &target(dir, target_dir),
        RuntimeConfig::default(),
        &mut report_progress,
    ) {
        Ok((runtime, _)) => {
            eprintln!("    Finished {} service(s)", runtime.services().len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            render_app_error(&e);
            ExitCode::from(exit::PROBLEMS)
        }
    }
}

pub fn call(
    dir: &Path,
    service: &str,
    input: Option<String>,
    target_dir: Option<PathBuf>,
    store: Option<&str>,
) -> ExitCode {
    let input = match input.as_deref() {
        Some("-") | None => {
            let mut text = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                eprintln!("error: cannot read the input from stdin: {e}");
                return ExitCode::from(exit::USAGE);
            }
            text
        }
        Some(text) => text.to_string(),
    };
    if !dir.is_dir() {
        eprintln!("error: {} is not a folder", dir.display());
        return ExitCode::from(exit::USAGE);
    }
    let quiet = |_: Progress<'_>| {};
    let mut progress: Box<dyn FnMut(Progress<'_>)> = if std::io::stderr().is_terminal() {
        Box::new(report_progress)
    } else {
        Box::new(quiet)
    };
    let runtime = match mote_app::load(
        dir,
        &target(dir, target_dir),
        RuntimeConfig::default(),
        &mut progress,
    ) {
        Ok((runtime, loaded)) => {
            let stores = crate::stores::StoreChoice::parse(dir, store)
                .and_then(|choice| choice.open(loaded.iter().map(|l| l.contract())));
            match stores {
                Ok(Some((backend, _))) => runtime.use_state_backend(backend),
                Ok(None) => {}
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(exit::USAGE);
                }
            }
            runtime
        }
        Err(e) => {
            render_app_error(&e);
            return ExitCode::from(exit::USAGE);
        }
    };
    match runtime.call(service, &input) {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(failure) => {
            println!("{}", failure.to_json());
            match failure {
                Failure::Declared { .. } => ExitCode::from(exit::PROBLEMS),
                Failure::Platform { .. } => ExitCode::from(exit::PLATFORM),
            }
        }
    }
}

/// The app a judging command (verify, strength) works on, and which of its
/// services it judges.
#[derive(Debug, clap::Args)]
pub struct JudgedApp {
    /// The app folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Only these services (default: every service of the app): a name
    /// (every major the app holds of it) or one series (`tax.vat@1`).
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// Where build output goes (default: DIR/target).
    #[arg(long, value_name = "TARGET_DIR")]
    pub target_dir: Option<PathBuf>,
}

impl JudgedApp {
    /// Where build output goes.
    pub fn target_dir(&self) -> PathBuf {
        self.target_dir
            .clone()
            .unwrap_or_else(|| mote_app::default_target_dir(&self.dir))
    }

    /// Whether `service` is to be judged: every service when none was
    /// named, else one named by its key (`tax.vat@1`) or by its name (every
    /// series of it).
    pub fn selects(&self, service: &mote_app::LoadedService) -> bool {
        self.services.is_empty()
            || self
                .services
                .iter()
                .any(|s| s == service.key() || s == service.contract().service.name.as_str())
    }

    /// Builds and loads the app, and checks that each service asked for
    /// is one of it. Failures are rendered here; the `Err` is the exit
    /// status (2: the command could not run).
    pub(crate) fn load(
        &self,
    ) -> Result<(Vec<mote_app::LoadedService>, mote_runtime::Runtime), ExitCode> {
        let (dir, target_dir) = (&self.dir, self.target_dir());
        if !dir.is_dir() {
            eprintln!("error: {} is not a folder", dir.display());
            return Err(ExitCode::from(exit::USAGE));
        }
        let (runtime, loaded) =
            mote_app::load(dir, &target_dir, RuntimeConfig::default(), &mut |_| {}).map_err(
                |e| {
                    render_app_error(&e);
                    ExitCode::from(exit::USAGE)
                },
            )?;
        for name in &self.services {
            if !loaded.iter().any(|service| {
                service.key() == name || service.contract().service.name.as_str() == name
            }) {
                eprintln!("error: {} has no service named `{name}`", dir.display());
                return Err(ExitCode::from(exit::USAGE));
            }
        }
        Ok((loaded, runtime))
    }
}
