//! [`RaftConfig`]: the tuning of the runtime and of every raft group it hosts.

use serde::Deserialize;

use crate::error::{RaftError, Result};

/// How the Ready loop ticks, batches and compacts, and how each shard's raft group behaves.
///
/// Defaults are in [`Default`] only. Call [`RaftConfig::validate`] once at startup;
/// [`RaftRuntime::start`](crate::RaftRuntime::start) calls it too. Durations are in
/// milliseconds, raft timeouts in ticks (one tick every `tick_interval_ms`), sizes in bytes.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftConfig {
    /// Time between two raft ticks, in milliseconds (monotonic clock). Also the resolution of
    /// proposal and read deadlines: they are checked at least once per tick.
    pub tick_interval_ms: u64,
    /// Ticks a follower waits without hearing from a leader before it starts a (pre-)vote. The
    /// actual timeout is randomised in `[election_ticks, 2 × election_ticks)`. Must be larger
    /// than `heartbeat_ticks`; raft-rs suggests 10 × heartbeat.
    pub election_ticks: usize,
    /// Ticks between two heartbeats of a leader.
    pub heartbeat_ticks: usize,
    /// Largest append message a leader sends, in bytes (≈ 1 MiB): bounds catch-up bursts.
    /// Never 0, which raft-rs reads as "one entry per message".
    pub max_size_per_msg_bytes: u64,
    /// Append messages a leader keeps in flight per follower before waiting for acks.
    pub max_inflight_msgs: usize,
    /// Bytes of proposed but uncommitted entries a leader accepts; beyond it, proposals fail
    /// with [`ProposeError::Busy`](crate::ProposeError::Busy) (back-pressure instead of an
    /// unbounded log when followers or the disk lag).
    pub max_uncommitted_size_bytes: u64,
    /// Bytes of committed entries handed to the state machine in one Ready, so that one shard
    /// catching up cannot stall the loop for every other shard.
    pub max_committed_size_per_ready_bytes: u64,
    /// Log compaction starts when `applied_index − first_index` exceeds this many entries.
    pub compact_threshold_entries: u64,
    /// Entries kept below the applied index when compacting, so that a briefly lagging
    /// follower catches up from the log rather than by snapshot. Smaller than
    /// `compact_threshold_entries`.
    pub compact_keep_entries: u64,
    /// How far behind the applied index a leader keeps the log for its slowest follower: a
    /// follower lagging less catches up from the log, one lagging more (or down) gets a
    /// snapshot, so a dead follower cannot make the log grow without bound. At least
    /// `compact_keep_entries`.
    pub compact_max_lag_entries: u64,
    /// Linearizable reads on the leader's lease instead of a ReadIndex round of heartbeats
    /// (raft-rs `ReadOnlyOption::LeaseBased`): faster, but correct only while clocks run at
    /// the same rate — the lease is shorter than the election timeout and `check_quorum` is
    /// always on; a leader handing leadership over serves no lease read. Off by default.
    pub lease_reads: bool,
    /// Consecutive quiet ticks after which a leader hibernates its group: it and its followers
    /// stop ticking until something happens (see the `hibernation` module). 0 never hibernates;
    /// ignored with `lease_reads` (a sleeping leader cannot vouch for its lease).
    pub hibernate_after_ticks: usize,
    /// Inputs (proposals, messages, commands) taken from the inbox before a round runs: bounds
    /// the latency of a round while letting a burst share one fsync (group commit).
    pub max_inputs_per_round: usize,
}

impl Default for RaftConfig {
    fn default() -> RaftConfig {
        RaftConfig {
            tick_interval_ms: 100,
            election_ticks: 10,
            heartbeat_ticks: 2,
            max_size_per_msg_bytes: 1 << 20,
            max_inflight_msgs: 256,
            max_uncommitted_size_bytes: 64 << 20,
            max_committed_size_per_ready_bytes: 16 << 20,
            compact_threshold_entries: 10_000,
            compact_keep_entries: 1_000,
            compact_max_lag_entries: 100_000,
            lease_reads: false,
            hibernate_after_ticks: 20,
            max_inputs_per_round: 4_096,
        }
    }
}

