//! # pulse-raft — the multi-raft runtime of a node
//!
//! Every shard is a raft group (raft-rs); a node hosts at most one replica of a shard, as a
//! `RawNode` whose raft id is the node id. All replicas of a node are driven by ONE Ready loop
//! on a dedicated OS thread (it blocks on fsyncs, STYLE.md rule 18), which persists the raft
//! records of every shard of a round in one write batch with one fsync (group commit) in the
//! node's one storage engine.
//!
//! ```text
//!  gRPC handlers ──propose / read_index / admin──┐      ┌── other nodes (Transport)
//!  (async, await a oneshot)                      ▼      ▼    RuntimeHandle::step
//!                                  ┌─── inbox (mpsc, unbounded) ───┐
//!                                  │        Ready loop thread       │
//!   each round ─────────────────── │ 1. take inputs (≤ max per round), tick every tick_interval_ms
//!                                  │ 2. per shard with a Ready:
//!                                  │      messages() → transport        (leader sends early)
//!                                  │      snapshot → RaftLogStore + StateMachine (fsync)
//!                                  │      committed_entries() → StateMachine (one write each)
//!                                  │      entries() + hs() (+ compaction) → shared batch
//!                                  │ 3. write the shared batch: ONE fsync for all shards
//!                                  │ 4. per shard: on_persisted; persisted_messages() → transport;
//!                                  │      advance() → LightReady: commit index, messages,
//!                                  │      committed entries → StateMachine; advance_apply()
//!                                  │ 5. answer expired proposals / reads with Timeout
//!                                  └────────────────────────────────┘
//! ```
//!
//! Proposals are tracked by the `(index, term)` of their entry and always answered: with the
//! state machine's output, or with a [`ProposeError`] (see `proposal`). Reads use raft's
//! ReadIndex and complete once applied (see `read_queue`).
//!
//! ## Snapshots
//! When a follower needs entries the leader compacted (it lagged more than
//! `compact_max_lag_entries`, or it is a new replica), raft asks the shard's `RaftLogStore`
//! for a snapshot. The store cannot build one (the data is the state machine's), so it records
//! the request; at the end of the round, when every apply batch is written, the Ready loop asks
//! the [`StateMachine::snapshot_data`] of the shard (a point-in-time copy at its apply index),
//! adds the term of that index and the conf state, and hands it to the store; raft sends it at
//! the follower's next heartbeat response. The `MsgSnapshot` leaves through the [`Transport`],
//! which reports the outcome with [`RuntimeHandle::report_snapshot`] (raft-rs's
//! `report_snapshot`, always called). The follower's Ready carries it: its raft metadata and
//! [`StateMachine::install_snapshot`]'s data are written in one fsynced batch.
//!
//! ## Membership
//! [`RuntimeHandle::change_membership`] proposes one [`MembershipChange`] at a time (add a
//! learner, promote it, remove a replica), answered once applied. A new replica is hosted with
//! [`RuntimeHandle::join_shard`]: uninitialized, it only accepts the leader's snapshot (the log
//! from index 1 lacks the group's initial membership), and the leader compacts its log when a
//! change adds a replica so that the newcomer gets one. A replica removed from its group leaves
//! its node with [`RuntimeHandle::remove_shard`]: its raft records and its state machine data
//! ([`StateMachine::remove_shard`]) are deleted in one fsynced batch.
//!
//! ## Hibernation
//! An idle group stops ticking: after `hibernate_after_ticks` quiet ticks its leader sends each
//! follower a hibernate heartbeat and all of them sleep until a proposal, a read, an admin command
//! or a raft message wakes them. Followers watch the leader's *node* instead of the group: one
//! keep-alive per node pair and heartbeat interval, and a follower whose leader's node went silent
//! for an election timeout wakes and elects (see `hibernation`).
//!
//! ## Layout
//! - `runtime`: [`RaftRuntime::start`] and the [`RuntimeHandle`] API.
//! - `ready`: the Ready loop and its round; `command`: the loop's inputs.
//! - `peer`: one shard replica — `RawNode` over a `RaftLogStore`, pending proposals and reads,
//!   apply, conf changes, log compaction; `hibernation`: when idle groups sleep and wake;
//!   `recovery`: restart checks of the log against the
//!   state machine's apply index.
//! - `proposal`, `read_queue`: pending proposals and read index requests.
//! - `state_machine`: the [`StateMachine`] trait the node implements, [`SnapshotData`].
//! - `membership`: [`MembershipChange`], [`Membership`].
//! - `transport`: [`Transport`], [`ShardMessage`], [`NullTransport`]; `local_network`: the
//!   in-process [`LocalNetwork`] with fault controls, for tests.
//! - `config`: [`RaftConfig`]; `error`: [`RaftError`], [`ProposeError`]; `stats`:
//!   [`RuntimeStats`]; `shard_status`: [`ShardStatus`]; `raft_logger`: raft-rs's slog → tracing.

mod command;
mod config;
mod error;
mod hibernation;
mod local_network;
mod membership;
mod peer;
mod proposal;
mod raft_logger;
mod read_queue;
mod ready;
mod recovery;
mod runtime;
mod shard_status;
mod state_machine;
mod stats;
mod transport;

pub use config::RaftConfig;
pub use error::{ProposeError, RaftError, Result};
pub use local_network::{LocalNetwork, LocalTransport};
pub use membership::{Membership, MembershipChange};
pub use runtime::{RaftRuntime, RuntimeHandle};
pub use shard_status::{ShardRole, ShardStatus};
pub use state_machine::{CommittedEntry, SnapshotData, StateMachine, StateMachineError};
pub use stats::{RuntimeStats, StatsSnapshot};
pub use transport::{NullTransport, ShardMessage, Transport};
