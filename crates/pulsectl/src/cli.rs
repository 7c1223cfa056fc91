//! The command tree. Each subcommand's arguments are defined next to its implementation in
//! `commands/`; this file only lists the subcommands.

use clap::{Parser, Subcommand};

use crate::commands::score::ScoreArgs;

/// Pulse admin and query command line.
#[derive(Debug, Parser)]
#[command(name = "pulsectl", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scores a file of events offline (no server) and prints one pulse.v1.CustomerActivity
    /// JSON object per customer, sorted by customer id.
    Score(ScoreArgs),
}
