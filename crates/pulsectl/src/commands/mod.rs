//! One module per subcommand; each has an `Args` struct (clap derive) and a `run` function.
//! `score` works offline; every other command talks to the gateway at `--addr` and prints
//! tables, or JSON lines with `--json`.

pub mod advance_clock;
pub mod affinity;
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
use crate::gateway::Gateway;
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
    runtime.block_on(async {
        let gateway = Gateway::connect(&cli.addr).await?;
        run_remote(&gateway, output, &cli.command).await
    })
}

/// Runs a subcommand that talks to the gateway.
async fn run_remote(gateway: &Gateway, output: Output, command: &Command) -> Result<()> {
    match command {
        Command::Score(args) => score::run(args),
        Command::Ingest(args) => ingest::run(gateway, output, args).await,
        Command::Get(args) => get::run(gateway, output, args).await,
        Command::Segments(args) => segments::run(gateway, output, args).await,
        Command::Stats(args) => stats::run(gateway, output, args).await,
        Command::Migrations(args) => migrations::run(gateway, output, args).await,
        Command::Top(args) => top::run(gateway, output, args).await,
        Command::Affinity(args) => affinity::run(gateway, output, args).await,
        Command::Watch(args) => watch::run(gateway, output, args).await,
        Command::DefineSegment(args) => define_segment::run(gateway, output, args).await,
        Command::SegmentDefinitions => segment_definitions::run(gateway, output).await,
        Command::DeleteSegment(args) => delete_segment::run(gateway, output, args).await,
        Command::Fit(args) => fit::run(gateway, output, args).await,
        Command::RefreshRfm => refresh_rfm::run(gateway, output).await,
        Command::Config(args) => config::run(gateway, output, args).await,
        Command::AdvanceClock(args) => advance_clock::run(gateway, output, args).await,
        Command::Health(args) => health::run(gateway, output, args).await,
    }
}
