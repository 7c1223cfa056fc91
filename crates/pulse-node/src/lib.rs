//! # pulse-node — the shard state machine
//!
//! A data shard owns a range of the customer hash space. Its raft log carries
//! [`ShardCommand`]s; applying one, in log order, on every replica, changes:
//!
//! ```text
//!  CF state      h | customer_id          → StoredCustomer (next timer + CustomerState)
//!                h | customer_id | 0xFF   → RecentEventIds (legacy window, moved to dedup)
//!  CF dedup      h | customer_id | 0xFF | xxh3(event_id) → arrival_ms (deduplication window)
//!  CF index      dimension | segment | 0x00 | customer_id → since_ms
//!  CF timers     shard | due_ms | h | customer_id         → ()
//!  CF changelog  shard | raft_index | seq                 → Transition
//!  CF meta       shard | 0x01 → apply index;  shard | 0x02 → config + segment definitions
//!                shard | 0x03 → next state key to re-evaluate under a new config (cursor)
//!                shard | 0x04 → cursor of the newest changelog entry pruned by retention
//!                shard | 0x05 → last consistency hash: raft_index | xxh3_64 (ComputeHash)
//! ```
//!
//! all in ONE write batch per entry, together with the apply index, so a crash between entries
//! never leaves half an entry applied and restarting never applies an entry twice.
//!
//! ## Layout
//! - [`ShardCommand`]: what an entry says, and its wire encoding (`pulse.internal.v1`).
//! - `keys`: the key codecs above.
//! - [`ShardLayout`]: the shards a node hosts, persisted at its first start.
//! - `stored_customer`: the value of a customer's state key.
//! - `dedup`: the deduplication window, one `dedup` key per event id.
//! - [`ShardStateMachine`]: apply an entry; the read side (activity at any `as_of`).
//! - [`NodeStateMachine`]: the node's shards behind pulse-raft's `StateMachine`; [`ShardOpener`]
//!   adds shards once it runs inside the raft runtime (cluster nodes).
//! - [`ShardReader`]: a concurrent read view of a shard for the gateway (the raft loop owns the
//!   state machines; readers share their engine and the scoring config in force).
//! - `model_inputs`: per-shard inputs of the model fits (purchase histories, RFM sketches).
//! - `shard_snapshot`: state snapshots of a shard (what a lagging or new replica installs;
//!   [`ShardStateMachine::snapshot_data`] / [`ShardStateMachine::install_snapshot`]).
//! - `consistency`: the consistency hash of a shard replica's data (`ComputeHash` entries,
//!   [`ShardReader::consistency_hash`]).
//! - `aggregate`: per-shard partials of the collective queries ([`SegmentStatsPartial`],
//!   [`MigrationCounts`], [`TopK`], [`AffinityPartial`]) as `ShardReader` methods.
//! - `transport`: the raft transport between nodes over gRPC — [`GrpcTransport`] (sending, one
//!   stream per peer) and [`RaftTransportService`] (receiving), with [`GrpcTransportConfig`].
//! - [`NodeError`]: what can fail.

mod aggregate;
mod command;
mod consistency;
mod dedup;
mod error;
mod keys;
mod layout;
mod model_inputs;
mod node_state_machine;
mod reader;
mod shard;
mod shard_snapshot;
mod stored_customer;
mod transport;

pub use aggregate::{AffinityPartial, MigrationCounts, Ranked, SegmentStatsPartial, SegmentTally, TopK};
pub use command::{ApplyOutput, ShardCommand};
pub use error::{NodeError, Result};
pub use keys::{ShardRange, changelog_prefix, index_segment_prefix};
pub use layout::ShardLayout;
pub use node_state_machine::{AppliedListener, NodeStateMachine, ShardOpener};
pub use reader::{Scoring, ShardReader};
pub use shard::{ChangelogEntry, ShardConfig, ShardStateMachine};
pub use stored_customer::StoredCustomer;
pub use transport::{
    GrpcTransport, GrpcTransportConfig, MAX_DECODING_MESSAGE_BYTES, RaftTransportService, TransportError,
    TransportResult,
};
