//! [`ShardBatcher`]: group commit for one shard.
//!
//! Requests queue on a bounded channel. A single task takes what is queued, up to
//! `max_batch_events`, and proposes it as one entry through the [`Proposer`]. While
//! `max_in_flight` proposals are outstanding, new requests keep joining the next batch, so under
//! load batches grow by themselves ("natural batching") and an idle shard adds no latency. An
//! optional linger (`max_batch_delay_us`) trades latency for bigger batches when the pipeline
//! is not full. A request is never split: it applies atomically in one entry.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use pulse_scoring::Event;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::debug;

use crate::config::BatchConfig;
use crate::error::{IngestError, Result};

/// Future returned by a [`Proposer`].
pub type ProposeFuture = Pin<Box<dyn Future<Output = std::result::Result<Vec<bool>, String>> + Send>>;

/// Turns a batch of events into one replicated, applied shard entry.
pub trait Proposer: Send + Sync + 'static {
    /// Proposes `events` as one entry of `shard_id` and resolves once it is applied, with one
    /// flag per event in order: `true` if applied, `false` if it was a duplicate. An error
    /// message means the entry is not known to be applied (not leader, timeout, storage).
    fn propose(&self, shard_id: u64, events: Vec<Event>) -> ProposeFuture;
}

/// What happened to one request's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchOutcome {
    /// Events applied.
    pub accepted: u64,
    /// Events ignored as duplicates of earlier ones.
    pub duplicates: u64,
}

/// One queued request.
struct Pending {
    events: Vec<Event>,
    reply: oneshot::Sender<Result<BatchOutcome>>,
}

/// The group-commit front of one shard. Cheap to clone; the batching task stops when the last
/// clone is dropped, after finishing the proposals in flight.
#[derive(Clone)]
pub struct ShardBatcher {
    shard_id: u64,
    queue: mpsc::Sender<Pending>,
    config: BatchConfig,
}

impl ShardBatcher {
    /// Starts the batching task of `shard_id` on the current tokio runtime.
    pub fn spawn(shard_id: u64, config: BatchConfig, proposer: Arc<dyn Proposer>) -> Self {
        let (queue, requests) = mpsc::channel(config.queue_capacity.max(1));
        tokio::spawn(run(shard_id, config, proposer, requests));
        Self { shard_id, queue, config }
    }

    /// Queues `events` (already validated) and waits until they are applied.
    ///
    /// Fails at once with [`IngestError::Overloaded`] when the queue is full.
    pub async fn submit(&self, events: Vec<Event>) -> Result<BatchOutcome> {
        if events.is_empty() {
            return Ok(BatchOutcome::default());
        }
        let (reply, outcome) = oneshot::channel();
        self.queue.try_send(Pending { events, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => IngestError::Overloaded {
                shard_id: self.shard_id,
                capacity: self.config.queue_capacity,
                retry_after_ms: 50,
            },
            mpsc::error::TrySendError::Closed(_) => IngestError::ShuttingDown { shard_id: self.shard_id },
        })?;
        outcome.await.unwrap_or(Err(IngestError::ShuttingDown { shard_id: self.shard_id }))
    }
}

async fn run(
    shard_id: u64,
    config: BatchConfig,
    proposer: Arc<dyn Proposer>,
    mut requests: mpsc::Receiver<Pending>,
) {
    let in_flight = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    let linger = Duration::from_micros(config.max_batch_delay_us);
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(pending) => pending,
            None => match requests.recv().await {
                Some(pending) => pending,
                None => break,
            },
        };
        let mut batch = Batch::new(first);
        batch.fill(&mut requests, &mut carried, config.max_batch_events);

        // Wait for a pipeline slot, collecting more requests meanwhile; linger if asked to.
        let permit = match in_flight.clone().try_acquire_owned() {
            Ok(permit) => {
                if !linger.is_zero() && carried.is_none() && batch.events < config.max_batch_events {
                    let deadline = tokio::time::Instant::now() + linger;
                    while carried.is_none() && batch.events < config.max_batch_events {
                        match tokio::time::timeout_at(deadline, requests.recv()).await {
                            Ok(Some(pending)) => {
                                batch.push_or_carry(pending, &mut carried, config.max_batch_events)
                            }
                            Ok(None) | Err(_) => break,
                        }
                    }
                }
                Ok(permit)
            }
            Err(_) => loop {
                let room = carried.is_none() && batch.events < config.max_batch_events;
                tokio::select! {
                    permit = in_flight.clone().acquire_owned() => break permit,
                    Some(pending) = requests.recv(), if room => {
                        batch.push_or_carry(pending, &mut carried, config.max_batch_events);
                    }
                }
            },
        };
        let Ok(permit) = permit else { break };
        let proposer = proposer.clone();
        tokio::spawn(async move {
            batch.propose(shard_id, proposer.as_ref()).await;
            drop(permit);
        });
    }
    // Wait for the proposals in flight before reporting the task finished.
    let _ = in_flight.acquire_many(config.max_in_flight.max(1) as u32).await;
    debug!(shard_id, "ingest batcher stopped");
}

