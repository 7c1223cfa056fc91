//! [`LocalNetwork`]: an in-process transport between several runtimes, with fault controls,
//! for tests of replication (a cluster in one process, no sockets).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use raft::eraftpb::MessageType;

use crate::runtime::RuntimeHandle;
use crate::transport::{ShardMessage, Transport};

/// Delivers a batch of messages to one node.
type Inbox = Box<dyn Fn(Vec<ShardMessage>) + Send + Sync>;

/// Tells one node the outcome of a snapshot it sent: `(shard_id, to, delivered)`.
type SnapshotReporter = Box<dyn Fn(u64, u64, bool) + Send + Sync>;

/// Connects the runtimes of one process: each gets a [`LocalTransport`] from
/// [`transport`](Self::transport) and, once started, is [`register`](Self::register)ed so that
/// messages reach it. Delivery is immediate and in order per sender; the fault controls drop
/// messages (raft copes with loss, not with corruption or duplication, which are not simulated).
///
/// Snapshots (`MsgSnapshot`) travel like other messages, data included, and the outcome is
/// reported to the sender right away ([`RuntimeHandle::report_snapshot`]): delivered once handed
/// to the receiver's runtime, failed when a fault dropped it.
///
/// The network holds a handle of every registered runtime, so a runtime stops only through
/// [`RuntimeHandle::shutdown`], never by dropping handles.
#[derive(Clone, Default)]
pub struct LocalNetwork {
    state: Arc<Mutex<NetworkState>>,
}

#[derive(Default)]
struct NetworkState {
    inboxes: HashMap<u64, Inbox>,
    /// Per registered node: where the outcome of its snapshots goes.
    reporters: HashMap<u64, SnapshotReporter>,
    /// Directed links `(from, to)` that drop every message.
    cut_links: HashSet<(u64, u64)>,
    /// Nodes whose messages, in and out, are dropped.
    isolated: HashSet<u64>,
    delivered: u64,
    delivered_snapshots: u64,
    dropped: u64,
}

impl LocalNetwork {
    /// A network with no node and no fault.
    pub fn new() -> LocalNetwork {
        LocalNetwork::default()
    }

    /// The transport of node `node_id`, to pass to [`RaftRuntime::start`](crate::RaftRuntime::start).
    pub fn transport(&self, node_id: u64) -> LocalTransport {
        LocalTransport { network: self.clone(), node_id }
    }

    /// Delivers messages addressed to `handle`'s node to it from now on.
    pub fn register<O: Send + 'static>(&self, handle: &RuntimeHandle<O>) {
        let node_id = handle.node_id();
        let stepper = handle.clone();
        let inbox: Inbox = Box::new(move |messages| stepper.step(messages));
        let reporter_handle = handle.clone();
        let reporter: SnapshotReporter =
            Box::new(move |shard_id, to, delivered| reporter_handle.report_snapshot(shard_id, to, delivered));
        let mut state = self.lock();
        state.inboxes.insert(node_id, inbox);
        state.reporters.insert(node_id, reporter);
    }

    /// Stops delivering to `node_id` (its messages are dropped as if it were down).
    pub fn unregister(&self, node_id: u64) {
        let mut state = self.lock();
        state.inboxes.remove(&node_id);
        state.reporters.remove(&node_id);
    }

    /// Drops every message between `a` and `b`, both ways.
    pub fn disconnect(&self, a: u64, b: u64) {
        let mut state = self.lock();
        state.cut_links.insert((a, b));
        state.cut_links.insert((b, a));
    }

    /// Drops every message to and from `node_id`.
    pub fn isolate(&self, node_id: u64) {
        self.lock().isolated.insert(node_id);
    }

    /// Removes every fault: all links deliver again.
    pub fn heal(&self) {
        let mut state = self.lock();
        state.cut_links.clear();
        state.isolated.clear();
    }

    /// Messages delivered so far.
    pub fn delivered_messages(&self) -> u64 {
        self.lock().delivered
    }

    /// Snapshots delivered so far (also counted in [`delivered_messages`](Self::delivered_messages)).
    pub fn delivered_snapshots(&self) -> u64 {
        self.lock().delivered_snapshots
    }

    /// Messages dropped so far (faults, or no registered receiver).
    pub fn dropped_messages(&self) -> u64 {
        self.lock().dropped
    }

    fn lock(&self) -> MutexGuard<'_, NetworkState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for LocalNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("LocalNetwork")
            .field("nodes", &state.inboxes.keys().collect::<Vec<_>>())
            .field("delivered", &state.delivered)
            .field("dropped", &state.dropped)
            .finish()
    }
}

/// The [`Transport`] of one node of a [`LocalNetwork`].
#[derive(Clone, Debug)]
pub struct LocalTransport {
    network: LocalNetwork,
    node_id: u64,
}

impl Transport for LocalTransport {
    fn send(&self, messages: Vec<ShardMessage>) {
        let mut by_destination: BTreeMap<u64, Vec<ShardMessage>> = BTreeMap::new();
        for message in messages {
            by_destination.entry(message.message.to).or_default().push(message);
        }
        let mut state = self.network.lock();
        for (to, batch) in by_destination {
            let count = batch.len() as u64;
            let snapshots: Vec<u64> = batch
                .iter()
                .filter(|message| message.message.get_msg_type() == MessageType::MsgSnapshot)
                .map(|message| message.shard_id)
                .collect();
            let blocked = state.cut_links.contains(&(self.node_id, to))
                || state.isolated.contains(&self.node_id)
                || state.isolated.contains(&to);
            let delivered = match state.inboxes.get(&to) {
                Some(inbox) if !blocked => {
                    inbox(batch);
                    state.delivered += count;
                    state.delivered_snapshots += snapshots.len() as u64;
                    true
                }
                _ => {
                    state.dropped += count;
                    false
                }
            };
            if let Some(report) = state.reporters.get(&self.node_id) {
                for shard_id in snapshots {
                    report(shard_id, to, delivered);
                }
            }
        }
    }
}
