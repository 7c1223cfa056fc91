//! One module per subcommand; each has an `Args` struct (clap derive) and a `run` function.
//! `score` works offline; every other command talks to the gateway at `--addr` and prints
//! tables, or JSON lines with `--json`.

pub mod advance_clock;
pub mod affinity;
pub mod cluster;
pub mod config;
pub mod define_segment;
pub mod delete_segment;
pub mod fit;
pub mod get;
pub mod health;
pub mod ingest;
pub mod migrations;
pub mod refresh_rfm;
pub mod score;
pub mod segment_definitions;
pub mod segments;
pub mod stats;
pub mod top;
pub mod watch;

use anyhow::{Context, Result};

use crate::cli::{Cli, Command};
use crate::output::Output;

/// Runs one subcommand to completion.
pub fn run(cli: Cli) -> Result<()> {
    let output = if cli.json { Output::Json } else { Output::Table };
    if let Command::Score(args) = &cli.command {
        return score::run(args);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_remote(&cli.addr, output, &cli.command))
}

/// Runs a subcommand that talks to the gateway at `address`; each connects once its local
/// input (a file to send) has been read and checked.
async fn run_remote(address: &str, output: Output, command: &Command) -> Result<()> {
    match command {
        Command::Score(args) => score::run(args),
        Command::Ingest(args) => ingest::run(address, output, args).await,
        Command::Get(args) => get::run(address, output, args).await,
        Command::Segments(args) => segments::run(address, output, args).await,
        Command::Stats(args) => stats::run(address, output, args).await,
        Command::Migrations(args) => migrations::run(address, output, args).await,
        Command::Top(args) => top::run(address, output, args).await,
        Command::Affinity(args) => affinity::run(address, output, args).await,
        Command::Watch(args) => watch::run(address, output, args).await,
        Command::DefineSegment(args) => define_segment::run(address, output, args).await,
        Command::SegmentDefinitions => segment_definitions::run(address, output).await,
        Command::DeleteSegment(args) => delete_segment::run(address, output, args).await,
        Command::Fit(args) => fit::run(address, output, args).await,
        Command::RefreshRfm => refresh_rfm::run(address, output).await,
        Command::Config(args) => config::run(address, output, args).await,
        Command::AdvanceClock(args) => advance_clock::run(address, output, args).await,
        Command::Health(args) => health::run(address, output, args).await,
        Command::Cluster(args) => cluster::run(address, output, args).await,
    }
}
