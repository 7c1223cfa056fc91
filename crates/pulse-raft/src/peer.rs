//! [`Peer`]: one shard replica hosted by this node — its `RawNode` over a [`RaftLogStore`], its
//! pending proposals and reads, and the steps of a Ready round that concern it alone.

use std::time::Instant;

use protobuf::Message as _;
use pulse_storage::{RaftLogStore, StorageEngine, WriteBatch, WriteOptions};
use raft::eraftpb::{ConfChange, ConfChangeV2, ConfState, Entry, EntryType, Message, MessageType, Snapshot};
use raft::{ProgressState, RawNode, Ready, SnapshotStatus, SoftState, StateRole};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use crate::config::RaftConfig;
use crate::error::{ProposeError, RaftError, Result};
use crate::hibernation::{hibernate_heartbeat, is_hibernation_message, is_quiet};
use crate::membership::{Membership, MembershipChange};
use crate::proposal::{PendingProposal, ProposalQueue, ProposalReply, answer};
use crate::read_queue::{PendingRead, ReadQueue};
use crate::recovery::{recover_commit_index, write_and_persist};
use crate::shard_status::ShardStatus;
use crate::state_machine::{CommittedEntry, StateMachine};
use crate::stats::{RuntimeStats, bump};
use crate::transport::{ShardMessage, Transport};

/// What a peer borrows from the runtime while it handles its part of a round.
pub(crate) struct PeerContext<'a, S, T> {
    pub(crate) state_machine: &'a mut S,
    pub(crate) transport: &'a T,
    pub(crate) stats: &'a RuntimeStats,
    /// Reused for the write of each applied entry; empty between uses.
    pub(crate) apply_batch: &'a mut WriteBatch,
}

/// One replica of one shard.
///
/// Invariants: `applied_index` is the last entry whose apply batch was written (without
/// fsync); raft's own applied index follows it through `advance` / `advance_apply`. The
/// store's staged changes are written and `on_persisted` before raft is stepped again.
pub(crate) struct Peer<E: StorageEngine, O> {
    shard_id: u64,
    node_id: u64,
    raw_node: RawNode<RaftLogStore<E>>,
    applied_index: u64,
    /// A commit index raft reported in a `LightReady` and that is not in the stored hard state
    /// yet: staged in the next round's batch. Losing it in a crash is harmless (restart
    /// forwards the stored commit index to the applied index, see [`Peer::open`]).
    unpersisted_commit: Option<u64>,
    proposals: ProposalQueue<O>,
    reads: ReadQueue,
    /// Role as of the last Ready's soft state: leadership changes are detected against it.
    was_leader: bool,
    /// The membership change proposed through this replica and not answered yet (raft allows
    /// one pending change at a time).
    pending_membership: Option<PendingMembership>,
    /// A membership change added a replica: the next stage compacts the log up to the applied
    /// index, so the newcomer (whose log is empty) is sent a snapshot rather than the log from
    /// index 1, which lacks the group's initial membership.
    compact_for_newcomer: bool,
    /// Sleeping: not ticked until something wakes it (see the `hibernation` module).
    hibernating: bool,
    /// Consecutive ticks this leader had nothing in flight.
    quiet_ticks: usize,
}

/// Where a membership change's answer goes.
pub(crate) type MembershipReply = oneshot::Sender<std::result::Result<Membership, ProposeError>>;

/// A membership change appended to the leader's log, answered when its entry applies.
#[derive(Debug)]
pub(crate) struct PendingMembership {
    index: u64,
    term: u64,
    deadline: Instant,
    reply: MembershipReply,
}

