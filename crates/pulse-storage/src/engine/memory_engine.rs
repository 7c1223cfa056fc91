//! [`MemoryEngine`]: the storage trait over `BTreeMap`s, for fast tests.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Bound, ControlFlow};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::column_family::ColumnFamily;
use crate::engine::{StorageEngine, WriteBatch, WriteOp, WriteOptions};
use crate::error::Result;

/// An in-memory [`StorageEngine`] with the same semantics as [`RocksEngine`](crate::RocksEngine)
/// (the conformance suite checks both), minus durability: the data lives as long as a clone of
/// the handle does.
///
/// One `RwLock` guards all families, which is what makes a batch atomic across families and a
/// scan a point-in-time view: writers wait for scans to finish. Plenty for tests; not meant for
/// production load.
#[derive(Clone, Default)]
pub struct MemoryEngine {
    families: Arc<RwLock<[Family; ColumnFamily::ALL.len()]>>,
}

/// One column family: its sorted map and the bytes of its keys and values.
#[derive(Default)]
struct Family {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Sum of key and value lengths, kept up to date by every write.
    bytes: u64,
}

impl Family {
    fn put(&mut self, key: &[u8], value: &[u8]) {
        self.bytes += (key.len() + value.len()) as u64;
        if let Some(old) = self.map.insert(key.to_vec(), value.to_vec()) {
            self.bytes -= (key.len() + old.len()) as u64;
        }
    }

    fn delete(&mut self, key: &[u8]) {
        if let Some(old) = self.map.remove(key) {
            self.bytes -= (key.len() + old.len()) as u64;
        }
    }

    fn delete_range(&mut self, start: &[u8], end: &[u8]) {
        let doomed: Vec<Vec<u8>> =
            self.map.range::<[u8], _>(range(start, Some(end))).map(|(k, _)| k.clone()).collect();
        for key in doomed {
            self.delete(&key);
        }
    }
}

/// `[start, end)` as `BTreeMap` bounds. Callers rule out `end <= start`, for which
/// `BTreeMap::range` would panic.
fn range<'a>(start: &'a [u8], end: Option<&'a [u8]>) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    (Bound::Included(start), end.map_or(Bound::Unbounded, Bound::Excluded))
}

/// True when `[start, end)` holds no key.
fn is_empty_range(start: &[u8], end: Option<&[u8]>) -> bool {
    end.is_some_and(|end| end <= start)
}

impl MemoryEngine {
    /// An empty engine.
    pub fn new() -> MemoryEngine {
        MemoryEngine::default()
    }

    // A writer cannot panic while holding the lock (it only calls BTreeMap methods), and read
    // guards never poison it, so a poisoned lock still holds consistent data.
    fn read(&self) -> RwLockReadGuard<'_, [Family; ColumnFamily::ALL.len()]> {
        self.families.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_lock(&self) -> RwLockWriteGuard<'_, [Family; ColumnFamily::ALL.len()]> {
        self.families.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StorageEngine for MemoryEngine {
    fn get_with<R, F>(&self, cf: ColumnFamily, key: &[u8], read: F) -> Result<Option<R>>
    where
        F: FnOnce(&[u8]) -> Result<R>,
    {
        let families = self.read();
        families[cf.index()].map.get(key).map(|value| read(value)).transpose()
    }

    fn write(&self, batch: &WriteBatch, _options: WriteOptions) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut families = self.write_lock();
        for op in batch.iter() {
            match op {
                WriteOp::Put { cf, key, value } => families[cf.index()].put(key, value),
                WriteOp::Delete { cf, key } => families[cf.index()].delete(key),
                WriteOp::DeleteRange { cf, start, end } => families[cf.index()].delete_range(start, end),
            }
        }
        Ok(())
    }

    fn scan<F>(&self, cf: ColumnFamily, start: &[u8], end: Option<&[u8]>, mut visit: F) -> Result<()>
    where
        F: FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>>,
    {
        if is_empty_range(start, end) {
            return Ok(());
        }
        let families = self.read();
        for (key, value) in families[cf.index()].map.range::<[u8], _>(range(start, end)) {
            if visit(key, value)?.is_break() {
                break;
            }
        }
        Ok(())
    }

    fn scan_reverse<F>(&self, cf: ColumnFamily, start: &[u8], end: Option<&[u8]>, mut visit: F) -> Result<()>
    where
        F: FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>>,
    {
        if is_empty_range(start, end) {
            return Ok(());
        }
        let families = self.read();
        for (key, value) in families[cf.index()].map.range::<[u8], _>(range(start, end)).rev() {
            if visit(key, value)?.is_break() {
                break;
            }
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn sync_wal(&self) -> Result<()> {
        Ok(())
    }

    fn approximate_size(&self, cf: ColumnFamily) -> Result<u64> {
        Ok(self.read()[cf.index()].bytes)
    }
}

impl fmt::Debug for MemoryEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let families = self.read();
        let mut debug = f.debug_struct("MemoryEngine");
        for cf in ColumnFamily::ALL {
            debug.field(cf.name(), &families[cf.index()].map.len());
        }
        debug.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_tracks_overwrites_and_deletes() {
        let engine = MemoryEngine::new();
        let mut batch = WriteBatch::new();
        batch.put(ColumnFamily::State, b"ab", b"1234");
        batch.put(ColumnFamily::State, b"ab", b"12");
        batch.put(ColumnFamily::State, b"cd", b"1");
        engine.write(&batch, WriteOptions::NO_SYNC).unwrap();
        assert_eq!(engine.approximate_size(ColumnFamily::State).unwrap(), 4 + 3);
        batch.clear();
        batch.delete_range(ColumnFamily::State, b"a", b"c");
        engine.write(&batch, WriteOptions::NO_SYNC).unwrap();
        assert_eq!(engine.approximate_size(ColumnFamily::State).unwrap(), 3);
        assert_eq!(
            format!("{engine:?}"),
            "MemoryEngine { raft: 0, state: 1, index: 0, timers: 0, changelog: 0, meta: 0, dedup: 0 }"
        );
    }
}
