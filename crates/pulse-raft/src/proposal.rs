//! [`ProposalQueue`]: the proposals of one replica waiting for their entry to apply.
//!
//! raft-rs drops proposals silently (no leader, leader transfer, a new leader overwriting the
//! entry), so every proposal is tracked by the `(index, term)` its entry was appended at, and is
//! answered exactly once: with the state machine's output when the entry at `index` applies with
//! the same `term`; with `Dropped` when another term's entry applies there; with `NotLeader`
//! when the replica loses leadership first; with `Timeout` when its deadline passes; with
//! `Stopped` / `ReplicaFailed` when the runtime or the replica stops.

use std::collections::BTreeMap;
use std::time::Instant;

use tokio::sync::oneshot;

use crate::error::ProposeError;
use crate::stats::{RuntimeStats, bump};

/// Where a proposal's answer goes: the future returned by `propose`.
pub(crate) type ProposalReply<O> = oneshot::Sender<Result<O, ProposeError>>;

/// One proposal appended to the leader's log and not yet answered.
#[derive(Debug)]
pub(crate) struct PendingProposal<O> {
    /// Runtime-wide id, for logs.
    pub(crate) id: u64,
    /// Index the leader appended the entry at.
    pub(crate) index: u64,
    /// The leader's term when it appended the entry.
    pub(crate) term: u64,
    /// When the client stops waiting (monotonic clock).
    pub(crate) deadline: Instant,
    reply: ProposalReply<O>,
}

impl<O> PendingProposal<O> {
    pub(crate) fn new(id: u64, index: u64, term: u64, deadline: Instant, reply: ProposalReply<O>) -> Self {
        PendingProposal { id, index, term, deadline, reply }
    }

    /// Answers the proposer. A proposer that stopped waiting (dropped its future) is fine.
    pub(crate) fn complete(self, result: Result<O, ProposeError>, stats: &RuntimeStats) {
        answer(self.reply, result, stats);
    }
}

/// Answers a proposal (tracked or refused before reaching raft) and counts the outcome.
pub(crate) fn answer<O>(reply: ProposalReply<O>, result: Result<O, ProposeError>, stats: &RuntimeStats) {
    let counter = if result.is_ok() { &stats.proposals_ok } else { &stats.proposals_failed };
    bump(counter, 1);
    let _ = reply.send(result);
}

/// The pending proposals of one replica, by log index.
#[derive(Debug)]
pub(crate) struct ProposalQueue<O> {
    shard_id: u64,
    by_index: BTreeMap<u64, PendingProposal<O>>,
}

impl<O> ProposalQueue<O> {
    pub(crate) fn new(shard_id: u64) -> Self {
        ProposalQueue { shard_id, by_index: BTreeMap::new() }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_index.len()
    }

    /// Tracks a proposal just appended by the leader. A proposal still tracked at the same
    /// index is from an older term whose entry the new one replaced: it is `Dropped`.
    pub(crate) fn push(&mut self, proposal: PendingProposal<O>, stats: &RuntimeStats) {
        if let Some(replaced) = self.by_index.insert(proposal.index, proposal) {
            let error = self.dropped(&replaced);
            replaced.complete(Err(error), stats);
        }
    }

    /// The entry at (`index`, `term`) is being applied: returns the proposal it answers, if
    /// any. A proposal tracked at `index` with another term, or at a smaller index (its entry
    /// went by without it being answered), was overwritten: it is answered `Dropped` here.
    pub(crate) fn take_applied(
        &mut self,
        index: u64,
        term: u64,
        stats: &RuntimeStats,
    ) -> Option<PendingProposal<O>> {
        while let Some(entry) = self.by_index.first_entry() {
            if *entry.key() > index {
                break;
            }
            let proposal = entry.remove();
            if proposal.index == index && proposal.term == term {
                return Some(proposal);
            }
            let error = self.dropped(&proposal);
            proposal.complete(Err(error), stats);
        }
        None
    }

    /// Answers every proposal with `error`.
    pub(crate) fn fail_all(&mut self, error: &ProposeError, stats: &RuntimeStats) {
        for (_, proposal) in std::mem::take(&mut self.by_index) {
            proposal.complete(Err(error.clone()), stats);
        }
    }