impl<E: StorageEngine, O> Peer<E, O> {
    /// Opens (or bootstraps) replica `node_id` of `shard_id` over `engine`.
    ///
    /// - A shard with no stored membership is new: its conf state becomes `voters`.
    /// - raft restarts from the state machine's persisted apply index (`Config::applied`), so
    ///   no entry is applied twice. The state machine writes without fsync and before the
    ///   round's batch holding the commit index, so after a crash its apply index may be ahead
    ///   of the stored commit index (never of the log): the commit index is forwarded to it,
    ///   as TiKV does. Entries up to the apply index were committed, so this is safe.
    /// - A shard whose only voter is this node campaigns at once: it is leader when this
    ///   returns, without waiting for an election timeout.
    /// - With `join`, a shard never stored here is opened *uninitialized*: no membership, an
    ///   empty log; it waits for the leader's snapshot (see [`Peer::step`]).
    #[allow(clippy::too_many_arguments)] // one call site, every argument distinct
    pub(crate) fn open<S: StateMachine<Output = O>>(
        node_id: u64,
        shard_id: u64,
        voters: &[u64],
        join: bool,
        engine: E,
        config: &RaftConfig,
        state_machine: &mut S,
        logger: &slog::Logger,
    ) -> Result<Self> {
        let mut store = RaftLogStore::open(engine, shard_id).map_err(RaftError::storage(shard_id))?;
        let stored = store.conf_state();
        if join && stored.voters.is_empty() && stored.learners.is_empty() {
            info!(shard_id, "opened an uninitialized replica: waiting for the leader's snapshot");
        } else if stored.voters.is_empty() && stored.learners.is_empty() {
            if voters.is_empty() {
                return Err(RaftError::NoVoters { shard_id });
            }
            let mut batch = WriteBatch::new();
            store
                .set_conf_state(&mut batch, &ConfState::from((voters.to_vec(), Vec::new())))
                .map_err(RaftError::storage(shard_id))?;
            write_and_persist(&mut store, &batch)?;
            info!(shard_id, ?voters, "bootstrapped shard");
        } else if !voters.is_empty() && !same_members(&stored.voters, voters) {
            debug!(shard_id, stored = ?stored.voters, given = ?voters, "stored membership wins over the given voters");
        }

        let applied_index = state_machine
            .applied_index(shard_id)
            .map_err(|source| RaftError::StateMachine { shard_id, index: 0, source })?;
        recover_commit_index(&mut store, applied_index)?;

        let single_voter = store.conf_state().voters == [node_id] && store.conf_state().learners.is_empty();
        let raft_config = config.raft_config(node_id, applied_index);
        let logger = logger.new(slog::o!("shard_id" => shard_id));
        let raw_node = RawNode::new(&raft_config, store, &logger).map_err(RaftError::raft(shard_id))?;
        let mut peer = Peer {
            shard_id,
            node_id,
            raw_node,
            applied_index,
            unpersisted_commit: None,
            proposals: ProposalQueue::new(shard_id),
            reads: ReadQueue::new(shard_id),
            was_leader: false,
            pending_membership: None,
            compact_for_newcomer: false,
            hibernating: false,
            quiet_ticks: 0,
        };
        if single_voter {
            peer.raw_node.campaign().map_err(RaftError::raft(shard_id))?;
        }
        let hard_state = peer.raw_node.store().hard_state();
        info!(
            shard_id,
            applied_index,
            commit_index = hard_state.commit,
            term = hard_state.term,
            last_index = peer.raw_node.raft.raft_log.last_index(),
            "opened shard replica"
        );
        Ok(peer)
    }

    /// One raft tick, unless hibernating. A leader counts its consecutive quiet ticks.
    pub(crate) fn tick(&mut self, stats: &RuntimeStats) {
        if self.hibernating {
            return;
        }
        self.raw_node.tick();
        bump(&stats.replica_ticks, 1);
        let quiet = self.proposals.len() == 0
            && self.reads.len() == 0
            && self.pending_membership.is_none()
            && self.unpersisted_commit.is_none()
            && is_quiet(&self.raw_node.raft, self.applied_index);
        self.quiet_ticks = if quiet { self.quiet_ticks + 1 } else { 0 };
    }

    /// The leader this replica sleeps as a follower of, if it is a hibernating follower.
    pub(crate) fn sleeping_follower_of(&self) -> Option<u64> {
        let raft = &self.raw_node.raft;
        (self.hibernating && raft.state == StateRole::Follower)
            .then(|| known_leader(raft.leader_id))
            .flatten()
    }

    /// Hibernates this leader if it has been quiet for `after` ticks, and returns the hibernate
    /// heartbeats that put its followers to sleep.
    pub(crate) fn hibernate_if_quiet(&mut self, after: usize, stats: &RuntimeStats) -> Vec<Message> {
        if self.hibernating || self.quiet_ticks < after {
            return Vec::new();
        }
        self.hibernating = true;
        bump(&stats.hibernations, 1);
        debug!(shard_id = self.shard_id, "leader hibernates");
        self.sleeping_followers().into_iter().map(|to| self.hibernate_heartbeat(to)).collect()
    }

    /// The nodes of this hibernating leader's followers (none if it is not one).
    pub(crate) fn sleeping_followers(&self) -> Vec<u64> {
        let raft = &self.raw_node.raft;
        if !self.hibernating || raft.state != StateRole::Leader {
            return Vec::new();
        }
        raft.prs().iter().map(|(&id, _)| id).filter(|&id| id != self.node_id).collect()
    }

