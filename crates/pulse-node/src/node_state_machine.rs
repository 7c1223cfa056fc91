//! [`NodeStateMachine`]: every shard replica of a node behind the raft runtime's
//! `StateMachine` trait.

use std::collections::BTreeMap;

use pulse_raft::{CommittedEntry, StateMachine, StateMachineError};
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
}

/// What [`NodeStateMachine::on_applied`] calls: `(shard_id, last applied index)`.
pub type AppliedListener = Box<dyn Fn(u64, u64) + Send>;

impl<E: StorageEngine> NodeStateMachine<E> {
    /// A node without shards over `engine` (the same engine the raft runtime writes to).
    pub fn new(engine: E) -> Self {
        Self { engine, shards: BTreeMap::new(), applied_listener: None }
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
        self.shards.get_mut(&shard_id).ok_or(NodeError::UnknownShard { shard_id })
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
}