    /// Answers `Timeout` to every proposal whose deadline is at or before `now`; returns how
    /// many.
    pub(crate) fn fail_expired(&mut self, now: Instant, stats: &RuntimeStats) -> usize {
        let expired: Vec<u64> = self
            .by_index
            .values()
            .filter(|proposal| proposal.deadline <= now)
            .map(|proposal| proposal.index)
            .collect();
        for index in &expired {
            if let Some(proposal) = self.by_index.remove(index) {
                tracing::debug!(shard_id = self.shard_id, id = proposal.id, index, "proposal timed out");
                proposal.complete(Err(ProposeError::Timeout { shard_id: self.shard_id }), stats);
            }
        }
        expired.len()
    }

    fn dropped(&self, proposal: &PendingProposal<O>) -> ProposeError {
        tracing::debug!(
            shard_id = self.shard_id,
            id = proposal.id,
            index = proposal.index,
            term = proposal.term,
            "proposal overwritten by another leader's entry"
        );
        ProposeError::Dropped { shard_id: self.shard_id, index: proposal.index, term: proposal.term }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn pending(
        index: u64,
        term: u64,
        deadline: Instant,
    ) -> (PendingProposal<u64>, oneshot::Receiver<Result<u64, ProposeError>>) {
        let (reply, receiver) = oneshot::channel();
        (PendingProposal::new(index, index, term, deadline, reply), receiver)
    }

    #[test]
    fn applied_entries_answer_their_proposal_or_drop_overwritten_ones() {
        let stats = RuntimeStats::default();
        let later = Instant::now() + Duration::from_secs(60);
        let mut queue = ProposalQueue::new(9);
        let (a, mut a_rx) = pending(5, 2, later);
        let (b, mut b_rx) = pending(6, 2, later);
        let (c, mut c_rx) = pending(8, 2, later);
        queue.push(a, &stats);
        queue.push(b, &stats);
        queue.push(c, &stats);

        let answered = queue.take_applied(5, 2, &stats).unwrap();
        assert_eq!(answered.index, 5);
        answered.complete(Ok(50), &stats);
        assert_eq!(a_rx.try_recv().unwrap(), Ok(50));

        // Index 6 committed with term 3: another leader's entry.
        assert!(queue.take_applied(6, 3, &stats).is_none());
        assert_eq!(b_rx.try_recv().unwrap(), Err(ProposeError::Dropped { shard_id: 9, index: 6, term: 2 }));

        // Index 9 applies while 8 is still tracked: 8 went by unanswered.
        assert!(queue.take_applied(9, 3, &stats).is_none());
        assert!(matches!(c_rx.try_recv().unwrap(), Err(ProposeError::Dropped { index: 8, .. })));
        assert_eq!(queue.len(), 0);
        assert_eq!((stats.snapshot().proposals_ok, stats.snapshot().proposals_failed), (1, 2));
    }

    #[test]
    fn a_newer_proposal_at_the_same_index_drops_the_older_one() {
        let stats = RuntimeStats::default();
        let later = Instant::now() + Duration::from_secs(60);
        let mut queue = ProposalQueue::new(1);
        let (old, mut old_rx) = pending(4, 1, later);
        let (new, _new_rx) = pending(4, 2, later);
        queue.push(old, &stats);
        queue.push(new, &stats);
        assert!(matches!(old_rx.try_recv().unwrap(), Err(ProposeError::Dropped { term: 1, .. })));
        assert_eq!(queue.take_applied(4, 2, &stats).unwrap().term, 2);
    }

    #[test]
    fn expired_proposals_time_out_and_the_rest_fail_together() {
        let stats = RuntimeStats::default();
        let now = Instant::now();
        let mut queue = ProposalQueue::new(3);
        let (past, mut past_rx) = pending(1, 1, now);
        let (future, mut future_rx) = pending(2, 1, now + Duration::from_secs(60));
        queue.push(past, &stats);
        queue.push(future, &stats);
        assert_eq!(queue.fail_expired(now, &stats), 1);
        assert_eq!(past_rx.try_recv().unwrap(), Err(ProposeError::Timeout { shard_id: 3 }));
        queue.fail_all(&ProposeError::Stopped, &stats);
        assert_eq!(future_rx.try_recv().unwrap(), Err(ProposeError::Stopped));
        assert_eq!(queue.len(), 0);
    }
}
