//! One module per subcommand; each has an `Args` struct (clap derive) and a `run` function.

pub mod score;

use anyhow::Result;

use crate::cli::Command;

/// Runs one subcommand to completion.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Score(args) => score::run(&args),
    }
}