    /// A hibernate heartbeat of this leader to `to` (see [`hibernate_heartbeat`]).
    pub(crate) fn hibernate_heartbeat(&self, to: u64) -> Message {
        let raft = &self.raw_node.raft;
        let matched = raft.prs().get(to).map_or(0, |progress| progress.matched);
        hibernate_heartbeat(self.node_id, to, raft.term, matched.min(raft.raft_log.committed))
    }

    /// A request (proposal, read, admin command) arrived: the group is not idle.
    fn on_request(&mut self, stats: &RuntimeStats) {
        self.quiet_ticks = 0;
        self.wake(stats);
    }

    /// Wakes this replica if it sleeps: it ticks again from the next tick.
    pub(crate) fn wake(&mut self, stats: &RuntimeStats) {
        if self.hibernating {
            self.hibernating = false;
            self.quiet_ticks = 0;
            bump(&stats.wakeups, 1);
            debug!(shard_id = self.shard_id, "replica woke up");
        }
    }

    /// Steps a message from another replica. An uninitialized replica (joined, no snapshot
    /// yet) drops appends starting at index 1: the log does not hold the group's initial
    /// membership, only a snapshot does. Other appends it rejects as raft does, which makes the
    /// leader fall back to a snapshot.
    ///
    /// A hibernation message leaves the replica asleep, and puts a follower of its sender to
    /// sleep; any other message wakes it.
    pub(crate) fn step(&mut self, message: Message, stats: &RuntimeStats) {
        let (from, msg_type) = (message.from, message.get_msg_type());
        let hibernation = is_hibernation_message(&message);
        if !hibernation {
            self.wake(stats);
        }
        if msg_type == MessageType::MsgAppend && message.index == 0 && self.is_uninitialized() {
            debug!(shard_id = self.shard_id, from, "uninitialized replica dropped an append from index 1");
            return;
        }
        if let Err(error) = self.raw_node.step(message) {
            debug!(shard_id = self.shard_id, from, ?msg_type, %error, "raft message ignored");
            return;
        }
        let raft = &self.raw_node.raft;
        if hibernation
            && msg_type == MessageType::MsgHeartbeat
            && !self.hibernating
            && raft.state == StateRole::Follower
            && raft.leader_id == from
        {
            self.hibernating = true;
            bump(&stats.hibernations, 1);
            debug!(shard_id = self.shard_id, leader = from, "follower hibernates");
        }
    }

    /// Whether this replica has no membership yet (joined, waiting for its first snapshot).
    fn is_uninitialized(&self) -> bool {
        let conf_state = self.raw_node.store().conf_state();
        conf_state.voters.is_empty() && conf_state.learners.is_empty()
    }

    /// Proposes a membership change if this replica leads and the change is valid now; tracks
    /// it until its entry applies. Otherwise answers at once.
    pub(crate) fn change_membership(
        &mut self,
        change: MembershipChange,
        deadline: Instant,
        reply: MembershipReply,
        stats: &RuntimeStats,
    ) {
        self.on_request(stats);
        let shard_id = self.shard_id;
        let refuse = |reason: String| ProposeError::InvalidMembershipChange { shard_id, reason };
        let result = if deadline <= Instant::now() {
            Err(ProposeError::Timeout { shard_id })
        } else if self.raw_node.raft.state != StateRole::Leader {
            Err(self.not_leader())
        } else if self.pending_membership.is_some() || self.raw_node.raft.has_pending_conf() {
            Err(ProposeError::MembershipChangePending { shard_id })
        } else if let Err(reason) = change.check(self.raw_node.store().conf_state(), self.node_id) {
            Err(refuse(reason))
        } else {
            Ok(())
        };
        if let Err(error) = result {
            bump(&stats.proposals_failed, 1);
            let _ = reply.send(Err(error));
            return;
        }
        match self.raw_node.propose_conf_change(Vec::new(), change.to_conf_change()) {
            Ok(()) => {
                let index = self.raw_node.raft.raft_log.last_index();
                let term = self.raw_node.raft.term;
                info!(shard_id, ?change, index, term, "membership change proposed");
                self.pending_membership = Some(PendingMembership { index, term, deadline, reply });
            }
            Err(error) => {
                debug!(shard_id, ?change, %error, "raft refused a membership change");
                bump(&stats.proposals_failed, 1);
                let _ = reply.send(Err(self.refusal()));
            }
        }
    }

