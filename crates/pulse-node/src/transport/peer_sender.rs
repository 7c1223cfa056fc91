//! `PeerSender`: the task that owns the queue and the `Send` stream to one peer node.

use std::sync::Arc;
use std::time::Duration;

use pulse_proto::internal::v1::raft_transport_client::RaftTransportClient;
use pulse_proto::internal::v1::{RaftEnvelope, RaftMessageBatch, SendResponse};
use pulse_raft::ShardMessage;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;
use tracing::{debug, info, warn};

use super::config::GrpcTransportConfig;
use super::envelope;
use super::grpc_transport::{DropCounters, DropReason};

/// Batches handed to the gRPC stream but not yet taken by it. Small: the peer queue is where
/// messages wait (and are dropped when it is full), not here.
const STREAM_BUFFER_BATCHES: usize = 4;

/// The `Send` call in flight; its stream ends when `batches` is dropped.
struct Stream {
    batches: mpsc::Sender<RaftMessageBatch>,
    call: JoinHandle<Result<tonic::Response<SendResponse>, tonic::Status>>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        // Also ends a call stuck on a dead connection (the keepalive would, later).
        self.call.abort();
    }
}

/// What the task does next.
enum Next {
    /// Carry on with the current stream.
    Continue,
    /// The connection or stream failed: back off, then reconnect when there is traffic.
    Reconnect,
    /// The peer's address changed: reconnect now, to the new address.
    Readdress,
    /// The transport dropped its link: stop.
    Stop,
}

/// Sends the messages queued for one peer node, in queue order, over one client-streaming
/// `Send` call at a time.
///
/// ```text
///  idle ──message──▶ connect ──ok──▶ streaming ──stream/connect error──▶ backoff ──▶ idle
///    ▲                  │                │                                  │
///    └──────────────────┴─ address changed: reconnect at once ◀─────────────┘
/// ```
///
/// The task ends when the transport drops its link (queue and address senders).
pub(super) struct PeerSender {
    node_id: u64,
    peer_id: u64,
    config: Arc<GrpcTransportConfig>,
    counters: Arc<DropCounters>,
    queue: mpsc::Receiver<ShardMessage>,
    address: watch::Receiver<Endpoint>,
}

impl PeerSender {
    pub(super) fn new(
        node_id: u64,
        peer_id: u64,
        config: Arc<GrpcTransportConfig>,
        counters: Arc<DropCounters>,
        queue: mpsc::Receiver<ShardMessage>,
        address: watch::Receiver<Endpoint>,
    ) -> Self {
        PeerSender { node_id, peer_id, config, counters, queue, address }
    }

