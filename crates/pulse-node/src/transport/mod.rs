//! The raft transport between nodes over gRPC (`pulse.internal.v1.RaftTransport`).
//!
//! ```text
//!  node A                                                      node B
//!  Ready loop thread                                           tonic server
//!   │ Transport::send(Vec<ShardMessage>)  (never blocks)        │
//!   ▼                                                           │
//!  GrpcTransport ── by message.to ──▶ queue of peer B (bounded; full → drop + count)
//!                                      │ PeerSender task: lazy connect, backoff, re-address
//!                                      ▼
//!                        one long-lived `Send` stream ── RaftMessageBatch ──▶ RaftTransportService
//!                        (batches ≤ max_batch_messages / max_batch_bytes)      │ to_node_id == B?
//!                                                                              │ decode envelopes
//!                                                                              ▼
//!                                                                 RuntimeHandle::step (one call per batch)
//! ```
//!
//! Delivery is best effort and ordered per destination node, which is all raft asks: anything
//! lost (full queue, unknown address, broken connection, wrong receiver) is retransmitted by
//! raft. Snapshots (`MsgSnapshot`) go out of band through `SendSnapshot`, one call each, in
//! chunks of at most 1 MiB paced to `snapshot_max_bytes_per_sec`, with a trailer holding the
//! size and xxh3 checksum; the receiver checks it, steps the message (data included) into its
//! runtime and answers; the sender reports the outcome to its runtime
//! ([`GrpcTransport::report_snapshots_to`]), as raft requires.
//!
//! ## Layout
//! - [`GrpcTransport`] (`grpc_transport`): the address book, the per-peer queues, drop counters.
//! - `peer_sender`: the task per peer node that owns its queue and stream.
//! - `snapshot_sender`: one snapshot's `SendSnapshot` call (chunks, pacing, trailer).
//! - [`RaftTransportService`] (`service`): the receiving side.
//! - `envelope`: `ShardMessage` ↔ `RaftEnvelope`, the only place raft messages are encoded.
//! - [`GrpcTransportConfig`] (`config`), [`TransportError`] (`error`).

mod config;
mod envelope;
mod error;
mod grpc_transport;
mod peer_sender;
mod service;
mod snapshot_sender;

pub use config::GrpcTransportConfig;
pub use error::{TransportError, TransportResult};
pub use grpc_transport::GrpcTransport;
pub use service::RaftTransportService;

/// Largest `RaftMessageBatch` a [`RaftTransportService`] accepts, in bytes (tonic's default is
/// 4 MiB). A batch holds at most `max_batch_bytes` of messages plus one message, and a raft
/// append is bounded by `max_size_per_msg_bytes` (≈ 1 MiB) unless a single entry is larger.
pub const MAX_DECODING_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
