//! [`ShardLayout`]: which shards a node hosts, persisted in `meta` at the node's first start.
//!
//! The hash ranges decide where every customer's data lives, so they must never change under
//! existing data: a restart with another `initial_shards` setting keeps the stored layout.

use pulse_storage::{ColumnFamily, StorageEngine, WriteBatch, WriteOptions};

use crate::error::{NodeError, Result};
use crate::keys::{ShardRange, node_layout_key};
use crate::shard::ShardConfig;

/// The shards of a node, in hash-range order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardLayout {
    /// The shards.
    pub shards: Vec<ShardConfig>,
}

impl ShardLayout {
    /// `count` shards (ids 1..=count) splitting the hash space evenly.
    pub fn split_evenly(count: u64) -> Self {
        let shards = ShardRange::split_evenly(count)
            .into_iter()
            .zip(1u64..)
            .map(|(range, shard_id)| ShardConfig { shard_id, range })
            .collect();
        Self { shards }
    }

    /// The stored layout of the node on `engine`, or — on a new node — an even split into
    /// `initial_shards`, stored (fsynced) before it is returned. The flag says whether the
    /// layout was created now.
    pub fn load_or_create<E: StorageEngine>(engine: &E, initial_shards: u64) -> Result<(Self, bool)> {
        if let Some(raw) = engine.get(ColumnFamily::Meta, &node_layout_key())? {
            return Ok((Self::decode(&raw)?, false));
        }
        let layout = Self::split_evenly(initial_shards);
        let mut batch = WriteBatch::new();
        batch.put(ColumnFamily::Meta, &node_layout_key(), &layout.encode());
        engine.write(&batch, WriteOptions::SYNC)?;
        Ok((layout, true))
    }

    /// `count (u64) | per shard: id, start_hash, end_hash (u64 each)`, big-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 24 * self.shards.len());
        out.extend_from_slice(&(self.shards.len() as u64).to_be_bytes());
        for shard in &self.shards {
            for value in [shard.shard_id, shard.range.start_hash, shard.range.end_hash] {
                out.extend_from_slice(&value.to_be_bytes());
            }
        }
        out
    }

    /// Decodes [`Self::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt = |reason: String| NodeError::Corrupt { what: "shard layout", reason };
        let mut words = bytes.chunks_exact(8).map(|w| u64::from_be_bytes(w.try_into().expect("8 bytes")));
        if !bytes.len().is_multiple_of(8) {
            return Err(corrupt(format!("{} bytes", bytes.len())));
        }
        let count = words.next().ok_or_else(|| corrupt("empty".into()))?;
        if words.len() as u64 != count * 3 {
            return Err(corrupt(format!("{count} shards announced, {} words follow", words.len())));
        }
        let mut shards = Vec::with_capacity(count as usize);
        while let (Some(shard_id), Some(start_hash), Some(end_hash)) =
            (words.next(), words.next(), words.next())
        {
            shards.push(ShardConfig { shard_id, range: ShardRange { start_hash, end_hash } });
        }
        Ok(Self { shards })
    }
}

#[cfg(test)]
mod tests {
    use pulse_storage::MemoryEngine;

    use super::*;

    #[test]
    fn the_first_layout_is_kept_across_restarts() {
        let engine = MemoryEngine::new();
        let (first, created) = ShardLayout::load_or_create(&engine, 4).unwrap();
        assert!(created);
        assert_eq!(first, ShardLayout::split_evenly(4));
        let (again, created) = ShardLayout::load_or_create(&engine, 16).unwrap();
        assert!(!created, "a stored layout is never replaced");
        assert_eq!(again, first);
    }

    #[test]
    fn codec_round_trips_and_rejects_garbage() {
        let layout = ShardLayout::split_evenly(16);
        assert_eq!(ShardLayout::decode(&layout.encode()).unwrap(), layout);
        assert!(ShardLayout::decode(&[1, 2, 3]).is_err());
        assert!(ShardLayout::decode(&5u64.to_be_bytes()).is_err(), "announced shards missing");
    }
}
