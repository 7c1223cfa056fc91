//! Errors of the server and the gateway; `gateway/status.rs` maps each to a gRPC status.

use pulse_ingest::IngestError;
use pulse_node::NodeError;
use pulse_raft::{ProposeError, RaftError};
use pulse_scoring::FieldViolation;
use pulse_storage::StorageError;

/// Result of server operations.
pub type Result<T, E = ServerError> = std::result::Result<T, E>;

/// What can fail in the server or while answering a request.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A setting is out of range.
    #[error("invalid config {field}: {reason}")]
    InvalidConfig {
        /// The setting.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A request field is invalid.
    #[error("invalid {field}: {description}")]
    InvalidArgument {
        /// The field path (`as_of_ms`, `customer_ids[2]`).
        field: String,
        /// What is wrong.
        description: String,
    },
    /// Several request fields are invalid (a whole scoring config); every one is listed.
    #[error("invalid request: {}", join(violations))]
    InvalidFields {
        /// The bad fields, with their paths in the request (`config.level_low`).
        violations: Vec<FieldViolation>,
    },
    /// `UpdateScoringConfig` derived from a config version that is no longer the stored one.
    #[error("config.version {requested} is stale: the stored scoring config is version {stored}")]
    StaleConfigVersion {
        /// The version the request was derived from.
        requested: u64,
        /// The version stored now.
        stored: u64,
    },
    /// A model fit or RFM refresh found no customer with a purchase.
    #[error("{operation}: no customer has a purchase yet")]
    NoPurchases {
        /// The operation (`FitLifetimeModel`, `RefreshRfmEdges`).
        operation: &'static str,
    },
    /// The lifetime model fit did not converge; nothing was installed.
    #[error("lifetime model fit failed: {reason}")]
    ModelFit {
        /// Why, from the optimiser.
        reason: String,
    },
    /// A request field reaches beyond what is retained (a migration window or a watch resume
    /// token older than the transition retention).
    #[error("{field} out of range: {description}")]
    OutOfRange {
        /// The field path (`from_ms`, `resume_token`).
        field: String,
        /// What is out of range.
        description: String,
    },
    /// No custom segment with this id is defined.
    #[error("custom segment {segment:?} not found")]
    SegmentNotFound {
        /// The segment id asked for.
        segment: String,
    },
    /// The customer is unknown.
    #[error("customer {customer_id:?} not found")]
    CustomerNotFound {
        /// The customer.
        customer_id: String,
    },
    /// `AdvanceClock` on a server running the wall clock.
    #[error("the clock is the wall clock; start the server with --clock manual to move it")]
    ClockIsWall,
    /// `AdvanceClock` to a time before the current one.
    #[error("now_ms {now_ms} is before the current clock {current_ms}")]
    ClockBackwards {
        /// The requested time, Unix ms.
        now_ms: i64,
        /// The clock, Unix ms.
        current_ms: i64,
    },
    /// Ingest failed (validation, overload, proposal).
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// A shard read failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// A raft proposal or read index failed.
    #[error(transparent)]
    Propose(#[from] ProposeError),
    /// The raft runtime failed.
    #[error(transparent)]
    Raft(#[from] RaftError),
    /// The storage engine failed to open.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Serving gRPC failed.
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The reflection service could not be built.
    #[error("reflection service: {0}")]
    Reflection(String),
    /// A background task panicked or was cancelled.
    #[error("task failed: {0}")]
    Task(String),
    /// Talking to the coordinators failed, or what they keep is unusable.
    #[error("coordinator: {0}")]
    Coordinator(String),
    /// Another process of the cluster answered a forwarded call with this status.
    #[error("{}", .0.message())]
    Remote(tonic::Status),
    /// The coordinator group's state machine failed to open.
    #[error("metadata: {0}")]
    Metadata(String),
}

fn join(violations: &[FieldViolation]) -> String {
    let parts: Vec<String> = violations.iter().map(ToString::to_string).collect();
    parts.join("; ")
}
