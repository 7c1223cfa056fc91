//! [`ClusterServiceGateway`]: `pulse.v1.ClusterService` of a cluster process.
//!
//! - `GetClusterState` answers from the route table (coordinators refresh it from the metadata
//!   and heartbeats, nodes from every heartbeat answer).
//! - `TransferLeader` goes to the shard's leader (forwarded with the shards header like the
//!   activity calls), which hands leadership over and answers once the new leader is in place.
//! - `CheckConsistency`: per shard, the leader proposes a `ComputeHash` entry (every replica
//!   hashes its data when it applies it, at the same raft index), then every replica is asked
//!   for its stored hash at that index (forwarded with the [`CONSISTENCY_HEADER`]).
//! - `DrainNode`, `RemoveNode` go to the coordinator leader's `NodeRegistry` (its scheduler
//!   moves the replicas), following the leader hint of a coordinator that is not the leader.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use pulse_node::{ApplyOutput, ShardCommand};
use pulse_proto::internal::v1::node_registry_client::NodeRegistryClient;
use pulse_proto::v1;
use pulse_proto::v1::cluster_service_client::ClusterServiceClient;
use pulse_proto::v1::cluster_service_server::ClusterService;
use pulse_raft::{RuntimeHandle, ShardRole};
use tokio::time::Instant;
use tonic::{Request, Response, Status};

use super::coordinator::COORDINATOR_LEADER_HEADER;
use super::router::{Router, Target, forwarded_request, forwarded_shards};
use crate::local_shards::LocalShards;

/// The one replica hash a forwarded `CheckConsistency` answers.
fn single_hash(response: v1::CheckConsistencyResponse) -> Result<v1::ReplicaHash, Status> {
    response
        .shards
        .into_iter()
        .next()
        .and_then(|shard| shard.hashes.into_iter().next())
        .ok_or_else(|| Status::internal("a forwarded CheckConsistency answered no hash"))
}

/// How often a leader transfer, or a replica's consistency hash, is checked for completion.
const TRANSFER_POLL: Duration = Duration::from_millis(20);
/// Request metadata of a forwarded `CheckConsistency`: `compute` (the leader proposes the
/// hash entry) or `report:INDEX` (a replica reports its hash taken at INDEX).
pub const CONSISTENCY_HEADER: &str = "x-pulse-consistency";

/// `pulse.v1.ClusterService` of a cluster process. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ClusterServiceGateway {
    router: Arc<Router>,
    /// The raft runtime of this process's shard replicas (storage nodes only).
    runtime: Option<RuntimeHandle<ApplyOutput>>,
    /// The replicas hosted here (storage nodes only).
    shards: Option<Arc<RwLock<LocalShards>>>,
    /// The coordinators' addresses: where `DrainNode` and `RemoveNode` go.
    coordinators: Arc<Vec<String>>,
    request_timeout: Duration,
}

impl ClusterServiceGateway {
    /// The service over `router`; `runtime` is the storage node's raft runtime, if any.
    pub fn new(
        router: Arc<Router>,
        runtime: Option<RuntimeHandle<ApplyOutput>>,
        request_timeout: Duration,
    ) -> Self {
        Self { router, runtime, shards: None, coordinators: Arc::default(), request_timeout }
    }

    /// The same, forwarding `DrainNode` and `RemoveNode` to `coordinators`.
    pub fn with_coordinators(mut self, coordinators: Vec<String>) -> Self {
        self.coordinators = Arc::new(coordinators);
        self
    }