    /// The transport's outcome of sending a snapshot to `to`: raft must always hear it, or it
    /// never sends to that follower again. Releases the prepared snapshot once no follower is
    /// waiting for one.
    pub(crate) fn report_snapshot(&mut self, to: u64, delivered: bool) {
        let status = if delivered { SnapshotStatus::Finish } else { SnapshotStatus::Failure };
        info!(shard_id = self.shard_id, to, delivered, "snapshot send reported");
        self.raw_node.report_snapshot(to, status);
        let still_needed =
            self.raw_node.raft.prs().iter().any(|(_, progress)| progress.state == ProgressState::Snapshot);
        if !still_needed {
            self.raw_node.mut_store().clear_prepared_snapshot();
        }
    }

    /// If raft asked for a snapshot it could not get, builds one from the state machine (its
    /// data at the apply index, that entry's term, the conf state in force) and hands it to the
    /// store; raft sends it at the follower's next heartbeat response. Called between rounds,
    /// when every apply batch is written. A state machine that cannot produce one is logged,
    /// never fatal: the follower just stays behind.
    pub(crate) fn prepare_snapshot<S: StateMachine<Output = O>>(
        &mut self,
        state_machine: &mut S,
    ) -> Result<()> {
        let shard_id = self.shard_id;
        if !self.raw_node.mut_store().take_snapshot_request() {
            return Ok(());
        }
        if self.raw_node.store().prepared_snapshot_index() == Some(self.applied_index) {
            return Ok(());
        }
        let data = match state_machine.snapshot_data(shard_id) {
            Ok(data) => data,
            Err(error) => {
                warn!(shard_id, %error, "state machine could not produce a snapshot");
                return Ok(());
            }
        };
        if data.applied_index != self.applied_index {
            return Err(RaftError::StateMachine {
                shard_id,
                index: self.applied_index,
                source: format!(
                    "snapshot taken at apply index {} while the runtime applied up to {}",
                    data.applied_index, self.applied_index
                )
                .into(),
            });
        }
        let index = data.applied_index;
        let term = self.raw_node.raft.raft_log.term(index).map_err(RaftError::raft(shard_id))?;
        let mut snapshot = Snapshot::default();
        snapshot.set_data(data.data.into());
        let metadata = snapshot.mut_metadata();
        metadata.index = index;
        metadata.term = term;
        metadata.set_conf_state(self.raw_node.store().conf_state().clone());
        info!(shard_id, index, term, bytes = snapshot.get_data().len(), "snapshot prepared");
        self.raw_node.mut_store().set_prepared_snapshot(snapshot);
        Ok(())
    }

    pub(crate) fn campaign(&mut self, stats: &RuntimeStats) -> Result<()> {
        self.on_request(stats);
        self.raw_node.campaign().map_err(RaftError::raft(self.shard_id))
    }

    pub(crate) fn transfer_leader(&mut self, to: u64, stats: &RuntimeStats) {
        self.on_request(stats);
        info!(shard_id = self.shard_id, to, "leader transfer requested");
        self.raw_node.transfer_leader(to);
    }

    /// Appends a proposal to the log if this replica is the leader, and tracks it by the
    /// `(index, term)` of its entry; otherwise answers at once.
    pub(crate) fn propose(
        &mut self,
        id: u64,
        data: Vec<u8>,
        deadline: Instant,
        reply: ProposalReply<O>,
        stats: &RuntimeStats,
    ) {
        self.on_request(stats);
        let shard_id = self.shard_id;
        if deadline <= Instant::now() {
            return answer(reply, Err(ProposeError::Timeout { shard_id }), stats);
        }
        if data.is_empty() {
            return answer(reply, Err(ProposeError::EmptyCommand { shard_id }), stats);
        }
        if self.raw_node.raft.state != StateRole::Leader {
            return answer(reply, Err(self.not_leader()), stats);
        }
        match self.raw_node.propose(Vec::new(), data) {
            Ok(()) => {
                // The leader appends a proposal right after its last entry.
                let index = self.raw_node.raft.raft_log.last_index();
                let term = self.raw_node.raft.term;
                self.proposals.push(PendingProposal::new(id, index, term, deadline, reply), stats);
            }
            Err(error) => {
                let refusal = self.refusal();
                debug!(shard_id, id, %error, ?refusal, "raft refused a proposal");
                answer(reply, Err(refusal), stats);
            }
        }
    }

