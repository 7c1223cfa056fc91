//! [`Transport`]: how raft messages leave the node; [`ShardMessage`], [`NullTransport`].

use raft::eraftpb::Message;

/// A raft message of one shard's group. raft-rs messages name their sender and receiver by
/// raft id only (`from`, `to`); Pulse's raft id of a replica is its node id (a node hosts at
/// most one replica of a shard), so a message is routed by `(shard_id, message.to)`.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardMessage {
    /// The shard (raft group) the message belongs to.
    pub shard_id: u64,
    /// The raft message; `to` is the destination node id, `from` this node's.
    pub message: Message,
}

/// Sends raft messages to other nodes. Called from the Ready loop thread: `send` must not block
/// (queue and return); losing messages is fine, raft retries. The receiving node hands them to
/// its runtime with [`RuntimeHandle::step`](crate::RuntimeHandle::step).
///
/// One call carries every message of one Ready phase of one or more shards, for any
/// destinations: the implementation groups them per destination node as it sees fit.
///
/// A `MsgSnapshot` carries a whole state snapshot (possibly large): send it out of band, and
/// report its outcome with [`RuntimeHandle::report_snapshot`](crate::RuntimeHandle::report_snapshot)
/// — always, also when it is dropped, or raft never sends to that follower again.
pub trait Transport: Send + Sync + 'static {
    /// Queues `messages` for delivery.
    fn send(&self, messages: Vec<ShardMessage>);
}

/// A transport for a node whose shards all have a single voter (standalone mode): such groups
/// never send messages; anything sent anyway is dropped and logged.
#[derive(Clone, Copy, Debug, Default)]
pub struct NullTransport;

impl Transport for NullTransport {
    fn send(&self, messages: Vec<ShardMessage>) {
        for message in messages {
            tracing::debug!(
                shard_id = message.shard_id,
                to = message.message.to,
                msg_type = ?message.message.get_msg_type(),
                "null transport dropped a raft message"
            );
        }
    }
}
