//! Scoring administration across a cluster.
//!
//! - [`ShardAdminService`] (storage nodes): `pulse.internal.v1.ShardAdmin` over the local
//!   replicas — a shard's config, its model inputs, and proposals of `SetConfig` / `Tick`, on
//!   the shard's leader (others answer UNAVAILABLE with a leader hint); and `ChangeReplicas`,
//!   the raft membership changes of replica moves, idempotent.
//! - [`change_replicas`]: how a coordinator calls `ChangeReplicas` on a shard's leader.
//! - [`ClusterShards`]: [`ConfigShards`] for a [`ScoringAdmin`](crate::ScoringAdmin) that
//!   administers every shard of the cluster through those calls, each routed to the shard's
//!   leader by the [`Router`] and retried until the request deadline.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use pulse_node::{ApplyOutput, ShardCommand};
use pulse_proto::internal::v1::shard_admin_client::ShardAdminClient;
use pulse_proto::internal::v1::shard_admin_server::ShardAdmin;
use pulse_proto::internal::v1::{
    ChangeReplicasRequest, ChangeReplicasResponse, HistoryCountsRequest, HistoryCountsResponse,
    ProposeRequest, ProposeResponse, PurchaseHistoryCount, ReadConfigRequest, ReplicaChange,
    RfmSketchRequest, RfmSketchResponse, SetConfigCommand,
};
use pulse_proto::v1;
use pulse_raft::{MembershipChange, ProposeError};
use pulse_scoring::{HistoryCounts, PurchaseHistory, RfmSketch, ScoringConfig, SegmentDefinition};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::{Request, Response, Status};

use super::router::{Router, Target};
use crate::error::{Result, ServerError};
use crate::local_shards::LocalShards;
use crate::scoring_admin::{ConfigInForce, ConfigShards};

/// `pulse.internal.v1.ShardAdmin` over the replicas of a storage node.
#[derive(Clone, Debug)]
pub struct ShardAdminService {
    shards: Arc<RwLock<LocalShards>>,
}

impl ShardAdminService {
    /// The service over the node's replicas.
    pub fn new(shards: Arc<RwLock<LocalShards>>) -> Self {
        Self { shards }
    }

    /// The local replica of `shard_id`, once it confirmed it leads and caught up (read barrier).
    async fn leader(&self, shard_id: u64) -> Result<LocalShards, Status> {
        let all = self.shards.read().unwrap_or_else(PoisonError::into_inner).clone();
        let replica = all
            .restricted_to(&[shard_id])
            .map_err(|_| Status::unavailable(format!("shard {shard_id} has no replica on this node")))?;
        replica.read_barrier(0).await?;
        Ok(replica)
    }
}

/// Runs blocking reads off the async runtime.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T, Status> {
    Ok(tokio::task::spawn_blocking(work).await.map_err(|e| Status::internal(e.to_string()))??)
}

#[tonic::async_trait]
impl ShardAdmin for ShardAdminService {
    async fn read_config(
        &self,
        request: Request<ReadConfigRequest>,
    ) -> Result<Response<SetConfigCommand>, Status> {
        let replica = self.leader(request.into_inner().shard_id).await?;
        let scoring = replica.reader(0).config();
        Ok(Response::new(SetConfigCommand {
            config: Some(v1::ScoringConfig::from(scoring.config())),
            segments: scoring.segments().into_iter().map(v1::SegmentDefinition::from).collect(),
        }))
    }

    async fn history_counts(
        &self,
        request: Request<HistoryCountsRequest>,
    ) -> Result<Response<HistoryCountsResponse>, Status> {
        let request = request.into_inner();
        let reader = self.leader(request.shard_id).await?.reader(0).clone();
        let counts = blocking(move || Ok(reader.history_counts(request.as_of_ms)?)).await?;
        let histories = counts
            .iter()
            .map(|(history, customers)| PurchaseHistoryCount {
                x: history.x,
                t_x: history.t_x,
                t: history.t,
                customers,
            })
            .collect();
        Ok(Response::new(HistoryCountsResponse { histories }))
    }