    /// The task's body: returns when the transport drops its link to this peer.
    pub(super) async fn run(mut self) {
        let mut backoff = self.config.backoff_initial();
        // A message taken from the queue to trigger a connection, sent first on it.
        let mut first: Option<ShardMessage> = None;
        loop {
            if first.is_none() {
                // Lazy: connect only once there is something to send.
                match self.queue.recv().await {
                    Some(message) => first = Some(message),
                    None => return,
                }
            }
            let next = match self.connect().await {
                Ok(Some(stream)) => {
                    backoff = self.config.backoff_initial();
                    self.stream(stream, first.take()).await
                }
                Ok(None) => Next::Readdress,
                Err(next) => next,
            };
            match next {
                Next::Continue | Next::Readdress => continue,
                Next::Stop => return,
                Next::Reconnect => {
                    if let Some(message) = first.take() {
                        drop(message);
                        self.counters.add(DropReason::Unreachable, 1);
                    }
                    if self.back_off(backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(self.config.backoff_max());
                }
            }
        }
    }

    /// Connects to the current address and opens the `Send` call. `Ok(None)` if the address
    /// changed meanwhile (connect again, to the new one).
    async fn connect(&mut self) -> Result<Option<Stream>, Next> {
        let endpoint = self.address.borrow_and_update().clone();
        let address = endpoint.uri().to_string();
        let channel = tokio::select! {
            connected = endpoint.connect() => match connected {
                Ok(channel) => channel,
                Err(error) => {
                    debug!(node_id = self.node_id, peer_id = self.peer_id, %address, %error, "raft transport connect failed");
                    return Err(Next::Reconnect);
                }
            },
            changed = self.address.changed() => return match changed {
                Ok(()) => Ok(None),
                Err(_) => Err(Next::Stop),
            },
        };
        debug!(node_id = self.node_id, peer_id = self.peer_id, %address, "raft transport connected");
        let (batches, receiver) = mpsc::channel(STREAM_BUFFER_BATCHES);
        let mut client = RaftTransportClient::new(channel);
        let call = tokio::spawn(async move { client.send(ReceiverStream::new(receiver)).await });
        Ok(Some(Stream { batches, call }))
    }

    /// Feeds `stream` from the queue, `first` first, until it fails, the address changes or
    /// the transport stops.
    async fn stream(&mut self, mut stream: Stream, mut first: Option<ShardMessage>) -> Next {
        loop {
            let message = match first.take() {
                Some(message) => message,
                None => tokio::select! {
                    biased;
                    changed = self.address.changed() => return self.on_address_change(changed),
                    ended = &mut stream.call => return self.on_stream_end(ended),
                    message = self.queue.recv() => match message {
                        Some(message) => message,
                        None => return Next::Stop,
                    },
                },
            };
            let (batch, count) = self.batch(message);
            if count == 0 {
                continue;
            }
            let next = tokio::select! {
                biased;
                changed = self.address.changed() => self.on_address_change(changed),
                sent = stream.batches.send(batch) => match sent {
                    Ok(()) => Next::Continue,
                    // The call ended and dropped its stream: learn why from its result.
                    Err(_) => self.on_stream_end((&mut stream.call).await),
                },
            };
            if !matches!(next, Next::Continue) {
                // The batch never reached the stream.
                if matches!(next, Next::Reconnect | Next::Readdress) {
                    self.counters.add(DropReason::Unreachable, count);
                }
                return next;
            }
        }
    }

    /// A batch of `first` and whatever else is queued, up to the configured bounds, with the
    /// number of messages it carries (unsendable ones are dropped and not counted).
    fn batch(&mut self, first: ShardMessage) -> (RaftMessageBatch, u64) {
        let mut envelopes: Vec<RaftEnvelope> = Vec::new();
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match envelope::encode(&message) {
                Ok(envelope) => {
                    bytes += envelope.message.len();
                    envelopes.push(envelope);
                }
                Err(error) => {
                    warn!(node_id = self.node_id, peer_id = self.peer_id, %error, "dropped an unencodable raft message");
                    self.counters.add(DropReason::Unsendable, 1);
                }
            }
            if envelopes.len() < self.config.max_batch_messages && bytes < self.config.max_batch_bytes {
                next = self.queue.try_recv().ok();
            }
        }
        let count = envelopes.len() as u64;
        let batch =
            RaftMessageBatch { from_node_id: self.node_id, to_node_id: self.peer_id, messages: envelopes };
        (batch, count)
    }

    fn on_address_change(&self, changed: Result<(), watch::error::RecvError>) -> Next {
        match changed {
            Ok(()) => {
                info!(
                    node_id = self.node_id,
                    peer_id = self.peer_id,
                    address = %self.address.borrow().uri(),
                    "raft peer address changed, reconnecting"
                );
                Next::Readdress
            }
            Err(_) => Next::Stop,
        }
    }

    fn on_stream_end(
        &self,
        ended: Result<Result<tonic::Response<SendResponse>, tonic::Status>, tokio::task::JoinError>,
    ) -> Next {
        match ended {
            Ok(Ok(_)) => {
                debug!(node_id = self.node_id, peer_id = self.peer_id, "raft stream closed by the peer")
            }
            Ok(Err(status)) => warn!(
                node_id = self.node_id,
                peer_id = self.peer_id,
                code = ?status.code(),
                message = status.message(),
                "raft stream failed"
            ),
            Err(error) => {
                warn!(node_id = self.node_id, peer_id = self.peer_id, %error, "raft stream task failed")
            }
        }
        Next::Reconnect
    }

    /// Waits `backoff` before the next connection, dropping what is queued meanwhile (stale by
    /// the time a connection exists; raft retransmits). Returns `true` if the transport
    /// stopped. An address change ends the wait early.
    async fn back_off(&mut self, backoff: Duration) -> bool {
        let sleep = tokio::time::sleep(backoff);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return false,
                changed = self.address.changed() => return changed.is_err(),
                message = self.queue.recv() => match message {
                    Some(_) => self.counters.add(DropReason::Unreachable, 1),
                    None => return true,
                },
            }
        }
    }
}
