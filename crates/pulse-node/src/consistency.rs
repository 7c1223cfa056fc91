//! The consistency hash of a shard replica: what a `ComputeHash` entry computes and stores.
//!
//! Apply is deterministic, so replicas that applied the same entries hold byte-identical data;
//! a `ComputeHash` entry makes every replica hash its data of the shard at the same raft index,
//! and comparing the stored `(index, hash)` pairs across replicas detects a divergence (a bug in
//! apply, a lost or corrupted write).
//!
//! ```text
//!  hash = xxh3_64( DOMAIN
//!                  ‖ for each CF section, in this order, each entry in key order:
//!                      tag(1) ‖ len(key) u64 LE ‖ key ‖ len(value) u64 LE ‖ value )
//!
//!  tag 1  state      [range.state_start, range.state_end)  (customers, legacy dedup windows)
//!  tag 6  dedup      [range.state_start, range.state_end)  (event ids of the window)
//!  tag 2  index      every entry whose customer hash is in the range (the CF is node-wide)
//!  tag 3  timers     shard | …
//!  tag 4  changelog  shard | …
//!  tag 5  meta       shard | 0x02 (scoring config and segment definitions) only
//! ```
//!
//! Each entry carries its section tag and both lengths, so the byte stream decodes one way
//! only: moving bytes between a key and its value, or between entries or sections, changes
//! the stream. Per-replica bookkeeping in `meta` (the apply index, cursors of work in progress,
//! the stored hash itself) is left out: it is not the shard's data.
//!
//! The hash is computed from the engine, i.e. over the entries before the `ComputeHash` entry:
//! the caller of `apply_to` writes each entry's batch before applying the next one.

use std::ops::ControlFlow;

use pulse_storage::{ColumnFamily, StorageEngine, prefix_upper_bound};
use xxhash_rust::xxh3::{Xxh3, xxh3_64_with_seed};

use crate::error::{NodeError, Result};
use crate::keys::{changelog_prefix, config_key, consistency_hash_key, timers_prefix};
use crate::shard::ShardConfig;

/// Start of the hashed stream: a different layout of the stream must get a new domain, so
/// replicas running different layouts never compare equal by accident.
const DOMAIN: &[u8] = b"pulse.shard.consistency.v2";

/// Section tags of the hashed stream, one per kind of data.
const SECTION_STATE: u8 = 1;
const SECTION_INDEX: u8 = 2;
const SECTION_TIMERS: u8 = 3;
const SECTION_CHANGELOG: u8 = 4;
const SECTION_CONFIG: u8 = 5;
const SECTION_DEDUP: u8 = 6;

/// Separator between segment and customer id in `index` keys (see `keys::index_key`).
const INDEX_SEPARATOR: u8 = 0x00;

/// Length of a stored `(raft_index, hash)` value.
const STORED_LEN: usize = 16;

/// Streams length-prefixed, tagged entries into an xxh3 hasher.
struct EntryHasher {
    hasher: Xxh3,
}

impl EntryHasher {
    fn new() -> Self {
        let mut hasher = Xxh3::new();
        hasher.update(DOMAIN);
        Self { hasher }
    }

    fn entry(&mut self, section: u8, key: &[u8], value: &[u8]) {
        self.hasher.update(&[section]);
        self.hasher.update(&(key.len() as u64).to_le_bytes());
        self.hasher.update(key);
        self.hasher.update(&(value.len() as u64).to_le_bytes());
        self.hasher.update(value);
    }

    fn digest(&self) -> u64 {
        self.hasher.digest()
    }
}

/// The consistency hash of `shard`'s data in `engine` as it stands now (see the module doc).
///
/// Scans the shard's whole data, and the node's whole `index` CF (it is not shard-prefixed):
/// the cost grows with the data, which is why a check is an explicit, rare entry.
pub(crate) fn compute<E: StorageEngine>(engine: &E, shard: ShardConfig) -> Result<u64> {
    let mut hasher = EntryHasher::new();

    let start = shard.range.state_start();
    let end = shard.range.state_end();
    for (section, family) in [(SECTION_STATE, ColumnFamily::State), (SECTION_DEDUP, ColumnFamily::Dedup)] {
        engine.scan(family, &start, end.as_deref(), |key, value| {
            hasher.entry(section, key, value);
            Ok(ControlFlow::Continue(()))
        })?;
    }

    engine.scan(ColumnFamily::Index, b"", None, |key, value| {
        if index_key_hash(key).is_some_and(|hash| shard.range.contains(hash)) {
            hasher.entry(SECTION_INDEX, key, value);
        }
        Ok(ControlFlow::Continue(()))
    })?;

    for (section, family, prefix) in [
        (SECTION_TIMERS, ColumnFamily::Timers, timers_prefix(shard.shard_id)),
        (SECTION_CHANGELOG, ColumnFamily::Changelog, changelog_prefix(shard.shard_id)),
    ] {
        let end = prefix_upper_bound(&prefix);
        engine.scan(family, &prefix, end.as_deref(), |key, value| {
            hasher.entry(section, key, value);
            Ok(ControlFlow::Continue(()))
        })?;
    }

    let config = config_key(shard.shard_id);
    if let Some(value) = engine.get(ColumnFamily::Meta, &config)? {
        hasher.entry(SECTION_CONFIG, &config, &value);
    }
    Ok(hasher.digest())
}

