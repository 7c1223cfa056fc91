//! [`TransportError`]: what can fail setting up the raft transport or decoding what it received.

/// Result of transport operations.
pub type TransportResult<T> = std::result::Result<T, TransportError>;

/// What can go wrong in the gRPC raft transport. Delivery failures are not errors: raft messages
/// are best effort, so the transport drops them (and counts them) instead of reporting them.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A [`GrpcTransportConfig`](super::GrpcTransportConfig) field is out of range.
    #[error("invalid transport config {field}: {reason}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// A peer address is not a valid `HOST:PORT`.
    #[error("invalid address {address:?} for node {node_id}: {reason}")]
    InvalidAddress {
        /// The peer node.
        node_id: u64,
        /// The address given.
        address: String,
        /// Why it is refused.
        reason: String,
    },
    /// A received envelope does not hold a raft message.
    #[error("undecodable raft message for shard {shard_id}: {reason}")]
    Decode {
        /// The shard the envelope named.
        shard_id: u64,
        /// The decoder's complaint.
        reason: String,
    },
    /// A raft message could not be encoded for the wire.
    #[error("unencodable raft message for shard {shard_id}: {reason}")]
    Encode {
        /// The shard of the message.
        shard_id: u64,
        /// The encoder's complaint.
        reason: String,
    },
}
