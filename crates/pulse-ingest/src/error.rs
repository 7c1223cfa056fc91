//! Ingest errors; the gRPC layer maps each to a status code in one place.

use crate::validate::EventViolation;

/// Result of ingest operations.
pub type Result<T, E = IngestError> = std::result::Result<T, E>;

/// Why a batch was not accepted. Nothing of a failed request is applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestError {
    /// Some events are invalid (INVALID_ARGUMENT with a BadRequest listing each).
    #[error("{} invalid event field(s), first: {}", violations.len(), violations.first().map(ToString::to_string).unwrap_or_default())]
    InvalidEvents {
        /// Every bad field of every bad event.
        violations: Vec<EventViolation>,
    },
    /// The shard's queue is full (RESOURCE_EXHAUSTED; retry after `retry_after_ms`).
    #[error("shard {shard_id} ingest queue is full ({capacity} requests)")]
    Overloaded {
        /// The overloaded shard.
        shard_id: u64,
        /// Queue capacity, requests.
        capacity: usize,
        /// Suggested back-off, ms.
        retry_after_ms: u64,
    },
    /// The proposal failed (not leader, timeout, storage failure); the message says which.
    /// Whether it was applied is unknown to the client only for timeouts, and retrying with the
    /// same event ids is always safe (duplicates are ignored).
    #[error("shard {shard_id} proposal failed: {reason}")]
    ProposalFailed {
        /// The shard.
        shard_id: u64,
        /// What the proposer reported.
        reason: String,
    },
    /// The batcher is shutting down.
    #[error("shard {shard_id} is shutting down")]
    ShuttingDown {
        /// The shard.
        shard_id: u64,
    },
}
