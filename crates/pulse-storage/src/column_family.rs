//! Column family names. They are part of the on-disk format: renaming one loses data, so a node
//! refuses to open a database whose families differ from these.

/// Raft log entries, hard state and truncated state, by shard.
pub const CF_RAFT: &str = "raft";
/// Customer state, key `h | customer_id`.
pub const CF_STATE: &str = "state";
/// Segment membership, key `dimension | segment | h | customer_id`.
pub const CF_INDEX: &str = "index";
/// Time-driven re-evaluation, key `shard | due_ms | h | customer_id`.
pub const CF_TIMERS: &str = "timers";
/// Transitions, key `shard | raft_index | seq`: the watch cursor.
pub const CF_CHANGELOG: &str = "changelog";
/// Node identity, shard descriptors, apply state.
pub const CF_META: &str = "meta";

/// Every column family a node's database has, besides RocksDB's `default`.
pub const ALL_COLUMN_FAMILIES: [&str; 6] = [CF_RAFT, CF_STATE, CF_INDEX, CF_TIMERS, CF_CHANGELOG, CF_META];