    /// Calls the coordinator leader's `NodeRegistry`: tries the coordinators in turn, jumping
    /// to the leader a coordinator names, until one answers or the deadline passes.
    async fn on_coordinator_leader<T, F, Fut>(&self, call: F) -> Result<T, Status>
    where
        F: Fn(NodeRegistryClient<tonic::transport::Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<Response<T>, Status>>,
    {
        if self.coordinators.is_empty() {
            return Err(Status::failed_precondition("this process knows no coordinator"));
        }
        let deadline = Instant::now() + self.request_timeout;
        let mut next: Option<String> = None;
        let mut attempt = 0usize;
        loop {
            let address =
                next.take().unwrap_or_else(|| self.coordinators[attempt % self.coordinators.len()].clone());
            attempt += 1;
            let client = NodeRegistryClient::new(self.router.channel(&address));
            let outcome = tokio::time::timeout_at(deadline, call(client)).await;
            let status = match outcome {
                Ok(Ok(response)) => return Ok(response.into_inner()),
                Ok(Err(status)) if status.code() == tonic::Code::Unavailable => status,
                Ok(Err(status)) => return Err(status),
                Err(_) => return Err(Status::deadline_exceeded("no coordinator leader answered in time")),
            };
            next = status
                .metadata()
                .get(COORDINATOR_LEADER_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if Instant::now() >= deadline {
                return Err(status);
            }
            if next.is_none() && attempt.is_multiple_of(self.coordinators.len()) {
                tokio::time::sleep(TRANSFER_POLL * 10).await;
            }
        }
    }

    /// The same, able to hash the replicas in `shards` (storage nodes).
    pub fn with_replicas(mut self, shards: Arc<RwLock<LocalShards>>) -> Self {
        self.shards = Some(shards);
        self
    }

    /// The local replica of `shard_id` as a one-shard view.
    fn replica(&self, shard_id: u64) -> Result<LocalShards, Status> {
        let shards =
            self.shards.as_ref().ok_or_else(|| Status::unavailable("this process hosts no replica"))?;
        let all = shards.read().unwrap_or_else(PoisonError::into_inner).clone();
        all.restricted_to(&[shard_id])
            .map_err(|_| Status::unavailable(format!("shard {shard_id} has no replica on this node")))
    }

    /// Leader side: proposes `ComputeHash` to `shard_id` and answers its own hash.
    async fn compute_hash(&self, shard_id: u64) -> Result<v1::ReplicaHash, Status> {
        let replica = self.replica(shard_id)?;
        match replica.propose(0, ShardCommand::ComputeHash).await.map_err(Status::from)? {
            ApplyOutput::ConsistencyHash { index, hash } => {
                Ok(v1::ReplicaHash { node_id: self.node_id()?, applied_index: index, hash })
            }
            other => Err(Status::internal(format!("ComputeHash applied as {other:?}"))),
        }
    }

    /// Replica side: the hash this replica took at raft index `index`, once it applied it.
    async fn report_hash(
        &self,
        shard_id: u64,
        index: u64,
        deadline: Instant,
    ) -> Result<v1::ReplicaHash, Status> {
        let replica = self.replica(shard_id)?;
        let node_id = self.node_id()?;
        let mut interval = tokio::time::interval(TRANSFER_POLL);
        loop {
            interval.tick().await;
            match replica.reader(0).consistency_hash().map_err(|e| Status::internal(e.to_string()))? {
                Some((at, hash)) if at == index => {
                    return Ok(v1::ReplicaHash { node_id, applied_index: at, hash });
                }
                Some((at, _)) if at > index => {
                    return Err(Status::aborted(format!(
                        "shard {shard_id}: a newer consistency check (index {at}) replaced the one at {index}"
                    )));
                }
                _ if Instant::now() >= deadline => {
                    return Err(Status::deadline_exceeded(format!(
                        "shard {shard_id}: node {node_id} has not applied index {index} yet"
                    )));
                }
                _ => {}
            }
        }
    }

    fn node_id(&self) -> Result<u64, Status> {
        self.runtime
            .as_ref()
            .map(RuntimeHandle::node_id)
            .ok_or_else(|| Status::unavailable("not a storage node"))
    }

    /// Checks one shard: the leader hashes at index I, then every replica reports its hash at I.
    async fn check_shard(
        &self,
        shard: &v1::ShardInfo,
        deadline: Instant,
    ) -> Result<v1::ShardConsistency, Status> {
        let shard_id = shard.shard_id;
        let leader_hash = self
            .router
            .call_leader(shard_id, deadline, |target| {
                let gateway = self.clone();
                async move {
                    match target {
                        Target::Local => gateway.compute_hash(shard_id).await,
                        Target::Remote(channel) => {
                            let mut request = forwarded_request(
                                v1::CheckConsistencyRequest { shard_ids: vec![shard_id] },
                                &[shard_id],
                                deadline,
                            );
                            request
                                .metadata_mut()
                                .insert(CONSISTENCY_HEADER, "compute".parse().expect("ascii"));
                            let answer =
                                ClusterServiceClient::new(channel).check_consistency(request).await?;
                            single_hash(answer.into_inner())
                        }
                    }
                }
            })
            .await?;
        let index = leader_hash.applied_index;
        let leader = leader_hash.node_id;
        let mut hashes = vec![leader_hash];
        for &node_id in shard.replicas.iter().filter(|&&n| n != leader) {
            let hash = match self.router.target(node_id) {
                Some(Target::Local) => self.report_hash(shard_id, index, deadline).await?,
                Some(Target::Remote(channel)) => {
                    let mut request = forwarded_request(
                        v1::CheckConsistencyRequest { shard_ids: vec![shard_id] },
                        &[shard_id],
                        deadline,
                    );
                    let report = format!("report:{index}").parse().expect("ascii");
                    request.metadata_mut().insert(CONSISTENCY_HEADER, report);
                    single_hash(
                        ClusterServiceClient::new(channel).check_consistency(request).await?.into_inner(),
                    )?
                }
                None => {
                    return Err(Status::unavailable(format!(
                        "node {node_id} of shard {shard_id} is unknown"
                    )));
                }
            };
            hashes.push(hash);
        }
        hashes.sort_by_key(|h| h.node_id);
        let consistent = hashes.windows(2).all(|pair| pair[0].hash == pair[1].hash);
        Ok(v1::ShardConsistency { shard_id, hashes, consistent })
    }

    /// Hands leadership of the local replica of `shard_id` to `to` and waits until `to` leads.
    async fn transfer_here(&self, shard_id: u64, to: u64, deadline: Instant) -> Result<u64, Status> {
        let runtime =
            self.runtime.as_ref().ok_or_else(|| Status::unavailable("this process hosts no replica"))?;
        let status = runtime.shard_status(shard_id).await.map_err(|e| Status::unavailable(e.to_string()))?;
        if status.role != ShardRole::Leader {
            let mut refused = Status::unavailable(format!("shard {shard_id}: not the leader here"));
            if let Some(hint) = status.leader_id.and_then(|id| id.to_string().parse().ok()) {
                refused.metadata_mut().insert(super::router::LEADER_HINT_HEADER, hint);
            }
            return Err(refused);
        }
        if !status.voters.contains(&to) {
            return Err(Status::invalid_argument(format!(
                "to_node_id {to} is not a voter of shard {shard_id} (voters {:?})",
                status.voters
            )));
        }
        if to == status.node_id {
            return Ok(to);
        }
        runtime.transfer_leader(shard_id, to).await.map_err(|e| Status::unavailable(e.to_string()))?;
        let mut interval = tokio::time::interval(TRANSFER_POLL);
        loop {
            interval.tick().await;
            let now = runtime.shard_status(shard_id).await.map_err(|e| Status::unavailable(e.to_string()))?;
            if now.leader_id == Some(to) {
                self.router.note_leader(shard_id, to);
                return Ok(to);
            }
            if Instant::now() >= deadline {
                return Err(Status::deadline_exceeded(format!(
                    "shard {shard_id}: node {to} did not take over before the deadline (leader now {:?})",
                    now.leader_id
                )));
            }
        }
    }

    /// The voter of `shard` other than its leader that leads the fewest shards.
    fn least_loaded_follower(&self, shard: &v1::ShardInfo) -> Option<u64> {
        let state = self.router.state();
        shard
            .replicas
            .iter()
            .copied()
            .filter(|&node| node != shard.leader)
            .min_by_key(|&node| (state.shards.iter().filter(|s| s.leader == node).count(), node))
    }
}

#[tonic::async_trait]
impl ClusterService for ClusterServiceGateway {
    async fn get_cluster_state(
        &self,
        _request: Request<v1::GetClusterStateRequest>,
    ) -> Result<Response<v1::ClusterState>, Status> {
        let state = self.router.state();
        if state.nodes.is_empty() {
            return Err(Status::unavailable("no cluster state yet: the coordinator has not answered"));
        }
        Ok(Response::new((*state).clone()))
    }

    async fn drain_node(
        &self,
        request: Request<v1::DrainNodeRequest>,
    ) -> Result<Response<v1::NodeInfo>, Status> {
        let message = request.into_inner();
        let node =
            self.on_coordinator_leader(|mut client| async move { client.drain_node(message).await }).await?;
        Ok(Response::new(node))
    }

    async fn remove_node(
        &self,
        request: Request<v1::RemoveNodeRequest>,
    ) -> Result<Response<v1::RemoveNodeResponse>, Status> {
        let message = request.into_inner();
        let removed =
            self.on_coordinator_leader(|mut client| async move { client.remove_node(message).await }).await?;
        Ok(Response::new(removed))
    }

    async fn transfer_leader(
        &self,
        request: Request<v1::TransferLeaderRequest>,
    ) -> Result<Response<v1::TransferLeaderResponse>, Status> {
        let deadline = Instant::now() + self.request_timeout;
        if let Some(shard_ids) = forwarded_shards(request.metadata()) {
            let shard_ids = shard_ids?;
            let message = request.into_inner();
            if shard_ids != [message.shard_id] {
                return Err(Status::invalid_argument("forwarded TransferLeader names another shard"));
            }
            let leader = self.transfer_here(message.shard_id, message.to_node_id, deadline).await?;
            return Ok(Response::new(v1::TransferLeaderResponse { leader }));
        }
        let mut message = request.into_inner();
        let shard =
            self.router.shards().into_iter().find(|s| s.shard_id == message.shard_id).ok_or_else(|| {
                Status::not_found(format!("shard_id {} is not a shard of this cluster", message.shard_id))
            })?;
        if message.to_node_id == 0 {
            message.to_node_id = self
                .least_loaded_follower(&shard)
                .ok_or_else(|| Status::failed_precondition("the shard has no other voter to lead it"))?;
        } else if !shard.replicas.contains(&message.to_node_id) {
            return Err(Status::invalid_argument(format!(
                "to_node_id {} is not a voter of shard {} (voters {:?})",
                message.to_node_id, shard.shard_id, shard.replicas
            )));
        }
        let shard_id = shard.shard_id;
        let to = message.to_node_id;
        let leader = self
            .router
            .call_leader(shard_id, deadline, |target| {
                let gateway = self.clone();
                async move {
                    match target {
                        Target::Local => gateway.transfer_here(shard_id, to, deadline).await,
                        Target::Remote(channel) => ClusterServiceClient::new(channel)
                            .transfer_leader(forwarded_request(message, &[shard_id], deadline))
                            .await
                            .map(|r| r.into_inner().leader),
                    }
                }
            })
            .await?;
        Ok(Response::new(v1::TransferLeaderResponse { leader }))
    }

    async fn check_consistency(
        &self,
        request: Request<v1::CheckConsistencyRequest>,
    ) -> Result<Response<v1::CheckConsistencyResponse>, Status> {
        let deadline = Instant::now() + self.request_timeout;
        if let Some(shard_ids) = forwarded_shards(request.metadata()) {
            let shard_ids = shard_ids?;
            let [shard_id] = shard_ids[..] else {
                return Err(Status::invalid_argument("a forwarded CheckConsistency names one shard"));
            };
            let mode = request.metadata().get(CONSISTENCY_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            let hash = match mode.strip_prefix("report:") {
                Some(index) => {
                    let index =
                        index.parse().map_err(|_| Status::invalid_argument("malformed consistency index"))?;
                    self.report_hash(shard_id, index, deadline).await?
                }
                None if mode == "compute" => self.compute_hash(shard_id).await?,
                None => return Err(Status::invalid_argument(format!("missing {CONSISTENCY_HEADER} header"))),
            };
            let shard = v1::ShardConsistency { shard_id, hashes: vec![hash], consistent: true };
            return Ok(Response::new(v1::CheckConsistencyResponse { consistent: true, shards: vec![shard] }));
        }
        let wanted = request.into_inner().shard_ids;
        let shards = self.router.shards();
        if shards.is_empty() {
            return Err(Status::unavailable("the cluster has no shards yet"));
        }
        if let Some(unknown) = wanted.iter().find(|id| !shards.iter().any(|s| s.shard_id == **id)) {
            return Err(Status::invalid_argument(format!(
                "shard_ids: {unknown} is not a shard of this cluster"
            )));
        }
        let mut checked = Vec::new();
        for shard in shards.iter().filter(|s| wanted.is_empty() || wanted.contains(&s.shard_id)) {
            checked.push(self.check_shard(shard, deadline).await?);
        }
        checked.sort_by_key(|s| s.shard_id);
        let consistent = checked.iter().all(|s| s.consistent);
        Ok(Response::new(v1::CheckConsistencyResponse { consistent, shards: checked }))
    }
}
