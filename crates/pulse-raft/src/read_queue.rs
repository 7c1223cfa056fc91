//! [`ReadQueue`]: linearizable read requests (raft's ReadIndex) of one replica.
//!
//! A request goes through three stages:
//! 1. *unsent*: waiting until the leader has committed an entry of its term (raft-rs silently
//!    ignores a ReadIndex before that);
//! 2. *in flight*: handed to `RawNode::read_index`, waiting for raft to confirm leadership with
//!    a quorum (a `ReadState` in a Ready). Every read parked when a round starts goes out in ONE
//!    request (the context is the first read's id), as TiKV batches its read index requests:
//!    each request costs a heartbeat to every follower, and the index taken when the batch is
//!    issued is linearizable for every read that arrived before;
//! 3. *confirmed*: the read index is known; answered once the replica has applied up to it.
//!
//! Unsent and in-flight requests fail with `NotLeader` when the replica loses leadership;
//! confirmed ones stay valid (the index was linearizable when confirmed). Every stage honours
//! the deadline.
//!
//! Lease reads (answering without the quorum round trip) are out of scope for now: they plug in
//! at stage 2, allowed only with `check_quorum`, a lease shorter than the election timeout
//! measured on the monotonic clock, and never right after a leader transfer (DESIGN.md).

use std::collections::BTreeMap;
use std::time::Instant;

use tokio::sync::oneshot;

use crate::error::ProposeError;
use crate::stats::{RuntimeStats, bump};

/// Where a read's answer goes: the future returned by `read_index`.
pub(crate) type ReadReply = oneshot::Sender<Result<u64, ProposeError>>;

/// One read index request.
#[derive(Debug)]
pub(crate) struct PendingRead {
    /// Runtime-wide id, also the raft request context.
    pub(crate) id: u64,
    /// When the client stops waiting (monotonic clock).
    pub(crate) deadline: Instant,
    reply: ReadReply,
}

impl PendingRead {
    pub(crate) fn new(id: u64, deadline: Instant, reply: ReadReply) -> Self {
        PendingRead { id, deadline, reply }
    }

    /// The raft request context of this read: its id, big-endian.
    pub(crate) fn context(&self) -> Vec<u8> {
        self.id.to_be_bytes().to_vec()
    }

    /// Answers the reader (who may have stopped waiting) and counts the outcome.
    pub(crate) fn complete(self, result: Result<u64, ProposeError>, stats: &RuntimeStats) {
        answer_read(self.reply, result, stats);
    }
}

/// Answers a read request and counts the outcome.
pub(crate) fn answer_read(reply: ReadReply, result: Result<u64, ProposeError>, stats: &RuntimeStats) {
    let counter = if result.is_ok() { &stats.reads_ok } else { &stats.reads_failed };
    bump(counter, 1);
    let _ = reply.send(result);
}

/// The read requests of one replica, by stage.
#[derive(Debug)]
pub(crate) struct ReadQueue {
    shard_id: u64,
    unsent: Vec<PendingRead>,
    /// Batches handed to raft, by request context (the id of the batch's first read).
    in_flight: BTreeMap<u64, Vec<PendingRead>>,
    /// Confirmed reads and their read index, waiting for the apply index to reach it.
    confirmed: Vec<(u64, PendingRead)>,
}

impl ReadQueue {
    pub(crate) fn new(shard_id: u64) -> Self {
        ReadQueue { shard_id, unsent: Vec::new(), in_flight: BTreeMap::new(), confirmed: Vec::new() }
    }

    pub(crate) fn len(&self) -> usize {
        self.unsent.len() + self.in_flight.values().map(Vec::len).sum::<usize>() + self.confirmed.len()
    }

    pub(crate) fn has_unsent(&self) -> bool {
        !self.unsent.is_empty()
    }

    /// Parks a read until the leader may issue it.
    pub(crate) fn push_unsent(&mut self, read: PendingRead) {
        self.unsent.push(read);
    }

    /// Moves every parked read into one in-flight batch; returns the raft request context to
    /// issue it with, `None` when nothing was parked.
    pub(crate) fn issue(&mut self) -> Option<Vec<u8>> {
        let batch = std::mem::take(&mut self.unsent);
        let context = batch.first()?.context();
        self.in_flight.insert(batch[0].id, batch);
        Some(context)
    }

    /// raft confirmed the batch with context `context` at `read_index`. Unknown contexts (a
    /// batch whose reads all timed out) are ignored.
    pub(crate) fn confirm(&mut self, context: &[u8], read_index: u64) {
        let Ok(id) = <[u8; 8]>::try_from(context).map(u64::from_be_bytes) else {
            return;
        };
        if let Some(batch) = self.in_flight.remove(&id) {
            self.confirmed.extend(batch.into_iter().map(|read| (read_index, read)));
        }
    }

    /// Answers every confirmed read whose index is at or below `applied_index`.
    pub(crate) fn complete_applied(&mut self, applied_index: u64, stats: &RuntimeStats) {
        if self.confirmed.iter().all(|(read_index, _)| *read_index > applied_index) {
            return;
        }
        let (done, waiting) = std::mem::take(&mut self.confirmed)
            .into_iter()
            .partition(|(read_index, _)| *read_index <= applied_index);
        self.confirmed = waiting;
        for (read_index, read) in done {
            read.complete(Ok(read_index), stats);
        }
    }

