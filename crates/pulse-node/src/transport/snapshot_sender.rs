//! `send_snapshot`: one raft `MsgSnapshot` sent out of band over a `SendSnapshot` call — a
//! header, the data in chunks of at most [`SNAPSHOT_CHUNK_BYTES`] paced to the configured rate,
//! and a trailer with the total size and xxh3 checksum.
//!
//! ```text
//!  GrpcTransport::send ── MsgSnapshot ──▶ task: connect ▶ header ▶ data… (throttled) ▶ trailer
//!                                               │                                    │
//!                                               └──── answer (installed index) / error ┘
//!                                                          ▼
//!                                     RuntimeHandle::report_snapshot(shard, to, ok)
//! ```
//!
//! The snapshot data goes on its own connection, so a large snapshot never delays the raft
//! messages of the peer's `Send` stream.

use std::time::{Duration, Instant};

use pulse_proto::internal::v1::raft_transport_client::RaftTransportClient;
use pulse_proto::internal::v1::snapshot_chunk::Chunk;
use pulse_proto::internal::v1::{SnapshotChunk, SnapshotTrailer};
use pulse_raft::ShardMessage;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;
use xxhash_rust::xxh3::xxh3_64;

use super::MAX_DECODING_MESSAGE_BYTES;
use super::config::GrpcTransportConfig;
use super::envelope;

/// Largest data chunk of a snapshot stream, in bytes (1 MiB, as the proto says).
pub(super) const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// Sends `message` (a `MsgSnapshot` of node `from_node_id`) to the node at `endpoint`; resolves
/// to the index the receiver took, or to why it failed. Bounded in time by the config's
/// `snapshot_timeout_ms` plus the size at the rate limit.
pub(super) async fn send_snapshot(
    endpoint: Endpoint,
    from_node_id: u64,
    message: ShardMessage,
    config: &GrpcTransportConfig,
) -> Result<u64, String> {
    let (header, data) =
        envelope::encode_snapshot(from_node_id, &message).map_err(|error| error.to_string())?;
    let total_bytes = data.len() as u64;
    let checksum = xxh3_64(&data);
    let rate = config.snapshot_max_bytes_per_sec.max(1);
    let budget = Duration::from_millis(config.snapshot_timeout_ms)
        + Duration::from_secs_f64(total_bytes as f64 / rate as f64);

    let send = async move {
        let channel = endpoint.connect().await.map_err(|error| format!("connect: {error}"))?;
        let mut client =
            RaftTransportClient::new(channel).max_decoding_message_size(MAX_DECODING_MESSAGE_BYTES);
        let (chunks, receiver) = mpsc::channel::<SnapshotChunk>(2);
        let produce = async move {
            let chunk = |chunk| SnapshotChunk { chunk: Some(chunk) };
            if chunks.send(chunk(Chunk::Header(header))).await.is_err() {
                return;
            }
            let started = Instant::now();
            let mut sent = 0u64;
            for piece in data.chunks(SNAPSHOT_CHUNK_BYTES) {
                // Pace: the first `sent` bytes may not leave before `sent / rate` seconds.
                let due = started + Duration::from_secs_f64(sent as f64 / rate as f64);
                tokio::time::sleep_until(due.into()).await;
                if chunks.send(chunk(Chunk::Data(piece.to_vec()))).await.is_err() {
                    return;
                }
                sent += piece.len() as u64;
            }
            let _ = chunks.send(chunk(Chunk::Trailer(SnapshotTrailer { total_bytes, checksum }))).await;
        };
        let (response, ()) = tokio::join!(client.send_snapshot(ReceiverStream::new(receiver)), produce);
        response.map(|response| response.into_inner().index).map_err(|status| status.to_string())
    };
    tokio::time::timeout(budget, send).await.map_err(|_| format!("not handed over within {budget:?}"))?
}