/// The customer hash of an `index` key (`dimension | segment | 0x00 | customer_id`), computed
/// from the raw customer id bytes exactly as `pulse_storage::customer_hash` does (xxh3_64,
/// seed 0). `None` for a key without a separator, which `index_key` never writes.
pub(crate) fn index_key_hash(key: &[u8]) -> Option<u64> {
    // Segment names never contain the separator, so the first one after the dimension tag
    // ends the segment (a customer id may contain it).
    let separator = key.iter().skip(1).position(|&b| b == INDEX_SEPARATOR)? + 1;
    Some(xxh3_64_with_seed(&key[separator + 1..], 0))
}

/// The stored value of a consistency hash: `raft_index | hash`, big-endian.
pub(crate) fn encode(index: u64, hash: u64) -> [u8; STORED_LEN] {
    let mut value = [0u8; STORED_LEN];
    value[..8].copy_from_slice(&index.to_be_bytes());
    value[8..].copy_from_slice(&hash.to_be_bytes());
    value
}

/// The last `(raft_index, hash)` stored for `shard_id` in `engine`, `None` before the first
/// `ComputeHash` entry.
pub(crate) fn load<E: StorageEngine>(engine: &E, shard_id: u64) -> Result<Option<(u64, u64)>> {
    let Some(raw) = engine.get(ColumnFamily::Meta, &consistency_hash_key(shard_id))? else {
        return Ok(None);
    };
    let corrupt = || NodeError::Corrupt { what: "consistency hash", reason: format!("{} bytes", raw.len()) };
    let value: [u8; STORED_LEN] = raw.as_slice().try_into().map_err(|_| corrupt())?;
    let index = u64::from_be_bytes(value[..8].try_into().map_err(|_| corrupt())?);
    let hash = u64::from_be_bytes(value[8..].try_into().map_err(|_| corrupt())?);
    Ok(Some((index, hash)))
}

#[cfg(test)]
mod tests {
    use pulse_scoring::Dimension;
    use pulse_storage::customer_hash;

    use super::*;
    use crate::keys::index_key;

    #[test]
    fn index_key_hash_is_the_customer_hash() {
        for customer in ["alice", "", "with\u{0}nul", "ünïcode"] {
            let key = index_key(Dimension::ActivitySegment, "DAILY", customer);
            assert_eq!(index_key_hash(&key), Some(customer_hash(customer)), "{customer:?}");
        }
        assert_eq!(index_key_hash(&[1, b'x']), None, "no separator");
    }

    #[test]
    fn entry_boundaries_change_the_hash() {
        let hash = |entries: &[(u8, &[u8], &[u8])]| {
            let mut hasher = EntryHasher::new();
            for (section, key, value) in entries {
                hasher.entry(*section, key, value);
            }
            hasher.digest()
        };
        let base = hash(&[(1, b"ab", b"c")]);
        assert_ne!(base, hash(&[(1, b"a", b"bc")]), "key/value split");
        assert_ne!(base, hash(&[(2, b"ab", b"c")]), "section");
        assert_ne!(base, hash(&[(1, b"ab", b"c"), (1, b"", b"")]), "an empty entry");
        assert_ne!(hash(&[(1, b"a", b""), (1, b"b", b"")]), hash(&[(1, b"ab", b"")]), "entry split");
    }

    #[test]
    fn stored_value_round_trips() {
        let engine = pulse_storage::MemoryEngine::new();
        assert_eq!(load(&engine, 7).unwrap(), None);
        let mut batch = pulse_storage::WriteBatch::new();
        batch.put(ColumnFamily::Meta, &consistency_hash_key(7), &encode(42, u64::MAX - 1));
        engine.write(&batch, pulse_storage::WriteOptions { sync: false }).unwrap();
        assert_eq!(load(&engine, 7).unwrap(), Some((42, u64::MAX - 1)));
        assert_eq!(load(&engine, 8).unwrap(), None, "per shard");
    }
}
