//! # pulse-storage — where Pulse keeps its bytes
//!
//! One RocksDB per node, shared by every shard replica on it (DESIGN.md section 2). This crate
//! owns the column families and the key encodings; the storage trait, the RocksDB and in-memory
//! engines and their conformance suite build on them.
//!
//! ## Layout
//! - `column_family`: the column family names, checked at open.
//! - `keys`: big-endian key codecs, so that byte order is numeric order.
//! - `rocks`: opening a node's RocksDB with every column family.

mod column_family;
mod error;
mod keys;
mod rocks;

pub use column_family::{ALL_COLUMN_FAMILIES, CF_CHANGELOG, CF_INDEX, CF_META, CF_RAFT, CF_STATE, CF_TIMERS};
pub use error::{Result, StorageError};
pub use keys::{customer_hash, state_key, state_key_customer};
pub use rocks::open_rocksdb;
