//! [`Coordinator`]: a `pulsed coordinator` process — one replica of the coordinator raft group
//! (its [`MetadataStateMachine`] holds nodes and shard placements), the `NodeRegistry` service
//! storage nodes register and heartbeat with, and the soft state the leader learns from
//! heartbeats (liveness, shard leaders, applied indexes).
//!
//! Placement: once `replication_factor` nodes are up and no shard exists, the leader proposes
//! the `initial_shards` shards with replicas on distinct nodes and leaders spread evenly
//! ([`initial_placement`]); nodes learn theirs from the heartbeat answers and create the raft
//! groups. Only the leader answers heartbeats; the others say who leads, so nodes move on.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use pulse_proto::internal::v1::node_registry_server::NodeRegistry;
use pulse_proto::internal::v1::{
    ClusterMetadata, CreateShardsCommand, DrainNodeCommand, HeartbeatRequest, HeartbeatResponse,
    RegisterNodeCommand, RegisterRequest, RegisterResponse, RemoveNodeCommand, ReplicaStatus,
    metadata_command,
};
use pulse_proto::v1;
use pulse_raft::{ProposeError, RuntimeHandle, ShardRole};
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use super::metadata::{
    METADATA_GROUP_ID, MetadataOutput, MetadataView, encode_command, holds_replicas, initial_placement,
};
use super::scheduler::{Observation, ShardReport};

/// Response metadata naming the coordinator leader's address when this one is not it.
pub const COORDINATOR_LEADER_HEADER: &str = "x-pulse-coordinator-leader";

/// Settings of the coordinator role.
#[derive(Debug, Clone)]
pub struct CoordinatorSettings {
    /// This coordinator's raft id (1-based position in `peers`).
    pub coordinator_id: u64,
    /// Every coordinator's address, in raft id order (id = position + 1).
    pub peers: Vec<String>,
    /// Replicas per shard.
    pub replication_factor: u64,
    /// Shards of a new cluster.
    pub initial_shards: u64,
    /// Deadline of a metadata proposal.
    pub propose_timeout: Duration,
    /// A node silent for this long is DOWN.
    pub node_down_after: Duration,
}

/// What the leader knows of a node from its heartbeats.
#[derive(Debug, Clone)]
struct NodeLiveness {
    last_seen: Instant,
    replicas: Vec<ReplicaStatus>,
}

