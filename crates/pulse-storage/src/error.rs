//! Storage errors.
//!
//! A storage error inside raft is fatal for the replica (DESIGN.md, "Raft rules that bite"), so
//! every variant says what was being done and where: the column family, the operation, the
//! shard and the raft index. The four variants raft-rs reacts to ([`StorageError::LogCompacted`],
//! [`StorageError::LogUnavailable`], [`StorageError::SnapshotTemporarilyUnavailable`],
//! [`StorageError::SnapshotOutOfDate`]) map to raft's own variants in `From<StorageError> for
//! raft::Error`; every other one reaches raft as `raft::StorageError::Other`.

use crate::column_family::ColumnFamily;

/// Result of storage operations.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// What can go wrong below the state machine.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// RocksDB could not open the database (permissions, the lock held by another process,
    /// options the files on disk do not accept).
    #[error("cannot open rocksdb at {path}: {source}")]
    Open {
        /// Database directory.
        path: String,
        /// RocksDB's message.
        #[source]
        source: rocksdb::Error,
    },
    /// The database on disk has other column families than this version expects.
    #[error("database at {path} has column families {found:?}, expected {expected:?}")]
    ColumnFamilyMismatch {
        /// Database directory.
        path: String,
        /// Families found on disk.
        found: Vec<String>,
        /// Families this version uses.
        expected: Vec<String>,
    },
    /// An open database has no handle for a family that was checked at open: a bug, reported
    /// rather than panicking.
    #[error("column family {cf} has no handle in the open database")]
    MissingColumnFamily {
        /// The family asked for.
        cf: ColumnFamily,
    },
    /// RocksDB failed an operation.
    #[error("rocksdb {operation} failed{}: {source}", on_family(.cf))]
    RocksDb {
        /// What was being done: `get`, `scan`, `write`, `flush`, `sync wal`, …
        operation: &'static str,
        /// The family, when the operation concerned one (a batch write spans several).
        cf: Option<ColumnFamily>,
        /// RocksDB's message.
        #[source]
        source: rocksdb::Error,
    },
    /// A key did not have the expected layout.
    #[error("malformed {what} key: {reason}")]
    MalformedKey {
        /// Which key family.
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A raft protobuf (entry, hard state, conf state) could not be encoded.
    #[error("cannot encode {what} of raft shard {shard_id}: {source}")]
    RaftEncode {
        /// Shard whose log was being written.
        shard_id: u64,
        /// Which record: `entry 7`, `hard state`, `conf state`.
        what: String,
        /// The codec's message.
        #[source]
        source: protobuf::ProtobufError,
    },
    /// A raft record read back from disk could not be decoded.
    #[error("cannot decode {what} of raft shard {shard_id}: {source}")]
    RaftDecode {
        /// Shard whose log was being read.
        shard_id: u64,
        /// Which record: `entry 7`, `hard state`, `conf state`.
        what: String,
        /// The codec's message.
        #[source]
        source: protobuf::ProtobufError,
    },
    /// The raft records of a shard contradict each other (a missing entry inside the log, an
    /// entry stored under another index, a truncated state of the wrong size, …).
    #[error("raft log of shard {shard_id} is corrupt: {reason}")]
    RaftLogCorrupt {
        /// Shard whose log is damaged.
        shard_id: u64,
        /// What contradicts what.
        reason: String,
    },
    /// The raft entry asked for was compacted away (raft's `Compacted`).
    #[error("raft log of shard {shard_id}: index {index} is compacted, first index is {first_index}")]
    LogCompacted {
        /// Shard of the log.
        shard_id: u64,
        /// Index asked for.
        index: u64,
        /// First index still in the log.
        first_index: u64,
    },
    /// The raft entry asked for is past the end of the log (raft's `Unavailable`).
    #[error("raft log of shard {shard_id}: index {index} is past the last index {last_index}")]
    LogUnavailable {
        /// Shard of the log.
        shard_id: u64,
        /// Index asked for.
        index: u64,
        /// Last index in the log.
        last_index: u64,
    },
    /// `entries(low, high)` with `low > high`.
    #[error("raft log of shard {shard_id}: invalid entry range [{low}, {high})")]
    InvalidLogRange {
        /// Shard of the log.
        shard_id: u64,
        /// Inclusive lower index.
        low: u64,
        /// Exclusive upper index.
        high: u64,
    },
    /// Entries to append would leave a hole after the last index, or are not consecutive.
    #[error("raft log of shard {shard_id}: entry {index} does not follow index {previous}")]
    LogGap {
        /// Shard of the log.
        shard_id: u64,
        /// Index that should have been `previous + 1`.
        index: u64,
        /// Last index of the log, or of the previous entry of the same append.
        previous: u64,
    },
    /// Entries to append would overwrite compacted ones.
    #[error(
        "raft log of shard {shard_id}: cannot append from index {index}, compacted up to {truncated_index}"
    )]
    AppendCompacted {
        /// Shard of the log.
        shard_id: u64,
        /// First index of the append.
        index: u64,
        /// Last compacted index.
        truncated_index: u64,
    },
    /// Compaction asked for an index the log cannot discard yet.
    #[error("raft log of shard {shard_id}: cannot compact to {index}: {reason}")]
    InvalidCompaction {
        /// Shard of the log.
        shard_id: u64,
        /// Requested new truncated index.
        index: u64,
        /// Why not (not committed, not persisted).
        reason: String,
    },
    /// A full snapshot cannot be produced now (raft's `SnapshotTemporarilyUnavailable`); raft
    /// retries later. Until state snapshots exist (issue 5) this is the only answer.
    #[error("raft shard {shard_id}: snapshot temporarily unavailable")]
    SnapshotTemporarilyUnavailable {
        /// Shard asked for a snapshot.
        shard_id: u64,
    },
    /// A snapshot older than the log's compaction point (raft's `SnapshotOutOfDate`).
    #[error(
        "raft shard {shard_id}: snapshot at index {snapshot_index} is older than first index {first_index}"
    )]
    SnapshotOutOfDate {
        /// Shard of the log.
        shard_id: u64,
        /// Index of the snapshot.
        snapshot_index: u64,
        /// First index of the log.
        first_index: u64,
    },
}