impl RaftConfig {
    /// Checks every field and their relations; the error names the first bad field.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &'static str, reason: String| Err(RaftError::InvalidConfig { field, reason });
        if self.tick_interval_ms == 0 {
            return invalid("tick_interval_ms", "must be positive".into());
        }
        if self.heartbeat_ticks == 0 {
            return invalid("heartbeat_ticks", "must be positive".into());
        }
        if self.election_ticks <= self.heartbeat_ticks {
            return invalid(
                "election_ticks",
                format!("must be larger than heartbeat_ticks ({})", self.heartbeat_ticks),
            );
        }
        if self.max_size_per_msg_bytes == 0 {
            return invalid(
                "max_size_per_msg_bytes",
                "must be positive (0 means one entry per message)".into(),
            );
        }
        if self.max_inflight_msgs == 0 {
            return invalid("max_inflight_msgs", "must be positive".into());
        }
        if self.max_uncommitted_size_bytes < self.max_size_per_msg_bytes {
            return invalid(
                "max_uncommitted_size_bytes",
                format!("must be at least max_size_per_msg_bytes ({})", self.max_size_per_msg_bytes),
            );
        }
        if self.max_committed_size_per_ready_bytes == 0 {
            return invalid("max_committed_size_per_ready_bytes", "must be positive".into());
        }
        if self.compact_keep_entries >= self.compact_threshold_entries {
            return invalid(
                "compact_keep_entries",
                format!(
                    "must be smaller than compact_threshold_entries ({})",
                    self.compact_threshold_entries
                ),
            );
        }
        if self.compact_max_lag_entries < self.compact_keep_entries {
            return invalid(
                "compact_max_lag_entries",
                format!("must be at least compact_keep_entries ({})", self.compact_keep_entries),
            );
        }
        if self.max_inputs_per_round == 0 {
            return invalid("max_inputs_per_round", "must be positive".into());
        }
        Ok(())
    }

    /// Quiet ticks before a leader hibernates its group, if it ever does.
    pub(crate) fn hibernation_ticks(&self) -> Option<usize> {
        (self.hibernate_after_ticks > 0 && !self.lease_reads).then_some(self.hibernate_after_ticks)
    }

    /// The raft-rs configuration of replica `node_id` whose state machine has applied
    /// `applied_index` (DESIGN.md: raft 0.7's defaults are not production).
    pub(crate) fn raft_config(&self, node_id: u64, applied_index: u64) -> raft::Config {
        raft::Config {
            id: node_id,
            election_tick: self.election_ticks,
            heartbeat_tick: self.heartbeat_ticks,
            applied: applied_index,
            max_size_per_msg: self.max_size_per_msg_bytes,
            max_inflight_msgs: self.max_inflight_msgs,
            check_quorum: true,
            pre_vote: true,
            max_uncommitted_size: self.max_uncommitted_size_bytes,
            max_committed_size_per_ready: self.max_committed_size_per_ready_bytes,
            read_only_option: if self.lease_reads {
                raft::ReadOnlyOption::LeaseBased
            } else {
                raft::ReadOnlyOption::Safe
            },
            ..raft::Config::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_production_minded() {
        let config = RaftConfig::default();
        config.validate().unwrap();
        let raft = config.raft_config(7, 42);
        raft.validate().unwrap();
        assert!(raft.pre_vote && raft.check_quorum);
        assert_eq!((raft.id, raft.applied, raft.max_size_per_msg), (7, 42, 1 << 20));
        assert_ne!(raft.max_uncommitted_size, raft::NO_LIMIT);
        assert_eq!(config.hibernation_ticks(), Some(20));
    }

    #[test]
    fn lease_reads_turn_hibernation_off() {
        let config = RaftConfig { lease_reads: true, ..RaftConfig::default() };
        assert_eq!(config.hibernation_ticks(), None);
        let config = RaftConfig { hibernate_after_ticks: 0, ..RaftConfig::default() };
        assert_eq!(config.hibernation_ticks(), None);
    }

    #[test]
    fn validate_names_the_bad_field() {
        type Breaker = fn(&mut RaftConfig);
        let cases: [(&str, Breaker); 6] = [
            ("tick_interval_ms", |c| c.tick_interval_ms = 0),
            ("election_ticks", |c| c.election_ticks = c.heartbeat_ticks),
            ("max_size_per_msg_bytes", |c| c.max_size_per_msg_bytes = 0),
            ("max_uncommitted_size_bytes", |c| c.max_uncommitted_size_bytes = 1),
            ("compact_keep_entries", |c| c.compact_keep_entries = c.compact_threshold_entries),
            ("compact_max_lag_entries", |c| c.compact_max_lag_entries = c.compact_keep_entries - 1),
        ];
        for (expected, break_it) in cases {
            let mut config = RaftConfig::default();
            break_it(&mut config);
            match config.validate() {
                Err(RaftError::InvalidConfig { field, .. }) => assert_eq!(field, expected),
                other => panic!("{expected}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let error =
            serde_json::from_str::<RaftConfig>(r#"{"tick_interval_ms": 10, "tick_ms": 5}"#).unwrap_err();
        assert!(error.to_string().contains("tick_ms"), "{error}");
        let config: RaftConfig = serde_json::from_str(r#"{"tick_interval_ms": 10}"#).unwrap();
        assert_eq!(config, RaftConfig { tick_interval_ms: 10, ..RaftConfig::default() });
    }
}
