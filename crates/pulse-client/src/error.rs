//! [`Error`]: why a client call failed, naming the shard, node or address involved.

use std::time::Duration;

use tonic::Code;

/// Result of client operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a [`Client`](crate::Client) call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The [`ClientConfig`](crate::ClientConfig) is unusable.
    #[error("invalid client config: {field} {description}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        description: String,
    },
    /// [`Client::connect`](crate::Client::connect) was given no seed address.
    #[error("no seed address given: pass at least one gateway HOST:PORT")]
    NoSeeds,
    /// A seed or node address does not make a valid `http://HOST:PORT` URI.
    #[error("invalid address {address:?}: {source}")]
    InvalidAddress {
        /// The address as given (seed) or as the cluster state listed it (node).
        address: String,
        /// Why tonic refused it.
        #[source]
        source: tonic::transport::Error,
    },
    /// No seed (nor known node) answered `GetClusterState`.
    #[error("no cluster state from any of {tried:?} (last error: {last})")]
    ClusterStateUnavailable {
        /// Every address asked, in order.
        tried: Vec<String>,
        /// The last failure.
        last: String,
    },
    /// The cluster had no shards until the call's deadline (it is still forming: fewer than
    /// `replication_factor` storage nodes have joined).
    #[error("the cluster has no shards yet (waited {timeout:?})")]
    NoShards {
        /// The per-call deadline that passed.
        timeout: Duration,
    },
    /// The request is invalid before it is sent (checked by the client because it splits it).
    #[error("invalid argument {field}: {description}")]
    InvalidArgument {
        /// The offending request field, e.g. `customer_ids[3]`.
        field: String,
        /// What is wrong with it.
        description: String,
    },
    /// A shard leader answered with a status that retrying cannot change (INVALID_ARGUMENT,
    /// NOT_FOUND, RESOURCE_EXHAUSTED, FAILED_PRECONDITION…), returned as it is. For an ingest
    /// part, field names such as `events[i]` index the part sent to this shard, not the batch.
    #[error("shard {shard_id} (node {node_id}) refused the call: {}: {}", status.code(), status.message())]
    Rejected {
        /// The shard the call was for.
        shard_id: u64,
        /// The node that answered.
        node_id: u64,
        /// The status, with its metadata and details.
        status: tonic::Status,
    },
    /// No leader of the shard answered before the per-call deadline.
    #[error(
        "shard {shard_id}: no leader answered within {timeout:?} ({attempts} attempts, last error: {last})"
    )]
    DeadlineExceeded {
        /// The shard the call was for.
        shard_id: u64,
        /// Attempts made (calls actually sent).
        attempts: u32,
        /// The per-call deadline.
        timeout: Duration,
        /// The last failure seen.
        last: String,
    },
    /// A concurrent part of a split call was cancelled or panicked.
    #[error("a concurrent part of the call did not complete: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl Error {
    /// The gRPC code this error corresponds to (the server's code for [`Error::Rejected`]), for
    /// callers that map errors onwards.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidConfig { .. }
            | Self::NoSeeds
            | Self::InvalidAddress { .. }
            | Self::InvalidArgument { .. } => Code::InvalidArgument,
            Self::ClusterStateUnavailable { .. } | Self::NoShards { .. } => Code::Unavailable,
            Self::Rejected { status, .. } => status.code(),
            Self::DeadlineExceeded { .. } => Code::DeadlineExceeded,
            Self::Task(_) => Code::Internal,
        }
    }
}
