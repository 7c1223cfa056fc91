//! [`StorageNode`]: a `pulsed node` process — shard replicas on one RocksDB, registered with
//! the coordinator.
//!
//! ## Lifecycle
//! 1. Open RocksDB and the node's identity (a random `store_id` made at the first start, the
//!    node and cluster ids the coordinator gave) and the replicas it hosted before.
//! 2. Register with a coordinator of `--join` (until one answers); the node id is the raft id
//!    of every replica here. A node that registered before starts its replicas first, so it
//!    serves even while the coordinators are unreachable.
//! 3. Start the raft runtime with the gRPC transport, and every replica hosted before.
//! 4. Heartbeat every `heartbeat_interval_ms`: report replica status; the answer carries the
//!    route table (nodes with addresses, shard leaders) and this node's shard placements —
//!    replicas not hosted yet are created (and the preferred leader campaigns), the replica lists
//!    of hosted ones are kept up to date (replica moves change them).
//! 5. Tick and retention loops propose where this node leads.
//!
//! ## Replica moves
//! A replica moved here is listed as a *learner* of its shard: it is hosted uninitialized
//! (`join_shard`) and waits for the leader's snapshot, which follows once the coordinator has the
//! leader add it to the group. A replica moved away is garbage-collected: once the coordinator
//! leader's cluster state lists the shard without this node (neither voter nor learner — the
//! group already removed it), the replica stops being served, the runtime deletes its raft
//! records and data, and it leaves the hosted list.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use prost::Message;
use pulse_node::{NodeStateMachine, ShardConfig, ShardOpener, ShardRange};
use pulse_proto::internal::v1::node_registry_client::NodeRegistryClient;
use pulse_proto::internal::v1::{
    HeartbeatRequest, HostedShards, NodeIdentity, RegisterRequest, ReplicaStatus, ShardDescriptor,
};
use pulse_proto::v1;
use pulse_raft::{RaftRuntime, RuntimeHandle, ShardRole};
use pulse_storage::{ColumnFamily, RocksEngine, StorageEngine, WriteBatch, WriteOptions};
use tokio::sync::watch;
use tonic::transport::{Channel, Endpoint};
use tracing::{debug, info, warn};

use super::router::Router;
use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::error::{Result, ServerError};
use crate::local_shards::LocalShards;

/// `meta` key of the node's identity (under the node-level shard id 0).
const IDENTITY_KEY: &[u8] = b"\x00\x00\x00\x00\x00\x00\x00\x00\x11";
/// `meta` key of the replicas the node hosts.
const HOSTED_KEY: &[u8] = b"\x00\x00\x00\x00\x00\x00\x00\x00\x12";
/// Pause between two rounds of registration attempts over every coordinator.
const REGISTER_RETRY: Duration = Duration::from_millis(500);

/// A running storage node.
#[derive(Debug, Clone)]
pub struct StorageNode {
    node_id: u64,
    engine: RocksEngine,
    runtime: RuntimeHandle<pulse_node::ApplyOutput>,
    opener: ShardOpener<RocksEngine>,
    shards: Arc<RwLock<LocalShards>>,
    hosted: Arc<tokio::sync::Mutex<HostedShards>>,
    router: Arc<Router>,
    transport: crate::cluster::Transport,
    coordinators: Arc<Vec<String>>,
    /// New shards whose preferred leader is another node: if this replica is elected, it hands
    /// leadership over once, so leaders end up spread as placed.
    handovers: Arc<Mutex<HashMap<u64, u64>>>,
}