    async fn rfm_sketch(
        &self,
        request: Request<RfmSketchRequest>,
    ) -> Result<Response<RfmSketchResponse>, Status> {
        let request = request.into_inner();
        let reader = self.leader(request.shard_id).await?.reader(0).clone();
        let sketch = blocking(move || Ok(reader.rfm_sketch(request.as_of_ms)?)).await?;
        Ok(Response::new(RfmSketchResponse { sketch: sketch.encode() }))
    }

    async fn propose(&self, request: Request<ProposeRequest>) -> Result<Response<ProposeResponse>, Status> {
        let request = request.into_inner();
        let command = ShardCommand::decode(&request.command)
            .map_err(|e| Status::invalid_argument(format!("command: {e}")))?;
        if !matches!(command, ShardCommand::SetConfig { .. } | ShardCommand::Tick { .. }) {
            return Err(Status::invalid_argument(
                "command: only SetConfig and Tick are proposed through ShardAdmin",
            ));
        }
        let all = self.shards.read().unwrap_or_else(PoisonError::into_inner).clone();
        let replica = all.restricted_to(&[request.shard_id]).map_err(|_| {
            Status::unavailable(format!("shard {} has no replica on this node", request.shard_id))
        })?;
        let output = replica.propose(0, command).await?;
        let tick_evaluated = match output {
            ApplyOutput::Tick { evaluated, .. } => evaluated,
            _ => 0,
        };
        Ok(Response::new(ProposeResponse { tick_evaluated }))
    }

    async fn change_replicas(
        &self,
        request: Request<ChangeReplicasRequest>,
    ) -> Result<Response<ChangeReplicasResponse>, Status> {
        let request = request.into_inner();
        let change = membership_change(&request)?;
        let shard_id = request.shard_id;
        let replica = self.leader(shard_id).await?;
        let runtime = replica.runtime();
        let status = runtime.shard_status(shard_id).await.map_err(ServerError::Raft)?;
        if already_done(change, &status.voters, &status.learners) {
            return Ok(Response::new(membership_response(status.voters, status.learners)));
        }
        let deadline = std::time::Instant::now() + replica.propose_timeout();
        match runtime.change_membership(shard_id, change, deadline).await {
            Ok(membership) => Ok(Response::new(membership_response(membership.voters, membership.learners))),
            Err(error @ ProposeError::MembershipChangePending { .. }) => {
                Err(Status::unavailable(error.to_string()))
            }
            Err(error @ ProposeError::InvalidMembershipChange { .. }) => {
                Err(Status::failed_precondition(error.to_string()))
            }
            Err(error) => Err(ServerError::Propose(error).into()),
        }
    }
}

/// The raft change a `ChangeReplicas` request asks for; INVALID_ARGUMENT naming the field
/// otherwise.
fn membership_change(request: &ChangeReplicasRequest) -> Result<MembershipChange, Status> {
    let node_id = request.node_id;
    if node_id == 0 {
        return Err(Status::invalid_argument("node_id: must name a node (not 0)"));
    }
    match ReplicaChange::try_from(request.change) {
        Ok(ReplicaChange::AddLearner) => Ok(MembershipChange::AddLearner(node_id)),
        Ok(ReplicaChange::Promote) => Ok(MembershipChange::PromoteLearner(node_id)),
        Ok(ReplicaChange::Remove) => Ok(MembershipChange::RemoveReplica(node_id)),
        Ok(ReplicaChange::Unspecified) | Err(_) => Err(Status::invalid_argument(format!(
            "change: {} is not a replica change (ADD_LEARNER, PROMOTE or REMOVE)",
            request.change
        ))),
    }
}

/// Whether `change` is already in effect in the membership (`voters`, `learners`): the
/// scheduler retries its steps, and a retry must succeed without proposing anything.
fn already_done(change: MembershipChange, voters: &[u64], learners: &[u64]) -> bool {
    let node_id = change.node_id();
    let (is_voter, is_learner) = (voters.contains(&node_id), learners.contains(&node_id));
    match change {
        MembershipChange::AddLearner(_) => is_voter || is_learner,
        MembershipChange::PromoteLearner(_) => is_voter,
        MembershipChange::RemoveReplica(_) => !is_voter && !is_learner,
    }
}

