//! [`ShardCommand`]: what one raft entry of a data shard says, and what applying it answers.
//!
//! On the wire a command is a `pulse.internal.v1.ShardCommand` (protobuf: compact, and fields
//! can be added without breaking replicas that run an older version during an upgrade).

use prost::Message;
use pulse_proto::internal::v1 as wire;
use pulse_proto::{ProtoEnum, v1};
use pulse_scoring::{Event, EventKind, ScoringConfig, SegmentDefinition};

use crate::error::{NodeError, Result};

/// One state change of a shard.
#[derive(Debug, Clone, PartialEq)]
pub enum ShardCommand {
    /// Apply validated, normalised events (ids filled in) that arrived at the leader at
    /// `arrival_ms`.
    Ingest {
        /// The proposing leader's clock, Unix ms.
        arrival_ms: i64,
        /// The events, in request order.
        events: Vec<Event>,
    },
    /// Re-evaluate at most `max_customers` customers whose timer is due at `now_ms`.
    Tick {
        /// The proposing leader's clock, Unix ms.
        now_ms: i64,
        /// Bound on the work of this entry.
        max_customers: u32,
    },
    /// Erase a customer everywhere.
    DeleteCustomer {
        /// The customer.
        customer_id: String,
    },
    /// Install a scoring config and the full set of segment definitions.
    SetConfig {
        /// The config, versioned (boxed: it is much larger than the other commands).
        config: Box<ScoringConfig>,
        /// Every custom segment definition.
        segments: Vec<SegmentDefinition>,
    },
    /// Delete the oldest changelog entries recorded before `before_ms` (retention), at most
    /// `max_entries`, and record the newest deleted cursor.
    PruneChangelog {
        /// The proposer's clock minus the transition retention, Unix ms.
        before_ms: i64,
        /// Bound on the work of this entry.
        max_entries: u32,
    },
    /// Hash the replica's data of the shard (consistency check): applied at raft index `I`, it
    /// stores and answers `(I, hash)`, which is the same on every replica whose data of the
    /// shard is byte-identical. Carries nothing: the raft index comes with the entry.
    ComputeHash,
}

/// What applying a command answers to its proposer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutput {
    /// Per event, in order: `true` applied, `false` duplicate.
    Ingest {
        /// One flag per event of the command.
        applied: Vec<bool>,
    },
    /// A tick's work.
    Tick {
        /// Customers re-evaluated.
        evaluated: u32,
        /// Transitions recorded.
        transitions: u32,
    },
    /// Whether the deleted customer existed.
    Deleted {
        /// `false` when there was nothing to erase.
        existed: bool,
    },
    /// The config is installed.
    ConfigSet,
    /// Changelog entries deleted by retention.
    Pruned {
        /// Entries deleted.
        entries: u32,
    },
    /// The consistency hash of the replica's data of the shard, as stored for
    /// [`ShardReader::consistency_hash`](crate::ShardReader::consistency_hash).
    ConsistencyHash {
        /// Raft index of the `ComputeHash` entry: the hash covers the entries before it.
        index: u64,
        /// xxh3_64 of the shard's data in key order (see `consistency`).
        hash: u64,
    },
    /// An entry that is not a command (raft's empty entries): nothing happened.
    Nothing,
}

impl ShardCommand {
    /// The protobuf encoding.
    pub fn encode(&self) -> Vec<u8> {
        let command = match self {
            ShardCommand::Ingest { arrival_ms, events } => {
                wire::shard_command::Command::Ingest(wire::IngestCommand {
                    arrival_ms: *arrival_ms,
                    events: events.iter().map(v1::Event::from).collect(),
                })
            }
            ShardCommand::Tick { now_ms, max_customers } => {
                wire::shard_command::Command::Tick(wire::TickCommand {
                    now_ms: *now_ms,
                    max_customers: *max_customers,
                })
            }
            ShardCommand::DeleteCustomer { customer_id } => {
                wire::shard_command::Command::DeleteCustomer(wire::DeleteCustomerCommand {
                    customer_id: customer_id.clone(),
                })
            }
            ShardCommand::SetConfig { config, segments } => {
                wire::shard_command::Command::SetConfig(wire::SetConfigCommand {
                    config: Some(v1::ScoringConfig::from(config.as_ref())),
                    segments: segments.iter().map(v1::SegmentDefinition::from).collect(),
                })
            }
            ShardCommand::PruneChangelog { before_ms, max_entries } => {
                wire::shard_command::Command::PruneChangelog(wire::PruneChangelogCommand {
                    before_ms: *before_ms,
                    max_entries: *max_entries,
                })
            }
            ShardCommand::ComputeHash => {
                wire::shard_command::Command::ComputeHash(wire::ComputeHashCommand {})
            }
        };
        wire::ShardCommand { command: Some(command) }.encode_to_vec()
    }