    /// Queues a read index request; issued as soon as the leader may (see [`ReadQueue`]).
    pub(crate) fn read_index(&mut self, read: PendingRead, stats: &RuntimeStats) {
        self.on_request(stats);
        if read.deadline <= Instant::now() {
            return read.complete(Err(ProposeError::Timeout { shard_id: self.shard_id }), stats);
        }
        if self.raw_node.raft.state != StateRole::Leader {
            return read.complete(Err(self.not_leader()), stats);
        }
        // DESIGN.md: no lease read while leadership is being handed over — the new leader is
        // elected without waiting for this one's lease to run out.
        if self.raw_node.raft.read_only.option == raft::ReadOnlyOption::LeaseBased
            && let Some(transferee) = self.raw_node.raft.lead_transferee
        {
            let refusal = ProposeError::NotLeader { shard_id: self.shard_id, leader_hint: Some(transferee) };
            return read.complete(Err(refusal), stats);
        }
        // Issued by the round (`issue_reads`), together with every other read of this round.
        self.reads.push_unsent(read);
    }

    /// Hands the parked reads to raft as one ReadIndex request once the leader has committed an
    /// entry of its term (raft-rs ignores a ReadIndex before that). Called at the start of
    /// every round.
    pub(crate) fn issue_reads(&mut self) {
        if !self.reads.has_unsent()
            || self.raw_node.raft.state != StateRole::Leader
            || !self.raw_node.raft.commit_to_current_term()
        {
            return;
        }
        if let Some(context) = self.reads.issue() {
            self.raw_node.read_index(context);
        }
    }

    pub(crate) fn has_ready(&self) -> bool {
        self.raw_node.has_ready()
    }

    /// The round's steps before the write, in DESIGN.md's order: take the Ready, send
    /// `messages()` (a leader sends before persisting), install a snapshot, record read states,
    /// apply `committed_entries()`. The caller then stages the entries and hard state with
    /// [`Peer::stage`]. An error is fatal for this replica only.
    pub(crate) fn handle_ready<S, T>(&mut self, context: &mut PeerContext<'_, S, T>) -> Result<Ready>
    where
        S: StateMachine<Output = O>,
        T: Transport,
    {
        let mut ready = self.raw_node.ready();
        if let Some(soft_state) = ready.ss() {
            self.on_soft_state(soft_state, context.stats);
        }
        self.send(ready.take_messages(), context);
        if !ready.snapshot().is_empty() {
            self.install_snapshot(ready.snapshot(), context)?;
        }
        for read_state in ready.take_read_states() {
            self.reads.confirm(&read_state.request_ctx, read_state.index);
        }
        self.apply_entries(ready.take_committed_entries(), context)?;
        Ok(ready)
    }

    /// Adds this replica's part of the round to the shared `batch`: the new entries, then the
    /// hard state (entries with or before it), then the log compaction if due. Also used with
    /// no Ready (`ready = None`) to persist a commit index reported by a `LightReady`. Returns
    /// whether the batch must be fsynced for this replica. `snapshots`: whether the state
    /// machine produces snapshots (see `maybe_compact`).
    ///
    /// An error here leaves the shared batch unusable: it is fatal for the runtime.
    pub(crate) fn stage(
        &mut self,
        ready: Option<&Ready>,
        batch: &mut WriteBatch,
        config: &RaftConfig,
        stats: &RuntimeStats,
        snapshots: bool,
    ) -> Result<bool> {
        let shard_id = self.shard_id;
        let store = self.raw_node.mut_store();
        let hard_state = ready.and_then(Ready::hs);
        if let Some(ready) = ready {
            store.append(batch, ready.entries()).map_err(RaftError::storage(shard_id))?;
            bump(&stats.entries_appended, ready.entries().len() as u64);
        }
        let commit_index = if let Some(hard_state) = hard_state {
            store.set_hard_state(batch, hard_state).map_err(RaftError::storage(shard_id))?;
            hard_state.commit
        } else if let Some(commit) = self.unpersisted_commit {
            store.set_commit_index(batch, commit).map_err(RaftError::storage(shard_id))?;
            commit
        } else {
            store.hard_state().commit
        };
        self.unpersisted_commit = None;
        if ready.is_some() {
            self.maybe_compact(batch, config, commit_index, snapshots)
                .map_err(RaftError::storage(shard_id))?;
        }
        Ok(ready.is_some_and(Ready::must_sync))
    }

    /// Adds to `batch` the deletion of every raft record of this replica (it leaves the node;
    /// the caller drops it once the batch is written).
    pub(crate) fn stage_destroy(&mut self, batch: &mut WriteBatch) {
        self.raw_node.mut_store().destroy(batch);
    }

    /// Whether the next round must stage a commit index for this replica even without a Ready.
    pub(crate) fn has_unpersisted_commit(&self) -> bool {
        self.unpersisted_commit.is_some()
    }

    /// The round's batch is written: raft may now see what this replica staged.
    pub(crate) fn on_persisted(&mut self) {
        self.raw_node.mut_store().on_persisted();
    }

    /// The round's steps after the write: send `persisted_messages()` (votes and append
    /// responses only leave once durable), `advance()`, then the `LightReady`: remember the
    /// commit index, send its messages, apply its committed entries, `advance_apply()`.
    /// An error is fatal for this replica only.
    pub(crate) fn after_persist<S, T>(
        &mut self,
        mut ready: Ready,
        context: &mut PeerContext<'_, S, T>,
    ) -> Result<()>
    where
        S: StateMachine<Output = O>,
        T: Transport,
    {
        self.send(ready.take_persisted_messages(), context);
        let mut light = self.raw_node.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.unpersisted_commit = Some(commit);
        }
        self.send(light.take_messages(), context);
        self.apply_entries(light.take_committed_entries(), context)?;
        self.raw_node.advance_apply();
        Ok(())
    }

