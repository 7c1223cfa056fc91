//! [`RaftRuntime`] starts the Ready loop thread; [`RuntimeHandle`] talks to it.

use std::future::Future;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use pulse_storage::StorageEngine;
use tokio::sync::oneshot;

use crate::command::Command;
use crate::config::RaftConfig;
use crate::error::{ProposeError, RaftError, Result};
use crate::membership::{Membership, MembershipChange};
use crate::ready::ReadyLoop;
use crate::shard_status::ShardStatus;
use crate::state_machine::StateMachine;
use crate::stats::RuntimeStats;
use crate::transport::{ShardMessage, Transport};

/// Starts the multi-raft runtime of a node.
#[derive(Debug)]
pub struct RaftRuntime;

impl RaftRuntime {
    /// Validates `config` and starts the Ready loop on a dedicated OS thread (it blocks on
    /// fsyncs, so never on an async worker) for node `node_id` — also the raft id of every
    /// replica it hosts. All replicas share `engine` (one write batch, one fsync per round);
    /// committed entries are applied to `state_machine`; messages leave through `transport`.
    /// Host shards with [`RuntimeHandle::add_shard`].
    pub fn start<E, S, T>(
        node_id: u64,
        config: RaftConfig,
        engine: E,
        state_machine: S,
        transport: T,
    ) -> Result<RuntimeHandle<S::Output>>
    where
        E: StorageEngine,
        S: StateMachine,
        T: Transport,
    {
        config.validate()?;
        if node_id == raft::INVALID_ID {
            return Err(RaftError::InvalidConfig { field: "node_id", reason: "must not be 0".into() });
        }
        let (inbox, receiver) = mpsc::channel();
        let stats = Arc::new(RuntimeStats::default());
        let ready_loop =
            ReadyLoop::new(node_id, config, engine, state_machine, transport, stats.clone(), receiver);
        let thread = thread::Builder::new()
            .name(format!("raft-ready-{node_id}"))
            .spawn(move || ready_loop.run())
            .map_err(RaftError::Spawn)?;
        Ok(RuntimeHandle {
            shared: Arc::new(Shared { node_id, inbox, stats, thread: Mutex::new(Some(thread)) }),
        })
    }
}

/// A cheap, cloneable handle to a running runtime: requests go to the Ready loop through an
/// unbounded channel, answers come back through futures that async gRPC handlers await.
///
/// Requests are queued in call order (the future needs not be polled for the request to be
/// sent). When the last handle is dropped the loop stops as if shut down, without waiting.
pub struct RuntimeHandle<O> {
    shared: Arc<Shared<O>>,
}

struct Shared<O> {
    node_id: u64,
    inbox: Sender<Command<O>>,
    stats: Arc<RuntimeStats>,
    /// Taken by the first `shutdown`.
    thread: Mutex<Option<JoinHandle<Result<()>>>>,
}

impl<O> Clone for RuntimeHandle<O> {
    fn clone(&self) -> Self {
        RuntimeHandle { shared: self.shared.clone() }
    }
}

impl<O> std::fmt::Debug for RuntimeHandle<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeHandle").field("node_id", &self.shared.node_id).finish()
    }
}

