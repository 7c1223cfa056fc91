//! The cluster roles (DESIGN.md section 2): coordinators keep the metadata in their own raft
//! group, storage nodes host shard replicas replicated with raft across processes, and every
//! process's gateway answers any request by routing it to the shards' leaders.
//!
//! ```text
//!  pulsed node ──Register/Heartbeat──► pulsed coordinator (NodeRegistry, metadata raft group)
//!       ▲  │                                   │ answers: route table + this node's placements
//!       │  └── hosts replicas; raft messages ──┼──► other nodes (RaftTransport, gRPC streams)
//!  client ──► any process: RoutingGateway ── x-pulse-shards ──► the shard leader's gateway
//! ```
//!
//! ## Layout
//! - `metadata`: [`MetadataStateMachine`] — nodes and shard placements, changed by raft entries.
//! - `coordinator`: [`Coordinator`] — the `NodeRegistry` service, liveness and leaders learned
//!   from heartbeats, the initial placement.
//! - `node`: [`StorageNode`] — identity, registration, heartbeats, hosting replicas.
//! - `router`: [`Router`] — the route table and the leader-finding retry loop.
//! - `routing_gateway`: [`RoutingGateway`] — `ActivityService` split by shard and merged.
//! - `cluster_watch`: `WatchTransitions` as one watch per shard on its leader, merged, re-opened
//!   from the shard's cursor when a leader changes.
//! - `cluster_gateway`: [`ClusterServiceGateway`] — `ClusterService`.
//! - `scheduler`: [`Scheduler`] — the coordinator leader's replica moves (scale out, drain,
//!   node loss, balance) and leader balance.
//! - `shard_admin`: [`ShardAdminService`] (nodes) and [`ClusterShards`] — the scoring config,
//!   model fits and RFM edges of every shard, administered through the shards' leaders; replica
//!   membership changes on a shard's leader ([`change_replicas`]).
//! - `serve`: [`run_coordinator`], [`run_node`] — start, serve, stop.

mod cluster_gateway;
mod cluster_watch;
mod coordinator;
mod metadata;
mod node;
mod router;
mod routing_gateway;
mod scheduler;
mod serve;
mod shard_admin;

pub use cluster_gateway::ClusterServiceGateway;
pub use coordinator::{COORDINATOR_LEADER_HEADER, Coordinator, CoordinatorSettings};
pub use metadata::{
    METADATA_GROUP_ID, MetadataOutput, MetadataStateMachine, MetadataView, initial_placement,
};
pub use node::StorageNode;
pub use router::{LEADER_HINT_HEADER, Router, SHARDS_HEADER, Target};
pub use routing_gateway::{LocalReplicas, RoutingGateway};
pub use scheduler::Scheduler;
pub use serve::{run_coordinator, run_node};
pub use shard_admin::{ClusterShards, ShardAdminService, change_replicas};

/// The raft transport between cluster processes (gRPC streams, see pulse-node).
pub type Transport = pulse_node::GrpcTransport;

/// A raft transport for raft id `node_id` on the current tokio runtime.
fn new_transport(node_id: u64) -> crate::Result<Transport> {
    pulse_node::GrpcTransport::new(
        node_id,
        tokio::runtime::Handle::current(),
        pulse_node::GrpcTransportConfig::default(),
    )
    .map_err(|e| crate::ServerError::InvalidConfig { field: "transport", reason: e.to_string() })
}

/// Points `transport` at `address` for `node_id`; a malformed address is logged, not fatal
/// (the peer stays unreachable until a valid one arrives).
fn set_peer_address(transport: &Transport, node_id: u64, address: &str) {
    if let Err(error) = transport.set_peer_address(node_id, address) {
        tracing::warn!(node_id, address, %error, "ignoring a peer address");
    }
}

/// The receiving side of the raft transport for `runtime`, to serve; its streams end when
/// `shutdown` becomes true (they would hold a graceful shutdown forever).
fn raft_transport_server<O: Send + 'static>(
    runtime: pulse_raft::RuntimeHandle<O>,
    node_id: u64,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> pulse_proto::internal::v1::raft_transport_server::RaftTransportServer<pulse_node::RaftTransportService<O>>
{
    pulse_node::RaftTransportService::new(node_id, runtime).with_shutdown(shutdown).into_server()
}
