//! [`Scheduler`]: the coordinator leader's placement loop — replica moves for scale out,
//! drains, node loss and balance, and leader balance.
//!
//! Every round (`schedule_interval_ms`) the leader:
//! 1. **advances each move in progress** by one step, chosen by [`next_step`] from what the
//!    shard's leader last reported of its raft membership (heartbeats) — never from a remembered
//!    step, so a new coordinator leader resumes any move where the cluster really is, and
//!    repeating a step is harmless (`ShardAdmin.ChangeReplicas` is idempotent):
//!    ```text
//!    BeginMove (metadata lists `to` as learner: `to` hosts an empty replica)
//!      → AddLearner(to) → `to` catches up from a snapshot → Promote(to)
//!      → TransferLeader off `from` if it leads → Remove(from) → SetReplicas + EndMove
//!    ```
//!    (`from` then sees it is no longer listed and deletes its replica.)
//! 2. **starts new moves**, at most `max_concurrent_moves` in flight ([`plan_moves`]): first
//!    replicas on down, draining or removed nodes, then shards short of replicas, then replica
//!    balance (a node more than one replica above another gives one to it);
//! 3. with no move in flight, **balances leaders** one transfer at a time
//!    ([`plan_leader_transfer`]), draining nodes first;
//! 4. forgets nodes marked for removal once they hold nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use pulse_proto::internal::v1::{
    BeginMoveCommand, ClusterMetadata, EndMoveCommand, RemoveNodeCommand, ReplicaChange, ReplicaMove,
    SetReplicasCommand, ShardDescriptor, metadata_command,
};
use pulse_proto::v1;
use pulse_proto::v1::cluster_service_server::ClusterService;
use tokio::sync::watch;
use tonic::{Request, Status};
use tracing::{debug, error, info, warn};

use super::cluster_gateway::ClusterServiceGateway;
use super::coordinator::Coordinator;
use super::metadata::holds_replicas;
use super::router::Router;
use super::shard_admin::change_replicas;
use crate::metrics;

/// How far (in raft entries) a learner may trail the leader's commit index and be promoted:
/// it has installed its snapshot and follows the log.
const PROMOTE_WITHIN_ENTRIES: u64 = 1_000;
/// Pause after a leader-balancing transfer, so that the leaders' next heartbeats show it
/// before the next one is planned.
const LEADER_BALANCE_PAUSE: Duration = Duration::from_secs(3);
/// A round taking longer than this is logged: some step waited on an unanswered call.
const SLOW_ROUND: Duration = Duration::from_secs(5);

/// What the shards' leaders and replicas last reported (the coordinator leader's soft state).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    /// Nodes that heartbeated within the down timeout.
    pub live: BTreeSet<u64>,
    /// Per shard, its leader's report.
    pub shards: HashMap<u64, ShardReport>,
    /// Raft index applied by each `(node, shard)` replica.
    pub applied: HashMap<(u64, u64), u64>,
}

/// A shard leader's view of its group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardReport {
    /// The leader's node.
    pub leader: u64,
    /// Voters, ascending.
    pub voters: Vec<u64>,
    /// Learners, ascending.
    pub learners: Vec<u64>,
    /// The leader's commit index.
    pub commit_index: u64,
}

impl ShardReport {
    fn is_member(&self, node_id: u64) -> bool {
        self.voters.contains(&node_id) || self.learners.contains(&node_id)
    }
}

/// The next step of a move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do this round (waiting for a report, a snapshot, an election).
    Wait(&'static str),
    /// Ask the shard's leader for a raft membership change.
    Change(ReplicaChange, u64),
    /// Hand the shard's leadership to this voter.
    TransferLeader(u64),
    /// Record the observed membership in the metadata (the move goes on).
    SetReplicas {
        /// Voters.
        voters: Vec<u64>,
        /// Learners.
        learners: Vec<u64>,
    },
    /// Record the final membership and end the move.
    Finish {
        /// Voters.
        voters: Vec<u64>,
        /// Learners.
        learners: Vec<u64>,
    },
    /// The target died before being promoted: take it out again and end the move (a later
    /// round plans a new one).
    Abandon,
}

