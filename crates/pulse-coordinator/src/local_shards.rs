//! [`LocalShards`]: the shards this process hosts, and routing a customer to its shard.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pulse_ingest::{BatchConfig, Proposer, ShardBatcher};
use pulse_node::{ApplyOutput, ShardCommand, ShardConfig, ShardReader};
use pulse_raft::{ProposeError, RuntimeHandle};
use pulse_scoring::Event;
use pulse_storage::{RocksEngine, customer_hash};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::error::{Result, ServerError};

/// What [`Proposer::propose`] returns.
type ProposeFuture = Pin<Box<dyn Future<Output = std::result::Result<Vec<bool>, String>> + Send>>;

/// One hosted shard: its identity, read view and ingest front.
#[derive(Clone)]
struct LocalShard {
    reader: ShardReader<RocksEngine>,
    batcher: ShardBatcher,
}

/// Every shard of this node, ordered by hash range, with the raft handle they share.
#[derive(Clone)]
pub struct LocalShards {
    runtime: RuntimeHandle<ApplyOutput>,
    shards: Arc<Vec<LocalShard>>,
    proposer: Arc<dyn Proposer>,
    propose_timeout: Duration,
    /// Changes whenever applied entries were written (see [`Self::with_applied_changes`]).
    applied: watch::Receiver<u64>,
    /// Every shard has this node as its only voter and has applied everything committed
    /// before it started serving: reads need no ReadIndex (see [`Self::into_single_voter`]).
    single_voter: bool,
}

impl std::fmt::Debug for LocalShards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalShards").field("shards", &self.configs()).finish()
    }
}

impl LocalShards {
    /// Spawns one batcher per reader (on the current tokio runtime) that proposes through
    /// `runtime`, stamping entries with `clock`.
    pub fn new(
        runtime: RuntimeHandle<ApplyOutput>,
        readers: Vec<ShardReader<RocksEngine>>,
        clock: Clock,
        propose_timeout: Duration,
    ) -> Self {
        let proposer: Arc<dyn Proposer> =
            Arc::new(RaftProposer { runtime: runtime.clone(), clock, timeout: propose_timeout });
        let shards = readers.into_iter().map(|reader| LocalShard::spawn(reader, &proposer)).collect();
        // Until `with_applied_changes`: a signal that never fires (its sender is gone).
        let applied = watch::channel(0).1;
        Self { runtime, shards: Arc::new(shards), proposer, propose_timeout, applied, single_voter: false }
    }

    /// These shards and the one `reader` views (a replica this node just started hosting),
    /// with its own batcher; the shards stay in hash-range order. Replaces a shard of the same
    /// id.
    pub fn with_shard(&self, reader: ShardReader<RocksEngine>) -> Self {
        let shard_id = reader.shard().shard_id;
        let mut shards: Vec<LocalShard> =
            self.shards.iter().filter(|s| s.reader.shard().shard_id != shard_id).cloned().collect();
        shards.push(LocalShard::spawn(reader, &self.proposer));
        shards.sort_by_key(|s| s.reader.shard().range.start_hash);
        Self { shards: Arc::new(shards), ..self.clone() }
    }

    /// These shards without `shard_id` (a replica this node stops hosting: its batcher stops
    /// once the last view holding it is dropped); unchanged if it is not hosted here.
    pub fn without_shard(&self, shard_id: u64) -> Self {
        let shards: Vec<LocalShard> =
            self.shards.iter().filter(|s| s.reader.shard().shard_id != shard_id).cloned().collect();
        Self { shards: Arc::new(shards), ..self.clone() }
    }

    /// How long a proposal (or an admin change through raft) may take before it times out.
    pub fn propose_timeout(&self) -> Duration {
        self.propose_timeout
    }

    /// A view of only the shards `shard_ids` (a call forwarded by another gateway, which routed
    /// it to this node's replicas); `Err` names the first shard not hosted here.
    pub fn restricted_to(&self, shard_ids: &[u64]) -> std::result::Result<Self, u64> {
        let mut shards = Vec::with_capacity(shard_ids.len());
        for &shard_id in shard_ids {
            let shard = self.shards.iter().find(|s| s.reader.shard().shard_id == shard_id).ok_or(shard_id)?;
            shards.push(shard.clone());
        }
        shards.sort_by_key(|s| s.reader.shard().range.start_hash);
        shards.dedup_by_key(|s| s.reader.shard().shard_id);
        Ok(Self { shards: Arc::new(shards), ..self.clone() })
    }

    /// For a node whose shards all have this node as their only voter (standalone): waits
    /// until every shard has applied everything committed so far (the entries of a previous
    /// run replayed from the raft log), then serves reads without a ReadIndex round through the
    /// raft loop.
    ///
    /// That is still linearizable: with one voter no other leader can exist, and a write is
    /// acknowledged only after its entry is applied and written, so any write acknowledged
    /// before a read starts is visible to it; the only writes applied before ack but not before
    /// a read are the previous run's, which this barrier covers.
    pub async fn into_single_voter(mut self) -> Result<Self> {
        self.read_barriers(0..self.shards.len()).await?;
        self.single_voter = true;
        Ok(self)
    }

    /// Uses `applied` as the signal of written entries: its sender (the node state machine's
    /// `on_applied` listener) changes the value after every round of applied entries.
    pub fn with_applied_changes(mut self, applied: watch::Receiver<u64>) -> Self {
        self.applied = applied;
        self
    }

    /// A receiver of the applied-entries signal: `changed()` resolves once entries were
    /// written after the last `borrow_and_update`, and fails when the node shuts down.
    pub fn applied_changes(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }

