//! Raft log storage: [`RaftLogStore`], raft-rs's `Storage` for one shard replica, over any
//! [`StorageEngine`](crate::StorageEngine).
//!
//! Every shard replica of a node keeps its raft records in the node's one `raft` column family,
//! under its shard id, so that the Ready loop can persist the records of all shards of a round
//! in one batch with one fsync.
//!
//! # Key map (column family `raft`)
//! Integers are big-endian, so byte order is numeric order.
//!
//! | key                                | value                                         |
//! |------------------------------------|-----------------------------------------------|
//! | `shard (u64) · 0x01 · index (u64)` | log entry: `eraftpb::Entry`, protobuf         |
//! | `shard (u64) · 0x02`               | hard state: `eraftpb::HardState`, protobuf    |
//! | `shard (u64) · 0x03`               | truncated state: `index (u64) · term (u64)`   |
//! | `shard (u64) · 0x04`               | conf state: `eraftpb::ConfState`, protobuf    |
//!
//! A shard's records are contiguous and its entries sort by index, so "last index" is one
//! reverse seek in `[shard·0x01, shard·0x02)` and compaction is one range delete. The truncated
//! state is the index and term of the last discarded entry (raft's "dummy entry"): raft asks
//! `term(first_index − 1)` when it matches logs, so it outlives the entry. Absent records mean
//! their defaults: an empty log truncated at `(0, 0)`, so `first_index = 1`, `last_index = 0`,
//! `term(0) = 0`.
//!
//! Values are encoded with the `protobuf` 2 crate, raft 0.7's codec (raft's types never leave
//! this crate and `pulse-raft`); the stored length of an entry is its `compute_size()`, which
//! lets `entries(max_size)` stop without decoding past the limit.

mod keys;
mod raft_log_store;

pub use raft_log_store::RaftLogStore;