/// The step that brings `mv` forward, from the shard's metadata and the observation.
pub fn next_step(mv: &ReplicaMove, shard: &ShardDescriptor, observed: &Observation) -> Step {
    let Some(report) = observed.shards.get(&mv.shard_id) else {
        return Step::Wait("no leader reported yet");
    };
    let (to, from) = (mv.to_node, mv.from_node);
    if !observed.live.contains(&to) && !report.voters.contains(&to) {
        return if report.is_member(to) { Step::Change(ReplicaChange::Remove, to) } else { Step::Abandon };
    }
    if !report.is_member(to) {
        return Step::Change(ReplicaChange::AddLearner, to);
    }
    if report.learners.contains(&to) {
        let applied = observed.applied.get(&(to, mv.shard_id)).copied().unwrap_or(0);
        if applied == 0 || applied + PROMOTE_WITHIN_ENTRIES < report.commit_index {
            return Step::Wait("the new replica is catching up");
        }
        return Step::Change(ReplicaChange::Promote, to);
    }
    let listed_voter = shard.replicas.iter().any(|r| r.node_id == to && !r.learner);
    if !listed_voter {
        return Step::SetReplicas { voters: report.voters.clone(), learners: report.learners.clone() };
    }
    if from != 0 && report.is_member(from) {
        if report.leader == from {
            return Step::TransferLeader(to);
        }
        return Step::Change(ReplicaChange::Remove, from);
    }
    Step::Finish { voters: report.voters.clone(), learners: report.learners.clone() }
}

/// Nodes that may receive replicas: live, neither draining nor being removed.
fn eligible_nodes(metadata: &ClusterMetadata, observed: &Observation) -> Vec<u64> {
    metadata
        .nodes
        .iter()
        .filter(|n| observed.live.contains(&n.node_id) && !n.draining && !n.removing)
        .map(|n| n.node_id)
        .collect()
}

/// Replicas listed per node (learners and move targets included).
fn replica_counts(metadata: &ClusterMetadata) -> BTreeMap<u64, usize> {
    let mut counts: BTreeMap<u64, usize> = metadata.nodes.iter().map(|n| (n.node_id, 0)).collect();
    for replica in metadata.shards.iter().flat_map(|s| &s.replicas) {
        *counts.entry(replica.node_id).or_default() += 1;
    }
    counts
}

