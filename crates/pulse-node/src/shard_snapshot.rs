//! State snapshots of a shard replica: what a leader sends a follower that needs entries its log
//! no longer holds, and how the follower installs it (pulse-raft's `snapshot_data` /
//! `install_snapshot`).
//!
//! A snapshot is a point-in-time copy of exactly the shard's data, the same key sets the
//! consistency hash covers (see `consistency`), plus the shard's `meta` keys except the apply
//! index (which the installer writes as the snapshot's index):
//!
//! ```text
//!  snapshot = MAGIC ‖ record*
//!  record   = cf (u8, ColumnFamily::index) ‖ len(key) u32 BE ‖ key ‖ len(value) u32 BE ‖ value
//!
//!  state      [range.state_start, range.state_end)
//!  dedup      [range.state_start, range.state_end)
//!  index      every entry whose customer hash is in the range (the CF is node-wide)
//!  timers     shard | …
//!  changelog  shard | …
//!  meta       shard | tag, every tag but 0x01 (the apply index)
//! ```
//!
//! Consistency: the raft loop thread is the only writer of a shard's keys, and it takes the
//! snapshot between rounds, when every apply batch is written: the scan sees exactly the
//! effects of the entries up to the apply index. The snapshot is built in memory (shards are
//! sized to fit; streaming it from an engine snapshot is a later optimisation).
//!
//! Installing deletes every key of the shard in those sets (`clear`, also what a replica leaving
//! the node deletes) and writes the records, in the one
//! batch that also holds the snapshot's raft metadata. Every record is checked to belong to the
//! shard first: a bad snapshot fails the install (the replica stops) and never touches another
//! shard's keys.

use std::ops::ControlFlow;

use pulse_storage::{ColumnFamily, StorageEngine, WriteBatch, prefix_upper_bound};

use crate::consistency::index_key_hash;
use crate::error::{NodeError, Result};
use crate::keys::{apply_index_key, changelog_prefix, timers_prefix};
use crate::shard::ShardConfig;

/// First bytes of every snapshot: a new layout gets a new magic.
const MAGIC: &[u8] = b"pulse.shard.snapshot.v1";

/// One decoded record: column family, key, value (borrowed from the snapshot).
type Record<'a> = (ColumnFamily, &'a [u8], &'a [u8]);

/// Length of a record's length fields.
const LEN_BYTES: usize = 4;

/// The snapshot of `shard`'s data in `engine` as it stands now (see the module doc).
pub(crate) fn encode<E: StorageEngine>(engine: &E, shard: ShardConfig) -> Result<Vec<u8>> {
    let mut out = MAGIC.to_vec();
    let mut record = |cf: ColumnFamily, key: &[u8], value: &[u8]| -> Result<()> {
        let too_long = |what: &str, len: usize| NodeError::Corrupt {
            what: "snapshot",
            reason: format!("{what} of {len} bytes is too long for a record"),
        };
        let key_len = u32::try_from(key.len()).map_err(|_| too_long("key", key.len()))?;
        let value_len = u32::try_from(value.len()).map_err(|_| too_long("value", value.len()))?;
        out.push(cf.index() as u8);
        out.extend_from_slice(&key_len.to_be_bytes());
        out.extend_from_slice(key);
        out.extend_from_slice(&value_len.to_be_bytes());
        out.extend_from_slice(value);
        Ok(())
    };

    let start = shard.range.state_start();
    let end = shard.range.state_end();
    for family in HASHED_FAMILIES {
        engine.scan(family, &start, end.as_deref(), |key, value| {
            record(family, key, value).map_err(storage_visitor_error)?;
            Ok(ControlFlow::Continue(()))
        })?;
    }
    engine.scan(ColumnFamily::Index, b"", None, |key, value| {
        if index_key_hash(key).is_some_and(|hash| shard.range.contains(hash)) {
            record(ColumnFamily::Index, key, value).map_err(storage_visitor_error)?;
        }
        Ok(ControlFlow::Continue(()))
    })?;
    for (family, prefix) in prefixed_families(shard.shard_id) {
        let end = prefix_upper_bound(&prefix);
        let apply_index = apply_index_key(shard.shard_id);
        engine.scan(family, &prefix, end.as_deref(), |key, value| {
            if !(family == ColumnFamily::Meta && key == apply_index.as_slice()) {
                record(family, key, value).map_err(storage_visitor_error)?;
            }
            Ok(ControlFlow::Continue(()))
        })?;
    }
    Ok(out)
}

/// Adds to `batch` the replacement of `shard`'s data in `engine` by the snapshot `data` taken
/// at raft index `index`, and the apply index `index`. Returns the `meta` records of the
/// snapshot, so that the caller reloads what it caches from them (the scoring config).
pub(crate) fn install<E: StorageEngine>(
    engine: &E,
    shard: ShardConfig,
    index: u64,
    data: &[u8],
    batch: &mut WriteBatch,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let records = decode(shard, data)?;
    clear(engine, shard, batch)?;

    let mut meta = Vec::new();
    for (family, key, value) in records {
        batch.put(family, key, value);
        if family == ColumnFamily::Meta {
            meta.push((key.to_vec(), value.to_vec()));
        }
    }
    batch.put(ColumnFamily::Meta, &apply_index_key(shard.shard_id), &index.to_be_bytes());
    Ok(meta)
}

