//! [`ReadyLoop`]: the body of the Ready loop thread — inputs, ticks, and the batched round.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use pulse_storage::{RaftLogStore, StorageEngine, WriteBatch, WriteOptions};
use tracing::{debug, error, info};

use crate::command::Command;
use crate::config::RaftConfig;
use crate::error::{ProposeError, RaftError, Result};
use crate::hibernation::NodeLiveness;
use crate::peer::{Peer, PeerContext};
use crate::proposal::answer;
use crate::raft_logger::raft_logger;
use crate::read_queue::{PendingRead, answer_read};
use crate::state_machine::StateMachine;
use crate::stats::{RuntimeStats, bump};
use crate::transport::{ShardMessage, Transport};

/// Everything the Ready loop thread owns: the replicas, the state machine, the transport.
pub(crate) struct ReadyLoop<E: StorageEngine, S: StateMachine, T: Transport> {
    node_id: u64,
    config: RaftConfig,
    engine: E,
    state_machine: S,
    transport: T,
    stats: Arc<RuntimeStats>,
    inbox: Receiver<Command<S::Output>>,
    /// Ordered by shard id, so rounds handle shards in a stable order.
    peers: BTreeMap<u64, Peer<E, S::Output>>,
    /// Shards whose replica stopped after a fatal error: requests get `ReplicaFailed`.
    failed: BTreeSet<u64>,
    logger: slog::Logger,
    /// The round's batch: entries, hard states and compactions of every shard. Reused.
    log_batch: WriteBatch,
    /// The batch of one applied entry. Reused.
    apply_batch: WriteBatch,
    /// Source of proposal and read ids.
    next_request_id: u64,
    /// When each other node was last heard from: wakes hibernating followers of a dead leader.
    liveness: NodeLiveness,
    /// Ticks since the loop started: keep-alives go every `heartbeat_ticks`.
    ticks: u64,
}

impl<E: StorageEngine, S: StateMachine, T: Transport> ReadyLoop<E, S, T> {
    pub(crate) fn new(
        node_id: u64,
        config: RaftConfig,
        engine: E,
        state_machine: S,
        transport: T,
        stats: Arc<RuntimeStats>,
        inbox: Receiver<Command<S::Output>>,
    ) -> Self {
        ReadyLoop {
            node_id,
            config,
            engine,
            state_machine,
            transport,
            stats,
            inbox,
            peers: BTreeMap::new(),
            failed: BTreeSet::new(),
            logger: raft_logger().new(slog::o!("node_id" => node_id)),
            log_batch: WriteBatch::new(),
            apply_batch: WriteBatch::new(),
            next_request_id: 1,
            liveness: NodeLiveness::default(),
            ticks: 0,
        }
    }

    /// Runs until `Shutdown`, the last handle dropping, or a fatal error (returned). Every
    /// pending request is answered `Stopped` on the way out.
    pub(crate) fn run(mut self) -> Result<()> {
        info!(node_id = self.node_id, "raft ready loop started");
        let tick_interval = Duration::from_millis(self.config.tick_interval_ms);
        let mut next_tick = Instant::now() + tick_interval;
        let result = loop {
            if self.collect_inputs(next_tick) == Flow::Stop {
                break Ok(());
            }
            let now = Instant::now();
            if now >= next_tick {
                self.tick(now);
                next_tick = now + tick_interval;
            }
            if let Err(error) = self.round() {
                break Err(error);
            }
        };
        match &result {
            Ok(()) => info!(node_id = self.node_id, "raft ready loop stopped"),
            Err(error) => error!(node_id = self.node_id, %error, "raft ready loop stopped by a fatal error"),
        }
        for peer in self.peers.values_mut() {
            peer.fail_all(&ProposeError::Stopped, &self.stats);
        }
        while let Ok(command) = self.inbox.try_recv() {
            self.reject(command);
        }
        result
    }