    /// Answers `Timeout` to the proposals and reads whose deadline has passed.
    pub(crate) fn sweep_expired(&mut self, now: Instant, stats: &RuntimeStats) {
        self.proposals.fail_expired(now, stats);
        self.reads.fail_expired(now, stats);
        if self.pending_membership.as_ref().is_some_and(|pending| pending.deadline <= now) {
            self.fail_membership(&ProposeError::Timeout { shard_id: self.shard_id }, stats);
        }
    }

    /// Answers every pending proposal and read with `error` (runtime or replica stopping).
    pub(crate) fn fail_all(&mut self, error: &ProposeError, stats: &RuntimeStats) {
        self.proposals.fail_all(error, stats);
        self.reads.fail_all(error, stats);
        self.fail_membership(error, stats);
    }

    pub(crate) fn status(&self) -> ShardStatus {
        let raft = &self.raw_node.raft;
        let store = self.raw_node.store();
        let (truncated_index, _) = store.truncated();
        ShardStatus {
            shard_id: self.shard_id,
            node_id: self.node_id,
            role: raft.state.into(),
            leader_id: known_leader(raft.leader_id),
            term: raft.term,
            commit_index: raft.raft_log.committed,
            applied_index: self.applied_index,
            first_index: truncated_index + 1,
            last_index: raft::Storage::last_index(store).unwrap_or(truncated_index),
            voters: store.conf_state().voters.clone(),
            learners: store.conf_state().learners.clone(),
            pending_proposals: self.proposals.len(),
            pending_reads: self.reads.len(),
            hibernating: self.hibernating,
        }
    }

    fn not_leader(&self) -> ProposeError {
        ProposeError::NotLeader {
            shard_id: self.shard_id,
            leader_hint: known_leader(self.raw_node.raft.leader_id),
        }
    }

    /// Why raft refused a proposal while this replica is leader.
    fn refusal(&self) -> ProposeError {
        let raft = &self.raw_node.raft;
        if let Some(transferee) = raft.lead_transferee {
            return ProposeError::NotLeader { shard_id: self.shard_id, leader_hint: Some(transferee) };
        }
        if raft.state != StateRole::Leader || raft.prs().get(self.node_id).is_none() {
            return self.not_leader();
        }
        ProposeError::Busy { shard_id: self.shard_id }
    }

    fn on_soft_state(&mut self, soft_state: &SoftState, stats: &RuntimeStats) {
        let is_leader = soft_state.raft_state == StateRole::Leader;
        let term = self.raw_node.raft.term;
        if is_leader && !self.was_leader {
            info!(shard_id = self.shard_id, term, "became leader");
        } else if !is_leader && self.was_leader {
            let leader_hint = known_leader(soft_state.leader_id);
            info!(shard_id = self.shard_id, term, ?leader_hint, "lost leadership");
            let error = ProposeError::NotLeader { shard_id: self.shard_id, leader_hint };
            self.proposals.fail_all(&error, stats);
            self.reads.fail_unconfirmed(&error, stats);
            self.fail_membership(&error, stats);
        }
        self.was_leader = is_leader;
    }