/// The membership after a change, both lists ascending.
fn membership_response(mut voters: Vec<u64>, mut learners: Vec<u64>) -> ChangeReplicasResponse {
    voters.sort_unstable();
    learners.sort_unstable();
    ChangeReplicasResponse { voters, learners }
}

/// Applies `change` to node `node_id` in shard `shard_id`'s membership through the shard's
/// leader, found through `router` and its leader hints like every leader call, retried until
/// `timeout` passes (UNAVAILABLE: not the leader, no leader yet, another change pending). The
/// call is idempotent (see `ChangeReplicas`), so retrying a step that went through is safe.
/// Answers the membership after the change. For coordinators: their router (no node id) never
/// routes in-process.
pub async fn change_replicas(
    router: &Router,
    shard_id: u64,
    change: ReplicaChange,
    node_id: u64,
    timeout: Duration,
) -> Result<ChangeReplicasResponse, Status> {
    let deadline = Instant::now() + timeout;
    let request = ChangeReplicasRequest { shard_id, change: change as i32, node_id };
    router
        .call_leader(shard_id, deadline, |target| {
            let channel = match target {
                Target::Remote(channel) => Ok(channel),
                Target::Local => Err(Status::failed_precondition(
                    "change_replicas goes through a coordinator's router, which has no local replica",
                )),
            };
            async move {
                let mut client = ShardAdminClient::new(channel?);
                Ok(client.change_replicas(request).await?.into_inner())
            }
        })
        .await
}

/// Every shard of the cluster, administered through the shards' leaders.
#[derive(Clone, Debug)]
pub struct ClusterShards {
    router: Arc<Router>,
    /// This process's address: its own ShardAdmin is called through it like any other's.
    self_address: String,
    request_timeout: Duration,
}

impl ClusterShards {
    /// The cluster's shards as `router` knows them, from the process at `self_address`; each
    /// call gets `request_timeout`.
    pub fn new(router: Arc<Router>, self_address: String, request_timeout: Duration) -> Self {
        Self { router, self_address, request_timeout }
    }

    fn shard_ids(&self) -> Result<Vec<u64>> {
        let ids: Vec<u64> = self.router.shards().iter().map(|s| s.shard_id).collect();
        if ids.is_empty() {
            return Err(ServerError::Coordinator("the cluster has no shards yet".into()));
        }
        Ok(ids)
    }

    /// Calls `call` on the leader of every shard of `shard_ids` concurrently; the answers in
    /// `shard_ids` order, or the first failure.
    async fn on_leaders<T, F, Fut>(&self, shard_ids: &[u64], call: F) -> Result<Vec<T>>
    where
        T: Send + 'static,
        F: Fn(ShardAdminClient<tonic::transport::Channel>, u64) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<T, Status>> + Send,
    {
        // A shard's scan may take long: only the request deadline bounds an attempt.
        let timeout = self.request_timeout;
        let deadline = Instant::now() + timeout;
        let mut calls = JoinSet::new();
        for (position, &shard_id) in shard_ids.iter().enumerate() {
            let router = self.router.clone();
            let call = call.clone();
            let own = router.channel(&self.self_address);
            calls.spawn(async move {
                let answer = router
                    .call_leader_within(shard_id, deadline, timeout, |target| {
                        let call = call.clone();
                        // A storage node reaches its own ShardAdmin through its address too: a
                        // rare admin path, not worth a second in-process route.
                        let channel = match target {
                            Target::Local => own.clone(),
                            Target::Remote(channel) => channel,
                        };
                        async move { call(ShardAdminClient::new(channel), shard_id).await }
                    })
                    .await;
                (position, answer)
            });
        }
        let mut answers = Vec::with_capacity(shard_ids.len());
        while let Some(joined) = calls.join_next().await {
            let (position, answer) = joined.map_err(|e| ServerError::Task(e.to_string()))?;
            answers.push((position, answer.map_err(ServerError::Remote)?));
        }
        answers.sort_by_key(|(position, _)| *position);
        Ok(answers.into_iter().map(|(_, answer)| answer).collect())
    }
}