/// Requests that will share one proposal.
struct Batch {
    requests: Vec<Pending>,
    events: usize,
}

impl Batch {
    fn new(first: Pending) -> Self {
        let events = first.events.len();
        Self { requests: vec![first], events }
    }

    /// Adds `pending` if it fits (a lone oversized request always fits), else carries it over.
    fn push_or_carry(&mut self, pending: Pending, carried: &mut Option<Pending>, max_events: usize) {
        if self.events + pending.events.len() > max_events {
            *carried = Some(pending);
        } else {
            self.events += pending.events.len();
            self.requests.push(pending);
        }
    }

    /// Takes what is already queued, without waiting.
    fn fill(
        &mut self,
        requests: &mut mpsc::Receiver<Pending>,
        carried: &mut Option<Pending>,
        max_events: usize,
    ) {
        while carried.is_none() && self.events < max_events {
            match requests.try_recv() {
                Ok(pending) => self.push_or_carry(pending, carried, max_events),
                Err(_) => break,
            }
        }
    }

    /// Proposes the batch and answers every request with its share of the outcome.
    async fn propose(self, shard_id: u64, proposer: &dyn Proposer) {
        let mut events = Vec::with_capacity(self.events);
        let mut replies = Vec::with_capacity(self.requests.len());
        for pending in self.requests {
            replies.push((pending.events.len(), pending.reply));
            events.extend(pending.events);
        }
        let total = events.len();
        match proposer.propose(shard_id, events).await {
            Ok(applied) if applied.len() == total => {
                let mut offset = 0;
                for (len, reply) in replies {
                    let accepted = applied[offset..offset + len].iter().filter(|a| **a).count() as u64;
                    offset += len;
                    let _ = reply.send(Ok(BatchOutcome { accepted, duplicates: len as u64 - accepted }));
                }
            }
            Ok(applied) => {
                let reason = format!("proposer answered {} flags for {total} events", applied.len());
                for (_, reply) in replies {
                    let _ = reply.send(Err(IngestError::ProposalFailed { shard_id, reason: reason.clone() }));
                }
            }
            Err(reason) => {
                for (_, reply) in replies {
                    let _ = reply.send(Err(IngestError::ProposalFailed { shard_id, reason: reason.clone() }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use pulse_scoring::EventKind;

    use super::*;

    /// Applies batches with per-id deduplication, recording batch sizes; blocks on a gate so tests
    /// control when proposals complete.
    #[derive(Default)]
    struct RecordingProposer {
        seen: Mutex<HashSet<String>>,
        batch_sizes: Mutex<Vec<usize>>,
        gate: Option<Arc<Semaphore>>,
    }

    impl Proposer for RecordingProposer {
        fn propose(&self, _shard_id: u64, events: Vec<Event>) -> ProposeFuture {
            self.batch_sizes.lock().unwrap().push(events.len());
            let flags: Vec<bool> =
                events.iter().map(|e| self.seen.lock().unwrap().insert(e.event_id.clone())).collect();
            let gate = self.gate.clone();
            Box::pin(async move {
                if let Some(gate) = gate {
                    gate.acquire().await.map_err(|e| e.to_string())?.forget();
                }
                Ok(flags)
            })
        }
    }

    fn events(ids: &[&str]) -> Vec<Event> {
        ids.iter()
            .map(|id| Event {
                customer_id: "c".into(),
                event_id: (*id).into(),
                timestamp_ms: 0,
                kind: EventKind::Visit,
                category: None,
                amount: 0.0,
                channel: None,
            })
            .collect()
    }

    #[tokio::test]
    async fn counts_duplicates_per_request() {
        let proposer = Arc::new(RecordingProposer::default());
        let batcher = ShardBatcher::spawn(1, BatchConfig::default(), proposer.clone());
        let first = batcher.submit(events(&["a", "b"])).await.unwrap();
        assert_eq!(first, BatchOutcome { accepted: 2, duplicates: 0 });
        let second = batcher.submit(events(&["b", "c", "c"])).await.unwrap();
        assert_eq!(second, BatchOutcome { accepted: 1, duplicates: 2 });
    }

    #[tokio::test]
    async fn requests_share_a_proposal_while_the_pipeline_is_busy() {
        let gate = Arc::new(Semaphore::new(0));
        let proposer = Arc::new(RecordingProposer { gate: Some(gate.clone()), ..Default::default() });
        let config = BatchConfig { max_in_flight: 1, ..BatchConfig::default() };
        let batcher = ShardBatcher::spawn(7, config, proposer.clone());
        // The first request occupies the only slot; the next ten queue behind it.
        let mut waiting = Vec::new();
        let b = batcher.clone();
        waiting.push(tokio::spawn(async move { b.submit(events(&["first"])).await }));
        for _ in 0..1000 {
            if !proposer.batch_sizes.lock().unwrap().is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(*proposer.batch_sizes.lock().unwrap(), [1], "first request proposed alone");
        for i in 0..10 {
            let b = batcher.clone();
            let id = format!("e{i}");
            waiting.push(tokio::spawn(async move { b.submit(events(&[id.as_str()])).await }));
        }
        // Let the queued requests reach the batcher before the slot frees.
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        gate.add_permits(100);
        for handle in waiting {
            assert_eq!(handle.await.unwrap().unwrap().accepted, 1);
        }
        assert_eq!(*proposer.batch_sizes.lock().unwrap(), [1, 10], "ten requests, one proposal");
    }

    #[tokio::test]
    async fn full_queue_is_refused_not_blocked() {
        let gate = Arc::new(Semaphore::new(0));
        let proposer = Arc::new(RecordingProposer { gate: Some(gate.clone()), ..Default::default() });
        let config = BatchConfig {
            max_in_flight: 1,
            queue_capacity: 1,
            max_batch_events: 1,
            ..BatchConfig::default()
        };
        let batcher = ShardBatcher::spawn(3, config, proposer.clone());
        let mut outcomes = Vec::new();
        for i in 0..20 {
            let b = batcher.clone();
            let id = format!("e{i}");
            outcomes.push(tokio::spawn(async move { b.submit(events(&[id.as_str()])).await }));
            tokio::task::yield_now().await;
        }
        let mut overloaded = 0;
        gate.add_permits(100);
        for handle in outcomes {
            match handle.await.unwrap() {
                Ok(_) => {}
                Err(IngestError::Overloaded { shard_id: 3, capacity: 1, .. }) => overloaded += 1,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert!(overloaded > 0, "a queue of one must refuse some of twenty concurrent requests");
    }

    #[tokio::test(start_paused = true)]
    async fn linger_lets_later_requests_join() {
        let proposer = Arc::new(RecordingProposer::default());
        let config = BatchConfig { max_batch_delay_us: 5_000, ..BatchConfig::default() };
        let batcher = ShardBatcher::spawn(1, config, proposer.clone());
        let b = batcher.clone();
        let early = tokio::spawn(async move { b.submit(events(&["early"])).await });
        tokio::time::sleep(Duration::from_millis(2)).await;
        let late = batcher.submit(events(&["late"])).await.unwrap();
        assert_eq!(late.accepted, 1);
        assert_eq!(early.await.unwrap().unwrap().accepted, 1);
        assert_eq!(*proposer.batch_sizes.lock().unwrap(), [2], "the late request joined within the linger");
    }

    #[tokio::test]
    async fn oversized_request_is_proposed_whole() {
        let proposer = Arc::new(RecordingProposer::default());
        let config = BatchConfig { max_batch_events: 2, ..BatchConfig::default() };
        let batcher = ShardBatcher::spawn(1, config, proposer.clone());
        let outcome = batcher.submit(events(&["a", "b", "c", "d", "e"])).await.unwrap();
        assert_eq!(outcome.accepted, 5);
        assert_eq!(*proposer.batch_sizes.lock().unwrap(), [5]);
    }
}
