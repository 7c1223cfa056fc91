//! Storage errors.

/// Result of storage operations.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// What can go wrong below the state machine. Any of these inside raft is fatal for the replica.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// RocksDB reported an error.
    #[error("rocksdb: {0}")]
    RocksDb(#[from] rocksdb::Error),
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
    /// A key did not have the expected layout.
    #[error("malformed {what} key: {reason}")]
    MalformedKey {
        /// Which key family.
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
}