impl ConfigShards for ClusterShards {
    async fn configs(&self) -> Result<Vec<(u64, ConfigInForce)>> {
        let shard_ids = self.shard_ids()?;
        let answers = self
            .on_leaders(&shard_ids, |mut client, shard_id| async move {
                Ok(client.read_config(ReadConfigRequest { shard_id }).await?.into_inner())
            })
            .await?;
        shard_ids
            .into_iter()
            .zip(answers)
            .map(|(shard_id, wire)| {
                let config = match wire.config {
                    Some(config) => ScoringConfig::try_from(config)
                        .map_err(|e| ServerError::Coordinator(format!("shard {shard_id} config: {e}")))?,
                    None => ScoringConfig::default(),
                };
                let segments = wire.segments.into_iter().map(SegmentDefinition::from).collect();
                Ok((shard_id, ConfigInForce { config, segments }))
            })
            .collect()
    }

    async fn history_counts(&self, as_of_ms: i64) -> Result<HistoryCounts> {
        let shard_ids = self.shard_ids()?;
        let answers = self
            .on_leaders(&shard_ids, move |mut client, shard_id| async move {
                Ok(client.history_counts(HistoryCountsRequest { shard_id, as_of_ms }).await?.into_inner())
            })
            .await?;
        let mut counts = HistoryCounts::new();
        for answer in answers {
            for history in answer.histories {
                counts
                    .add(PurchaseHistory { x: history.x, t_x: history.t_x, t: history.t }, history.customers);
            }
        }
        Ok(counts)
    }

    async fn rfm_sketch(&self, as_of_ms: i64) -> Result<RfmSketch> {
        let shard_ids = self.shard_ids()?;
        let answers = self
            .on_leaders(&shard_ids, move |mut client, shard_id| async move {
                Ok(client.rfm_sketch(RfmSketchRequest { shard_id, as_of_ms }).await?.into_inner())
            })
            .await?;
        let mut sketch = RfmSketch::new();
        for answer in answers {
            let part = RfmSketch::decode(&answer.sketch)
                .map_err(|e| ServerError::Coordinator(format!("undecodable rfm sketch: {e}")))?;
            sketch.merge(&part);
        }
        Ok(sketch)
    }

    async fn propose_each(&self, shard_ids: &[u64], command: &ShardCommand) -> Result<()> {
        let command = Arc::new(command.encode());
        self.on_leaders(shard_ids, move |mut client, shard_id| {
            let command = command.clone();
            async move {
                client.propose(ProposeRequest { shard_id, command: command.to_vec() }).await?;
                Ok(())
            }
        })
        .await?;
        Ok(())
    }

