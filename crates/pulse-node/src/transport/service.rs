//! [`RaftTransportService`]: the receiving side — `pulse.internal.v1.RaftTransport` handed to the
//! node's raft runtime.

use pulse_proto::internal::v1::raft_transport_server::{RaftTransport, RaftTransportServer};
use pulse_proto::internal::v1::snapshot_chunk::Chunk;
use pulse_proto::internal::v1::{
    RaftMessageBatch, SendResponse, SendSnapshotResponse, SnapshotChunk, SnapshotHeader,
};
use pulse_raft::{RuntimeHandle, ShardMessage};
use tokio::sync::watch;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, instrument, warn};
use xxhash_rust::xxh3::xxh3_64;

use super::MAX_DECODING_MESSAGE_BYTES;
use super::envelope;

/// Serves `RaftTransport` for one node: every batch of a `Send` stream is decoded and stepped
/// into the node's runtime, which routes each message to its shard (and drops messages for
/// shards it does not host).
///
/// A `SendSnapshot` stream is checked (header first, addressed to this node, at most the
/// announced bytes, trailer with the right size and xxh3 checksum) before the snapshot message,
/// its data put back, is stepped into the runtime; the call answers once it is handed over
/// (the runtime installs it in its next round). Any failure answers an error, which the sender
/// reports to its raft as a failed snapshot.
///
/// Delivery is best effort, as raft expects: a batch addressed to another node (the sender has a
/// stale address) and an envelope that does not decode are dropped with a warning, and the
/// stream goes on.
///
/// `Send` streams are long-lived: a peer keeps its stream open as long as it runs, so a tonic
/// graceful shutdown (which waits for every call in flight) would never complete. Give the
/// service the server's shutdown signal with [`with_shutdown`](Self::with_shutdown) and it ends
/// its streams (`UNAVAILABLE`) when the signal fires.
pub struct RaftTransportService<O> {
    node_id: u64,
    runtime: RuntimeHandle<O>,
    /// Fires (`true`, or the sender dropped) when the node shuts down; `None`: never.
    shutdown: Option<watch::Receiver<bool>>,
}

impl<O: Send + 'static> RaftTransportService<O> {
    /// The service of node `node_id`, delivering to `runtime` (the runtime of that node).
    pub fn new(node_id: u64, runtime: RuntimeHandle<O>) -> Self {
        RaftTransportService { node_id, runtime, shutdown: None }
    }

    /// Ends every `Send` stream, and refuses new ones, once `shutdown` holds `true` or its
    /// sender is dropped: pass the signal that also stops the tonic server.
    pub fn with_shutdown(self, shutdown: watch::Receiver<bool>) -> Self {
        RaftTransportService { shutdown: Some(shutdown), ..self }
    }

    /// The tonic service to add to a `Server`, accepting batches of up to
    /// [`MAX_DECODING_MESSAGE_BYTES`].
    pub fn into_server(self) -> RaftTransportServer<Self> {
        RaftTransportServer::new(self).max_decoding_message_size(MAX_DECODING_MESSAGE_BYTES)
    }

    /// Decodes one batch into the messages to step; `None` if the whole batch is dropped.
    fn accept(&self, batch: RaftMessageBatch) -> Option<Vec<ShardMessage>> {
        if batch.to_node_id != self.node_id {
            warn!(
                node_id = self.node_id,
                from_node_id = batch.from_node_id,
                to_node_id = batch.to_node_id,
                messages = batch.messages.len(),
                "dropped a raft batch addressed to another node"
            );
            return None;
        }
        let mut messages = Vec::with_capacity(batch.messages.len());
        for envelope in &batch.messages {
            match envelope::decode(envelope) {
                Ok(message) if message.message.to == self.node_id => messages.push(message),
                Ok(message) => warn!(
                    node_id = self.node_id,
                    from_node_id = batch.from_node_id,
                    shard_id = message.shard_id,
                    to = message.message.to,
                    "dropped a raft message addressed to another node"
                ),
                Err(error) => warn!(
                    node_id = self.node_id,
                    from_node_id = batch.from_node_id,
                    %error,
                    "dropped an undecodable raft message"
                ),
            }
        }
        Some(messages)
    }
}

