//! Errors of the shard state machine.

use pulse_scoring::ScoringError;
use pulse_storage::StorageError;

/// Result of shard operations.
pub type Result<T, E = NodeError> = std::result::Result<T, E>;

/// What can go wrong applying or reading a shard. Storage and decode errors while applying are
/// fatal for the replica: its state can no longer be trusted to match the other replicas.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A model error (a read `as_of` before the last event, a bad stored state, ...).
    #[error(transparent)]
    Scoring(#[from] ScoringError),
    /// A raft entry or stored value could not be decoded.
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// The node hosts no state machine for this shard.
    #[error("shard {shard_id} is not hosted on this node")]
    UnknownShard {
        /// The shard asked.
        shard_id: u64,
    },
    /// The customer does not belong to this shard's hash range.
    #[error("customer {customer_id:?} (hash {hash:#018x}) is outside shard {shard_id}")]
    WrongShard {
        /// The customer.
        customer_id: String,
        /// Its hash.
        hash: u64,
        /// The shard asked.
        shard_id: u64,
    },
}
