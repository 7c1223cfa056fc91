//! Errors: [`RaftError`] for the runtime and its admin commands, [`ProposeError`] for what a
//! client waiting on a proposal or a read can be told.

use pulse_storage::StorageError;

use crate::state_machine::StateMachineError;

/// Result of runtime and admin operations.
pub type Result<T, E = RaftError> = std::result::Result<T, E>;

/// What can go wrong in the runtime, in a replica or in an admin command.
///
/// Storage errors inside raft are fatal (DESIGN.md): an error in a replica's own work (applying
/// an entry, a conf change, a snapshot) stops that replica; an error while staging or writing the
/// round's shared batch stops the whole runtime, whose [`shutdown`](crate::RuntimeHandle::shutdown)
/// then returns it.
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    /// A configuration field is out of range.
    #[error("invalid raft config: {field} {reason}")]
    InvalidConfig {
        /// The field, as spelled in the config file.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The storage engine failed; `shard_id` is `None` for the round's shared batch.
    #[error("storage failed{}: {source}", on_shard(.shard_id))]
    Storage {
        /// The replica whose records were being read or written, if only one.
        shard_id: Option<u64>,
        /// The engine's error.
        #[source]
        source: StorageError,
    },
    /// raft-rs refused an operation (bad config, conf change, …).
    #[error("raft failed on shard {shard_id}: {source}")]
    Raft {
        /// The replica.
        shard_id: u64,
        /// raft-rs's error.
        #[source]
        source: raft::Error,
    },
    /// The state machine failed to apply a committed entry: the replica cannot go on without
    /// diverging, so it stops.
    #[error("state machine failed on shard {shard_id} at index {index}: {source}")]
    StateMachine {
        /// The replica.
        shard_id: u64,
        /// The entry being applied (or the snapshot being installed).
        index: u64,
        /// The state machine's error.
        #[source]
        source: StateMachineError,
    },
    /// The state machine refused to remove a shard's data (`remove_shard`): nothing was
    /// deleted and the replica is still hosted.
    #[error("state machine refused to remove shard {shard_id}: {source}")]
    RemoveRefused {
        /// The replica.
        shard_id: u64,
        /// The state machine's error.
        #[source]
        source: StateMachineError,
    },
    /// A committed entry cannot be decoded (a conf change that is not a valid protobuf).
    #[error("corrupt entry {index} on shard {shard_id}: {reason}")]
    CorruptEntry {
        /// The replica.
        shard_id: u64,
        /// The entry.
        index: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The stored raft log and the state machine's apply index disagree at startup.
    #[error("cannot recover shard {shard_id}: {reason}")]
    Recovery {
        /// The replica.
        shard_id: u64,
        /// What disagrees.
        reason: String,
    },
    /// `add_shard` for a shard this runtime already hosts.
    #[error("shard {shard_id} is already hosted")]
    ShardExists {
        /// The shard.
        shard_id: u64,
    },
    /// `add_shard` of a shard never seen before without voters.
    #[error("shard {shard_id} has no stored members and no voters were given")]
    NoVoters {
        /// The shard.
        shard_id: u64,
    },
    /// The runtime hosts no replica of this shard.
    #[error("shard {shard_id} is not hosted on this node")]
    UnknownShard {
        /// The shard.
        shard_id: u64,
    },
    /// The replica stopped after a fatal error (logged when it happened).
    #[error("replica of shard {shard_id} failed and is stopped")]
    ReplicaFailed {
        /// The shard.
        shard_id: u64,
    },
    /// The runtime is stopped or stopping.
    #[error("raft runtime is stopped")]
    Stopped,
    /// The Ready loop thread could not be started.
    #[error("cannot start the ready loop thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// The Ready loop thread panicked (raft-rs panics on storage read errors).
    #[error("the ready loop thread panicked: {0}")]
    LoopPanicked(String),
}

impl RaftError {
    pub(crate) fn storage(shard_id: u64) -> impl FnOnce(StorageError) -> RaftError {
        move |source| RaftError::Storage { shard_id: Some(shard_id), source }
    }

    pub(crate) fn raft(shard_id: u64) -> impl FnOnce(raft::Error) -> RaftError {
        move |source| RaftError::Raft { shard_id, source }
    }
}

fn on_shard(shard_id: &Option<u64>) -> String {
    shard_id.map(|id| format!(" on shard {id}")).unwrap_or_default()
}

/// Why a proposal (or a read index request) did not complete. The gateway maps these to
/// retries or gRPC codes.
///
/// For a proposal already in the log (`NotLeader` after leadership was lost, `Timeout`,
/// `Stopped`, `ReplicaFailed`), the outcome is unknown: the entry may still commit and apply.
/// Commands must be idempotent (Pulse's events carry idempotency keys).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// This replica is not the leader (at propose time, or it lost leadership before the entry
    /// applied): retry at `leader_hint`, the node id of the leader it knows, if any.
    #[error("shard {shard_id}: not leader (leader hint {leader_hint:?})")]
    NotLeader {
        /// The shard.
        shard_id: u64,
        /// Node id of the leader this replica knows of, if any.
        leader_hint: Option<u64>,
    },
    /// Another leader's entry committed at the proposal's index: the proposal is lost for
    /// sure; retry.
    #[error("shard {shard_id}: proposal at index {index} term {term} was overwritten")]
    Dropped {
        /// The shard.
        shard_id: u64,
        /// Index the proposal was appended at.
        index: u64,
        /// Term it was proposed in (the committed entry has another).
        term: u64,
    },
    /// The leader refused the proposal because too many bytes are proposed but uncommitted
    /// (`max_uncommitted_size_bytes`): back off and retry.
    #[error("shard {shard_id}: too many uncommitted proposals")]
    Busy {
        /// The shard.
        shard_id: u64,
    },
    /// The deadline passed before the proposal applied (or the read completed).
    #[error("shard {shard_id}: deadline exceeded")]
    Timeout {
        /// The shard.
        shard_id: u64,
    },
    /// Empty commands are reserved: raft's leader no-op is an empty entry.
    #[error("shard {shard_id}: empty command")]
    EmptyCommand {
        /// The shard.
        shard_id: u64,
    },
    /// This node hosts no replica of the shard.
    #[error("shard {shard_id} is not hosted on this node")]
    UnknownShard {
        /// The shard.
        shard_id: u64,
    },
    /// The replica stopped after a fatal error.
    #[error("replica of shard {shard_id} failed")]
    ReplicaFailed {
        /// The shard.
        shard_id: u64,
    },
    /// A membership change that cannot apply to the current membership (see
    /// [`MembershipChange`](crate::MembershipChange)): nothing was proposed.
    #[error("shard {shard_id}: invalid membership change: {reason}")]
    InvalidMembershipChange {
        /// The shard.
        shard_id: u64,
        /// Why.
        reason: String,
    },
    /// A membership change proposed while another one is still pending (raft allows one at a
    /// time): nothing was proposed; retry once the other applied.
    #[error("shard {shard_id}: another membership change is pending")]
    MembershipChangePending {
        /// The shard.
        shard_id: u64,
    },
    /// The runtime stopped before answering.
    #[error("raft runtime is stopped")]
    Stopped,
}