impl StorageNode {
    /// Opens storage, registers, starts raft and the replicas hosted before.
    pub async fn start(config: &ServerConfig, clock: Clock, shutdown: watch::Receiver<bool>) -> Result<Self> {
        let engine = RocksEngine::open(&config.data_dir)?;
        let mut identity = load_identity(&engine)?;
        let coordinators = Arc::new(config.join.clone());
        let address = config.advertised_address().to_owned();
        if identity.node_id == 0 {
            let registered = register(&coordinators, &identity, &address, shutdown.clone()).await?;
            identity.node_id = registered.node_id;
            identity.cluster_id = registered.cluster_id;
            store(&engine, IDENTITY_KEY, &identity.encode_to_vec())?;
        } else {
            // Known already: refresh the address in the background, serve meanwhile.
            let (coordinators, identity, address, shutdown) =
                (coordinators.clone(), identity.clone(), address.clone(), shutdown.clone());
            tokio::spawn(async move {
                if let Err(error) = register(&coordinators, &identity, &address, shutdown).await {
                    warn!(%error, "re-registration failed");
                }
            });
        }
        let node_id = identity.node_id;
        info!(node_id, cluster_id = identity.cluster_id, %address, "storage node registered");

        let hosted = load_hosted(&engine)?;
        let mut machine = NodeStateMachine::new(engine.clone());
        let (applied, applied_changes) = watch::channel(0u64);
        machine.on_applied(move |_, _| applied.send_modify(|rounds| *rounds = rounds.wrapping_add(1)));
        let opener = machine.opener();
        let transport = super::new_transport(node_id)?;
        let runtime = RaftRuntime::start(node_id, config.raft(), engine.clone(), machine, transport.clone())?;
        // Raft must hear how every snapshot it sent went, or that follower stalls.
        transport.report_snapshots_to(&runtime);
        let router = Arc::new(Router::new(Some(node_id)));
        let shards = LocalShards::new(
            runtime.clone(),
            Vec::new(),
            clock,
            Duration::from_millis(config.propose_timeout_ms),
        )
        .with_applied_changes(applied_changes);
        let node = Self {
            node_id,
            engine,
            runtime,
            opener,
            shards: Arc::new(RwLock::new(shards)),
            hosted: Arc::new(tokio::sync::Mutex::new(HostedShards::default())),
            router,
            transport,
            coordinators,
            handovers: Arc::default(),
        };
        for shard in hosted.shards {
            node.host(shard, false).await?;
        }
        Ok(node)
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// The replicas hosted now (shared with the gateway).
    pub fn shards(&self) -> Arc<RwLock<LocalShards>> {
        self.shards.clone()
    }

    /// The gateway's route table.
    pub fn router(&self) -> Arc<Router> {
        self.router.clone()
    }

    /// The raft runtime.
    pub fn runtime(&self) -> &RuntimeHandle<pulse_node::ApplyOutput> {
        &self.runtime
    }

    /// The raft transport (its receiving side is served with the public API).
    pub fn transport(&self) -> &crate::cluster::Transport {
        &self.transport
    }

    /// Hosts a replica of `shard` (recovered from disk or created), remembers it, and makes
    /// this node campaign if it is the preferred leader of a new shard.
    async fn host(&self, shard: ShardDescriptor, new: bool) -> Result<()> {
        let mut hosted = self.hosted.lock().await;
        if hosted.shards.iter().any(|s| s.shard_id == shard.shard_id) {
            return Ok(());
        }
        for replica in &shard.replicas {
            if replica.node_id != self.node_id {
                super::set_peer_address(&self.transport, replica.node_id, &replica.address);
            }
        }
        let config = ShardConfig {
            shard_id: shard.shard_id,
            range: ShardRange { start_hash: shard.start_hash, end_hash: shard.end_hash },
        };
        let reader = self.opener.open(config)?;
        let voters: Vec<u64> = shard.replicas.iter().filter(|r| !r.learner).map(|r| r.node_id).collect();
        // Only a new shard's initial voters bootstrap its membership. A replica moved here (a
        // learner, or not among the voters) joins empty and starts from the leader's snapshot.
        // At restart (`!new`) a replica hosted before is recovered from its stored membership:
        // bootstrapping stores it (fsynced) before the replica is listed as hosted. One found
        // without any was removed just before a crash: it stays empty, never campaigns, and the
        // next heartbeat garbage-collects it again.
        let bootstrap = new && voters.contains(&self.node_id);
        if bootstrap {
            self.runtime.add_shard(shard.shard_id, voters).await?;
        } else {
            self.runtime.join_shard(shard.shard_id).await?;
        }
        {
            let mut shards = self.shards.write().unwrap_or_else(PoisonError::into_inner);
            *shards = shards.with_shard(reader);
        }
        hosted.shards.push(shard.clone());
        hosted.shards.sort_by_key(|s| s.start_hash);
        store(&self.engine, HOSTED_KEY, &hosted.encode_to_vec())?;
        // A recovered or moved replica neither campaigns nor hands leadership over.
        if bootstrap && shard.preferred_leader == self.node_id {
            // Every replica of a new shard may time out and campaign; the preferred leader
            // starts first, and a replica elected anyway hands over (see `heartbeat`).
            if let Err(error) = self.runtime.campaign(shard.shard_id).await {
                warn!(shard_id = shard.shard_id, %error, "campaign of a new shard failed; an election will follow");
            }
        } else if bootstrap && shard.preferred_leader != 0 {
            self.handovers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(shard.shard_id, shard.preferred_leader);
        }
        info!(shard_id = shard.shard_id, new, bootstrap, "hosting a shard replica");
        Ok(())
    }

    /// Takes the coordinator's current descriptor of a shard hosted here (its replicas change
    /// with moves): points the transport at its replicas and persists it if it changed.
    async fn refresh(&self, shard: ShardDescriptor) -> Result<()> {
        let mut hosted = self.hosted.lock().await;
        let Some(known) = hosted.shards.iter_mut().find(|s| s.shard_id == shard.shard_id) else {
            return Ok(());
        };
        if *known == shard {
            return Ok(());
        }
        for replica in &shard.replicas {
            if replica.node_id != self.node_id {
                super::set_peer_address(&self.transport, replica.node_id, &replica.address);
            }
        }
        let replicas: Vec<(u64, bool)> = shard.replicas.iter().map(|r| (r.node_id, r.learner)).collect();
        info!(shard_id = shard.shard_id, ?replicas, "shard placement changed");
        *known = shard;
        store(&self.engine, HOSTED_KEY, &hosted.encode_to_vec())?;
        Ok(())
    }

    /// Stops hosting the replica of `shard_id` (moved away; see "Replica moves"): it stops
    /// being served, the runtime deletes its raft records and data, and it leaves the hosted
    /// list. If the runtime cannot remove it, it stays listed and the next heartbeat retries.
    async fn unhost(&self, shard_id: u64) -> Result<()> {
        let mut hosted = self.hosted.lock().await;
        if !hosted.shards.iter().any(|s| s.shard_id == shard_id) {
            return Ok(());
        }
        {
            let mut shards = self.shards.write().unwrap_or_else(PoisonError::into_inner);
            *shards = shards.without_shard(shard_id);
        }
        self.handovers.lock().unwrap_or_else(PoisonError::into_inner).remove(&shard_id);
        match self.runtime.remove_shard(shard_id).await {
            Ok(()) | Err(pulse_raft::RaftError::UnknownShard { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        hosted.shards.retain(|s| s.shard_id != shard_id);
        store(&self.engine, HOSTED_KEY, &hosted.encode_to_vec())?;
        info!(shard_id, "removed a shard replica moved to other nodes");
        Ok(())
    }

    /// One heartbeat to the first coordinator that answers as leader; applies the answer.
    async fn heartbeat(&self, client: &mut CoordinatorClient) -> Result<()> {
        let hosted: Vec<u64> = self.hosted.lock().await.shards.iter().map(|s| s.shard_id).collect();
        let mut replicas = Vec::with_capacity(hosted.len());
        for shard_id in hosted {
            if let Ok(status) = self.runtime.shard_status(shard_id).await {
                self.hand_over_if_placed_elsewhere(&status).await;
                replicas.push(ReplicaStatus {
                    shard_id,
                    leader: status.role == ShardRole::Leader,
                    learner: status.learners.contains(&self.node_id),
                    term: status.term,
                    commit_index: status.commit_index,
                    applied_index: status.applied_index,
                    voter_ids: sorted(status.voters.clone()),
                    learner_ids: sorted(status.learners.clone()),
                    ..ReplicaStatus::default()
                });
            }
        }
        let request = HeartbeatRequest {
            node_id: self.node_id,
            now_ms: Clock::Wall.now_ms(),
            replicas,
            ..HeartbeatRequest::default()
        };
        // Only the coordinator leader answers: its state is the one to follow.
        let response = client.heartbeat(&self.coordinators, request).await?;
        let moved_away = match &response.cluster {
            Some(cluster) => self.moved_away(cluster, &response.shards).await,
            None => Vec::new(),
        };
        if let Some(cluster) = response.cluster {
            for node in &cluster.nodes {
                if node.node_id != self.node_id {
                    super::set_peer_address(&self.transport, node.node_id, &node.address);
                }
            }
            self.router.update(cluster);
        }
        for shard in response.shards {
            self.refresh(shard.clone()).await?;
            self.host(shard, true).await?;
        }
        for shard_id in moved_away {
            if let Err(error) = self.unhost(shard_id).await {
                warn!(shard_id, %error, "removing a moved replica failed; retrying at the next heartbeat");
            }
        }
        Ok(())
    }

    /// The hosted shards moved away from this node (see [`moved_away`]).
    async fn moved_away(&self, cluster: &v1::ClusterState, placements: &[ShardDescriptor]) -> Vec<u64> {
        let hosted = self.hosted.lock().await;
        moved_away(self.node_id, &hosted.shards, cluster, placements)
    }

    /// For a new shard whose preferred leader is another node: once a leader is known, this
    /// replica (if it is that leader) transfers leadership to the preferred one, once.
    async fn hand_over_if_placed_elsewhere(&self, status: &pulse_raft::ShardStatus) {
        let preferred = {
            let handovers = self.handovers.lock().unwrap_or_else(PoisonError::into_inner);
            match handovers.get(&status.shard_id) {
                Some(&preferred) => preferred,
                None => return,
            }
        };
        let Some(leader) = status.leader_id else { return };
        self.handovers.lock().unwrap_or_else(PoisonError::into_inner).remove(&status.shard_id);
        if leader == self.node_id && status.role == ShardRole::Leader {
            match self.runtime.transfer_leader(status.shard_id, preferred).await {
                Ok(()) => info!(
                    shard_id = status.shard_id,
                    to = preferred,
                    "handing leadership to the preferred leader"
                ),
                Err(error) => warn!(shard_id = status.shard_id, %error, "leader handover failed"),
            }
        }
    }

    /// Heartbeats until `shutdown` becomes true.
    pub async fn heartbeat_loop(self, interval: Duration, mut shutdown: watch::Receiver<bool>) {
        let mut client = CoordinatorClient::default();
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.changed() => return,
            }
            if let Err(error) = self.heartbeat(&mut client).await {
                debug!(%error, "heartbeat failed");
            }
        }
    }
}

/// Calls the coordinators of `--join`, sticking to the one that answered last.
#[derive(Debug, Default)]
struct CoordinatorClient {
    current: usize,
    clients: Vec<Option<NodeRegistryClient<Channel>>>,
}

impl CoordinatorClient {
    async fn heartbeat(
        &mut self,
        coordinators: &[String],
        request: HeartbeatRequest,
    ) -> Result<pulse_proto::internal::v1::HeartbeatResponse> {
        if self.clients.len() != coordinators.len() {
            self.clients = vec![None; coordinators.len()];
        }
        let mut last = None;
        for attempt in 0..coordinators.len() {
            let position = (self.current + attempt) % coordinators.len();
            let client =
                self.clients[position].get_or_insert_with(|| registry_client(&coordinators[position]));
            match client.heartbeat(request.clone()).await {
                Ok(response) => {
                    self.current = position;
                    return Ok(response.into_inner());
                }
                Err(status) => last = Some(status),
            }
        }
        Err(ServerError::Coordinator(
            last.map_or_else(|| "no coordinator configured".to_owned(), |s| s.to_string()),
        ))
    }
}

fn registry_client(address: &str) -> NodeRegistryClient<Channel> {
    let channel = Endpoint::from_shared(format!("http://{address}"))
        .expect("HOST:PORT makes a valid URI")
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(5))
        .connect_lazy();
    NodeRegistryClient::new(channel)
}

/// Registers with the first coordinator that accepts, retrying every coordinator until one
/// does or `shutdown` becomes true.
async fn register(
    coordinators: &[String],
    identity: &NodeIdentity,
    address: &str,
    mut shutdown: watch::Receiver<bool>,
) -> Result<pulse_proto::internal::v1::RegisterResponse> {
    if coordinators.is_empty() {
        return Err(ServerError::InvalidConfig {
            field: "join",
            reason: "a node needs --join COORDINATOR".into(),
        });
    }
    let request = RegisterRequest {
        store_id: identity.store_id.clone(),
        address: address.to_owned(),
        node_id: identity.node_id,
        cluster_id: identity.cluster_id,
    };
    loop {
        for coordinator in coordinators {
            match registry_client(coordinator).register(request.clone()).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) if status.code() == tonic::Code::FailedPrecondition => {
                    return Err(ServerError::Coordinator(status.message().to_owned()));
                }
                Err(status) => debug!(%coordinator, %status, "registration attempt failed"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(REGISTER_RETRY) => {}
            _ = shutdown.changed() => return Err(ServerError::Coordinator("shut down before registering".into())),
        }
    }
}

/// The node's identity, made (random `store_id`) and stored on the first start.
fn load_identity(engine: &RocksEngine) -> Result<NodeIdentity> {
    if let Some(raw) = engine.get(ColumnFamily::Meta, IDENTITY_KEY)? {
        return NodeIdentity::decode(raw.as_slice())
            .map_err(|e| ServerError::Coordinator(format!("corrupt node identity: {e}")));
    }
    let identity = NodeIdentity { store_id: rand::random::<[u8; 16]>().to_vec(), node_id: 0, cluster_id: 0 };
    store(engine, IDENTITY_KEY, &identity.encode_to_vec())?;
    Ok(identity)
}

/// The shards of `hosted` that `cluster` (the coordinator leader's state) lists without node
/// `node_id` among their replicas or learners. A shard absent from `cluster`, or that
/// `placements` (the node's placements in the same answer) still lists, is kept: only an
/// explicit removal is acted on.
fn moved_away(
    node_id: u64,
    hosted: &[ShardDescriptor],
    cluster: &v1::ClusterState,
    placements: &[ShardDescriptor],
) -> Vec<u64> {
    let mut moved_away = Vec::new();
    for shard in hosted {
        let Some(info) = cluster.shards.iter().find(|s| s.shard_id == shard.shard_id) else { continue };
        let member = info.replicas.contains(&node_id) || info.learners.contains(&node_id);
        let placed = placements.iter().any(|p| p.shard_id == shard.shard_id);
        if !member && !placed {
            moved_away.push(shard.shard_id);
        }
    }
    moved_away
}

/// `ids` in ascending order.
fn sorted(mut ids: Vec<u64>) -> Vec<u64> {
    ids.sort_unstable();
    ids
}

fn load_hosted(engine: &RocksEngine) -> Result<HostedShards> {
    match engine.get(ColumnFamily::Meta, HOSTED_KEY)? {
        Some(raw) => HostedShards::decode(raw.as_slice())
            .map_err(|e| ServerError::Coordinator(format!("corrupt hosted shard list: {e}"))),
        None => Ok(HostedShards::default()),
    }
}

fn store(engine: &RocksEngine, key: &[u8], value: &[u8]) -> Result<()> {
    let mut batch = WriteBatch::new();
    batch.put(ColumnFamily::Meta, key, value);
    engine.write(&batch, WriteOptions::SYNC)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(shard_id: u64) -> ShardDescriptor {
        ShardDescriptor { shard_id, ..ShardDescriptor::default() }
    }

    fn info(shard_id: u64, replicas: &[u64], learners: &[u64]) -> v1::ShardInfo {
        v1::ShardInfo {
            shard_id,
            replicas: replicas.to_vec(),
            learners: learners.to_vec(),
            ..v1::ShardInfo::default()
        }
    }

    #[test]
    fn only_shards_listed_without_this_node_are_garbage_collected() {
        // Shard 5 is absent from the cluster state: kept (defensive).
        let hosted: Vec<ShardDescriptor> = (1..=5).map(descriptor).collect();
        let cluster = v1::ClusterState {
            shards: vec![
                info(1, &[1, 2, 3], &[]),  // a voter here: kept
                info(2, &[2, 3, 4], &[1]), // a learner here (moving in): kept
                info(3, &[2, 3, 4], &[]),  // moved away: collected
                info(4, &[2, 3, 4], &[]),  // but still placed here in the same answer: kept
            ],
            ..v1::ClusterState::default()
        };
        assert_eq!(moved_away(1, &hosted, &cluster, &[descriptor(4)]), vec![3]);
        assert!(moved_away(1, &hosted, &v1::ClusterState::default(), &[]).is_empty());
    }
}