impl<O: Send + 'static> RuntimeHandle<O> {
    /// The node id (raft id of every replica) of this runtime.
    pub fn node_id(&self) -> u64 {
        self.shared.node_id
    }

    /// The runtime's counters.
    pub fn stats(&self) -> &RuntimeStats {
        &self.shared.stats
    }

    /// Proposes `data` (a non-empty command) to shard `shard_id` and resolves to the state
    /// machine's output once the entry is applied on this node, or to why it cannot be:
    /// `NotLeader` (with a hint), `Dropped`, `Busy`, `Timeout` once `deadline` (monotonic
    /// clock) passes, `Stopped`, … — never hangs past the deadline. See [`ProposeError`] for
    /// when the outcome is unknown.
    pub fn propose(
        &self,
        shard_id: u64,
        data: Vec<u8>,
        deadline: Instant,
    ) -> impl Future<Output = Result<O, ProposeError>> + Send + use<O> {
        let (reply, answer) = oneshot::channel();
        // If the loop is gone, the command (and `reply`) is dropped and `answer` says so.
        let _ = self.shared.inbox.send(Command::Propose { shard_id, data, deadline, reply });
        async move { answer.await.unwrap_or(Err(ProposeError::Stopped)) }
    }

    /// A linearizable read point of shard `shard_id` (raft's ReadIndex): resolves to the read
    /// index once this replica, the leader, has confirmed its leadership with a quorum and
    /// applied at least up to it. Reading local state after that is linearizable. Fails like
    /// [`propose`](Self::propose) (`NotLeader`, `Timeout`, …).
    pub fn read_index(
        &self,
        shard_id: u64,
        deadline: Instant,
    ) -> impl Future<Output = Result<u64, ProposeError>> + Send + use<O> {
        let (reply, answer) = oneshot::channel();
        let _ = self.shared.inbox.send(Command::ReadIndex { shard_id, deadline, reply });
        async move { answer.await.unwrap_or(Err(ProposeError::Stopped)) }
    }

    /// Hosts a replica of `shard_id`: recovers it from the engine, or bootstraps it with
    /// `voters` (node ids, this node among them) if the shard was never stored here. A shard
    /// whose only voter is this node is leader when this resolves.
    pub fn add_shard(
        &self,
        shard_id: u64,
        voters: Vec<u64>,
    ) -> impl Future<Output = Result<()>> + Send + use<O> {
        admin_answer(self.request(|reply| Command::AddShard { shard_id, voters, join: false, reply }))
    }

    /// Hosts a new, *uninitialized* replica of `shard_id` on this node, to be added to the
    /// group by its leader ([`change_membership`](Self::change_membership) with
    /// [`MembershipChange::AddLearner`]): it has no membership and no log, never campaigns, and
    /// starts from the leader's snapshot. A shard already stored here is recovered as by
    /// [`add_shard`](Self::add_shard).
    pub fn join_shard(&self, shard_id: u64) -> impl Future<Output = Result<()>> + Send + use<O> {
        admin_answer(self.request(|reply| Command::AddShard {
            shard_id,
            voters: Vec::new(),
            join: true,
            reply,
        }))
    }

    /// Stops hosting the replica of `shard_id` on this node (it left the group, or the
    /// coordinator placed it elsewhere): its pending proposals, reads and membership change are
    /// answered `NotLeader` without a hint (retry on another replica), and its raft records and
    /// the state machine's data of the shard ([`StateMachine::remove_shard`]) are deleted in one
    /// fsynced write batch. Messages for the shard are dropped from then on; hosting it again
    /// ([`join_shard`](Self::join_shard)) starts from an empty replica.
    ///
    /// Remove the node from the group first ([`MembershipChange::RemoveReplica`]): a replica
    /// removed while still a member comes back empty if the leader keeps sending to it, and a
    /// voter removed that way weakens the quorum. Errors: `UnknownShard` if neither hosted nor
    /// failed here; the state machine's refusal (the replica stays hosted); a storage failure
    /// (the replica is stopped as failed).
    pub fn remove_shard(&self, shard_id: u64) -> impl Future<Output = Result<()>> + Send + use<O> {
        admin_answer(self.request(|reply| Command::RemoveShard { shard_id, reply }))
    }

    /// Proposes a membership change of `shard_id` through this replica, the leader, and
    /// resolves to the new membership once the change is applied here; or to why not:
    /// `InvalidMembershipChange` (not applicable: nothing was proposed),
    /// `MembershipChangePending` (another change is pending: nothing was proposed), `NotLeader`, `Timeout` once `deadline` passes, `Dropped`, `Stopped`.
    pub fn change_membership(
        &self,
        shard_id: u64,
        change: MembershipChange,
        deadline: Instant,
    ) -> impl Future<Output = Result<Membership, ProposeError>> + Send + use<O> {
        let (reply, answer) = oneshot::channel();
        let _ = self.shared.inbox.send(Command::ChangeMembership { shard_id, change, deadline, reply });
        async move { answer.await.unwrap_or(Err(ProposeError::Stopped)) }
    }

    /// Reports the outcome of sending a snapshot of `shard_id` to node `to` (a `MsgSnapshot`
    /// this runtime handed to its transport): `delivered` once the receiver took it, `false` if
    /// sending failed. A transport must report every snapshot it is given, exactly once: raft
    /// sends nothing more to that follower until it hears (raft-rs `report_snapshot`).
    pub fn report_snapshot(&self, shard_id: u64, to: u64, delivered: bool) {
        let _ = self.shared.inbox.send(Command::ReportSnapshot { shard_id, to, delivered });
    }

    /// Makes the replica of `shard_id` start an election now (pre-vote first).
    pub fn campaign(&self, shard_id: u64) -> impl Future<Output = Result<()>> + Send + use<O> {
        admin_answer(self.request(|reply| Command::Campaign { shard_id, reply }))
    }

    /// Asks the replica of `shard_id`, if leader, to hand leadership to node `to`. Resolves
    /// when the request is handed to raft, not when the transfer is done; proposals meanwhile
    /// get `NotLeader` with `to` as hint.
    pub fn transfer_leader(
        &self,
        shard_id: u64,
        to: u64,
    ) -> impl Future<Output = Result<()>> + Send + use<O> {
        admin_answer(self.request(|reply| Command::TransferLeader { shard_id, to, reply }))
    }

    /// The state of the replica of `shard_id`.
    pub fn shard_status(&self, shard_id: u64) -> impl Future<Output = Result<ShardStatus>> + Send + use<O> {
        admin_answer(self.request(|reply| Command::Status { shard_id, reply }))
    }

    /// Hands raft messages received from other nodes to the Ready loop (called by the
    /// transport's receiving side). Dropped silently if the runtime is stopped.
    pub fn step(&self, messages: Vec<ShardMessage>) {
        if !messages.is_empty() {
            let _ = self.shared.inbox.send(Command::Step(messages));
        }
    }

    /// Stops the Ready loop and waits for its thread: pending and later requests fail with
    /// `Stopped`. Returns the fatal error that stopped the loop earlier, if any. Idempotent
    /// (later calls return `Ok`). Blocks for up to one round: from async code, call it in
    /// `spawn_blocking`.
    pub fn shutdown(&self) -> Result<()> {
        let _ = self.shared.inbox.send(Command::Shutdown);
        let thread = self.shared.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some(thread) = thread else {
            return Ok(());
        };
        match thread.join() {
            Ok(result) => result,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
                    .unwrap_or_else(|| "unknown panic".to_owned());
                Err(RaftError::LoopPanicked(message))
            }
        }
    }

    /// Sends an admin command; its answer arrives on the returned receiver.
    fn request<R>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<R>>) -> Command<O>,
    ) -> oneshot::Receiver<Result<R>> {
        let (reply, answer) = oneshot::channel();
        let _ = self.shared.inbox.send(command(reply));
        answer
    }
}

/// Waits for an admin command's answer; a loop that is gone answers `Stopped`.
async fn admin_answer<R>(answer: oneshot::Receiver<Result<R>>) -> Result<R> {
    answer.await.unwrap_or(Err(RaftError::Stopped))
}
