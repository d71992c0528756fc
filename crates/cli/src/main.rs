//! The `mote` command. It parses arguments and renders results; every piece
//! of logic lives in the library crates.

mod check;
mod discover;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// mote: nanoservices you can trust without reading their code.
///
/// Each service owns one operation and is described by a contract
/// (contract.toml): JSON Schemas for input and output, every error with the
/// exact condition it is returned on, CEL pre- and postconditions, examples
/// and declared effects. mote checks contracts, and verifies and enforces
/// them on every call.
#[derive(Debug, Parser)]
#[command(name = "mote", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check contracts: well-formed, self-consistent, examples agreeing with
    /// schemas, requires, ensures and the error partition.
    ///
    /// Each PATH is a contract file or a folder searched for contract.toml
    /// files. Every problem in every contract is reported, not just the
    /// first. Exit status: 0 all contracts are valid, 1 some have errors,
    /// 2 the command could not run (no such path, no contract found).
    Check {
        /// Contract files or folders to search for contract.toml.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Output format: a report for people, or one JSON document for tools.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Rendered diagnostics with source snippets.
    Human,
    /// A single JSON document on stdout.
    Json,
}

/// Exit statuses shared by every command.
pub(crate) mod exit {
    /// The command ran and found problems in its input.
    pub const PROBLEMS: u8 = 1;
    /// The command could not run.
    pub const USAGE: u8 = 2;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { paths, format } => check::run(&paths, format),
    }
}