/// A coordinator replica: metadata, registry, soft state. Cheap to clone.
#[derive(Clone)]
pub struct Coordinator {
    runtime: RuntimeHandle<MetadataOutput>,
    metadata: MetadataView,
    settings: Arc<CoordinatorSettings>,
    liveness: Arc<Mutex<HashMap<u64, NodeLiveness>>>,
    /// When this replica last became leader (term, instant): liveness learned before that is
    /// stale, since only the leader hears heartbeats.
    leadership: Arc<Mutex<(u64, Instant)>>,
    /// Held while shards are being created, so concurrent heartbeats propose it once.
    creating: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Coordinator {
    /// A coordinator over a running metadata group.
    pub fn new(
        runtime: RuntimeHandle<MetadataOutput>,
        metadata: MetadataView,
        settings: CoordinatorSettings,
    ) -> Self {
        Self {
            runtime,
            metadata,
            settings: Arc::new(settings),
            liveness: Arc::default(),
            leadership: Arc::new(Mutex::new((0, Instant::now()))),
            creating: Arc::default(),
        }
    }

    /// The metadata as last written.
    pub fn metadata(&self) -> Arc<ClusterMetadata> {
        self.metadata.current()
    }

    /// The raft runtime of the metadata group.
    pub fn runtime(&self) -> &RuntimeHandle<MetadataOutput> {
        &self.runtime
    }

    /// Whether this replica leads the coordinator group now.
    pub async fn is_leader(&self) -> bool {
        let Ok(status) = self.runtime.shard_status(METADATA_GROUP_ID).await else { return false };
        if status.role != ShardRole::Leader {
            return false;
        }
        let mut leadership = self.leadership.lock().unwrap_or_else(PoisonError::into_inner);
        if leadership.0 != status.term {
            *leadership = (status.term, Instant::now());
        }
        true
    }

    /// Since when this replica leads (or last led): heartbeats are heard only since then.
    fn leading_since(&self) -> Instant {
        self.leadership.lock().unwrap_or_else(PoisonError::into_inner).1
    }

    /// `UNAVAILABLE` naming the leader's address (when known) for a call only the leader takes.
    async fn not_leader(&self) -> Status {
        let leader = self.runtime.shard_status(METADATA_GROUP_ID).await.ok().and_then(|s| s.leader_id);
        self.not_leader_status(leader)
    }

    fn not_leader_status(&self, leader: Option<u64>) -> Status {
        let address = leader
            .and_then(|id| usize::try_from(id).ok())
            .and_then(|id| self.settings.peers.get(id.wrapping_sub(1)))
            .cloned();
        let mut status = Status::unavailable(match &address {
            Some(address) => format!("not the coordinator leader; the leader is {address}"),
            None => "not the coordinator leader; no leader is known yet".to_owned(),
        });
        if let Some(value) = address.and_then(|a| a.parse().ok()) {
            status.metadata_mut().insert(COORDINATOR_LEADER_HEADER, value);
        }
        status
    }

    /// Replicas per shard.
    pub fn replication_factor(&self) -> usize {
        usize::try_from(self.settings.replication_factor).unwrap_or(usize::MAX)
    }

    /// Proposes a metadata command (leader only) and answers its output once applied.
    pub(super) async fn propose_metadata(
        &self,
        command: metadata_command::Command,
    ) -> Result<MetadataOutput, Status> {
        self.propose(command).await
    }

    /// Whether every node counted live has heartbeated since this coordinator became leader: a
    /// new leader schedules nothing before it has heard the whole cluster (or the down timeout
    /// has passed for the silent nodes).
    pub(super) fn has_full_view(&self) -> bool {
        let metadata = self.metadata();
        let live = self.live_nodes(&metadata);
        let since = self.leading_since();
        let liveness = self.liveness.lock().unwrap_or_else(PoisonError::into_inner);
        live.iter().all(|node_id| liveness.get(node_id).is_some_and(|seen| seen.last_seen >= since))
    }

    /// What the live nodes last reported: per shard its leader's view of the raft group, and
    /// every replica's applied index (the scheduler's input).
    pub(super) fn observe(&self) -> Observation {
        let metadata = self.metadata();
        let live: BTreeSet<u64> = self.live_nodes(&metadata).into_iter().collect();
        let liveness = self.liveness.lock().unwrap_or_else(PoisonError::into_inner);
        let mut observation = Observation { live, ..Observation::default() };
        let mut terms: HashMap<u64, u64> = HashMap::new();
        for (&node_id, seen) in liveness.iter().filter(|(id, _)| observation.live.contains(id)) {
            for replica in &seen.replicas {
                observation.applied.insert((node_id, replica.shard_id), replica.applied_index);
                if !replica.leader || terms.get(&replica.shard_id).is_some_and(|&term| term > replica.term) {
                    continue;
                }
                terms.insert(replica.shard_id, replica.term);
                observation.shards.insert(
                    replica.shard_id,
                    ShardReport {
                        leader: node_id,
                        voters: replica.voter_ids.clone(),
                        learners: replica.learner_ids.clone(),
                        commit_index: replica.commit_index,
                    },
                );
            }
        }
        observation
    }

    async fn propose(&self, command: metadata_command::Command) -> Result<MetadataOutput, Status> {
        let deadline = Instant::now() + self.settings.propose_timeout;
        match self.runtime.propose(METADATA_GROUP_ID, encode_command(command), deadline).await {
            Ok(MetadataOutput::Rejected(reason)) => Err(Status::internal(reason)),
            Ok(output) => Ok(output),
            Err(ProposeError::NotLeader { leader_hint, .. }) => Err(self.not_leader_status(leader_hint)),
            Err(error) => Err(Status::unavailable(error.to_string())),
        }
    }

    /// Node ids that heartbeated within the down timeout. A node not heard since this replica
    /// became leader counts as up until the timeout has passed once since then: a new leader
    /// knows nothing of liveness, and must not take every node for down.
    fn live_nodes(&self, metadata: &ClusterMetadata) -> Vec<u64> {
        let now = Instant::now();
        let in_grace = now.duration_since(self.leading_since()) < self.settings.node_down_after;
        let liveness = self.liveness.lock().unwrap_or_else(PoisonError::into_inner);
        metadata
            .nodes
            .iter()
            .filter(|node| {
                in_grace
                    || liveness.get(&node.node_id).is_some_and(|seen| {
                        now.duration_since(seen.last_seen) < self.settings.node_down_after
                    })
            })
            .map(|node| node.node_id)
            .collect()
    }

    /// NOT_FOUND unless `node_id` is a registered node.
    fn known_node(&self, node_id: u64) -> Result<(), Status> {
        if self.metadata().nodes.iter().any(|n| n.node_id == node_id) {
            Ok(())
        } else {
            Err(Status::not_found(format!("node_id {node_id} is not a node of this cluster")))
        }
    }

    /// Creates the shards once enough nodes heartbeat (leader only; idempotent).
    async fn maybe_create_shards(&self) -> Result<(), Status> {
        if !self.metadata().shards.is_empty() {
            return Ok(());
        }
        let _creating = self.creating.lock().await;
        let metadata = self.metadata();
        if !metadata.shards.is_empty() {
            return Ok(());
        }
        let heard: Vec<u64> = {
            let liveness = self.liveness.lock().unwrap_or_else(PoisonError::into_inner);
            liveness.keys().copied().collect()
        };
        let live: Vec<u64> = self.live_nodes(&metadata).into_iter().filter(|id| heard.contains(id)).collect();
        if (live.len() as u64) < self.settings.replication_factor {
            return Ok(());
        }
        let nodes: Vec<_> = metadata.nodes.iter().filter(|n| live.contains(&n.node_id)).cloned().collect();
        let shards =
            initial_placement(&nodes, self.settings.initial_shards, self.settings.replication_factor);
        let count = shards.len();
        let command = metadata_command::Command::CreateShards(CreateShardsCommand { shards });
        if self.propose(command).await? == MetadataOutput::ShardsCreated(true) {
            info!(shards = count, nodes = nodes.len(), "created the initial shards");
        }
        Ok(())
    }

    /// The cluster as this coordinator sees it: the metadata with liveness and the leaders
    /// and applied indexes of the newest heartbeats.
    pub fn cluster_state(&self) -> v1::ClusterState {
        let metadata = self.metadata();
        let live = self.live_nodes(&metadata);
        let liveness = self.liveness.lock().unwrap_or_else(PoisonError::into_inner).clone();
        // Per shard: (term, leader node, applied index) of the newest leader report.
        let mut leaders: HashMap<u64, (u64, u64, u64)> = HashMap::new();
        for (&node_id, seen) in &liveness {
            if !live.contains(&node_id) {
                continue;
            }
            for replica in seen.replicas.iter().filter(|r| r.leader) {
                let entry = leaders.entry(replica.shard_id).or_insert((0, 0, 0));
                if replica.term >= entry.0 {
                    *entry = (replica.term, node_id, replica.applied_index);
                }
            }
        }
        let shards: Vec<v1::ShardInfo> = metadata
            .shards
            .iter()
            .map(|shard| {
                let (_, leader, applied_index) = leaders.get(&shard.shard_id).copied().unwrap_or_default();
                let mut replicas: Vec<u64> =
                    shard.replicas.iter().filter(|r| !r.learner).map(|r| r.node_id).collect();
                replicas.sort_unstable();
                let mut learners: Vec<u64> =
                    shard.replicas.iter().filter(|r| r.learner).map(|r| r.node_id).collect();
                learners.sort_unstable();
                v1::ShardInfo {
                    shard_id: shard.shard_id,
                    start_hash: shard.start_hash,
                    end_hash: shard.end_hash,
                    replicas,
                    leader,
                    applied_index,
                    learners,
                    conf_ver: shard.conf_ver,
                    version: shard.version,
                }
            })
            .collect();
        let mut nodes: Vec<v1::NodeInfo> = metadata
            .nodes
            .iter()
            .map(|node| {
                let replica_count = shards
                    .iter()
                    .filter(|s| s.replicas.contains(&node.node_id) || s.learners.contains(&node.node_id))
                    .count();
                let leader_count = shards.iter().filter(|s| s.leader == node.node_id).count();
                let state = if !live.contains(&node.node_id) {
                    v1::NodeState::Down
                } else if node.draining && holds_replicas(&metadata, node.node_id) {
                    v1::NodeState::Draining
                } else if node.draining {
                    v1::NodeState::Drained
                } else {
                    v1::NodeState::Up
                };
                v1::NodeInfo {
                    node_id: node.node_id,
                    address: node.address.clone(),
                    state: state as i32,
                    replica_count: u32::try_from(replica_count).unwrap_or(u32::MAX),
                    leader_count: u32::try_from(leader_count).unwrap_or(u32::MAX),
                }
            })
            .collect();
        nodes.sort_by_key(|n| n.node_id);
        v1::ClusterState { nodes, shards }
    }
}

#[tonic::async_trait]
impl NodeRegistry for Coordinator {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let request = request.into_inner();
        if request.store_id.len() != 16 {
            return Err(Status::invalid_argument(format!(
                "store_id must be 16 bytes, got {}",
                request.store_id.len()
            )));
        }
        if request.address.is_empty() {
            return Err(Status::invalid_argument("address must not be empty"));
        }
        let cluster_id = self.metadata().cluster_id;
        if request.cluster_id != 0 && cluster_id != 0 && request.cluster_id != cluster_id {
            return Err(Status::failed_precondition(format!(
                "cluster_id {} is not this cluster's ({cluster_id}): the node's data directory belongs to another cluster",
                request.cluster_id
            )));
        }
        let command = metadata_command::Command::RegisterNode(RegisterNodeCommand {
            store_id: request.store_id,
            address: request.address.clone(),
            new_cluster_id: rand::random::<u64>().max(1),
        });
        let MetadataOutput::NodeRegistered { node_id, cluster_id } = self.propose(command).await? else {
            return Err(Status::internal("registration applied as something else"));
        };
        if request.node_id != 0 && request.node_id != node_id {
            warn!(claimed = request.node_id, node_id, "node re-registered with another id than it had");
        }
        info!(node_id, address = %request.address, "node registered");
        let leader_address = self.settings.peers.get(self.settings.coordinator_id as usize - 1).cloned();
        Ok(Response::new(RegisterResponse {
            node_id,
            cluster_id,
            coordinators: self.settings.peers.clone(),
            leader_address: leader_address.unwrap_or_default(),
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        if !self.is_leader().await {
            return Err(self.not_leader().await);
        }
        let request = request.into_inner();
        let metadata = self.metadata();
        if !metadata.nodes.iter().any(|n| n.node_id == request.node_id) {
            return Err(Status::not_found(format!(
                "node {} is not registered: register first",
                request.node_id
            )));
        }
        self.liveness
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(request.node_id, NodeLiveness { last_seen: Instant::now(), replicas: request.replicas });
        self.maybe_create_shards().await?;
        let metadata = self.metadata();
        let shards = metadata
            .shards
            .iter()
            .filter(|s| s.replicas.iter().any(|r| r.node_id == request.node_id))
            .cloned()
            .collect();
        Ok(Response::new(HeartbeatResponse {
            metadata_version: metadata.version,
            shards,
            leader_address: self
                .settings
                .peers
                .get(self.settings.coordinator_id as usize - 1)
                .cloned()
                .unwrap_or_default(),
            cluster: Some(self.cluster_state()),
        }))
    }

    async fn drain_node(
        &self,
        request: Request<v1::DrainNodeRequest>,
    ) -> Result<Response<v1::NodeInfo>, Status> {
        if !self.is_leader().await {
            return Err(self.not_leader().await);
        }
        let node_id = request.into_inner().node_id;
        self.known_node(node_id)?;
        self.propose(metadata_command::Command::DrainNode(DrainNodeCommand { node_id })).await?;
        info!(node_id, "node draining");
        let node = self.cluster_state().nodes.into_iter().find(|n| n.node_id == node_id);
        node.map(Response::new)
            .ok_or_else(|| Status::not_found(format!("node_id {node_id} was removed meanwhile")))
    }

    async fn remove_node(
        &self,
        request: Request<v1::RemoveNodeRequest>,
    ) -> Result<Response<v1::RemoveNodeResponse>, Status> {
        if !self.is_leader().await {
            return Err(self.not_leader().await);
        }
        let node_id = request.into_inner().node_id;
        self.known_node(node_id)?;
        let metadata = self.metadata();
        let down = !self.live_nodes(&metadata).contains(&node_id);
        if holds_replicas(&metadata, node_id) && !down {
            let replicas =
                metadata.shards.iter().filter(|s| s.replicas.iter().any(|r| r.node_id == node_id)).count();
            return Err(Status::failed_precondition(format!(
                "node_id {node_id} still holds {replicas} replicas and is up: drain it first (DrainNode)"
            )));
        }
        self.propose(metadata_command::Command::RemoveNode(RemoveNodeCommand { node_id })).await?;
        info!(node_id, down, "node removed (a down node's replicas are re-created elsewhere first)");
        Ok(Response::new(v1::RemoveNodeResponse {}))
    }
}
