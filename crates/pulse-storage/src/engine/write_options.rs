//! [`WriteOptions`]: durability of one write.

/// How durable a [`StorageEngine::write`](crate::StorageEngine::write) must be when it returns.
///
/// There is deliberately no `Default`: every call site says which one it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOptions {
    /// `true`: the write-ahead log is fsynced before `write` returns, so the batch survives a
    /// machine crash. Required for raft log entries and hard state (votes and append responses
    /// may only leave after it). `false`: the batch survives a process crash but a power loss
    /// may drop the latest writes; fine for state that raft can re-apply from its log.
    pub sync: bool,
}

impl WriteOptions {
    /// Fsync before returning: raft log and hard state.
    pub const SYNC: WriteOptions = WriteOptions { sync: true };
    /// No fsync: applied state, which the raft log can rebuild.
    pub const NO_SYNC: WriteOptions = WriteOptions { sync: false };
}