/// ` on column family raft`, or nothing for database-wide operations.
fn on_family(cf: &Option<ColumnFamily>) -> String {
    match cf {
        Some(cf) => format!(" on column family {cf}"),
        None => String::new(),
    }
}

impl From<StorageError> for raft::Error {
    /// Keeps the variants raft-rs acts on recognisable; wraps the rest, which raft treats as
    /// fatal for the replica.
    fn from(error: StorageError) -> raft::Error {
        let store = match error {
            StorageError::LogCompacted { .. } => raft::StorageError::Compacted,
            StorageError::LogUnavailable { .. } => raft::StorageError::Unavailable,
            StorageError::SnapshotTemporarilyUnavailable { .. } => {
                raft::StorageError::SnapshotTemporarilyUnavailable
            }
            StorageError::SnapshotOutOfDate { .. } => raft::StorageError::SnapshotOutOfDate,
            other => raft::StorageError::Other(Box::new(other)),
        };
        raft::Error::Store(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_family_when_there_is_one() {
        // rocksdb::Error has no public constructor; the family suffix is what this module adds.
        assert_eq!(on_family(&Some(ColumnFamily::State)), " on column family state");
        assert_eq!(on_family(&None), "");
        let error = StorageError::LogCompacted { shard_id: 7, index: 2, first_index: 5 };
        assert_eq!(error.to_string(), "raft log of shard 7: index 2 is compacted, first index is 5");
    }

    #[test]
    fn raft_sees_its_own_variants() {
        let compacted = StorageError::LogCompacted { shard_id: 1, index: 2, first_index: 3 };
        assert_eq!(raft::Error::from(compacted), raft::Error::Store(raft::StorageError::Compacted));
        let unavailable = StorageError::LogUnavailable { shard_id: 1, index: 9, last_index: 3 };
        assert_eq!(raft::Error::from(unavailable), raft::Error::Store(raft::StorageError::Unavailable));
        let corrupt = StorageError::RaftLogCorrupt { shard_id: 1, reason: "x".into() };
        let raft::Error::Store(raft::StorageError::Other(inner)) = raft::Error::from(corrupt) else {
            panic!("corruption must reach raft as Other");
        };
        assert!(inner.to_string().contains("shard 1"));
    }
}
