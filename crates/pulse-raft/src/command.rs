//! [`Command`]: the inputs of the Ready loop, sent by [`RuntimeHandle`](crate::RuntimeHandle).

use std::time::Instant;

use tokio::sync::oneshot;

use crate::error::Result;
use crate::membership::MembershipChange;
use crate::peer::MembershipReply;
use crate::proposal::ProposalReply;
use crate::read_queue::ReadReply;
use crate::shard_status::ShardStatus;
use crate::transport::ShardMessage;

/// One input of the Ready loop; every request carries the channel its answer goes back on.
#[derive(Debug)]
pub(crate) enum Command<O> {
    /// Append `data` to the shard's log; answered when it applies (or fails).
    Propose { shard_id: u64, data: Vec<u8>, deadline: Instant, reply: ProposalReply<O> },
    /// Confirm leadership and answer the read index once applied.
    ReadIndex { shard_id: u64, deadline: Instant, reply: ReadReply },
    /// Raft messages from other nodes.
    Step(Vec<ShardMessage>),
    /// Host a replica of a shard; with `join`, an uninitialized one waiting for a snapshot.
    AddShard { shard_id: u64, voters: Vec<u64>, join: bool, reply: oneshot::Sender<Result<()>> },
    /// Stop hosting a replica and delete its raft records and state (one fsynced batch).
    RemoveShard { shard_id: u64, reply: oneshot::Sender<Result<()>> },
    /// Propose a membership change; answered once applied.
    ChangeMembership { shard_id: u64, change: MembershipChange, deadline: Instant, reply: MembershipReply },
    /// The transport's outcome of sending a snapshot of `shard_id` to node `to`.
    ReportSnapshot { shard_id: u64, to: u64, delivered: bool },
    /// Start an election now.
    Campaign { shard_id: u64, reply: oneshot::Sender<Result<()>> },
    /// Ask the leader to hand leadership to `to`.
    TransferLeader { shard_id: u64, to: u64, reply: oneshot::Sender<Result<()>> },
    /// Report a replica's state.
    Status { shard_id: u64, reply: oneshot::Sender<Result<ShardStatus>> },
    /// Stop the loop.
    Shutdown,
}
