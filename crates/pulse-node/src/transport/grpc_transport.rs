//! [`GrpcTransport`]: the sending side — raft's [`Transport`] over one `Send` stream per peer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use pulse_raft::{RuntimeHandle, ShardMessage, Transport};
use raft::eraftpb::MessageType;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tonic::transport::Endpoint;
use tracing::{debug, info, warn};

use super::config::GrpcTransportConfig;
use super::error::{TransportError, TransportResult};
use super::peer_sender::PeerSender;
use super::snapshot_sender::send_snapshot;

/// Where the outcome of a snapshot send goes: `(shard_id, to, delivered)`.
type SnapshotReporter = Arc<dyn Fn(u64, u64, bool) + Send + Sync>;

/// Counter of raft messages the transport dropped, labelled by `reason`.
pub(super) const DROPPED_MESSAGES: &str = "pulse_raft_transport_dropped_messages_total";

/// Sends the raft messages of a node's runtime to the other nodes over gRPC.
///
/// Keeps an address book `node_id → HOST:PORT`, updatable at any time. Each known peer has one
/// tokio task (a `PeerSender`) with a bounded queue; [`send`](Transport::send) only sorts
/// messages into those queues, so it never blocks the Ready loop: a full queue drops the
/// message (raft retransmits). The task connects lazily, keeps one client-streaming `Send` call
/// open, batches whatever is queued, and reconnects with capped exponential backoff.
///
/// Snapshots (`MsgSnapshot`) go out of band: each in its own task and `SendSnapshot` call
/// (`snapshot_sender`), throttled to `snapshot_max_bytes_per_sec`, and the outcome is reported
/// to the runtime given to [`report_snapshots_to`](Self::report_snapshots_to) — which a node
/// must call once its runtime is started: raft sends nothing more to a follower whose snapshot
/// outcome it never hears.
///
/// Clones share the address book and the tasks (keep one to update addresses after handing the
/// transport to [`RaftRuntime::start`](pulse_raft::RaftRuntime::start)). Dropping the last
/// clone, [`remove_peer`](Self::remove_peer) or [`shutdown`](Self::shutdown) ends the affected
/// tasks: their queue and address channels close.
#[derive(Clone)]
pub struct GrpcTransport {
    shared: Arc<Shared>,
}

/// What the clones of a transport share.
struct Shared {
    node_id: u64,
    runtime: Handle,
    config: Arc<GrpcTransportConfig>,
    peers: Mutex<Peers>,
    counters: Arc<DropCounters>,
    /// Set by `report_snapshots_to`.
    snapshot_reporter: Mutex<Option<SnapshotReporter>>,
}

/// The address book and the links to the peer tasks.
#[derive(Default)]
struct Peers {
    links: HashMap<u64, PeerLink>,
    /// Set by `shutdown`: no new peer task starts.
    stopped: bool,
}

/// The transport's end of one peer task. Dropping it ends the task.
struct PeerLink {
    queue: mpsc::Sender<ShardMessage>,
    address: watch::Sender<Endpoint>,
}

/// Messages dropped since the transport started, by reason.
#[derive(Debug, Default)]
pub(super) struct DropCounters {
    /// The destination has no known address.
    pub(super) unknown_peer: AtomicU64,
    /// The destination's queue was full.
    pub(super) queue_full: AtomicU64,
    /// Not sendable: a message that would not encode.
    pub(super) unsendable: AtomicU64,
    /// Queued, then lost to a failed connection or stream.
    pub(super) unreachable: AtomicU64,
}

impl DropCounters {
    /// Counts `count` messages dropped for `reason`, here and in the metrics.
    pub(super) fn add(&self, reason: DropReason, count: u64) {
        let counter = match reason {
            DropReason::UnknownPeer => &self.unknown_peer,
            DropReason::QueueFull => &self.queue_full,
            DropReason::Unsendable => &self.unsendable,
            DropReason::Unreachable => &self.unreachable,
        };
        counter.fetch_add(count, Ordering::Relaxed);
        metrics::counter!(DROPPED_MESSAGES, "reason" => reason.label()).increment(count);
    }

