//! [`WriteBatch`]: the unit of atomic writes.

use std::fmt;

use crate::column_family::ColumnFamily;

/// Approximate per-operation overhead of a batch in RocksDB's write-ahead log: a tag byte, the
/// column family id and two length varints.
const OP_OVERHEAD_BYTES: usize = 8;

/// Puts, deletes and range deletes over any column families, applied atomically by
/// [`StorageEngine::write`](crate::StorageEngine::write): all of them or none, in the order they
/// were added (a later operation on a key overrides an earlier one).
///
/// Engine-neutral so that code building batches (the apply loop, [`RaftLogStore`]'s helpers)
/// does not depend on the engine. Keys and values are copied into one growing buffer and each
/// operation is a small fixed-size record pointing into it, so a batch of thousands of puts does
/// two allocations (amortised to zero with [`WriteBatch::clear`]), not two per put.
///
/// [`RaftLogStore`]: crate::RaftLogStore
#[derive(Clone, Default)]
pub struct WriteBatch {
    /// One record per operation, in insertion order.
    ops: Vec<OpRecord>,
    /// Keys and values (range starts and ends) of every operation, back to back.
    data: Vec<u8>,
}

/// One operation inside a [`WriteBatch`], borrowed from it; what engines apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOp<'a> {
    /// Set `key` to `value`.
    Put {
        /// Family written.
        cf: ColumnFamily,
        /// Key set.
        key: &'a [u8],
        /// New value.
        value: &'a [u8],
    },
    /// Remove `key` (a no-op if absent).
    Delete {
        /// Family written.
        cf: ColumnFamily,
        /// Key removed.
        key: &'a [u8],
    },
    /// Remove every key in `[start, end)`; `start < end` always holds.
    DeleteRange {
        /// Family written.
        cf: ColumnFamily,
        /// Inclusive first key.
        start: &'a [u8],
        /// Exclusive end key.
        end: &'a [u8],
    },
}

#[derive(Clone, Copy, Debug)]
enum OpKind {
    Put,
    Delete,
    DeleteRange,
}

/// Where one operation's bytes are in `WriteBatch::data`: `first` (key or range start) at
/// `offset`, then `second` (value or range end, empty for deletes).
#[derive(Clone, Copy, Debug)]
struct OpRecord {
    kind: OpKind,
    cf: ColumnFamily,
    offset: usize,
    first_len: usize,
    second_len: usize,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// An empty batch with room for `ops` operations whose keys and values total `bytes`.
    pub fn with_capacity(ops: usize, bytes: usize) -> WriteBatch {
        WriteBatch { ops: Vec::with_capacity(ops), data: Vec::with_capacity(bytes) }
    }

    /// Sets `key` to `value` in `cf`.
    pub fn put(&mut self, cf: ColumnFamily, key: &[u8], value: &[u8]) {
        self.push(OpKind::Put, cf, key, value);
    }

    /// Removes `key` from `cf`.
    pub fn delete(&mut self, cf: ColumnFamily, key: &[u8]) {
        self.push(OpKind::Delete, cf, key, &[]);
    }

    /// Removes every key of `cf` in `[start, end)`. An empty or inverted range (`start >= end`)
    /// removes nothing and is not recorded, so every engine treats it the same way.
    pub fn delete_range(&mut self, cf: ColumnFamily, start: &[u8], end: &[u8]) {
        if start >= end {
            return;
        }
        self.push(OpKind::DeleteRange, cf, start, end);
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when the batch has no operation (writing it changes nothing).
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Approximate size in bytes once written: keys and values plus a few bytes per operation,
    /// close to what the batch costs in RocksDB's write-ahead log. For batch size limits.
    pub fn size_bytes(&self) -> usize {
        self.data.len() + self.ops.len() * OP_OVERHEAD_BYTES
    }

    /// Removes every operation and keeps the allocated buffers for the next round.
    pub fn clear(&mut self) {
        self.ops.clear();
        self.data.clear();
    }

    /// The operations in the order they were added.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = WriteOp<'_>> + '_ {
        self.ops.iter().map(|op| {
            let first_end = op.offset + op.first_len;
            let first = &self.data[op.offset..first_end];
            let second = &self.data[first_end..first_end + op.second_len];
            match op.kind {
                OpKind::Put => WriteOp::Put { cf: op.cf, key: first, value: second },
                OpKind::Delete => WriteOp::Delete { cf: op.cf, key: first },
                OpKind::DeleteRange => WriteOp::DeleteRange { cf: op.cf, start: first, end: second },
            }
        })
    }

    fn push(&mut self, kind: OpKind, cf: ColumnFamily, first: &[u8], second: &[u8]) {
        let offset = self.data.len();
        self.data.extend_from_slice(first);
        self.data.extend_from_slice(second);
        self.ops.push(OpRecord { kind, cf, offset, first_len: first.len(), second_len: second.len() });
    }
}

impl fmt::Debug for WriteBatch {
    /// Counts only: a batch can hold megabytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteBatch")
            .field("ops", &self.ops.len())
            .field("data_bytes", &self.data.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_come_back_in_order_with_their_bytes() {
        let mut batch = WriteBatch::new();
        assert!(batch.is_empty());
        batch.put(ColumnFamily::State, b"k1", b"value");
        batch.delete(ColumnFamily::Meta, b"k2");
        batch.delete_range(ColumnFamily::Raft, b"a", b"c");
        batch.put(ColumnFamily::Index, b"", b"");
        let ops: Vec<WriteOp<'_>> = batch.iter().collect();
        assert_eq!(
            ops,
            vec![
                WriteOp::Put { cf: ColumnFamily::State, key: b"k1", value: b"value" },
                WriteOp::Delete { cf: ColumnFamily::Meta, key: b"k2" },
                WriteOp::DeleteRange { cf: ColumnFamily::Raft, start: b"a", end: b"c" },
                WriteOp::Put { cf: ColumnFamily::Index, key: b"", value: b"" },
            ]
        );
        assert_eq!(batch.len(), 4);
        assert_eq!(batch.size_bytes(), 2 + 5 + 2 + 2 + 4 * OP_OVERHEAD_BYTES);
    }

    #[test]
    fn empty_and_inverted_ranges_are_not_recorded() {
        let mut batch = WriteBatch::new();
        batch.delete_range(ColumnFamily::State, b"b", b"b");
        batch.delete_range(ColumnFamily::State, b"c", b"b");
        assert!(batch.is_empty());
    }

    #[test]
    fn clear_keeps_capacity() {
        let mut batch = WriteBatch::with_capacity(4, 64);
        batch.put(ColumnFamily::State, b"k", &[7; 40]);
        batch.clear();
        assert!(batch.is_empty());
        assert_eq!(batch.size_bytes(), 0);
        assert!(batch.data.capacity() >= 64);
        assert_eq!(format!("{batch:?}"), "WriteBatch { ops: 0, data_bytes: 0 }");
    }
}
