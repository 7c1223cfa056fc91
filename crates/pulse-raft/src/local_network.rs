//! [`LocalNetwork`]: an in-process transport between several runtimes, with fault controls,
//! for tests of replication (a cluster in one process, no sockets).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::runtime::RuntimeHandle;
use crate::transport::{ShardMessage, Transport};

/// Delivers a batch of messages to one node.
type Inbox = Box<dyn Fn(Vec<ShardMessage>) + Send + Sync>;

/// Connects the runtimes of one process: each gets a [`LocalTransport`] from
/// [`transport`](Self::transport) and, once started, is [`register`](Self::register)ed so that
/// messages reach it. Delivery is immediate and in order per sender; the fault controls drop
/// messages (raft copes with loss, not with corruption or duplication, which are not simulated).
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
    /// Directed links `(from, to)` that drop every message.
    cut_links: HashSet<(u64, u64)>,
    /// Nodes whose messages, in and out, are dropped.
    isolated: HashSet<u64>,
    delivered: u64,
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
        let handle = handle.clone();
        let inbox: Inbox = Box::new(move |messages| handle.step(messages));
        self.lock().inboxes.insert(node_id, inbox);
    }

    /// Stops delivering to `node_id` (its messages are dropped as if it were down).
    pub fn unregister(&self, node_id: u64) {
        self.lock().inboxes.remove(&node_id);
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
            let blocked = state.cut_links.contains(&(self.node_id, to))
                || state.isolated.contains(&self.node_id)
                || state.isolated.contains(&to);
            match state.inboxes.get(&to) {
                Some(inbox) if !blocked => {
                    inbox(batch);
                    state.delivered += count;
                }
                _ => state.dropped += count,
            }
        }
    }
}