/// Adds to `batch` the deletion of every key of `shard` in `engine`, in the key sets a snapshot
/// covers (the state and dedup ranges, the shard's index entries, its timers, changelog and `meta` keys,
/// the apply index included): what installing a snapshot replaces, and what a replica leaving
/// the node deletes.
pub(crate) fn clear<E: StorageEngine>(engine: &E, shard: ShardConfig, batch: &mut WriteBatch) -> Result<()> {
    let start = shard.range.state_start();
    let end = shard.range.state_end();
    for family in HASHED_FAMILIES {
        match &end {
            Some(end) => batch.delete_range(family, &start, end),
            None => engine.scan(family, &start, None, |key, _| {
                batch.delete(family, key);
                Ok(ControlFlow::Continue(()))
            })?,
        }
    }
    engine.scan(ColumnFamily::Index, b"", None, |key, _| {
        if index_key_hash(key).is_some_and(|hash| shard.range.contains(hash)) {
            batch.delete(ColumnFamily::Index, key);
        }
        Ok(ControlFlow::Continue(()))
    })?;
    for (family, prefix) in prefixed_families(shard.shard_id) {
        match prefix_upper_bound(&prefix) {
            Some(end) => batch.delete_range(family, &prefix, &end),
            None => engine.scan(family, &prefix, None, |key, _| {
                batch.delete(family, key);
                Ok(ControlFlow::Continue(()))
            })?,
        }
    }
    Ok(())
}

/// The records of a snapshot of `shard`, each checked to belong to it.
fn decode(shard: ShardConfig, data: &[u8]) -> Result<Vec<Record<'_>>> {
    let corrupt = |reason: String| NodeError::Corrupt { what: "snapshot", reason };
    let mut rest = data.strip_prefix(MAGIC).ok_or_else(|| corrupt("unknown format".into()))?;
    let apply_index = apply_index_key(shard.shard_id);
    let shard_prefix = shard.shard_id.to_be_bytes();
    let mut records = Vec::new();
    while let Some((&tag, after_tag)) = rest.split_first() {
        let family = ColumnFamily::ALL
            .get(usize::from(tag))
            .copied()
            .ok_or_else(|| corrupt(format!("unknown column family {tag}")))?;
        let (key, after_key) = take_field(after_tag).ok_or_else(|| corrupt("truncated key".into()))?;
        let (value, after_value) = take_field(after_key).ok_or_else(|| corrupt("truncated value".into()))?;
        let belongs = match family {
            ColumnFamily::State | ColumnFamily::Dedup => {
                key.len() >= 8
                    && shard.range.contains(u64::from_be_bytes(key[..8].try_into().unwrap_or_default()))
            }
            ColumnFamily::Index => index_key_hash(key).is_some_and(|hash| shard.range.contains(hash)),
            ColumnFamily::Timers | ColumnFamily::Changelog => key.starts_with(&shard_prefix),
            ColumnFamily::Meta => key.starts_with(&shard_prefix) && key != apply_index.as_slice(),
            ColumnFamily::Raft => false,
        };
        if !belongs {
            return Err(corrupt(format!("a {} key outside shard {}", family.name(), shard.shard_id)));
        }
        records.push((family, key, value));
        rest = after_value;
    }
    Ok(records)
}

/// Splits a `len u32 BE ‖ bytes` field off `data`.
fn take_field(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = data.split_at_checked(LEN_BYTES)?;
    let len = u32::from_be_bytes(len.try_into().ok()?) as usize;
    rest.split_at_checked(len)
}

/// The column families whose keys start with the customer's hash: a shard's keys in them are
/// its hash range.
const HASHED_FAMILIES: [ColumnFamily; 2] = [ColumnFamily::State, ColumnFamily::Dedup];

/// The column families whose keys of a shard start with the shard id, with that prefix.
fn prefixed_families(shard_id: u64) -> [(ColumnFamily, Vec<u8>); 3] {
    [
        (ColumnFamily::Timers, timers_prefix(shard_id)),
        (ColumnFamily::Changelog, changelog_prefix(shard_id)),
        (ColumnFamily::Meta, shard_id.to_be_bytes().to_vec()),
    ]
}

/// A snapshot encoding error inside an engine scan visitor (whose error type is storage's).
fn storage_visitor_error(error: NodeError) -> pulse_storage::StorageError {
    pulse_storage::StorageError::MalformedKey { what: "snapshot record", reason: error.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::ShardRange;

    #[test]
    fn records_outside_the_shard_are_refused() {
        let shard = ShardConfig { shard_id: 1, range: ShardRange::split_evenly(2)[0] };
        let mut data = MAGIC.to_vec();
        let foreign = 2u64.to_be_bytes();
        data.push(ColumnFamily::Timers.index() as u8);
        data.extend_from_slice(&(foreign.len() as u32).to_be_bytes());
        data.extend_from_slice(&foreign);
        data.extend_from_slice(&0u32.to_be_bytes());
        assert!(decode(shard, &data).is_err());
        assert!(decode(shard, b"not a snapshot").is_err());
        assert!(decode(shard, &data[..data.len() - 1]).is_err(), "truncated");
        assert_eq!(decode(shard, MAGIC).unwrap(), vec![]);
    }
}