    fn total(&self) -> u64 {
        [&self.unknown_peer, &self.queue_full, &self.unsendable, &self.unreachable]
            .iter()
            .map(|counter| counter.load(Ordering::Relaxed))
            .sum()
    }
}

/// Why a message was dropped (the `reason` label of [`DROPPED_MESSAGES`]).
#[derive(Clone, Copy, Debug)]
pub(super) enum DropReason {
    UnknownPeer,
    QueueFull,
    Unsendable,
    Unreachable,
}

impl DropReason {
    fn label(self) -> &'static str {
        match self {
            DropReason::UnknownPeer => "unknown_peer",
            DropReason::QueueFull => "queue_full",
            DropReason::Unsendable => "unsendable",
            DropReason::Unreachable => "unreachable",
        }
    }
}

impl GrpcTransport {
    /// The transport of node `node_id`, whose peer tasks run on `runtime`. Validates `config`.
    /// No peer is known yet: add them with [`set_peer_address`](Self::set_peer_address).
    pub fn new(node_id: u64, runtime: Handle, config: GrpcTransportConfig) -> TransportResult<GrpcTransport> {
        config.validate()?;
        Ok(GrpcTransport {
            shared: Arc::new(Shared {
                node_id,
                runtime,
                config: Arc::new(config),
                peers: Mutex::new(Peers::default()),
                counters: Arc::default(),
                snapshot_reporter: Mutex::new(None),
            }),
        })
    }

    /// This node's id (the `from_node_id` of every batch it sends).
    pub fn node_id(&self) -> u64 {
        self.shared.node_id
    }

    /// Sets the address (`HOST:PORT`) of node `node_id`: starts its task if the node is new,
    /// else makes the task reconnect to the new address (messages queued meanwhile may be
    /// dropped). Does nothing after [`shutdown`](Self::shutdown).
    pub fn set_peer_address(&self, node_id: u64, address: &str) -> TransportResult<()> {
        let endpoint = self.endpoint(node_id, address)?;
        let mut peers = self.lock();
        if peers.stopped {
            return Ok(());
        }
        if let Some(link) = peers.links.get(&node_id) {
            if link.address.borrow().uri() != endpoint.uri() {
                link.address.send_replace(endpoint);
            }
            return Ok(());
        }
        let (queue, queue_receiver) = mpsc::channel(self.shared.config.queue_capacity);
        let (address, address_receiver) = watch::channel(endpoint);
        let sender = PeerSender::new(
            self.shared.node_id,
            node_id,
            self.shared.config.clone(),
            self.shared.counters.clone(),
            queue_receiver,
            address_receiver,
        );
        self.shared.runtime.spawn(sender.run());
        peers.links.insert(node_id, PeerLink { queue, address });
        Ok(())
    }

