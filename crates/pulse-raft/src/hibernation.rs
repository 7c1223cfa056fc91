//! Hibernation: idle raft groups stop ticking (TiKV's hibernate regions, CockroachDB's
//! quiescence), so a node hosting many quiet shards spends no CPU and sends no heartbeats for
//! them.
//!
//! - **A leader hibernates** after `hibernate_after_ticks` consecutive *quiet* ticks: nothing
//!   pending (proposals, reads, membership change, leader transfer), everything applied, and
//!   every replica's log matching its own ([`is_quiet`]). It then sends each follower a
//!   *hibernate heartbeat* — a raft `MsgHeartbeat` whose context is [`HIBERNATE_CONTEXT`], at
//!   its term and commit index — and stops ticking: no heartbeats, no check-quorum.
//! - **A follower hibernates** when it steps a hibernate heartbeat from the leader it follows,
//!   and stops ticking: no election timeout.
//! - **Anything else wakes a replica**: a proposal, a read, an admin command, or any raft
//!   message other than a hibernate heartbeat (or its response). A woken leader sends ordinary
//!   heartbeats and appends, which wake its followers.
//! - **Node liveness replaces the followers' election timer**: the Ready loop records when it
//!   last heard from each node ([`NodeLiveness`]), and a node with hibernating leaders sends one
//!   hibernate heartbeat per follower *node* (not per shard) every heartbeat interval — the
//!   keep-alive. A hibernating follower whose leader's node has been silent for an election
//!   timeout wakes, and elects a new leader the usual way (pre-vote first).
//!
//! Safety does not depend on hibernation: a hibernating leader that lost its quorum still
//! answers no ReadIndex (the read wakes it, and the quorum round fails) and commits nothing.
//! Only lease reads would be unsafe — a sleeping leader never runs check-quorum, so it cannot
//! know its lease still holds — hence a runtime configured with `lease_reads` never hibernates.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use raft::eraftpb::{Message, MessageType};

/// The context that marks a heartbeat (and its response) as a hibernation message.
pub(crate) const HIBERNATE_CONTEXT: &[u8] = b"pulse/hibernate";

/// Whether `message` is a hibernate heartbeat or the response to one: it leaves a sleeping
/// replica asleep.
pub(crate) fn is_hibernation_message(message: &Message) -> bool {
    matches!(message.get_msg_type(), MessageType::MsgHeartbeat | MessageType::MsgHeartbeatResponse)
        && message.context[..] == *HIBERNATE_CONTEXT
}

/// A hibernate heartbeat from leader `from` to follower `to`: what raft would send as a
/// heartbeat (its term, the follower's commit index), with the hibernation context.
pub(crate) fn hibernate_heartbeat(from: u64, to: u64, term: u64, commit: u64) -> Message {
    let mut message = Message::default();
    message.set_msg_type(MessageType::MsgHeartbeat);
    message.from = from;
    message.to = to;
    message.term = term;
    message.commit = commit;
    message.context = HIBERNATE_CONTEXT.to_vec().into();
    message
}

/// Whether the leader `raft` has nothing in flight: every entry committed and applied (up to
/// `applied_index`) and matched by every replica in `Replicate` state, no pending membership
/// change or leader transfer. The caller checks its own queues (proposals, reads).
pub(crate) fn is_quiet<S: raft::Storage>(raft: &raft::Raft<S>, applied_index: u64) -> bool {
    let last_index = raft.raft_log.last_index();
    raft.state == raft::StateRole::Leader
        && raft.raft_log.committed == last_index
        && applied_index == last_index
        && raft.lead_transferee.is_none()
        && !raft.has_pending_conf()
        && raft.prs().iter().all(|(_, progress)| {
            progress.matched == last_index && progress.state == raft::ProgressState::Replicate
        })
}

/// When this node last heard from each other node (any raft message, of any shard).
#[derive(Debug, Default)]
pub(crate) struct NodeLiveness {
    last_heard: HashMap<u64, Instant>,
}

impl NodeLiveness {
    pub(crate) fn heard_from(&mut self, node_id: u64, now: Instant) {
        self.last_heard.insert(node_id, now);
    }

    /// Whether `node_id` has sent nothing for `silence` (or never sent anything).
    pub(crate) fn is_silent(&self, node_id: u64, now: Instant, silence: Duration) -> bool {
        self.last_heard.get(&node_id).is_none_or(|heard| now.saturating_duration_since(*heard) >= silence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_heartbeats_with_the_context_are_hibernation_messages() {
        let heartbeat = hibernate_heartbeat(1, 2, 7, 42);
        assert!(is_hibernation_message(&heartbeat));
        assert_eq!((heartbeat.from, heartbeat.to, heartbeat.term, heartbeat.commit), (1, 2, 7, 42));
        let mut response = heartbeat.clone();
        response.set_msg_type(MessageType::MsgHeartbeatResponse);
        assert!(is_hibernation_message(&response));
        let mut append = heartbeat.clone();
        append.set_msg_type(MessageType::MsgAppend);
        assert!(!is_hibernation_message(&append));
        let mut read_index_heartbeat = heartbeat;
        read_index_heartbeat.context = 5u64.to_be_bytes().to_vec().into();
        assert!(!is_hibernation_message(&read_index_heartbeat));
    }

    #[test]
    fn a_node_is_silent_until_heard_and_again_after_the_silence() {
        let mut liveness = NodeLiveness::default();
        let start = Instant::now();
        let silence = Duration::from_millis(100);
        assert!(liveness.is_silent(2, start, silence));
        liveness.heard_from(2, start);
        assert!(!liveness.is_silent(2, start + Duration::from_millis(99), silence));
        assert!(liveness.is_silent(2, start + silence, silence));
    }
}
