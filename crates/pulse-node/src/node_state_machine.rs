//! [`NodeStateMachine`]: every shard replica of a node behind the raft runtime's
//! `StateMachine` trait.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use pulse_raft::{CommittedEntry, SnapshotData, StateMachine, StateMachineError};
use pulse_storage::{StorageEngine, WriteBatch};

use crate::command::ApplyOutput;
use crate::error::{NodeError, Result};
use crate::reader::ShardReader;
use crate::shard::{ShardConfig, ShardStateMachine};

/// The state machines of the shards hosted by one node, keyed by shard id. Applying is called
/// from the raft runtime's loop thread only.
pub struct NodeStateMachine<E> {
    engine: E,
    shards: BTreeMap<u64, ShardStateMachine<E>>,
    /// Told `(shard_id, index)` after applied entries are written (see [`Self::on_applied`]).
    applied_listener: Option<AppliedListener>,
    /// Shards opened by a [`ShardOpener`] after the machine moved into the raft runtime.
    opened: Arc<Mutex<Vec<ShardStateMachine<E>>>>,
}

/// Opens shard state machines for a [`NodeStateMachine`] that already runs inside the raft
/// runtime (a cluster node receiving a new replica): the machine adopts them the first time
/// the runtime asks about the shard, which `RuntimeHandle::add_shard` does.
pub struct ShardOpener<E> {
    engine: E,
    opened: Arc<Mutex<Vec<ShardStateMachine<E>>>>,
}

impl<E> Clone for ShardOpener<E>
where
    E: Clone,
{
    fn clone(&self) -> Self {
        Self { engine: self.engine.clone(), opened: self.opened.clone() }
    }
}

impl<E> std::fmt::Debug for ShardOpener<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardOpener").finish_non_exhaustive()
    }
}

impl<E: StorageEngine> ShardOpener<E> {
    /// Opens the state machine of `shard` from the engine and hands it to the node state
    /// machine; returns its read view. Call before `RuntimeHandle::add_shard` of the shard.
    pub fn open(&self, shard: ShardConfig) -> Result<ShardReader<E>> {
        let machine = ShardStateMachine::open(self.engine.clone(), shard)?;
        let reader = machine.reader();
        self.opened.lock().unwrap_or_else(PoisonError::into_inner).push(machine);
        Ok(reader)
    }
}

/// What [`NodeStateMachine::on_applied`] calls: `(shard_id, last applied index)`.
pub type AppliedListener = Box<dyn Fn(u64, u64) + Send>;

impl<E: StorageEngine> NodeStateMachine<E> {
    /// A node without shards over `engine` (the same engine the raft runtime writes to).
    pub fn new(engine: E) -> Self {
        Self { engine, shards: BTreeMap::new(), applied_listener: None, opened: Arc::default() }
    }

    /// A handle that adds shards after this machine moved into the raft runtime.
    pub fn opener(&self) -> ShardOpener<E> {
        ShardOpener { engine: self.engine.clone(), opened: self.opened.clone() }
    }

    /// Calls `listener` with `(shard_id, index)` whenever entries of a shard up to `index` were
    /// applied and their batch written, so readers see them (wakes transition watches). Runs on
    /// the raft loop thread: it must not block.
    pub fn on_applied(&mut self, listener: impl Fn(u64, u64) + Send + 'static) {
        self.applied_listener = Some(Box::new(listener));
    }

    /// Opens the state machine of `shard`; call before the runtime hosts the shard's replica.
    pub fn add_shard(&mut self, shard: ShardConfig) -> Result<()> {
        let machine = ShardStateMachine::open(self.engine.clone(), shard)?;
        self.shards.insert(shard.shard_id, machine);
        Ok(())
    }

    /// A read view of `shard_id`, usable from any thread after the state machine moved into the
    /// raft runtime; `None` if the shard was not added.
    pub fn reader(&self, shard_id: u64) -> Option<ShardReader<E>> {
        self.shards.get(&shard_id).map(ShardStateMachine::reader)
    }

    /// The state machine of `shard_id`.
    pub fn shard(&self, shard_id: u64) -> Option<&ShardStateMachine<E>> {
        self.shards.get(&shard_id)
    }

    fn shard_mut(&mut self, shard_id: u64) -> Result<&mut ShardStateMachine<E>> {
        if !self.shards.contains_key(&shard_id) {
            self.adopt_opened();
        }
        self.shards.get_mut(&shard_id).ok_or(NodeError::UnknownShard { shard_id })
    }

    /// Takes over the shards a [`ShardOpener`] opened meanwhile.
    fn adopt_opened(&mut self) {
        let opened = std::mem::take(&mut *self.opened.lock().unwrap_or_else(PoisonError::into_inner));
        for machine in opened {
            self.shards.insert(machine.shard().shard_id, machine);
        }
    }
}

impl<E: StorageEngine> StateMachine for NodeStateMachine<E> {
    type Output = ApplyOutput;

    fn applied_index(&mut self, shard_id: u64) -> Result<u64, StateMachineError> {
        Ok(self.shard_mut(shard_id)?.applied_index())
    }

    fn apply(
        &mut self,
        shard_id: u64,
        entry: CommittedEntry<'_>,
        batch: &mut WriteBatch,
    ) -> Result<ApplyOutput, StateMachineError> {
        Ok(self.shard_mut(shard_id)?.apply_to(entry.index, entry.data, batch)?)
    }

    fn record_applied(
        &mut self,
        shard_id: u64,
        index: u64,
        _term: u64,
        batch: &mut WriteBatch,
    ) -> Result<(), StateMachineError> {
        self.shard_mut(shard_id)?.record_applied(index, batch);
        Ok(())
    }

    fn applied_written(&mut self, shard_id: u64, index: u64) {
        if let Some(listener) = &self.applied_listener {
            listener(shard_id, index);
        }
    }

    fn produces_snapshots(&self) -> bool {
        true
    }

    fn snapshot_data(&mut self, shard_id: u64) -> Result<SnapshotData, StateMachineError> {
        let shard = self.shard_mut(shard_id)?;
        Ok(SnapshotData { applied_index: shard.applied_index(), data: shard.snapshot_data()? })
    }

    fn install_snapshot(
        &mut self,
        shard_id: u64,
        index: u64,
        _term: u64,
        data: &[u8],
        batch: &mut WriteBatch,
    ) -> Result<(), StateMachineError> {
        Ok(self.shard_mut(shard_id)?.install_snapshot(index, data, batch)?)
    }

    /// Deletes every key of the shard (see [`ShardStateMachine::remove_data`]) and forgets its
    /// state machine: a later `ShardOpener::open` of the shard starts from an empty one.
    fn remove_shard(&mut self, shard_id: u64, batch: &mut WriteBatch) -> Result<(), StateMachineError> {
        self.shard_mut(shard_id)?.remove_data(batch)?;
        self.shards.remove(&shard_id);
        Ok(())
    }
}
