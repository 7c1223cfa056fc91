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
    /// A storage node of a cluster: hosts shard replicas, registers with the coordinators.
    Node(NodeArgs),
    /// A coordinator of a cluster (1 or 3): keeps the metadata, places the shards.
    Coordinator(CoordinatorArgs),
}

/// `pulsed node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The settings every role has.
    #[command(flatten)]
    pub server: StandaloneArgs,
    /// Coordinator addresses to register with, HOST:PORT[,HOST:PORT].
    #[arg(long, env = "PULSE_JOIN", value_delimiter = ',')]
    pub join: Vec<String>,
    /// The address other processes reach this one at [default: --listen].
    #[arg(long, env = "PULSE_ADVERTISE")]
    pub advertise: Option<String>,
}

/// `pulsed coordinator`.
#[derive(Debug, Args)]
pub struct CoordinatorArgs {
    /// The settings every role has.
    #[command(flatten)]
    pub server: StandaloneArgs,
    /// Every coordinator's address, this one included, HOST:PORT[,HOST:PORT] (none: a single
    /// coordinator). The order must be the same on every coordinator.
    #[arg(long, env = "PULSE_PEERS", value_delimiter = ',')]
    pub peers: Vec<String>,
    /// The address other processes reach this one at [default: --listen].
    #[arg(long, env = "PULSE_ADVERTISE")]
    pub advertise: Option<String>,
    /// Replicas per shard [default: 3].
    #[arg(long, env = "PULSE_REPLICATION_FACTOR")]
    pub replication_factor: Option<u64>,
    /// Shards of a new cluster [default: 16].
    #[arg(long, env = "PULSE_INITIAL_SHARDS")]
    pub initial_shards: Option<u64>,
}

impl NodeArgs {
    /// The config of `pulsed node`, validated.
    pub fn config(&self) -> anyhow::Result<ServerConfig> {
        let mut config = self.server.config()?;
        if !self.join.is_empty() {
            config.join.clone_from(&self.join);
        }
        if let Some(advertise) = &self.advertise {
            config.advertise.clone_from(advertise);
        }
        if config.join.is_empty() {
            anyhow::bail!(
                "--join COORDINATOR[,COORDINATOR] (or PULSE_JOIN, or join in --config) is required"
            );
        }
        config.validate()?;
        Ok(config)
    }
}

impl CoordinatorArgs {
    /// The config of `pulsed coordinator`, validated.
    pub fn config(&self) -> anyhow::Result<ServerConfig> {
        let mut config = self.server.config()?;
        if !self.peers.is_empty() {
            config.peers.clone_from(&self.peers);
        }
        if let Some(advertise) = &self.advertise {
            config.advertise.clone_from(advertise);
        }
        if let Some(replication_factor) = self.replication_factor {
            config.replication_factor = replication_factor;
        }
        if let Some(initial_shards) = self.initial_shards {
            config.initial_shards = initial_shards;
        }
        config.validate()?;
        Ok(config)
    }
}

/// Where time comes from.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ClockArg {
    /// The system clock.
    Wall,
    /// Moved only by `AdminService.AdvanceClock`.
    Manual,
}

/// `pulsed standalone`, and the settings every role has.
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

    #[test]
    fn cluster_roles_take_their_flags() {
        let cli = Cli::parse_from([
            "pulsed",
            "node",
            "--data-dir",
            "d",
            "--listen",
            "127.0.0.1:1",
            "--join",
            "127.0.0.1:2,127.0.0.1:3",
        ]);
        let Command::Node(args) = cli.command else { panic!("node expected") };
        let config = args.config().unwrap();
        assert_eq!(config.join, vec!["127.0.0.1:2", "127.0.0.1:3"]);
        assert_eq!(config.advertised_address(), "127.0.0.1:1");
        let cli = Cli::parse_from(["pulsed", "node", "--data-dir", "d"]);
        let Command::Node(args) = cli.command else { panic!("node expected") };
        assert!(args.config().unwrap_err().to_string().contains("--join"));

        let cli = Cli::parse_from([
            "pulsed",
            "coordinator",
            "--data-dir",
            "c",
            "--listen",
            "0.0.0.0:5",
            "--advertise",
            "10.0.0.1:5",
            "--peers",
            "10.0.0.1:5,10.0.0.2:5",
            "--replication-factor",
            "2",
        ]);
        let Command::Coordinator(args) = cli.command else { panic!("coordinator expected") };
        let config = args.config().unwrap();
        assert_eq!(config.peers.len(), 2);
        assert_eq!(config.advertised_address(), "10.0.0.1:5");
        assert_eq!(config.replication_factor, 2);
    }
}
