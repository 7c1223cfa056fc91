//! # pulsectl — Pulse admin and query command line
//!
//! `main` only parses the command line and turns an error into a message and exit status 1;
//! each subcommand lives in `commands/`, one file per subcommand with its arguments.
//!
//! ## Layout
//! - `cli.rs`: the clap command tree ([`cli::Cli`], [`cli::Command`]) and the global flags
//!   `--addr` and `--json`.
//! - `commands/`: one module per subcommand (`score` scores offline; every other one is one
//!   RPC, or a stream of them, against a gateway).
//! - `gateway.rs`: the connection to a gateway and its service clients.
//! - `rpc_error.rs`: a failed RPC as a message: code, message and BadRequest field violations.
//! - `output.rs`: tables for people, JSON lines for machines; time and enum formatting.
//! - `values.rs`: parsers of argument values (dimensions, event kinds, durations, hex).
//! - `jsonl.rs`: reading and writing JSON lines in the protobuf JSON mapping.
//! - `csv_events.rs`: reading events from CSV.

mod cli;
mod commands;
mod csv_events;
mod gateway;
mod jsonl;
mod output;
mod rpc_error;
mod values;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pulsectl: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
