//! [`StateMachine`]: what the runtime applies committed entries to.

use pulse_storage::WriteBatch;

/// Error of a state machine: whatever its implementation fails with. Returning one stops the
/// replica (applying is deterministic; skipping an entry would make replicas diverge), so it is
/// for storage failures and broken invariants, never for a command that is merely invalid: those
/// are answered through [`StateMachine::Output`].
pub type StateMachineError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One committed entry carrying a client command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommittedEntry<'a> {
    /// Raft index of the entry: the apply index to record with the entry's effects.
    pub index: u64,
    /// Term the entry was proposed in.
    pub term: u64,
    /// The command, as passed to [`RuntimeHandle::propose`](crate::RuntimeHandle::propose);
    /// never empty.
    pub data: &'a [u8],
}

/// A state snapshot of one shard, as produced by [`StateMachine::snapshot_data`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotData {
    /// The apply index the data reflects: the snapshot's raft index.
    pub applied_index: u64,
    /// The encoded state; opaque to the runtime.
    pub data: Vec<u8>,
}

/// The replicated state of every shard hosted by a node: one value for the whole runtime,
/// called from the Ready loop thread only, so it may block on disk.
///
/// # Exactly once
/// The runtime applies each committed entry once per replica life and restarts raft from
/// [`applied_index`](Self::applied_index), so the implementation must make the apply index
/// durable **atomically with the entry's effects**: every method that is handed an entry adds
/// the entry's effects *and* the shard's new apply index to the given `batch`, which the runtime
/// writes right after the call (without fsync: a lost write is re-applied from the durable raft
/// log). The batch is written to the runtime's engine, so the state machine keeps its data in
/// that same engine (DESIGN.md: one RocksDB per node).
///
/// The runtime handles entries without a command itself (the leader's empty entry of a new
/// term, membership changes) and calls [`record_applied`](Self::record_applied) for them so that
/// the apply index still moves; for a membership change the batch also holds the new
/// membership, so both move together.
pub trait StateMachine: Send + 'static {
    /// What applying a command answers to the proposer (a result, a business error).
    type Output: Send + 'static;

    /// The persisted apply index of `shard_id`: 0 for a shard never applied to. raft restarts
    /// from it (`Config::applied`) so that no entry is applied twice.
    fn applied_index(&mut self, shard_id: u64) -> Result<u64, StateMachineError>;

    /// Applies one committed command of `shard_id`: adds its effects and the new apply index
    /// (`entry.index`) to `batch`, and returns what the proposer is told. Must be deterministic:
    /// every replica applies the same entries in the same order and must end byte-identical.
    fn apply(
        &mut self,
        shard_id: u64,
        entry: CommittedEntry<'_>,
        batch: &mut WriteBatch,
    ) -> Result<Self::Output, StateMachineError>;

    /// Adds the new apply index `index` of `shard_id` to `batch`, for an entry the runtime
    /// handled itself (empty entry, membership change).
    fn record_applied(
        &mut self,
        shard_id: u64,
        index: u64,
        term: u64,
        batch: &mut WriteBatch,
    ) -> Result<(), StateMachineError>;

    /// Called after the batch of the entries up to `index` of `shard_id` was written, so
    /// readers of the engine now see their effects: the place to wake whoever waits for new
    /// state (a transition watch). Called once per round of applied entries; must not block.
    fn applied_written(&mut self, shard_id: u64, index: u64) {
        let _ = (shard_id, index);
    }

    /// Whether [`snapshot_data`](Self::snapshot_data) works. Only then does a leader compact
    /// its log past a follower that lags (more than `compact_max_lag_entries`), or compact it
    /// for a newly added replica: without snapshots, such a follower could never catch up.
    fn produces_snapshots(&self) -> bool {
        false
    }

    /// A point-in-time copy of `shard_id`'s replicated state, for a follower that needs entries
    /// the leader's log no longer holds (or a new replica). The data must be exactly the effect
    /// of the entries up to the returned `applied_index` (the current apply index: the runtime
    /// calls this between rounds, when every apply batch is written), encoded so that
    /// [`install_snapshot`](Self::install_snapshot) on another node reproduces it.
    ///
    /// The default refuses: the runtime logs it and the follower stays behind (it never
    /// diverges).
    fn snapshot_data(&mut self, shard_id: u64) -> Result<SnapshotData, StateMachineError> {
        Err(format!("shard {shard_id}: this state machine does not produce snapshots").into())
    }

    /// Replaces the state of `shard_id` with the snapshot taken at (`index`, `term`): adds the
    /// deletion of the old state, the snapshot's `data` (from [`snapshot_data`](Self::snapshot_data)
    /// on the leader) and the apply index `index` to `batch`, which also holds the snapshot's raft
    /// metadata and is written with fsync.
    ///
    /// The default refuses, which stops the replica rather than letting it diverge.
    fn install_snapshot(
        &mut self,
        shard_id: u64,
        index: u64,
        term: u64,
        data: &[u8],
        batch: &mut WriteBatch,
    ) -> Result<(), StateMachineError> {
        let _ = (data, batch);
        Err(format!(
            "shard {shard_id}: cannot install snapshot at index {index} term {term}: not supported yet"
        )
        .into())
    }

    /// Adds to `batch` the deletion of every key of `shard_id`'s replicated state (its data and
    /// its apply index) and forgets the shard: the replica leaves this node
    /// ([`RuntimeHandle::remove_shard`](crate::RuntimeHandle::remove_shard)). The batch also
    /// holds the deletion of the shard's raft records and is written with fsync, so the shard is
    /// gone as a whole or not at all. Once it returns `Ok`, nothing of the shard is applied here
    /// again unless the shard is hosted anew (as an empty replica).
    ///
    /// The default refuses (a group that must never leave its node, like the coordinators'
    /// metadata group): the runtime then keeps hosting the replica and reports the error.
    fn remove_shard(&mut self, shard_id: u64, batch: &mut WriteBatch) -> Result<(), StateMachineError> {
        let _ = batch;
        Err(format!("shard {shard_id}: this state machine does not remove shards").into())
    }
}
