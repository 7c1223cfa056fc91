//! [`StorageEngine`]: what Pulse needs from a key-value store.

use std::ops::ControlFlow;

use crate::column_family::ColumnFamily;
use crate::engine::{WriteBatch, WriteOptions};
use crate::error::Result;

/// An ordered key-value store with column families and atomic batches: RocksDB in production
/// ([`RocksEngine`](crate::RocksEngine)), a `BTreeMap` in tests
/// ([`MemoryEngine`](crate::MemoryEngine)). Both pass the same conformance suite.
///
/// A value of this type is a handle: clones share the same database, so every shard, the apply
/// loop and the Ready loop each hold one.
///
/// # Shape
/// - Keys are compared as bytes (lexicographically, shorter prefix first). Ranges are half-open,
///   `[start, end)`; `end = None` means "to the end of the family". An empty or inverted range
///   is empty.
/// - Reads go through callbacks that borrow the engine's own buffers
///   ([`StorageEngine::get_with`], [`StorageEngine::scan`]): no allocation per key, no boxed
///   iterator, and the visitor is monomorphised and inlined into the engine's loop. Scans run
///   over millions of keys (segment listings, snapshots), where a `Vec` per key or a virtual
///   call per step would dominate. The price is that the trait is generic rather than
///   object-safe: code is written against `E: StorageEngine` (as TiKV's engine traits are).
/// - A scan sees one point-in-time view of the family, even while writes go on.
/// - The visitor returns [`ControlFlow::Break`] to stop early (limits, pagination) and may
///   return an error, which stops the scan and is returned as is.
///
/// # Threads
/// Every method may block on disk for milliseconds (fsync, compaction stalls, cold scans): call
/// from a dedicated thread or `spawn_blocking`, never on an async worker (STYLE.md rule 18).
/// A visitor must not write to the engine it is scanning: the in-memory engine would deadlock.
pub trait StorageEngine: Clone + Send + Sync + 'static {
    /// Calls `read` with the value of `key` in `cf`, if present, and returns what it returns.
    /// The slice is only valid during the call, which lets RocksDB hand out its block-cache
    /// buffer without a copy; decode straight from it.
    fn get_with<R, F>(&self, cf: ColumnFamily, key: &[u8], read: F) -> Result<Option<R>>
    where
        F: FnOnce(&[u8]) -> Result<R>;

    /// The value of `key` in `cf`, copied.
    fn get(&self, cf: ColumnFamily, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_with(cf, key, |value| Ok(value.to_vec()))
    }

    /// Applies every operation of `batch`, in order, atomically: after a crash or an error,
    /// either all of them are visible or none. An empty batch is a no-op.
    fn write(&self, batch: &WriteBatch, options: WriteOptions) -> Result<()>;

    /// Calls `visit(key, value)` for the keys of `cf` in `[start, end)`, in increasing order,
    /// until the range ends or `visit` breaks.
    fn scan<F>(&self, cf: ColumnFamily, start: &[u8], end: Option<&[u8]>, visit: F) -> Result<()>
    where
        F: FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>>;

    /// Like [`StorageEngine::scan`], in decreasing key order: the last key of the range first.
    fn scan_reverse<F>(&self, cf: ColumnFamily, start: &[u8], end: Option<&[u8]>, visit: F) -> Result<()>
    where
        F: FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>>;

    /// The first key-value of `cf` in `[start, end)`.
    fn seek_first(
        &self,
        cf: ColumnFamily,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let mut found = None;
        self.scan(cf, start, end, |key, value| {
            found = Some((key.to_vec(), value.to_vec()));
            Ok(ControlFlow::Break(()))
        })?;
        Ok(found)
    }

    /// The last key-value of `cf` in `[start, end)`: the last raft index of a shard, the newest
    /// changelog entry.
    fn seek_last(
        &self,
        cf: ColumnFamily,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let mut found = None;
        self.scan_reverse(cf, start, end, |key, value| {
            found = Some((key.to_vec(), value.to_vec()));
            Ok(ControlFlow::Break(()))
        })?;
        Ok(found)
    }

    /// At most `limit` key-values of `cf` in `[start, end)`, in order, copied. For small ranges
    /// and tests; large scans should use [`StorageEngine::scan`].
    fn scan_collect(
        &self,
        cf: ColumnFamily,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut pairs = Vec::new();
        if limit == 0 {
            return Ok(pairs);
        }
        self.scan(cf, start, end, |key, value| {
            pairs.push((key.to_vec(), value.to_vec()));
            Ok(if pairs.len() >= limit { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
        })?;
        Ok(pairs)
    }

    /// Writes in-memory data (memtables) of every family to disk files, so that a restart does
    /// not replay them from the write-ahead log. Not needed for durability: use
    /// [`WriteOptions::SYNC`] or [`StorageEngine::sync_wal`] for that.
    fn flush(&self) -> Result<()>;

    /// Fsyncs the write-ahead log: every write that returned before this call survives a crash,
    /// including [`WriteOptions::NO_SYNC`] ones.
    fn sync_wal(&self) -> Result<()>;

    /// Approximate bytes `cf` holds (live data on disk plus memtables); cheap, for metrics and
    /// split decisions, not accounting.
    fn approximate_size(&self, cf: ColumnFamily) -> Result<u64>;
}
