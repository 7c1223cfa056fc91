//! [`RuntimeStats`]: counters of the Ready loop, for metrics export and tests.

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters the Ready loop bumps and anyone holding a
/// [`RuntimeHandle`](crate::RuntimeHandle) reads (the server exports them later). Plain relaxed
/// atomics: each counter is exact, but two counters read one after the other need not be from
/// the same instant.
#[derive(Debug, Default)]
pub struct RuntimeStats {
    /// Rounds of the Ready loop (one per wake-up: inputs, tick, or both).
    pub rounds: AtomicU64,
    /// Batches of raft records (entries, hard states, compactions of every shard of a round)
    /// written: at most one per round.
    pub log_writes: AtomicU64,
    /// Of `log_writes`, those written with fsync (some entry, vote or term had to be durable).
    /// Group commit makes this far smaller than the number of proposals.
    pub log_fsyncs: AtomicU64,
    /// Batches written for applied entries (one per entry that changed anything).
    pub apply_writes: AtomicU64,
    /// Raft entries appended to the logs of this node's replicas.
    pub entries_appended: AtomicU64,
    /// Committed entries applied (commands, empty entries and membership changes).
    pub entries_applied: AtomicU64,
    /// Proposals answered with the state machine's output.
    pub proposals_ok: AtomicU64,
    /// Proposals answered with a [`ProposeError`](crate::ProposeError).
    pub proposals_failed: AtomicU64,
    /// Read index requests answered with a read index.
    pub reads_ok: AtomicU64,
    /// Read index requests answered with an error.
    pub reads_failed: AtomicU64,
    /// Raft messages handed to the transport.
    pub messages_sent: AtomicU64,
    /// Replicas stopped by a fatal error.
    pub replicas_failed: AtomicU64,
    /// Ticks of replicas (a hibernating replica is not ticked).
    pub replica_ticks: AtomicU64,
    /// Replicas that went to sleep (leaders and followers).
    pub hibernations: AtomicU64,
    /// Hibernating replicas woken up.
    pub wakeups: AtomicU64,
}

/// A copy of every counter of [`RuntimeStats`], for assertions and export.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// See [`RuntimeStats::rounds`].
    pub rounds: u64,
    /// See [`RuntimeStats::log_writes`].
    pub log_writes: u64,
    /// See [`RuntimeStats::log_fsyncs`].
    pub log_fsyncs: u64,
    /// See [`RuntimeStats::apply_writes`].
    pub apply_writes: u64,
    /// See [`RuntimeStats::entries_appended`].
    pub entries_appended: u64,
    /// See [`RuntimeStats::entries_applied`].
    pub entries_applied: u64,
    /// See [`RuntimeStats::proposals_ok`].
    pub proposals_ok: u64,
    /// See [`RuntimeStats::proposals_failed`].
    pub proposals_failed: u64,
    /// See [`RuntimeStats::reads_ok`].
    pub reads_ok: u64,
    /// See [`RuntimeStats::reads_failed`].
    pub reads_failed: u64,
    /// See [`RuntimeStats::messages_sent`].
    pub messages_sent: u64,
    /// See [`RuntimeStats::replicas_failed`].
    pub replicas_failed: u64,
    /// See [`RuntimeStats::replica_ticks`].
    pub replica_ticks: u64,
    /// See [`RuntimeStats::hibernations`].
    pub hibernations: u64,
    /// See [`RuntimeStats::wakeups`].
    pub wakeups: u64,
}

impl RuntimeStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        StatsSnapshot {
            rounds: read(&self.rounds),
            log_writes: read(&self.log_writes),
            log_fsyncs: read(&self.log_fsyncs),
            apply_writes: read(&self.apply_writes),
            entries_appended: read(&self.entries_appended),
            entries_applied: read(&self.entries_applied),
            proposals_ok: read(&self.proposals_ok),
            proposals_failed: read(&self.proposals_failed),
            reads_ok: read(&self.reads_ok),
            reads_failed: read(&self.reads_failed),
            messages_sent: read(&self.messages_sent),
            replicas_failed: read(&self.replicas_failed),
            replica_ticks: read(&self.replica_ticks),
            hibernations: read(&self.hibernations),
            wakeups: read(&self.wakeups),
        }
    }
}

/// Adds `amount` to `counter` (relaxed: counters order nothing).
pub(crate) fn bump(counter: &AtomicU64, amount: u64) {
    counter.fetch_add(amount, Ordering::Relaxed);
}
