//! # pulse-storage — where Pulse keeps its bytes
//!
//! One RocksDB per node, shared by every shard replica on it (DESIGN.md section 2), behind the
//! [`StorageEngine`] trait so that everything above it also runs on the in-memory
//! [`MemoryEngine`] in tests. On top of the engines: the key codecs of the column families and
//! the raft log storage of a shard ([`RaftLogStore`], raft-rs's `Storage`).
//!
//! ## Layout
//! - `column_family`: [`ColumnFamily`] and the family names, checked at open.
//! - `keys`: big-endian customer key codecs, so that byte order is numeric order.
//! - `engine/`: the [`StorageEngine`] trait, [`WriteBatch`], [`WriteOptions`], and the two
//!   engines, [`RocksEngine`] (with [`RocksEngineOptions`]) and [`MemoryEngine`]; their shared
//!   conformance suite.
//! - `raft_log/`: [`RaftLogStore`] and the key map of the `raft` family.
//! - `error`: [`StorageError`], [`Result`].
//!
//! ## Use
//! ```
//! use std::ops::ControlFlow;
//!
//! use pulse_storage::{ColumnFamily, MemoryEngine, StorageEngine, WriteBatch, WriteOptions};
//!
//! let engine = MemoryEngine::new(); // or RocksEngine::open(path)?
//! let mut batch = WriteBatch::new();
//! batch.put(ColumnFamily::State, b"customer-1", b"state");
//! batch.put(ColumnFamily::Meta, b"applied", &42u64.to_be_bytes());
//! engine.write(&batch, WriteOptions::SYNC)?; // all or nothing
//!
//! let applied = engine.get_with(ColumnFamily::Meta, b"applied", |value| {
//!     Ok(u64::from_be_bytes(value.try_into().unwrap_or_default()))
//! })?;
//! assert_eq!(applied, Some(42));
//!
//! let mut customers = 0;
//! engine.scan(ColumnFamily::State, b"", None, |_key, _value| {
//!     customers += 1;
//!     Ok(ControlFlow::Continue(()))
//! })?;
//! assert_eq!(customers, 1);
//! # Ok::<(), pulse_storage::StorageError>(())
//! ```
//!
//! Every engine call may block on disk: run it on a dedicated thread or in `spawn_blocking`
//! (STYLE.md rule 18).

mod column_family;
mod engine;
mod error;
mod keys;
mod raft_log;
#[cfg(test)]
mod test_harness;

pub use column_family::{
    ADDED_COLUMN_FAMILIES, ALL_COLUMN_FAMILIES, CF_CHANGELOG, CF_DEDUP, CF_INDEX, CF_META, CF_RAFT, CF_STATE,
    CF_TIMERS, ColumnFamily,
};
pub use engine::{
    MemoryEngine, RocksEngine, RocksEngineOptions, StorageEngine, WriteBatch, WriteOp, WriteOptions,
};
pub use error::{Result, StorageError};
pub use keys::{customer_hash, prefix_upper_bound, state_key, state_key_customer};
pub use raft_log::RaftLogStore;
