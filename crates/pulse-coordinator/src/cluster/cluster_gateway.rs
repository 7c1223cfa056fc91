//! [`ClusterServiceGateway`]: `pulse.v1.ClusterService` of a cluster process.
//!
//! - `GetClusterState` answers from the route table (coordinators refresh it from the metadata
//!   and heartbeats, nodes from every heartbeat answer).
//! - `TransferLeader` goes to the shard's leader (forwarded with the shards header like the
//!   activity calls), which hands leadership over and answers once the new leader is in place.
//! - `CheckConsistency`, `DrainNode`, `RemoveNode`: see each method.

use std::sync::Arc;
use std::time::Duration;

use pulse_node::ApplyOutput;
use pulse_proto::v1;
use pulse_proto::v1::cluster_service_client::ClusterServiceClient;
use pulse_proto::v1::cluster_service_server::ClusterService;
use pulse_raft::{RuntimeHandle, ShardRole};
use tokio::time::Instant;
use tonic::{Request, Response, Status};

use super::router::{Router, Target, forwarded_request, forwarded_shards};

/// How often a leader transfer is checked for completion.
const TRANSFER_POLL: Duration = Duration::from_millis(20);

/// `pulse.v1.ClusterService` of a cluster process. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ClusterServiceGateway {
    router: Arc<Router>,
    /// The raft runtime of this process's shard replicas (storage nodes only).
    runtime: Option<RuntimeHandle<ApplyOutput>>,
    request_timeout: Duration,
}

impl ClusterServiceGateway {
    /// The service over `router`; `runtime` is the storage node's raft runtime, if any.
    pub fn new(
        router: Arc<Router>,
        runtime: Option<RuntimeHandle<ApplyOutput>>,
        request_timeout: Duration,
    ) -> Self {
        Self { router, runtime, request_timeout }
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
        Err(Status::unimplemented(format!(
            "DrainNode (node {}): replica moves arrive with the scheduler (issue 6)",
            request.get_ref().node_id
        )))
    }

    async fn remove_node(
        &self,
        request: Request<v1::RemoveNodeRequest>,
    ) -> Result<Response<v1::RemoveNodeResponse>, Status> {
        Err(Status::unimplemented(format!(
            "RemoveNode (node {}): arrives with the scheduler (issue 6)",
            request.get_ref().node_id
        )))
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
        _request: Request<v1::CheckConsistencyRequest>,
    ) -> Result<Response<v1::CheckConsistencyResponse>, Status> {
        Err(Status::unimplemented("CheckConsistency is not served yet"))
    }
}
