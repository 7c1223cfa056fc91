//! The command line: flags and `PULSE_*` environment variables override the config file.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use pulse_coordinator::{ClockKind, ServerConfig};

/// The Pulse server.
#[derive(Debug, Parser)]
#[command(name = "pulsed", version, about)]
pub struct Cli {
    /// What this process runs.
    #[command(subcommand)]
    pub command: Command,
}

/// The roles of a `pulsed` process.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Coordinator and one storage node in one process, replication factor 1.
    Standalone(StandaloneArgs),
    /// A storage node joining a cluster (arrives with issue 5).
    Node(FutureArgs),
    /// A coordinator of a cluster (arrives with issue 5).
    Coordinator(FutureArgs),
}

/// Arguments of roles that do not exist yet: accepted, then refused with a clear message.
#[derive(Debug, Args)]
pub struct FutureArgs {
    /// Ignored.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Where time comes from.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ClockArg {
    /// The system clock.
    Wall,
    /// Moved only by `AdminService.AdvanceClock`.
    Manual,
}

/// `pulsed standalone`.
#[derive(Debug, Args)]
pub struct StandaloneArgs {
    /// Directory of the node's RocksDB (required here or in the config file).
    #[arg(long, env = "PULSE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// gRPC listen address, HOST:PORT [default: 127.0.0.1:7070].
    #[arg(long, env = "PULSE_LISTEN")]
    pub listen: Option<String>,
    /// Wall clock, or a manual clock moved by `AdminService.AdvanceClock` [default: wall].
    #[arg(long, env = "PULSE_CLOCK", value_enum)]
    pub clock: Option<ClockArg>,
    /// A TOML config file (keys of `ServerConfig`; unknown keys are errors).
    #[arg(long, env = "PULSE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Prometheus metrics listen address, HOST:PORT (`GET /metrics`); none by default.
    #[arg(long, env = "PULSE_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
}

impl StandaloneArgs {
    /// The config file (or the defaults), overridden by flags and environment, validated.
    pub fn config(&self) -> anyhow::Result<ServerConfig> {
        let (mut config, data_dir_in_file) = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                let config = toml::from_str::<ServerConfig>(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?;
                let has_data_dir = text.parse::<toml::Table>().is_ok_and(|t| t.contains_key("data_dir"));
                (config, has_data_dir)
            }
            None => (ServerConfig::default(), false),
        };
        match &self.data_dir {
            Some(dir) => config.data_dir = dir.clone(),
            None if data_dir_in_file => {}
            None => anyhow::bail!("--data-dir (or PULSE_DATA_DIR, or data_dir in --config) is required"),
        }
        if let Some(listen) = &self.listen {
            config.listen = listen.clone();
        }
        if let Some(clock) = self.clock {
            config.clock = match clock {
                ClockArg::Wall => ClockKind::Wall,
                ClockArg::Manual => ClockKind::Manual,
            };
        }
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_override_the_file_and_unknown_keys_fail() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pulse.toml");
        std::fs::write(&file, "data_dir = \"/from/file\"\nlisten = \"0.0.0.0:1\"\ntick_interval_ms = 250\n")
            .unwrap();
        let cli = Cli::parse_from([
            "pulsed",
            "standalone",
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:9",
            "--clock",
            "manual",
        ]);
        let Command::Standalone(args) = cli.command else { panic!("standalone expected") };
        let config = args.config().unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/from/file"));
        assert_eq!(config.listen, "127.0.0.1:9");
        assert_eq!(config.clock, ClockKind::Manual);
        assert_eq!(config.tick_interval_ms, 250);

        std::fs::write(&file, "data_dir = \"x\"\nshards = 3\n").unwrap();
        let cli = Cli::parse_from(["pulsed", "standalone", "--config", file.to_str().unwrap()]);
        let Command::Standalone(args) = cli.command else { panic!("standalone expected") };
        assert!(args.config().is_err(), "unknown key rejected");
    }
}
