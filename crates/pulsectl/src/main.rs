//! # pulsectl — Pulse admin and query command line
//!
//! `main` only parses the command line and turns an error into a message and exit status 1;
//! each subcommand lives in `commands/`, one file per subcommand with its arguments.
//!
//! ## Layout
//! - `cli.rs`: the clap command tree ([`cli::Cli`], [`cli::Command`]).
//! - `commands/`: one module per subcommand (`score`: offline scoring of an events file).
//! - `jsonl.rs`: reading and writing JSON lines in the protobuf JSON mapping.

mod cli;
mod commands;
mod jsonl;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pulsectl: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