/// Up to `budget` new moves, most urgent first: replicas to evacuate (down, draining or removed
/// nodes), shards short of `replication_factor` replicas, then replica balance. Shards with a
/// move already are left alone; each target is the eligible node with the fewest replicas not
/// holding the shard.
pub fn plan_moves(
    metadata: &ClusterMetadata,
    observed: &Observation,
    replication_factor: usize,
    budget: usize,
) -> Vec<ReplicaMove> {
    let eligible = eligible_nodes(metadata, observed);
    let mut counts = replica_counts(metadata);
    let mut busy: BTreeSet<u64> = metadata.moves.iter().map(|m| m.shard_id).collect();
    let mut moves = Vec::new();
    let evacuate = |node_id: u64| -> Option<&'static str> {
        let node = metadata.nodes.iter().find(|n| n.node_id == node_id)?;
        if node.draining || node.removing {
            Some("drain")
        } else if !observed.live.contains(&node_id) {
            Some("down")
        } else {
            None
        }
    };
    let pick_target = |shard: &ShardDescriptor, counts: &BTreeMap<u64, usize>| {
        eligible
            .iter()
            .filter(|&&node| !shard.replicas.iter().any(|r| r.node_id == node))
            .min_by_key(|&&node| (counts.get(&node).copied().unwrap_or(0), node))
            .copied()
    };

    for shard in &metadata.shards {
        if moves.len() >= budget {
            return moves;
        }
        if busy.contains(&shard.shard_id) {
            continue;
        }
        let leaving = shard.replicas.iter().find_map(|r| evacuate(r.node_id).map(|why| (r.node_id, why)));
        let short = shard.replicas.len() < replication_factor;
        let (from_node, reason) = match (leaving, short) {
            (Some((node, why)), _) => (node, why),
            (None, true) => (0, "under-replicated"),
            (None, false) => continue,
        };
        let Some(to_node) = pick_target(shard, &counts) else { continue };
        *counts.entry(to_node).or_default() += 1;
        busy.insert(shard.shard_id);
        moves.push(ReplicaMove { shard_id: shard.shard_id, from_node, to_node, reason: reason.to_owned() });
    }

    // Balance: the fullest eligible node gives a shard to the emptiest while they differ by 2+.
    while moves.len() < budget {
        let Some((&fullest, &most)) = eligible
            .iter()
            .map(|n| (n, &counts[n]))
            .max_by_key(|&(n, count)| (*count, std::cmp::Reverse(*n)))
        else {
            break;
        };
        let Some((&emptiest, &least)) =
            eligible.iter().map(|n| (n, &counts[n])).min_by_key(|&(n, count)| (*count, *n))
        else {
            break;
        };
        if most < least + 2 {
            break;
        }
        let candidate = metadata.shards.iter().find(|s| {
            !busy.contains(&s.shard_id)
                && s.replicas.iter().any(|r| r.node_id == fullest)
                && !s.replicas.iter().any(|r| r.node_id == emptiest)
        });
        let Some(shard) = candidate else { break };
        *counts.entry(fullest).or_default() -= 1;
        *counts.entry(emptiest).or_default() += 1;
        busy.insert(shard.shard_id);
        moves.push(ReplicaMove {
            shard_id: shard.shard_id,
            from_node: fullest,
            to_node: emptiest,
            reason: "balance".to_owned(),
        });
    }
    moves
}

/// One leader transfer that evens out leaders: off a draining node first, else from a leader
/// to a voter of the same shard leading at least two fewer shards (the widest such gap).
/// `None` when balanced.
pub fn plan_leader_transfer(metadata: &ClusterMetadata, observed: &Observation) -> Option<(u64, u64)> {
    let eligible = eligible_nodes(metadata, observed);
    let mut leaders: BTreeMap<u64, usize> = eligible.iter().map(|&n| (n, 0)).collect();
    for report in observed.shards.values() {
        if let Some(count) = leaders.get_mut(&report.leader) {
            *count += 1;
        }
    }
    let voters_of =
        |shard_id: u64| observed.shards.get(&shard_id).map(|r| r.voters.clone()).unwrap_or_default();
    let mut shards: Vec<(&u64, &ShardReport)> = observed.shards.iter().collect();
    shards.sort_by_key(|(id, _)| **id);
    // Leaders on nodes that must give them up.
    for &(&shard_id, report) in &shards {
        if eligible.contains(&report.leader) || !observed.live.contains(&report.leader) {
            continue;
        }
        let to = voters_of(shard_id)
            .into_iter()
            .filter(|v| leaders.contains_key(v))
            .min_by_key(|v| (leaders[v], *v));
        if let Some(to) = to {
            return Some((shard_id, to));
        }
    }
    // The transfer that narrows the widest gap between a leader and one of its voters.
    let mut best: Option<(usize, u64, u64)> = None;
    for &(&shard_id, report) in &shards {
        let Some(&from_count) = leaders.get(&report.leader) else { continue };
        for voter in report.voters.iter().filter(|v| **v != report.leader) {
            let Some(&to_count) = leaders.get(voter) else { continue };
            let gap = from_count.saturating_sub(to_count);
            if gap >= 2 && best.is_none_or(|(widest, _, _)| gap > widest) {
                best = Some((gap, shard_id, *voter));
            }
        }
    }
    best.map(|(_, shard_id, to)| (shard_id, to))
}