impl<O> std::fmt::Debug for RaftTransportService<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftTransportService").field("node_id", &self.node_id).finish()
    }
}

#[tonic::async_trait]
impl<O: Send + 'static> RaftTransport for RaftTransportService<O> {
    #[instrument(skip_all, fields(node_id = self.node_id))]
    async fn send(
        &self,
        request: Request<Streaming<RaftMessageBatch>>,
    ) -> Result<Response<SendResponse>, Status> {
        let mut stream = request.into_inner();
        let mut shutdown = self.shutdown.clone();
        loop {
            let received = tokio::select! {
                biased;
                () = stopping(&mut shutdown) => return Err(Status::unavailable("node is shutting down")),
                received = stream.message() => received?,
            };
            let Some(batch) = received else {
                return Ok(Response::new(SendResponse {}));
            };
            if let Some(messages) = self.accept(batch) {
                self.runtime.step(messages);
            }
        }
    }

    #[instrument(skip_all, fields(node_id = self.node_id))]
    async fn send_snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<SendSnapshotResponse>, Status> {
        let mut stream = request.into_inner();
        let header = match stream.message().await?.and_then(|chunk| chunk.chunk) {
            Some(Chunk::Header(header)) => header,
            _ => return Err(Status::invalid_argument("a snapshot stream starts with its header")),
        };
        self.check_snapshot_header(&header)?;
        let mut data = Vec::with_capacity(usize::try_from(header.total_bytes).unwrap_or(0).min(64 << 20));
        let trailer = loop {
            match stream.message().await?.and_then(|chunk| chunk.chunk) {
                Some(Chunk::Data(piece)) => {
                    if (data.len() + piece.len()) as u64 > header.total_bytes {
                        return Err(Status::invalid_argument("more snapshot data than announced"));
                    }
                    data.extend_from_slice(&piece);
                }
                Some(Chunk::Trailer(trailer)) => break trailer,
                Some(Chunk::Header(_)) => return Err(Status::invalid_argument("a second snapshot header")),
                None => return Err(Status::invalid_argument("snapshot stream ended before its trailer")),
            }
        };
        if trailer.total_bytes != header.total_bytes || data.len() as u64 != trailer.total_bytes {
            return Err(Status::data_loss(format!(
                "snapshot size mismatch: announced {}, trailer {}, received {}",
                header.total_bytes,
                trailer.total_bytes,
                data.len()
            )));
        }
        if xxh3_64(&data) != trailer.checksum {
            return Err(Status::data_loss("snapshot checksum mismatch"));
        }
        let message = envelope::decode_snapshot(&header, data)
            .map_err(|error| Status::invalid_argument(error.to_string()))?;
        if message.message.to != self.node_id {
            return Err(Status::invalid_argument("the snapshot message is addressed to another node"));
        }
        let index = message.message.get_snapshot().get_metadata().index;
        info!(
            shard_id = header.shard_id,
            from_node_id = header.from_node_id,
            index,
            bytes = header.total_bytes,
            "received a snapshot"
        );
        self.runtime.step(vec![message]);
        Ok(Response::new(SendSnapshotResponse { index }))
    }
}

impl<O> RaftTransportService<O> {
    /// Refuses a snapshot addressed to another node.
    fn check_snapshot_header(&self, header: &SnapshotHeader) -> Result<(), Status> {
        if header.to_node_id != self.node_id {
            warn!(
                node_id = self.node_id,
                from_node_id = header.from_node_id,
                to_node_id = header.to_node_id,
                "refused a snapshot addressed to another node"
            );
            return Err(Status::failed_precondition(format!(
                "this is node {}, not node {}",
                self.node_id, header.to_node_id
            )));
        }
        Ok(())
    }
}

/// Completes when `shutdown` fires; never if there is no signal.
async fn stopping(shutdown: &mut Option<watch::Receiver<bool>>) {
    match shutdown {
        // An error means the sender is gone: that is a shutdown too.
        Some(signal) => drop(signal.wait_for(|stopped| *stopped).await),
        None => std::future::pending().await,
    }
}