    fn send<S, T: Transport>(&self, messages: Vec<Message>, context: &PeerContext<'_, S, T>) {
        if messages.is_empty() {
            return;
        }
        bump(&context.stats.messages_sent, messages.len() as u64);
        let shard_id = self.shard_id;
        context
            .transport
            .send(messages.into_iter().map(|message| ShardMessage { shard_id, message }).collect());
    }

    /// Writes a received snapshot's metadata and the state machine's data in one fsynced batch.
    fn install_snapshot<S, T>(
        &mut self,
        snapshot: &Snapshot,
        context: &mut PeerContext<'_, S, T>,
    ) -> Result<()>
    where
        S: StateMachine<Output = O>,
    {
        let shard_id = self.shard_id;
        let metadata = snapshot.get_metadata();
        let mut batch = WriteBatch::new();
        let store = self.raw_node.mut_store();
        store.apply_snapshot(&mut batch, metadata).map_err(RaftError::storage(shard_id))?;
        context
            .state_machine
            .install_snapshot(shard_id, metadata.index, metadata.term, snapshot.get_data(), &mut batch)
            .map_err(|source| RaftError::StateMachine { shard_id, index: metadata.index, source })?;
        write_and_persist(store, &batch)?;
        self.applied_index = metadata.index;
        context.state_machine.applied_written(shard_id, metadata.index);
        info!(shard_id, index = metadata.index, term = metadata.term, "installed snapshot");
        Ok(())
    }

    /// Applies committed entries in order, each in its own write (effects and apply index
    /// together), and answers the proposals and reads they complete.
    fn apply_entries<S, T>(&mut self, entries: Vec<Entry>, context: &mut PeerContext<'_, S, T>) -> Result<()>
    where
        S: StateMachine<Output = O>,
    {
        let shard_id = self.shard_id;
        let mut applied_any = false;
        for entry in entries {
            let (index, term) = (entry.index, entry.term);
            if index <= self.applied_index {
                // raft restarts from the apply index, so this never happens; never re-apply.
                warn!(
                    shard_id,
                    index,
                    applied_index = self.applied_index,
                    "skipped an already applied entry"
                );
                continue;
            }
            let batch = &mut *context.apply_batch;
            let state_machine_error = |source| RaftError::StateMachine { shard_id, index, source };
            let output = match entry.get_entry_type() {
                EntryType::EntryNormal if entry.get_data().is_empty() => {
                    context
                        .state_machine
                        .record_applied(shard_id, index, term, batch)
                        .map_err(state_machine_error)?;
                    None
                }
                EntryType::EntryNormal => {
                    let committed = CommittedEntry { index, term, data: entry.get_data() };
                    Some(
                        context
                            .state_machine
                            .apply(shard_id, committed, batch)
                            .map_err(state_machine_error)?,
                    )
                }
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    self.apply_conf_change(&entry, batch)?;
                    context
                        .state_machine
                        .record_applied(shard_id, index, term, batch)
                        .map_err(state_machine_error)?;
                    None
                }
            };
            if !batch.is_empty() {
                let written = self.raw_node.store().engine().write(batch, WriteOptions::NO_SYNC);
                batch.clear();
                written.map_err(RaftError::storage(shard_id))?;
                bump(&context.stats.apply_writes, 1);
            }
            // A conf change staged the new conf state in the batch just written.
            self.raw_node.mut_store().on_persisted();
            self.applied_index = index;
            applied_any = true;
            bump(&context.stats.entries_applied, 1);

            if let Some(proposal) = self.proposals.take_applied(index, term, context.stats) {
                let result = output.ok_or(ProposeError::Dropped { shard_id, index, term });
                proposal.complete(result, context.stats);
            }
            self.answer_membership(&entry, context.stats);
        }
        if applied_any {
            context.state_machine.applied_written(shard_id, self.applied_index);
        }
        self.reads.complete_applied(self.applied_index, context.stats);
        Ok(())
    }

    /// Answers the pending membership change if `entry` (just applied) is its entry, or went
    /// past it (then it was overwritten by another leader's entry).
    fn answer_membership(&mut self, entry: &Entry, stats: &RuntimeStats) {
        let Some(pending) = &self.pending_membership else { return };
        if entry.index < pending.index {
            return;
        }
        let Some(pending) = self.pending_membership.take() else { return };
        let is_change =
            matches!(entry.get_entry_type(), EntryType::EntryConfChange | EntryType::EntryConfChangeV2);
        let result = if entry.index == pending.index && entry.term == pending.term && is_change {
            bump(&stats.proposals_ok, 1);
            Ok(Membership::from(self.raw_node.store().conf_state()))
        } else {
            bump(&stats.proposals_failed, 1);
            Err(ProposeError::Dropped { shard_id: self.shard_id, index: pending.index, term: pending.term })
        };
        let _ = pending.reply.send(result);
    }