    /// Proposes `PruneChangelog` to every shard this node leads: deletes transitions recorded before
    /// `before_ms`, at most `max_entries` per shard; the entries pruned in total.
    pub async fn prune_changelog(&self, before_ms: i64, max_entries: u32) -> Result<u32> {
        let deadline = Instant::now() + self.propose_timeout;
        let command = ShardCommand::PruneChangelog { before_ms, max_entries }.encode();
        let proposals: Vec<_> = self
            .shards
            .iter()
            .map(|s| self.runtime.propose(s.reader.shard().shard_id, command.clone(), deadline))
            .collect();
        let mut pruned = 0u32;
        for proposal in proposals {
            match proposal.await {
                Ok(ApplyOutput::Pruned { entries }) => pruned = pruned.saturating_add(entries),
                Ok(_) | Err(ProposeError::NotLeader { .. }) => {}
                Err(error) => return Err(ServerError::Propose(error)),
            }
        }
        Ok(pruned)
    }

    /// The shards, in hash-range order.
    pub fn configs(&self) -> Vec<ShardConfig> {
        self.shards.iter().map(|s| s.reader.shard()).collect()
    }

    /// The raft runtime.
    pub fn runtime(&self) -> &RuntimeHandle<ApplyOutput> {
        &self.runtime
    }

    /// Index (into [`Self::configs`]) of the shard owning `customer_id`.
    pub fn position_of(&self, customer_id: &str) -> usize {
        let hash = customer_hash(customer_id);
        // The ranges cover the whole hash space; the fallback is unreachable by construction.
        self.shards.iter().position(|s| s.reader.shard().range.contains(hash)).unwrap_or(0)
    }

    /// The read view of the shard at `position`.
    pub fn reader(&self, position: usize) -> &ShardReader<RocksEngine> {
        &self.shards[position].reader
    }

    /// The ingest front of the shard at `position`.
    pub fn batcher(&self, position: usize) -> &ShardBatcher {
        &self.shards[position].batcher
    }

    /// Number of shards.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Whether no shard is hosted.
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// Waits until the replica at `position` has applied everything committed before now
    /// (raft ReadIndex), so reads after it are linearizable; immediate on a single-voter node
    /// (see [`Self::into_single_voter`]).
    pub async fn read_barrier(&self, position: usize) -> Result<()> {
        self.read_barriers([position]).await
    }

    /// [`Self::read_barrier`] for several shards at once: every ReadIndex request is queued
    /// before any is awaited, so they share raft loop rounds instead of taking one each.
    pub async fn read_barriers(&self, positions: impl IntoIterator<Item = usize>) -> Result<()> {
        if self.single_voter {
            return Ok(());
        }
        let deadline = Instant::now() + self.propose_timeout;
        let reads: Vec<_> = positions
            .into_iter()
            .map(|position| self.runtime.read_index(self.shards[position].reader.shard().shard_id, deadline))
            .collect();
        for read in reads {
            read.await?;
        }
        Ok(())
    }

    /// Proposes `command` to the shard at `position` and waits until it is applied.
    pub async fn propose(&self, position: usize, command: ShardCommand) -> Result<ApplyOutput> {
        let shard_id = self.shards[position].reader.shard().shard_id;
        let deadline = Instant::now() + self.propose_timeout;
        Ok(self.runtime.propose(shard_id, command.encode(), deadline).await?)
    }

    /// Proposes a `Tick` at `now_ms` to every shard this node leads (the others refuse with
    /// `NotLeader`, which is skipped); returns the first other failure.
    pub async fn tick(&self, now_ms: i64, max_customers: u32) -> Result<()> {
        let deadline = Instant::now() + self.propose_timeout;
        let command = ShardCommand::Tick { now_ms, max_customers }.encode();
        let mut proposals = Vec::new();
        for shard in self.shards.iter() {
            // A shard with nothing due is left alone, so that its raft group can hibernate.
            if shard.reader.has_tick_work(now_ms).map_err(ServerError::Node)? {
                proposals.push(self.runtime.propose(
                    shard.reader.shard().shard_id,
                    command.clone(),
                    deadline,
                ));
            }
        }
        for proposal in proposals {
            match proposal.await {
                Ok(_) | Err(ProposeError::NotLeader { .. }) => {}
                Err(error) => return Err(ServerError::Propose(error)),
            }
        }
        Ok(())
    }
}

impl LocalShard {
    fn spawn(reader: ShardReader<RocksEngine>, proposer: &Arc<dyn Proposer>) -> Self {
        let batcher = ShardBatcher::spawn(reader.shard().shard_id, BatchConfig::default(), proposer.clone());
        Self { reader, batcher }
    }
}

/// Proposes ingest batches as `ShardCommand::Ingest` entries stamped with the clock.
struct RaftProposer {
    runtime: RuntimeHandle<ApplyOutput>,
    clock: Clock,
    timeout: Duration,
}

impl Proposer for RaftProposer {
    fn propose(&self, shard_id: u64, events: Vec<Event>) -> ProposeFuture {
        let command = ShardCommand::Ingest { arrival_ms: self.clock.now_ms(), events }.encode();
        let proposal = self.runtime.propose(shard_id, command, Instant::now() + self.timeout);
        Box::pin(async move {
            match proposal.await {
                Ok(ApplyOutput::Ingest { applied }) => Ok(applied),
                Ok(other) => Err(format!("unexpected apply output {other:?}")),
                Err(error) => Err(error.to_string()),
            }
        })
    }
}