    /// Reports the outcome of every snapshot this transport sends to `runtime` (the runtime the
    /// transport was given to), with [`RuntimeHandle::report_snapshot`]. Call once the runtime
    /// is started; until then snapshots are sent without reporting (see `send_snapshot`).
    pub fn report_snapshots_to<O: Send + 'static>(&self, runtime: &RuntimeHandle<O>) {
        let runtime = runtime.clone();
        let reporter: SnapshotReporter =
            Arc::new(move |shard_id, to, delivered| runtime.report_snapshot(shard_id, to, delivered));
        *self.shared.snapshot_reporter.lock().unwrap_or_else(PoisonError::into_inner) = Some(reporter);
    }

    /// Starts sending a snapshot to its node in the background and reports the outcome. A
    /// snapshot to a node without address is dropped, counted and reported failed. Without a
    /// runtime to report to (`report_snapshots_to` not called), the snapshot is still sent: a
    /// delivered one unblocks raft anyway (the follower's answer), a failed one leaves that
    /// follower waiting until the next leader change — hence the warning.
    fn send_snapshot(&self, peers: &Peers, message: ShardMessage) {
        let (shard_id, to) = (message.shard_id, message.message.to);
        let reporter = self.shared.snapshot_reporter.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let report = move |delivered: bool| match &reporter {
            Some(reporter) => reporter(shard_id, to, delivered),
            None => warn!(shard_id, to, delivered, "snapshot outcome not reported: call report_snapshots_to"),
        };
        let Some(endpoint) = peers.links.get(&to).map(|link| link.address.borrow().clone()) else {
            warn!(shard_id, to, "dropped a raft snapshot: no address for its node");
            self.shared.counters.add(DropReason::UnknownPeer, 1);
            report(false);
            return;
        };
        let (from_node_id, config, counters) =
            (self.shared.node_id, self.shared.config.clone(), self.shared.counters.clone());
        self.shared.runtime.spawn(async move {
            let bytes = message.message.get_snapshot().get_data().len();
            match send_snapshot(endpoint, from_node_id, message, &config).await {
                Ok(index) => {
                    info!(shard_id, to, index, bytes, "snapshot sent");
                    report(true);
                }
                Err(error) => {
                    warn!(shard_id, to, bytes, %error, "snapshot send failed");
                    counters.add(DropReason::Unreachable, 1);
                    report(false);
                }
            }
        });
    }

    /// Forgets node `node_id`: its task ends and messages to it are dropped from now on.
    pub fn remove_peer(&self, node_id: u64) {
        self.lock().links.remove(&node_id);
    }

    /// Ends every peer task and drops every later message. Idempotent; dropping the transport
    /// does the same.
    pub fn shutdown(&self) {
        let mut peers = self.lock();
        peers.stopped = true;
        peers.links.clear();
    }

    /// Messages dropped since the transport started, for any reason (also exported as the
    /// `pulse_raft_transport_dropped_messages_total` metric, by reason).
    pub fn dropped_messages(&self) -> u64 {
        self.shared.counters.total()
    }

    fn endpoint(&self, node_id: u64, address: &str) -> TransportResult<Endpoint> {
        let invalid =
            |reason: String| TransportError::InvalidAddress { node_id, address: address.to_owned(), reason };
        if address.is_empty() || address.contains('/') {
            return Err(invalid("expected HOST:PORT".into()));
        }
        let endpoint =
            Endpoint::from_shared(format!("http://{address}")).map_err(|error| invalid(error.to_string()))?;
        if endpoint.uri().port_u16().is_none() {
            return Err(invalid("no port".into()));
        }
        Ok(endpoint
            .tcp_nodelay(true)
            .connect_timeout(self.shared.config.connect_timeout())
            .http2_keep_alive_interval(self.shared.config.keepalive_interval())
            .keep_alive_timeout(self.shared.config.keepalive_timeout())
            .keep_alive_while_idle(true))
    }

    fn lock(&self) -> MutexGuard<'_, Peers> {
        self.shared.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Transport for GrpcTransport {
    fn send(&self, messages: Vec<ShardMessage>) {
        let peers = self.lock();
        for message in messages {
            let to = message.message.to;
            if message.message.get_msg_type() == MessageType::MsgSnapshot {
                self.send_snapshot(&peers, message);
                continue;
            }
            let Some(link) = peers.links.get(&to) else {
                debug!(shard_id = message.shard_id, to, "dropped a raft message: no address for its node");
                self.shared.counters.add(DropReason::UnknownPeer, 1);
                continue;
            };
            match link.queue.try_send(message) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(message)) => {
                    debug!(shard_id = message.shard_id, to, "dropped a raft message: peer queue full");
                    self.shared.counters.add(DropReason::QueueFull, 1);
                }
                Err(mpsc::error::TrySendError::Closed(message)) => {
                    // The task only ends when its link is dropped, or if the runtime stopped.
                    debug!(shard_id = message.shard_id, to, "dropped a raft message: peer task stopped");
                    self.shared.counters.add(DropReason::Unreachable, 1);
                }
            }
        }
    }
}

impl std::fmt::Debug for GrpcTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let peers = self.lock();
        let mut addresses: Vec<(u64, String)> = peers
            .links
            .iter()
            .map(|(node_id, link)| (*node_id, link.address.borrow().uri().to_string()))
            .collect();
        addresses.sort();
        f.debug_struct("GrpcTransport")
            .field("node_id", &self.shared.node_id)
            .field("peers", &addresses)
            .field("stopped", &peers.stopped)
            .finish()
    }
}
