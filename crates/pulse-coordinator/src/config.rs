//! [`ServerConfig`]: the settings of a `pulsed` server, defaults in one place, one validation.

use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Result, ServerError};

/// Where the server's clock comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockKind {
    /// The system clock (default).
    #[default]
    Wall,
    /// A clock moved only by `AdminService.AdvanceClock` (backfills, deterministic tests).
    Manual,
}

/// The settings of a standalone server, as read from a TOML file (unknown keys are errors);
/// command-line flags and `PULSE_*` environment variables override the file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Directory of the node's RocksDB.
    pub data_dir: PathBuf,
    /// gRPC listen address, `HOST:PORT`.
    pub listen: String,
    /// Wall or manual clock.
    pub clock: ClockKind,
    /// Initial time of a manual clock, Unix ms (0 = the wall clock at start).
    pub manual_clock_start_ms: i64,
    /// Shards a new node pre-splits the hash space into.
    pub initial_shards: u64,
    /// Interval between `Tick` entries proposed to every shard, ms.
    pub tick_interval_ms: u64,
    /// Most customers one `Tick` entry re-evaluates.
    pub tick_max_customers: u32,
    /// Deadline of one raft proposal or read index, ms.
    pub propose_timeout_ms: u64,
    /// How long recorded transitions are kept (the reach of `GetMigrationMatrix.from_ms` and of
    /// a `WatchTransitions` resume token), ms.
    pub transition_retention_ms: i64,
    /// Interval between periodic recomputations of the RFM quintile edges from every shard
    /// (installed as a new scoring config version when any customer has a purchase), ms;
    /// `AdminService.RefreshRfmEdges` refreshes at once.
    pub rfm_refresh_interval_ms: u64,
    /// Cluster roles: the address other processes reach this one at, `HOST:PORT` (empty = the
    /// listen address).
    pub advertise: String,
    /// `pulsed coordinator`: the addresses of every coordinator, this one included (empty = a
    /// single coordinator).
    pub peers: Vec<String>,
    /// `pulsed node`: coordinator addresses to register with.
    pub join: Vec<String>,
    /// Replicas per shard in a cluster; the coordinator creates the shards once this many
    /// nodes are up.
    pub replication_factor: u64,
    /// Interval between two heartbeats of a storage node to the coordinator, ms.
    pub heartbeat_interval_ms: u64,
    /// A node silent for this long is DOWN and its replicas are re-created on other nodes, ms.
    pub node_down_after_ms: u64,
    /// Coordinator: replica moves (scale out, drain, node loss, balancing) in flight at once.
    pub max_concurrent_moves: u32,
    /// Coordinator: interval between two rounds of the scheduler, ms.
    pub schedule_interval_ms: u64,
    /// Deadline of a request the gateway forwards to another process, retries included, ms.
    pub request_timeout_ms: u64,
    /// Linearizable reads on the shard leader's lease instead of a ReadIndex round (see
    /// `pulse_raft::RaftConfig::lease_reads`); off by default.
    pub lease_reads: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            listen: "127.0.0.1:7070".to_owned(),
            clock: ClockKind::Wall,
            manual_clock_start_ms: 0,
            initial_shards: 16,
            tick_interval_ms: 1_000,
            tick_max_customers: 10_000,
            propose_timeout_ms: 10_000,
            transition_retention_ms: 30 * 86_400_000,
            rfm_refresh_interval_ms: 600_000,
            advertise: String::new(),
            peers: Vec::new(),
            join: Vec::new(),
            replication_factor: 3,
            heartbeat_interval_ms: 1_000,
            node_down_after_ms: 30_000,
            max_concurrent_moves: 4,
            schedule_interval_ms: 1_000,
            request_timeout_ms: 10_000,
            lease_reads: false,
        }
    }
}

impl ServerConfig {
    /// Checks every setting once, at startup.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &'static str, reason: &str| {
            Err(ServerError::InvalidConfig { field, reason: reason.to_owned() })
        };
        if self.data_dir.as_os_str().is_empty() {
            return invalid("data_dir", "must not be empty");
        }
        if self.listen.is_empty() {
            return invalid("listen", "must not be empty");
        }
        if !(1..=4096).contains(&self.initial_shards) {
            return invalid("initial_shards", "must be within 1..=4096");
        }
        if self.tick_interval_ms == 0 {
            return invalid("tick_interval_ms", "must be positive");
        }
        if self.tick_max_customers == 0 {
            return invalid("tick_max_customers", "must be positive");
        }
        if self.propose_timeout_ms == 0 {
            return invalid("propose_timeout_ms", "must be positive");
        }
        if self.transition_retention_ms <= 0 {
            return invalid("transition_retention_ms", "must be positive");
        }
        if self.rfm_refresh_interval_ms == 0 {
            return invalid("rfm_refresh_interval_ms", "must be positive");
        }
        if self.manual_clock_start_ms < 0 {
            return invalid("manual_clock_start_ms", "must not be negative");
        }
        if !(1..=7).contains(&self.replication_factor) {
            return invalid("replication_factor", "must be within 1..=7");
        }
        if self.heartbeat_interval_ms == 0 {
            return invalid("heartbeat_interval_ms", "must be positive");
        }
        if self.node_down_after_ms <= self.heartbeat_interval_ms {
            return invalid("node_down_after_ms", "must be longer than heartbeat_interval_ms");
        }
        if !(1..=64).contains(&self.max_concurrent_moves) {
            return invalid("max_concurrent_moves", "must be within 1..=64");
        }
        if self.schedule_interval_ms == 0 {
            return invalid("schedule_interval_ms", "must be positive");
        }
        if self.request_timeout_ms == 0 {
            return invalid("request_timeout_ms", "must be positive");
        }
        if self.peers.len() > 7 || self.peers.iter().any(String::is_empty) {
            return invalid("peers", "must list at most 7 non-empty HOST:PORT addresses");
        }
        if self.join.iter().any(String::is_empty) {
            return invalid("join", "must list non-empty HOST:PORT addresses");
        }
        Ok(())
    }

    /// The raft settings of the shard replicas.
    pub fn raft(&self) -> pulse_raft::RaftConfig {
        pulse_raft::RaftConfig { lease_reads: self.lease_reads, ..pulse_raft::RaftConfig::default() }
    }

    /// The address other processes reach this one at: `advertise`, else `listen`.
    pub fn advertised_address(&self) -> &str {
        if self.advertise.is_empty() { &self.listen } else { &self.advertise }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_shards_are_not() {
        ServerConfig::default().validate().unwrap();
        let config = ServerConfig { initial_shards: 0, ..ServerConfig::default() };
        assert!(matches!(config.validate(), Err(ServerError::InvalidConfig { field: "initial_shards", .. })));
        let config = ServerConfig { rfm_refresh_interval_ms: 0, ..ServerConfig::default() };
        assert!(matches!(
            config.validate(),
            Err(ServerError::InvalidConfig { field: "rfm_refresh_interval_ms", .. })
        ));
    }
}