    /// Decodes a committed entry. Events are trusted (they were validated before proposing),
    /// only their structure is checked.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt = |reason: String| NodeError::Corrupt { what: "shard command", reason };
        let command = wire::ShardCommand::decode(bytes).map_err(|e| corrupt(e.to_string()))?;
        match command.command {
            Some(wire::shard_command::Command::Ingest(ingest)) => {
                let mut events = Vec::with_capacity(ingest.events.len());
                for (index, event) in ingest.events.into_iter().enumerate() {
                    let kind = EventKind::from_proto_i32(event.kind, "kind")
                        .map_err(|e| corrupt(format!("event {index}: {e}")))?;
                    events.push(Event {
                        customer_id: event.customer_id,
                        event_id: event.event_id,
                        timestamp_ms: event.timestamp_ms,
                        kind,
                        category: Some(event.category).filter(|c| !c.is_empty()),
                        amount: event.amount,
                        channel: Some(event.channel).filter(|c| !c.is_empty()),
                    });
                }
                Ok(ShardCommand::Ingest { arrival_ms: ingest.arrival_ms, events })
            }
            Some(wire::shard_command::Command::Tick(tick)) => {
                Ok(ShardCommand::Tick { now_ms: tick.now_ms, max_customers: tick.max_customers })
            }
            Some(wire::shard_command::Command::DeleteCustomer(delete)) => {
                Ok(ShardCommand::DeleteCustomer { customer_id: delete.customer_id })
            }
            Some(wire::shard_command::Command::SetConfig(set)) => {
                let config = set.config.ok_or_else(|| corrupt("config missing".into()))?;
                let config = ScoringConfig::try_from(config).map_err(|e| corrupt(e.to_string()))?;
                let segments = set.segments.into_iter().map(SegmentDefinition::from).collect();
                Ok(ShardCommand::SetConfig { config: Box::new(config), segments })
            }
            Some(wire::shard_command::Command::PruneChangelog(prune)) => Ok(ShardCommand::PruneChangelog {
                before_ms: prune.before_ms,
                max_entries: prune.max_entries,
            }),
            Some(wire::shard_command::Command::ComputeHash(wire::ComputeHashCommand {})) => {
                Ok(ShardCommand::ComputeHash)
            }
            None => Err(corrupt("empty command".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_round_trips() {
        let event = Event {
            customer_id: "c1".into(),
            event_id: "e1".into(),
            timestamp_ms: 42,
            kind: EventKind::Purchase,
            category: Some("books".into()),
            amount: 9.5,
            channel: None,
        };
        let commands = [
            ShardCommand::Ingest { arrival_ms: 7, events: vec![event] },
            ShardCommand::Tick { now_ms: 9, max_customers: 100 },
            ShardCommand::DeleteCustomer { customer_id: "c1".into() },
            ShardCommand::SetConfig {
                config: Box::new(ScoringConfig { version: 3, ..ScoringConfig::default() }),
                segments: vec![SegmentDefinition {
                    id: "vip".into(),
                    name: "VIP".into(),
                    enter: "activity_index >= 70".into(),
                    exit: String::new(),
                }],
            },
            ShardCommand::PruneChangelog { before_ms: 1_000, max_entries: 500 },
            ShardCommand::ComputeHash,
        ];
        for command in commands {
            assert_eq!(ShardCommand::decode(&command.encode()).unwrap(), command);
        }
        assert!(ShardCommand::decode(&[0xff, 0x01]).is_err());
        assert!(ShardCommand::decode(&[]).is_err(), "an empty command is corrupt");
    }
}