/// The placement loop of the coordinator leader (see the module docs).
pub struct Scheduler {
    coordinator: Coordinator,
    router: Arc<Router>,
    cluster: ClusterServiceGateway,
    interval: Duration,
    request_timeout: Duration,
    max_concurrent_moves: usize,
    replication_factor: usize,
    /// When the last leader-balancing transfer was made.
    last_leader_transfer: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl Scheduler {
    /// A scheduler acting through `coordinator` (metadata), `router` and `cluster` (calls to
    /// the shards' leaders).
    pub fn new(
        coordinator: Coordinator,
        router: Arc<Router>,
        cluster: ClusterServiceGateway,
        interval: Duration,
        request_timeout: Duration,
        max_concurrent_moves: u32,
    ) -> Self {
        let replication_factor = coordinator.replication_factor();
        Self {
            coordinator,
            router,
            cluster,
            interval,
            request_timeout,
            max_concurrent_moves: max_concurrent_moves as usize,
            replication_factor,
            last_leader_transfer: std::sync::Mutex::default(),
        }
    }

    /// Runs a round every interval while this coordinator leads, until `stopped` changes.
    pub async fn run(self, mut stopped: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let mut ticker = tokio::time::interval(this.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stopped.changed() => return,
            }
            if !this.coordinator.is_leader().await || !this.coordinator.has_full_view() {
                continue;
            }
            let started = tokio::time::Instant::now();
            if let Err(status) = this.round().await {
                debug!(%status, "scheduler round stopped early");
            }
            if started.elapsed() > SLOW_ROUND {
                warn!(took = ?started.elapsed(), "slow scheduler round: a step waited for its deadline");
            }
        }
    }