    /// Answers the pending membership change with `error`.
    fn fail_membership(&mut self, error: &ProposeError, stats: &RuntimeStats) {
        if let Some(pending) = self.pending_membership.take() {
            bump(&stats.proposals_failed, 1);
            let _ = pending.reply.send(Err(error.clone()));
        }
    }

    /// Applies a committed membership change to raft and stages the new conf state in `batch`.
    fn apply_conf_change(&mut self, entry: &Entry, batch: &mut WriteBatch) -> Result<()> {
        let (shard_id, index) = (self.shard_id, entry.index);
        let corrupt = |error: protobuf::ProtobufError| RaftError::CorruptEntry {
            shard_id,
            index,
            reason: error.to_string(),
        };
        let conf_state = if entry.get_entry_type() == EntryType::EntryConfChange {
            let change = ConfChange::parse_from_bytes(entry.get_data()).map_err(corrupt)?;
            self.raw_node.apply_conf_change(&change)
        } else {
            let change = ConfChangeV2::parse_from_bytes(entry.get_data()).map_err(corrupt)?;
            self.raw_node.apply_conf_change(&change)
        }
        .map_err(RaftError::raft(shard_id))?;
        let previous = self.raw_node.store().conf_state();
        let added = conf_state
            .voters
            .iter()
            .chain(&conf_state.learners)
            .any(|id| !previous.voters.contains(id) && !previous.learners.contains(id));
        self.compact_for_newcomer |= added;
        self.raw_node.mut_store().set_conf_state(batch, &conf_state).map_err(RaftError::storage(shard_id))?;
        info!(shard_id, index, voters = ?conf_state.voters, learners = ?conf_state.learners, "membership changed");
        Ok(())
    }

    /// Stages log compaction up to `applied − compact_keep_entries` once more than
    /// `compact_threshold_entries` applied entries are in the log. Never past the commit index
    /// staged in this batch. On a leader, not past what the slowest follower still needs
    /// either, unless it lags more than `compact_max_lag_entries`: it then catches up by
    /// snapshot, and a dead follower cannot make the log grow without bound. After a
    /// membership change added a replica, compacts up to the applied index at once (see
    /// `compact_for_newcomer`). Without `snapshots` (the state machine produces none), never
    /// past what a follower still needs.
    fn maybe_compact(
        &mut self,
        batch: &mut WriteBatch,
        config: &RaftConfig,
        commit_index: u64,
        snapshots: bool,
    ) -> pulse_storage::Result<()> {
        let (truncated_index, _) = self.raw_node.store().truncated();
        let first_index = truncated_index + 1;
        let compact_for_newcomer = std::mem::take(&mut self.compact_for_newcomer) && snapshots;
        let compact_index = if compact_for_newcomer {
            self.applied_index.min(commit_index)
        } else {
            if self.applied_index.saturating_sub(first_index) <= config.compact_threshold_entries {
                return Ok(());
            }
            let mut compact_index =
                self.applied_index.saturating_sub(config.compact_keep_entries).min(commit_index);
            if self.raw_node.raft.state == StateRole::Leader {
                let mut slowest = u64::MAX;
                for (id, progress) in self.raw_node.raft.prs().iter() {
                    if *id != self.node_id {
                        slowest = slowest.min(progress.matched);
                    }
                }
                let floor = if snapshots {
                    self.applied_index.saturating_sub(config.compact_max_lag_entries)
                } else {
                    0
                };
                compact_index = compact_index.min(slowest.max(floor));
            }
            compact_index
        };
        if compact_index < first_index {
            return Ok(());
        }
        self.raw_node.mut_store().compact(batch, compact_index)?;
        debug!(
            shard_id = self.shard_id,
            compact_index,
            applied_index = self.applied_index,
            "log compaction staged"
        );
        Ok(())
    }
}

/// raft's leader id, `None` for raft's "no leader" (0).
fn known_leader(leader_id: u64) -> Option<u64> {
    (leader_id != raft::INVALID_ID).then_some(leader_id)
}

fn same_members(stored: &[u64], given: &[u64]) -> bool {
    let mut stored = stored.to_vec();
    let mut given = given.to_vec();
    stored.sort_unstable();
    given.sort_unstable();
    stored == given
}