    async fn settle(&self, _now_ms: i64, _max_customers: u32, _max_rounds: usize) -> Result<()> {
        Err(ServerError::ClockIsWall)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pulse_node::{NodeStateMachine, ShardConfig, ShardRange};
    use pulse_raft::{NullTransport, RaftConfig, RaftRuntime};
    use pulse_storage::RocksEngine;
    use tonic::Code;

    use super::*;
    use crate::clock::Clock;

    const SHARD: u64 = 1;

    /// A data directory removed when dropped (the crate has no tempfile dependency).
    struct TempDir(std::path::PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    async fn change(
        service: &ShardAdminService,
        shard_id: u64,
        change: i32,
        node_id: u64,
    ) -> Result<ChangeReplicasResponse, Status> {
        let request = Request::new(ChangeReplicasRequest { shard_id, change, node_id });
        let answer = tokio::time::timeout(Duration::from_secs(10), service.change_replicas(request))
            .await
            .expect("ChangeReplicas answers within 10 s");
        answer.map(Response::into_inner)
    }

    fn membership(voters: &[u64], learners: &[u64]) -> ChangeReplicasResponse {
        ChangeReplicasResponse { voters: voters.to_vec(), learners: learners.to_vec() }
    }

    #[tokio::test]
    async fn change_replicas_is_idempotent_and_maps_refusals_to_codes() {
        let dir =
            TempDir(std::env::temp_dir().join(format!("pulse-change-replicas-{}", rand::random::<u64>())));
        let engine = RocksEngine::open(&dir.0).unwrap();
        let mut machine = NodeStateMachine::new(engine.clone());
        machine.add_shard(ShardConfig { shard_id: SHARD, range: ShardRange::FULL }).unwrap();
        let reader = machine.reader(SHARD).unwrap();
        let runtime = RaftRuntime::start(1, RaftConfig::default(), engine, machine, NullTransport).unwrap();
        runtime.add_shard(SHARD, vec![1]).await.unwrap();
        let shards = LocalShards::new(runtime.clone(), vec![reader], Clock::Wall, Duration::from_secs(5));
        let service = ShardAdminService::new(Arc::new(RwLock::new(shards)));
        let (add, promote, remove) =
            (ReplicaChange::AddLearner as i32, ReplicaChange::Promote as i32, ReplicaChange::Remove as i32);

        // Step 1: a learner is added once; adding it again (or a voter) changes nothing.
        assert_eq!(change(&service, SHARD, add, 2).await.unwrap(), membership(&[1], &[2]));
        assert_eq!(change(&service, SHARD, add, 2).await.unwrap(), membership(&[1], &[2]));
        assert_eq!(change(&service, SHARD, add, 1).await.unwrap(), membership(&[1], &[2]));
        assert_eq!(change(&service, SHARD, promote, 1).await.unwrap(), membership(&[1], &[2]), "a voter");

        // Step 2: removing a non-member succeeds without a change; removing the learner twice too.
        assert_eq!(change(&service, SHARD, remove, 3).await.unwrap(), membership(&[1], &[2]));
        assert_eq!(change(&service, SHARD, remove, 2).await.unwrap(), membership(&[1], &[]));
        assert_eq!(change(&service, SHARD, remove, 2).await.unwrap(), membership(&[1], &[]));

        // Step 3: what cannot apply, what is malformed, and a shard not hosted here.
        let code = |answer: Result<ChangeReplicasResponse, Status>| answer.unwrap_err().code();
        assert_eq!(
            code(change(&service, SHARD, promote, 3).await),
            Code::FailedPrecondition,
            "not a learner"
        );
        assert_eq!(code(change(&service, SHARD, remove, 1).await), Code::FailedPrecondition, "the leader");
        let unspecified = change(&service, SHARD, ReplicaChange::Unspecified as i32, 2).await.unwrap_err();
        assert_eq!(unspecified.code(), Code::InvalidArgument);
        assert!(unspecified.message().starts_with("change:"), "{}", unspecified.message());
        assert_eq!(code(change(&service, SHARD, 42, 2).await), Code::InvalidArgument);
        let no_node = change(&service, SHARD, add, 0).await.unwrap_err();
        assert_eq!(no_node.code(), Code::InvalidArgument);
        assert!(no_node.message().starts_with("node_id:"), "{}", no_node.message());
        assert_eq!(code(change(&service, 7, add, 2).await), Code::Unavailable);
        drop(service);
        tokio::task::spawn_blocking(move || runtime.shutdown()).await.unwrap().unwrap();
    }

    #[test]
    fn membership_changes_already_in_effect_are_recognised() {
        let (voters, learners) = ([1, 2, 3], [4]);
        assert!(already_done(MembershipChange::AddLearner(4), &voters, &learners));
        assert!(already_done(MembershipChange::AddLearner(2), &voters, &learners));
        assert!(!already_done(MembershipChange::AddLearner(5), &voters, &learners));
        assert!(already_done(MembershipChange::PromoteLearner(2), &voters, &learners));
        assert!(!already_done(MembershipChange::PromoteLearner(4), &voters, &learners));
        assert!(already_done(MembershipChange::RemoveReplica(5), &voters, &learners));
        assert!(!already_done(MembershipChange::RemoveReplica(4), &voters, &learners));
    }
}