    /// One round: advance moves (each move's step in its own task, so that a step waiting for
    /// its deadline holds no other move back), start new ones, balance leaders, forget empty
    /// removed nodes.
    async fn round(self: &Arc<Self>) -> Result<(), Status> {
        let metadata = self.coordinator.metadata();
        let observed = self.coordinator.observe();
        let mut steps = tokio::task::JoinSet::new();
        for mv in metadata.moves.iter().cloned() {
            let Some(shard) = metadata.shards.iter().find(|s| s.shard_id == mv.shard_id) else {
                self.propose(metadata_command::Command::EndMove(EndMoveCommand { shard_id: mv.shard_id }))
                    .await?;
                continue;
            };
            let step = next_step(&mv, shard, &observed);
            let this = self.clone();
            steps.spawn(async move {
                match this.execute(&mv, &step).await {
                    Ok(()) => {}
                    // Elections, a pending change, a leader not known yet: routine while moving.
                    Err(status) if status.code() == tonic::Code::Unavailable => {
                        debug!(shard_id = mv.shard_id, ?step, %status, "move step failed; retried next round");
                    }
                    Err(status) => {
                        warn!(shard_id = mv.shard_id, ?step, %status, "move step failed; retried next round")
                    }
                }
            });
        }
        while let Some(joined) = steps.join_next().await {
            if let Err(error) = joined {
                error!(%error, "a move step's task failed");
            }
        }

        let metadata = self.coordinator.metadata();
        let budget = self.max_concurrent_moves.saturating_sub(metadata.moves.len());
        for mv in plan_moves(&metadata, &observed, self.replication_factor, budget) {
            info!(shard_id = mv.shard_id, from = mv.from_node, to = mv.to_node, reason = %mv.reason, "replica move started");
            self.propose(metadata_command::Command::BeginMove(BeginMoveCommand { r#move: Some(mv) })).await?;
            metrics::replica_move("started");
        }

        let metadata = self.coordinator.metadata();
        let paused = self
            .last_leader_transfer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() < LEADER_BALANCE_PAUSE);
        if metadata.moves.is_empty()
            && !paused
            && let Some((shard_id, to)) = plan_leader_transfer(&metadata, &observed)
        {
            info!(shard_id, to, "balancing leaders");
            metrics::leader_transfer();
            *self.last_leader_transfer.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some(tokio::time::Instant::now());
            self.transfer_leader(shard_id, to).await?;
        }

        for node in metadata.nodes.iter().filter(|n| n.removing && !holds_replicas(&metadata, n.node_id)) {
            info!(node_id = node.node_id, "removed node forgotten: it holds no replica anymore");
            self.propose(metadata_command::Command::RemoveNode(RemoveNodeCommand { node_id: node.node_id }))
                .await?;
        }
        Ok(())
    }

    async fn execute(&self, mv: &ReplicaMove, step: &Step) -> Result<(), Status> {
        let shard_id = mv.shard_id;
        match step {
            Step::Wait(why) => debug!(shard_id, why, "move waiting"),
            Step::Change(change, node_id) => {
                info!(shard_id, ?change, node_id, "move step: membership change");
                change_replicas(&self.router, shard_id, *change, *node_id, self.request_timeout).await?;
            }
            Step::TransferLeader(to) => {
                info!(shard_id, to, "move step: leadership off the leaving replica");
                self.transfer_leader(shard_id, *to).await?;
            }
            Step::SetReplicas { voters, learners } => {
                self.set_replicas(shard_id, voters, learners).await?;
            }
            Step::Finish { voters, learners } => {
                self.set_replicas(shard_id, voters, learners).await?;
                self.propose(metadata_command::Command::EndMove(EndMoveCommand { shard_id })).await?;
                info!(shard_id, from = mv.from_node, to = mv.to_node, "replica move finished");
                metrics::replica_move("finished");
            }
            Step::Abandon => {
                warn!(shard_id, to = mv.to_node, "move abandoned: its target is down");
                metrics::replica_move("abandoned");
                self.propose(metadata_command::Command::EndMove(EndMoveCommand { shard_id })).await?;
                let observed = self.coordinator.observe();
                if let Some(report) = observed.shards.get(&shard_id) {
                    self.set_replicas(shard_id, &report.voters, &report.learners).await?;
                }
            }
        }
        Ok(())
    }

    async fn set_replicas(&self, shard_id: u64, voters: &[u64], learners: &[u64]) -> Result<(), Status> {
        self.propose(metadata_command::Command::SetReplicas(SetReplicasCommand {
            shard_id,
            voters: voters.to_vec(),
            learners: learners.to_vec(),
        }))
        .await
    }

    async fn transfer_leader(&self, shard_id: u64, to_node_id: u64) -> Result<(), Status> {
        self.cluster
            .transfer_leader(Request::new(v1::TransferLeaderRequest { shard_id, to_node_id }))
            .await?;
        Ok(())
    }

    async fn propose(&self, command: metadata_command::Command) -> Result<(), Status> {
        match self.coordinator.propose_metadata(command).await? {
            super::MetadataOutput::Refused(reason) => Err(Status::failed_precondition(reason)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use pulse_proto::internal::v1::{NodeRecord, ReplicaDescriptor};

    use super::*;

    fn node(node_id: u64) -> NodeRecord {
        NodeRecord { node_id, address: format!("n{node_id}:1"), ..NodeRecord::default() }
    }

    fn shard(shard_id: u64, voters: &[u64]) -> ShardDescriptor {
        ShardDescriptor {
            shard_id,
            replicas: voters
                .iter()
                .map(|&node_id| ReplicaDescriptor { node_id, address: String::new(), learner: false })
                .collect(),
            ..ShardDescriptor::default()
        }
    }

    fn cluster(nodes: &[u64], shards: &[&[u64]]) -> ClusterMetadata {
        ClusterMetadata {
            nodes: nodes.iter().map(|&n| node(n)).collect(),
            shards: shards.iter().enumerate().map(|(i, voters)| shard(i as u64 + 1, voters)).collect(),
            ..ClusterMetadata::default()
        }
    }

    fn observe(metadata: &ClusterMetadata, live: &[u64]) -> Observation {
        Observation {
            live: live.iter().copied().collect(),
            shards: metadata
                .shards
                .iter()
                .map(|s| {
                    let voters: Vec<u64> =
                        s.replicas.iter().filter(|r| !r.learner).map(|r| r.node_id).collect();
                    (
                        s.shard_id,
                        ShardReport { leader: voters[0], voters, learners: vec![], commit_index: 10 },
                    )
                })
                .collect(),
            applied: HashMap::new(),
        }
    }

    #[test]
    fn a_move_walks_learner_catch_up_promote_transfer_remove_finish() {
        let mv = ReplicaMove { shard_id: 1, from_node: 1, to_node: 4, reason: "balance".into() };
        let mut metadata = cluster(&[1, 2, 3, 4], &[&[1, 2, 3]]);
        metadata.shards[0].replicas.push(ReplicaDescriptor {
            node_id: 4,
            address: String::new(),
            learner: true,
        });
        let mut observed = observe(&cluster(&[1, 2, 3, 4], &[&[1, 2, 3]]), &[1, 2, 3, 4]);
        let shard = metadata.shards[0].clone();

        assert_eq!(next_step(&mv, &shard, &observed), Step::Change(ReplicaChange::AddLearner, 4));
        observed.shards.get_mut(&1).unwrap().learners = vec![4];
        assert_eq!(next_step(&mv, &shard, &observed), Step::Wait("the new replica is catching up"));
        observed.applied.insert((4, 1), 10);
        assert_eq!(next_step(&mv, &shard, &observed), Step::Change(ReplicaChange::Promote, 4));
        let report = observed.shards.get_mut(&1).unwrap();
        report.learners.clear();
        report.voters = vec![1, 2, 3, 4];
        assert_eq!(
            next_step(&mv, &shard, &observed),
            Step::SetReplicas { voters: vec![1, 2, 3, 4], learners: vec![] },
            "the metadata learns of the promotion first"
        );
        let mut promoted = shard.clone();
        promoted.replicas.last_mut().unwrap().learner = false;
        assert_eq!(next_step(&mv, &promoted, &observed), Step::TransferLeader(4), "node 1 leads");
        observed.shards.get_mut(&1).unwrap().leader = 2;
        assert_eq!(next_step(&mv, &promoted, &observed), Step::Change(ReplicaChange::Remove, 1));
        observed.shards.get_mut(&1).unwrap().voters = vec![2, 3, 4];
        assert_eq!(
            next_step(&mv, &promoted, &observed),
            Step::Finish { voters: vec![2, 3, 4], learners: vec![] }
        );
    }

    #[test]
    fn a_move_to_a_dead_node_is_undone_and_abandoned() {
        let mv = ReplicaMove { shard_id: 1, from_node: 1, to_node: 4, reason: "balance".into() };
        let metadata = cluster(&[1, 2, 3, 4], &[&[1, 2, 3]]);
        let mut observed = observe(&metadata, &[1, 2, 3]);
        observed.shards.get_mut(&1).unwrap().learners = vec![4];
        assert_eq!(next_step(&mv, &metadata.shards[0], &observed), Step::Change(ReplicaChange::Remove, 4));
        observed.shards.get_mut(&1).unwrap().learners.clear();
        assert_eq!(next_step(&mv, &metadata.shards[0], &observed), Step::Abandon);
    }

    /// Plays planned moves to their end, round after round, until the plan is empty.
    fn settle(metadata: &mut ClusterMetadata, live: &[u64], budget: usize) -> Vec<ReplicaMove> {
        let mut all = Vec::new();
        for _ in 0..20 {
            let observed = observe(metadata, live);
            let moves = plan_moves(metadata, &observed, 3, budget);
            if moves.is_empty() {
                return all;
            }
            for mv in &moves {
                let shard = metadata.shards.iter_mut().find(|s| s.shard_id == mv.shard_id).unwrap();
                shard.replicas.retain(|r| r.node_id != mv.from_node);
                shard.replicas.push(ReplicaDescriptor {
                    node_id: mv.to_node,
                    address: String::new(),
                    learner: false,
                });
            }
            all.extend(moves);
        }
        panic!("the plan never settles: {all:?}");
    }

    #[test]
    fn new_nodes_receive_replicas_until_balanced_within_one() {
        let mut metadata = cluster(&[1, 2, 3], &[&[1u64, 2, 3][..]; 8]);
        metadata.nodes.extend([node(4), node(5)]);
        let observed = observe(&metadata, &[1, 2, 3, 4, 5]);
        assert_eq!(plan_moves(&metadata, &observed, 3, 2).len(), 2, "the budget caps moves in flight");
        let first = plan_moves(&metadata, &observed, 3, 64);
        let shards: BTreeSet<u64> = first.iter().map(|m| m.shard_id).collect();
        assert_eq!(shards.len(), first.len(), "one move per shard at a time");

        let moves = settle(&mut metadata, &[1, 2, 3, 4, 5], 4);
        assert!(moves.iter().all(|m| [4, 5].contains(&m.to_node) && m.reason == "balance"), "{moves:?}");
        // 24 replicas over 5 nodes: 4 or 5 each, so 9 moves, no more.
        assert_eq!(moves.len(), 9, "{moves:?}");
        let counts = replica_counts(&metadata);
        let (min, max) = (counts.values().min().unwrap(), counts.values().max().unwrap());
        assert!(max - min <= 1, "{counts:?}");
        assert!(metadata.shards.iter().all(|s| {
            let nodes: BTreeSet<u64> = s.replicas.iter().map(|r| r.node_id).collect();
            nodes.len() == 3
        }));
    }

    #[test]
    fn drained_and_down_nodes_are_evacuated_first_onto_nodes_without_the_shard() {
        let mut metadata = cluster(&[1, 2, 3, 4], &[&[1, 2, 3], &[2, 3, 4], &[1, 3, 4]]);
        metadata.nodes[3].draining = true;
        let observed = observe(&metadata, &[1, 2, 3, 4]);
        let moves = plan_moves(&metadata, &observed, 3, 64);
        let drains: Vec<(u64, u64, u64)> = moves
            .iter()
            .filter(|m| m.reason == "drain")
            .map(|m| (m.shard_id, m.from_node, m.to_node))
            .collect();
        assert_eq!(drains, [(2, 4, 1), (3, 4, 2)]);

        let metadata = cluster(&[1, 2, 3, 4], &[&[1, 2, 3], &[2, 3, 4]]);
        let observed = observe(&metadata, &[1, 2, 3]);
        let moves = plan_moves(&metadata, &observed, 3, 64);
        assert_eq!(moves.len(), 1);
        assert_eq!((moves[0].shard_id, moves[0].from_node, moves[0].to_node), (2, 4, 1));
        assert_eq!(moves[0].reason, "down");

        let settled = cluster(&[1, 2, 3], &[&[1u64, 2, 3][..]; 4]);
        assert!(plan_moves(&settled, &observe(&settled, &[1, 2, 3]), 3, 64).is_empty());
    }

    #[test]
    fn leaders_are_evened_out_and_moved_off_draining_nodes() {
        let metadata = cluster(&[1, 2, 3], &[&[1, 2, 3], &[1, 2, 3], &[1, 2, 3]]);
        let observed = observe(&metadata, &[1, 2, 3]);
        assert_eq!(plan_leader_transfer(&metadata, &observed), Some((1, 2)), "node 1 leads all three");
        let mut observed = observed;
        observed.shards.get_mut(&2).unwrap().leader = 2;
        observed.shards.get_mut(&3).unwrap().leader = 3;
        assert_eq!(plan_leader_transfer(&metadata, &observed), None);

        let mut draining = metadata.clone();
        draining.nodes[2].draining = true;
        assert_eq!(plan_leader_transfer(&draining, &observed), Some((3, 1)));
    }
}