    /// Leadership was lost: unsent and in-flight reads fail with `error`.
    pub(crate) fn fail_unconfirmed(&mut self, error: &ProposeError, stats: &RuntimeStats) {
        for read in self.unsent.drain(..) {
            read.complete(Err(error.clone()), stats);
        }
        for read in std::mem::take(&mut self.in_flight).into_values().flatten() {
            read.complete(Err(error.clone()), stats);
        }
    }

    /// Every read fails with `error`.
    pub(crate) fn fail_all(&mut self, error: &ProposeError, stats: &RuntimeStats) {
        self.fail_unconfirmed(error, stats);
        for (_, read) in self.confirmed.drain(..) {
            read.complete(Err(error.clone()), stats);
        }
    }

    /// Answers `Timeout` to every read whose deadline is at or before `now`.
    pub(crate) fn fail_expired(&mut self, now: Instant, stats: &RuntimeStats) {
        let timeout = ProposeError::Timeout { shard_id: self.shard_id };
        let (expired, unsent): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.unsent).into_iter().partition(|read| read.deadline <= now);
        self.unsent = unsent;
        for read in expired {
            read.complete(Err(timeout.clone()), stats);
        }
        for batch in self.in_flight.values_mut() {
            if batch.iter().any(|read| read.deadline <= now) {
                let (expired, waiting) =
                    std::mem::take(batch).into_iter().partition(|read| read.deadline <= now);
                *batch = waiting;
                for read in expired {
                    read.complete(Err(timeout.clone()), stats);
                }
            }
        }
        self.in_flight.retain(|_, batch| !batch.is_empty());
        let (expired, confirmed): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.confirmed).into_iter().partition(|(_, read)| read.deadline <= now);
        self.confirmed = confirmed;
        for (_, read) in expired {
            read.complete(Err(timeout.clone()), stats);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn read(id: u64, deadline: Instant) -> (PendingRead, oneshot::Receiver<Result<u64, ProposeError>>) {
        let (reply, receiver) = oneshot::channel();
        (PendingRead::new(id, deadline, reply), receiver)
    }

    #[test]
    fn confirmed_reads_wait_for_the_apply_index() {
        let stats = RuntimeStats::default();
        let later = Instant::now() + Duration::from_secs(60);
        let mut queue = ReadQueue::new(2);
        let (first, mut first_rx) = read(1, later);
        let (second, mut second_rx) = read(2, later);
        queue.push_unsent(first);
        let context = queue.issue().unwrap();
        queue.push_unsent(second);
        queue.issue().unwrap();
        queue.confirm(&context, 10);
        queue.confirm(b"not a read id", 3);
        queue.complete_applied(9, &stats);
        assert!(first_rx.try_recv().is_err(), "index 10 is not applied yet");
        queue.complete_applied(10, &stats);
        assert_eq!(first_rx.try_recv().unwrap(), Ok(10));

        queue.fail_unconfirmed(&ProposeError::NotLeader { shard_id: 2, leader_hint: Some(3) }, &stats);
        assert!(matches!(second_rx.try_recv().unwrap(), Err(ProposeError::NotLeader { .. })));
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn every_stage_times_out() {
        let stats = RuntimeStats::default();
        let now = Instant::now();
        let mut queue = ReadQueue::new(2);
        let (unsent, mut unsent_rx) = read(1, now);
        let (in_flight, mut in_flight_rx) = read(2, now);
        let (confirmed, mut confirmed_rx) = read(3, now);
        queue.push_unsent(in_flight);
        queue.issue().unwrap();
        queue.push_unsent(confirmed);
        let context = queue.issue().unwrap();
        queue.confirm(&context, 100);
        queue.push_unsent(unsent);
        queue.fail_expired(now, &stats);
        for receiver in [&mut unsent_rx, &mut in_flight_rx, &mut confirmed_rx] {
            assert_eq!(receiver.try_recv().unwrap(), Err(ProposeError::Timeout { shard_id: 2 }));
        }
        assert_eq!(stats.snapshot().reads_failed, 3);
    }

    #[test]
    fn reads_parked_together_share_one_request_and_its_index() {
        let stats = RuntimeStats::default();
        let later = Instant::now() + Duration::from_secs(60);
        let mut queue = ReadQueue::new(2);
        assert_eq!(queue.issue(), None, "nothing parked, nothing to issue");
        let (first, mut first_rx) = read(7, later);
        let (second, mut second_rx) = read(8, later);
        let (short, mut short_rx) = read(9, Instant::now());
        queue.push_unsent(first);
        queue.push_unsent(second);
        queue.push_unsent(short);
        let context = queue.issue().unwrap();
        assert_eq!(context, 7u64.to_be_bytes().to_vec(), "the first read's id");
        assert!(!queue.has_unsent());
        assert_eq!(queue.len(), 3);

        // One read of the batch times out alone; the others stay in flight.
        queue.fail_expired(Instant::now(), &stats);
        assert_eq!(short_rx.try_recv().unwrap(), Err(ProposeError::Timeout { shard_id: 2 }));
        assert_eq!(queue.len(), 2);

        queue.confirm(&context, 42);
        queue.complete_applied(42, &stats);
        assert_eq!(first_rx.try_recv().unwrap(), Ok(42));
        assert_eq!(second_rx.try_recv().unwrap(), Ok(42));
        assert_eq!(queue.len(), 0);
        assert_eq!(stats.snapshot().reads_ok, 2);
    }
}
