//! Storage engines: the [`StorageEngine`] trait and its two implementations.
//!
//! ```text
//!   apply loop, Ready loop, RaftLogStore, queries
//!          │  WriteBatch (engine-neutral)        ▲ get_with / scan visitors
//!          ▼                                     │ (borrowed slices, no copies)
//!   ┌──────────────── trait StorageEngine ──────────────────┐
//!   │ get · write(batch, sync) · scan · scan_reverse · flush │
//!   └───────────┬────────────────────────────┬──────────────┘
//!          RocksEngine                   MemoryEngine
//!   one RocksDB per node, six        BTreeMap per family behind
//!   column families, WAL on          one RwLock, for fast tests
//! ```
//!
//! Both engines run the same conformance suite (`conformance.rs`, STYLE.md rule 19), so code
//! tested against [`MemoryEngine`] behaves the same on [`RocksEngine`].
//!
//! Files: `storage_engine.rs` (the trait), `write_batch.rs`, `write_options.rs`,
//! `rocks_engine.rs` + `rocks_options.rs`, `memory_engine.rs`.

#[cfg(test)]
mod conformance;
mod memory_engine;
mod rocks_engine;
mod rocks_options;
mod storage_engine;
mod write_batch;
mod write_options;

pub use memory_engine::MemoryEngine;
pub use rocks_engine::RocksEngine;
pub use rocks_options::RocksEngineOptions;
pub use storage_engine::StorageEngine;
pub use write_batch::{WriteBatch, WriteOp};
pub use write_options::WriteOptions;