    /// Waits for the first input until `next_tick` (not at all if a replica already has more
    /// to do: raft caps the committed entries of one Ready), then takes what else is queued, up
    /// to `max_inputs_per_round`: a burst of proposals shares one round, hence one fsync.
    fn collect_inputs(&mut self, next_tick: Instant) -> Flow {
        let wait = if self.peers.values().any(Peer::has_ready) {
            Duration::ZERO
        } else {
            next_tick.saturating_duration_since(Instant::now())
        };
        match self.inbox.recv_timeout(wait) {
            Ok(command) => {
                if self.handle(command) == Flow::Stop {
                    return Flow::Stop;
                }
            }
            Err(RecvTimeoutError::Timeout) => return Flow::Continue,
            Err(RecvTimeoutError::Disconnected) => return Flow::Stop,
        }
        for _ in 1..self.config.max_inputs_per_round {
            match self.inbox.try_recv() {
                Ok(command) => {
                    if self.handle(command) == Flow::Stop {
                        return Flow::Stop;
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Flow::Stop,
            }
        }
        Flow::Continue
    }

    fn handle(&mut self, command: Command<S::Output>) -> Flow {
        match command {
            Command::Propose { shard_id, data, deadline, reply } => {
                let id = self.next_id();
                match self.peers.get_mut(&shard_id) {
                    Some(peer) => peer.propose(id, data, deadline, reply, &self.stats),
                    None => answer(reply, Err(self.missing_shard(shard_id)), &self.stats),
                }
            }
            Command::ReadIndex { shard_id, deadline, reply } => {
                let read = PendingRead::new(self.next_id(), deadline, reply);
                match self.peers.get_mut(&shard_id) {
                    Some(peer) => peer.read_index(read, &self.stats),
                    None => read.complete(Err(self.missing_shard(shard_id)), &self.stats),
                }
            }
            Command::Step(messages) => self.step(messages),
            Command::AddShard { shard_id, voters, join, reply } => {
                let _ = reply.send(self.add_shard(shard_id, &voters, join));
            }
            Command::RemoveShard { shard_id, reply } => {
                let _ = reply.send(self.remove_shard(shard_id));
            }
            Command::ChangeMembership { shard_id, change, deadline, reply } => {
                match self.peers.get_mut(&shard_id) {
                    Some(peer) => peer.change_membership(change, deadline, reply, &self.stats),
                    None => {
                        bump(&self.stats.proposals_failed, 1);
                        let _ = reply.send(Err(self.missing_shard(shard_id)));
                    }
                }
            }
            Command::ReportSnapshot { shard_id, to, delivered } => {
                if let Some(peer) = self.peers.get_mut(&shard_id) {
                    peer.report_snapshot(to, delivered);
                }
            }
            Command::Campaign { shard_id, reply } => {
                let stats = self.stats.clone();
                let _ = reply.send(self.peer_mut(shard_id).and_then(|peer| peer.campaign(&stats)));
            }
            Command::TransferLeader { shard_id, to, reply } => {
                let stats = self.stats.clone();
                let _ = reply.send(self.peer_mut(shard_id).map(|peer| peer.transfer_leader(to, &stats)));
            }
            Command::Status { shard_id, reply } => {
                let _ = reply.send(self.peer_mut(shard_id).map(|peer| peer.status()));
            }
            Command::Shutdown => return Flow::Stop,
        }
        Flow::Continue
    }

    /// Ticks every replica that is awake; wakes hibernating followers whose leader's node went
    /// silent; hibernates quiet leaders; sends the hibernation keep-alives (see `hibernation`).
    fn tick(&mut self, now: Instant) {
        self.ticks += 1;
        let hibernate_after = self.config.hibernation_ticks();
        let silence = Duration::from_millis(self.config.tick_interval_ms * self.config.election_ticks as u64);
        let mut outbox = Vec::new();
        for (&shard_id, peer) in self.peers.iter_mut() {
            if let Some(leader) = peer.sleeping_follower_of()
                && self.liveness.is_silent(leader, now, silence)
            {
                info!(shard_id, leader, "the leader's node went silent: waking up to elect");
                peer.wake(&self.stats);
            }
            peer.tick(&self.stats);
            if let Some(after) = hibernate_after {
                let heartbeats = peer.hibernate_if_quiet(after, &self.stats);
                outbox.extend(heartbeats.into_iter().map(|message| ShardMessage { shard_id, message }));
            }
        }
        if hibernate_after.is_some() && self.ticks.is_multiple_of(self.config.heartbeat_ticks as u64) {
            self.keep_alives(&mut outbox);
        }
        if !outbox.is_empty() {
            bump(&self.stats.messages_sent, outbox.len() as u64);
            self.transport.send(outbox);
        }
    }

    /// One hibernate heartbeat per node that follows a hibernating leader here: it tells that
    /// node this one is alive, for all its sleeping groups at once.
    fn keep_alives(&self, outbox: &mut Vec<ShardMessage>) {
        let mut covered = BTreeSet::new();
        for (&shard_id, peer) in &self.peers {
            for to in peer.sleeping_followers() {
                if covered.insert(to) {
                    outbox.push(ShardMessage { shard_id, message: peer.hibernate_heartbeat(to) });
                }
            }
        }
    }

    fn step(&mut self, messages: Vec<ShardMessage>) {
        let now = Instant::now();
        for ShardMessage { shard_id, message } in messages {
            self.liveness.heard_from(message.from, now);
            match self.peers.get_mut(&shard_id) {
                Some(peer) => peer.step(message, &self.stats),
                // Creating replicas on demand (a leader adding this node) comes with issue 5.
                None => {
                    debug!(shard_id, from = message.from, "dropped a message for a shard not hosted here")
                }
            }
        }
    }

    fn add_shard(&mut self, shard_id: u64, voters: &[u64], join: bool) -> Result<()> {
        if self.peers.contains_key(&shard_id) {
            return Err(RaftError::ShardExists { shard_id });
        }
        let peer = Peer::open(
            self.node_id,
            shard_id,
            voters,
            join,
            self.engine.clone(),
            &self.config,
            &mut self.state_machine,
            &self.logger,
        )?;
        self.failed.remove(&shard_id);
        self.peers.insert(shard_id, peer);
        Ok(())
    }

    /// Stops hosting `shard_id` and deletes its raft records and state machine data in one
    /// fsynced batch (see [`RuntimeHandle::remove_shard`](crate::RuntimeHandle::remove_shard)).
    /// Runs between rounds, when every replica's staged records are written, so the batch
    /// races with nothing of the shard. A failed replica (no peer left) is removed too.
    fn remove_shard(&mut self, shard_id: u64) -> Result<()> {
        let mut batch = WriteBatch::new();
        let mut peer = self.peers.remove(&shard_id);
        match peer.as_mut() {
            Some(peer) => peer.stage_destroy(&mut batch),
            None if self.failed.contains(&shard_id) => {
                let mut store = RaftLogStore::open(self.engine.clone(), shard_id)
                    .map_err(RaftError::storage(shard_id))?;
                store.destroy(&mut batch);
            }
            None => return Err(RaftError::UnknownShard { shard_id }),
        }
        if let Err(source) = self.state_machine.remove_shard(shard_id, &mut batch) {
            // Nothing was written: the replica goes on as before.
            if let Some(peer) = peer {
                self.peers.insert(shard_id, peer);
            }
            return Err(RaftError::RemoveRefused { shard_id, source });
        }
        let written = self.engine.write(&batch, WriteOptions::SYNC).map_err(RaftError::storage(shard_id));
        let answer = match &written {
            Ok(()) => ProposeError::NotLeader { shard_id, leader_hint: None },
            Err(_) => ProposeError::ReplicaFailed { shard_id },
        };
        if let Some(mut peer) = peer {
            peer.fail_all(&answer, &self.stats);
        }
        match written {
            Ok(()) => {
                self.failed.remove(&shard_id);
                bump(&self.stats.log_fsyncs, 1);
                info!(node_id = self.node_id, shard_id, "removed shard replica and its data");
                Ok(())
            }
            Err(error) => {
                // The state machine already forgot the shard: the replica cannot go on.
                error!(node_id = self.node_id, shard_id, %error, "removing a replica failed; it is stopped");
                self.failed.insert(shard_id);
                bump(&self.stats.replicas_failed, 1);
                Err(error)
            }
        }
    }

    /// One round over every replica with something to do, in DESIGN.md's Ready order:
    ///
    /// 1. per replica: issue parked reads; take the Ready; send `messages()`; install a
    ///    snapshot; apply `committed_entries()`; stage `entries()` and `hs()` (and a compaction)
    ///    in the shared batch;
    /// 2. write the shared batch once, fsynced if any replica needs it (group commit);
    /// 3. per replica: `on_persisted`; send `persisted_messages()`; `advance()`; handle the
    ///    `LightReady` (commit index, messages, committed entries); `advance_apply()`;
    /// 4. answer `Timeout` to expired proposals and reads.
    ///
    /// A replica's own failure (apply, conf change, snapshot) stops that replica; a failure to
    /// stage or write the shared batch is returned and stops the runtime.
    fn round(&mut self) -> Result<()> {
        bump(&self.stats.rounds, 1);
        let mut failures = Vec::new();
        {
            let ReadyLoop {
                config,
                engine,
                state_machine,
                transport,
                stats,
                peers,
                log_batch,
                apply_batch,
                ..
            } = self;
            let snapshots = state_machine.produces_snapshots();
            let mut context = PeerContext { state_machine, transport: &*transport, stats, apply_batch };

            log_batch.clear();
            let mut must_sync = false;
            let mut readies = Vec::new();
            for (&shard_id, peer) in peers.iter_mut() {
                peer.issue_reads();
                if !peer.has_ready() {
                    if peer.has_unpersisted_commit() {
                        peer.stage(None, log_batch, config, context.stats, snapshots)?;
                    }
                    continue;
                }
                match peer.handle_ready(&mut context) {
                    Ok(ready) => {
                        must_sync |= peer.stage(Some(&ready), log_batch, config, context.stats, snapshots)?;
                        readies.push((shard_id, ready));
                    }
                    Err(error) => failures.push((shard_id, error)),
                }
            }
            // A failed replica staged nothing; drop it before anything else touches it.
            for (shard_id, _) in &failures {
                peers.remove(shard_id);
            }

            if !log_batch.is_empty() {
                let options = if must_sync { WriteOptions::SYNC } else { WriteOptions::NO_SYNC };
                engine
                    .write(log_batch, options)
                    .map_err(|source| RaftError::Storage { shard_id: None, source })?;
                bump(&context.stats.log_writes, 1);
                if must_sync {
                    bump(&context.stats.log_fsyncs, 1);
                }
            }
            for peer in peers.values_mut() {
                peer.on_persisted();
            }

            for (shard_id, ready) in readies {
                let Some(peer) = peers.get_mut(&shard_id) else { continue };
                if let Err(error) = peer.after_persist(ready, &mut context) {
                    failures.push((shard_id, error));
                }
            }

            // Between rounds every apply batch is written: a snapshot taken now matches the
            // apply index.
            for (&shard_id, peer) in peers.iter_mut() {
                if failures.iter().any(|(failed, _)| *failed == shard_id) {
                    continue;
                }
                if let Err(error) = peer.prepare_snapshot(&mut *context.state_machine) {
                    failures.push((shard_id, error));
                }
            }

            let now = Instant::now();
            for peer in peers.values_mut() {
                peer.sweep_expired(now, context.stats);
            }
        }
        for (shard_id, error) in failures {
            self.fail_replica(shard_id, error);
        }
        Ok(())
    }

    /// Stops a replica after a fatal error: it is dropped (its durable state stays for a later
    /// `add_shard` after repair), its requests fail, and new ones get `ReplicaFailed`.
    fn fail_replica(&mut self, shard_id: u64, error: RaftError) {
        error!(node_id = self.node_id, shard_id, %error, "replica failed and is stopped");
        if let Some(mut peer) = self.peers.remove(&shard_id) {
            peer.fail_all(&ProposeError::ReplicaFailed { shard_id }, &self.stats);
        }
        self.failed.insert(shard_id);
        bump(&self.stats.replicas_failed, 1);
    }

    fn peer_mut(&mut self, shard_id: u64) -> Result<&mut Peer<E, S::Output>> {
        if self.failed.contains(&shard_id) {
            return Err(RaftError::ReplicaFailed { shard_id });
        }
        self.peers.get_mut(&shard_id).ok_or(RaftError::UnknownShard { shard_id })
    }

    fn missing_shard(&self, shard_id: u64) -> ProposeError {
        if self.failed.contains(&shard_id) {
            ProposeError::ReplicaFailed { shard_id }
        } else {
            ProposeError::UnknownShard { shard_id }
        }
    }

    /// Answers a command that arrived after the loop stopped.
    fn reject(&self, command: Command<S::Output>) {
        match command {
            Command::Propose { reply, .. } => answer(reply, Err(ProposeError::Stopped), &self.stats),
            Command::ReadIndex { reply, .. } => answer_read(reply, Err(ProposeError::Stopped), &self.stats),
            Command::AddShard { reply, .. }
            | Command::RemoveShard { reply, .. }
            | Command::Campaign { reply, .. }
            | Command::TransferLeader { reply, .. } => {
                let _ = reply.send(Err(RaftError::Stopped));
            }
            Command::Status { reply, .. } => {
                let _ = reply.send(Err(RaftError::Stopped));
            }
            Command::ChangeMembership { reply, .. } => {
                let _ = reply.send(Err(ProposeError::Stopped));
            }
            Command::Step(_) | Command::ReportSnapshot { .. } | Command::Shutdown => {}
        }
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_request_id;
        self.next_request_id += 1;
        id
    }
}

/// Whether the loop goes on after an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}
