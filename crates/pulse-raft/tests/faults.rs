//! Fault tests of a shard group over a `LocalNetwork`: a lagging replica catching up by
//! snapshot once the leader compacted past it, a learner added to a running group (caught up
//! by snapshot, promoted, then voting), a replica removed from the group and from its node
//! (no record left) that joins again fresh, and linearizable reads under a partition.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    RecordingStateMachine, apply_key, eventually, far_deadline, raft_keys, stored_commands, test_config,
    within,
};
use pulse_raft::{
    LocalNetwork, Membership, MembershipChange, ProposeError, RaftConfig, RaftError, RaftRuntime,
    RuntimeHandle, ShardRole,
};
use pulse_storage::{ColumnFamily, MemoryEngine, StorageEngine};

const SHARD: u64 = 1;

/// A runtime of the test cluster, with what the test inspects.
struct Node {
    handle: RuntimeHandle<u64>,
    engine: MemoryEngine,
    snapshots_installed: Arc<Mutex<Vec<(u64, u64)>>>,
}

struct Cluster {
    network: LocalNetwork,
    config: RaftConfig,
    nodes: BTreeMap<u64, Node>,
}

impl Cluster {
    /// Runtimes 1..=`voters` hosting SHARD, node 1 elected by an explicit campaign.
    async fn start(config: RaftConfig, voters: u64) -> Cluster {
        let mut cluster = Cluster { network: LocalNetwork::new(), config, nodes: BTreeMap::new() };
        let members: Vec<u64> = (1..=voters).collect();
        for &node_id in &members {
            let handle = cluster.start_node(node_id);
            within("add shard", handle.add_shard(SHARD, members.clone())).await.unwrap();
        }
        within("campaign", cluster.handle(1).campaign(SHARD)).await.unwrap();
        eventually("node 1 leads", || async { (cluster.leader().await == Some(1)).then_some(()) }).await;
        cluster
    }

    /// Starts runtime `node_id` on a fresh engine and connects it; hosts no shard yet.
    fn start_node(&mut self, node_id: u64) -> RuntimeHandle<u64> {
        let engine = MemoryEngine::new();
        let state_machine = RecordingStateMachine::new(engine.clone());
        let snapshots_installed = state_machine.snapshots_installed();
        let handle = RaftRuntime::start(
            node_id,
            self.config.clone(),
            engine.clone(),
            state_machine,
            self.network.transport(node_id),
        )
        .unwrap();
        self.network.register(&handle);
        self.nodes.insert(node_id, Node { handle: handle.clone(), engine, snapshots_installed });
        handle
    }

    fn handle(&self, node_id: u64) -> &RuntimeHandle<u64> {
        &self.nodes[&node_id].handle
    }

    fn engine(&self, node_id: u64) -> &MemoryEngine {
        &self.nodes[&node_id].engine
    }

    fn snapshots_installed(&self, node_id: u64) -> Vec<(u64, u64)> {
        self.nodes[&node_id].snapshots_installed.lock().unwrap().clone()
    }

    /// The node that currently leads SHARD, if any.
    async fn leader(&self) -> Option<u64> {
        for (&node_id, node) in &self.nodes {
            let status = node.handle.shard_status(SHARD).await.ok()?;
            if status.role == ShardRole::Leader {
                return Some(node_id);
            }
        }
        None
    }

    /// Proposes `count` commands through `leader`; returns the index of the last one.
    async fn propose_many(&self, leader: u64, prefix: &str, count: usize) -> u64 {
        let mut last = 0;
        for i in 0..count {
            let command = format!("{prefix}-{i}").into_bytes();
            last =
                within("propose", self.handle(leader).propose(SHARD, command, far_deadline())).await.unwrap();
        }
        last
    }

    /// Waits until `node_id` applied `index`.
    async fn await_applied(&self, node_id: u64, index: u64) {
        eventually(&format!("node {node_id} applies {index}"), || async {
            let status = self.handle(node_id).shard_status(SHARD).await.unwrap();
            (status.applied_index >= index).then_some(())
        })
        .await;
    }

    fn shutdown(&self) {
        for node in self.nodes.values() {
            node.handle.shutdown().unwrap();
        }
    }
}

/// Compacts early and keeps little: a follower 10 entries behind needs a snapshot.
fn compacting_config() -> RaftConfig {
    RaftConfig {
        compact_threshold_entries: 20,
        compact_keep_entries: 5,
        compact_max_lag_entries: 10,
        ..test_config()
    }
}

#[tokio::test]
async fn a_lagging_replica_catches_up_by_snapshot_after_the_leader_compacted_past_it() {
    let cluster = Cluster::start(compacting_config(), 3).await;
    let before = cluster.propose_many(1, "before", 5).await;
    cluster.await_applied(3, before).await;

    // Step 1: node 3 misses 60 entries; the leader compacts past it (bounded lag).
    cluster.network.isolate(3);
    let last = cluster.propose_many(1, "while-isolated", 60).await;
    let leader_status = within("status", cluster.handle(1).shard_status(SHARD)).await.unwrap();
    let lagging_status = within("status", cluster.handle(3).shard_status(SHARD)).await.unwrap();
    assert!(
        leader_status.first_index > lagging_status.applied_index + 1,
        "the leader compacted past node 3: {leader_status:?} vs {lagging_status:?}"
    );
    assert!(cluster.snapshots_installed(3).is_empty());

    // Step 2: healed, node 3 gets a snapshot, then the rest of the log.
    cluster.network.heal();
    cluster.await_applied(3, last).await;
    let after = cluster.propose_many(1, "after", 3).await;
    // A proposal returns once the leader applied it; each follower applies in its own time.
    for node_id in [2, 3] {
        cluster.await_applied(node_id, after).await;
    }

    let installed = cluster.snapshots_installed(3);
    assert!(!installed.is_empty(), "node 3 caught up by snapshot");
    assert!(installed.iter().all(|&(shard, index)| shard == SHARD && index > before));
    assert!(cluster.network.delivered_snapshots() >= 1);
    let leader_state = stored_commands(cluster.engine(1), SHARD);
    assert_eq!(leader_state.len(), 68);
    for node_id in [2, 3] {
        assert_eq!(stored_commands(cluster.engine(node_id), SHARD), leader_state, "node {node_id} diverged");
    }
    cluster.shutdown();
}

#[tokio::test]
async fn a_learner_catches_up_by_snapshot_is_promoted_and_then_votes() {
    let mut cluster = Cluster::start(compacting_config(), 3).await;
    let written = cluster.propose_many(1, "history", 40).await;
    let leader_status = within("status", cluster.handle(1).shard_status(SHARD)).await.unwrap();
    assert!(leader_status.first_index > 1, "the log was compacted: {leader_status:?}");

    // Step 1: node 4 joins empty, is added as a learner, and catches up by snapshot.
    let newcomer = cluster.start_node(4);
    within("join", newcomer.join_shard(SHARD)).await.unwrap();
    let membership = within(
        "add learner",
        cluster.handle(1).change_membership(SHARD, MembershipChange::AddLearner(4), far_deadline()),
    )
    .await
    .unwrap();
    assert_eq!(membership, Membership { voters: vec![1, 2, 3], learners: vec![4] });
    let again = within(
        "add learner twice",
        cluster.handle(1).change_membership(SHARD, MembershipChange::AddLearner(4), far_deadline()),
    )
    .await;
    assert!(matches!(again, Err(ProposeError::InvalidMembershipChange { .. })), "{again:?}");
    cluster.await_applied(4, written).await;
    assert!(!cluster.snapshots_installed(4).is_empty(), "the learner started from a snapshot");
    let learner_status = within("status", cluster.handle(4).shard_status(SHARD)).await.unwrap();
    assert_eq!(learner_status.role, ShardRole::Follower);
    assert_eq!(learner_status.learners, vec![4]);
    assert_eq!(stored_commands(cluster.engine(4), SHARD), stored_commands(cluster.engine(1), SHARD));

    // Step 2: promoted, it counts in the quorum: with node 3 cut off, commits need node 4.
    let membership = within(
        "promote",
        cluster.handle(1).change_membership(SHARD, MembershipChange::PromoteLearner(4), far_deadline()),
    )
    .await
    .unwrap();
    assert_eq!(membership, Membership { voters: vec![1, 2, 3, 4], learners: vec![] });
    cluster.network.isolate(3);
    let index = cluster.propose_many(1, "with-4-voting", 3).await;
    cluster.await_applied(4, index).await;
    cluster.await_applied(2, index).await;

    // Step 3: and without node 4 too, no quorum (2 of 4): a proposal times out.
    cluster.network.isolate(4);
    let stalled = within(
        "propose without quorum",
        cluster.handle(1).propose(SHARD, b"stalled".to_vec(), Instant::now() + Duration::from_millis(300)),
    )
    .await;
    // A timeout, or a step-down by check-quorum if this took over an election timeout.
    assert!(
        matches!(stalled, Err(ProposeError::Timeout { .. } | ProposeError::NotLeader { .. })),
        "{stalled:?}"
    );
    // Healed, the stalled entry commits after all (its proposer gave up waiting, not raft).
    cluster.network.heal();
    // (Node 1 may have stepped down meanwhile: check-quorum; the majority side holds the entry.)
    let leader = eventually("a leader", || cluster.leader()).await;
    let healed = cluster.propose_many(leader, "healed", 1).await;
    for node_id in [1, 2, 3, 4] {
        cluster.await_applied(node_id, healed).await;
    }
    let state = stored_commands(cluster.engine(leader), SHARD);
    assert!(state.iter().any(|(_, data)| data == b"stalled"), "the stalled entry commits once healed");
    for node_id in [1, 2, 3, 4] {
        assert_eq!(stored_commands(cluster.engine(node_id), SHARD), state, "node {node_id} diverged");
    }
    cluster.shutdown();
}

#[tokio::test]
async fn a_removed_replica_leaves_nothing_behind_and_joins_again_by_snapshot() {
    let mut cluster = Cluster::start(compacting_config(), 3).await;
    let written = cluster.propose_many(1, "history", 30).await;

    // Step 1: node 4 joins as a learner and catches up.
    let newcomer = cluster.start_node(4);
    within("join", newcomer.join_shard(SHARD)).await.unwrap();
    within(
        "add learner",
        cluster.handle(1).change_membership(SHARD, MembershipChange::AddLearner(4), far_deadline()),
    )
    .await
    .unwrap();
    cluster.await_applied(4, written).await;
    assert_eq!(cluster.snapshots_installed(4).len(), 1);
    assert!(!raft_keys(cluster.engine(4), SHARD).is_empty());

    // Step 2: the group drops node 4, then node 4 drops its replica: no record of it is left.
    let membership = within(
        "remove replica",
        cluster.handle(1).change_membership(SHARD, MembershipChange::RemoveReplica(4), far_deadline()),
    )
    .await
    .unwrap();
    assert_eq!(membership, Membership { voters: vec![1, 2, 3], learners: vec![] });
    within("remove shard", newcomer.remove_shard(SHARD)).await.unwrap();
    let engine = cluster.engine(4);
    assert_eq!(raft_keys(engine, SHARD), Vec::<Vec<u8>>::new(), "raft records of the removed replica");
    assert!(stored_commands(engine, SHARD).is_empty(), "state machine data of the removed replica");
    assert_eq!(engine.get(ColumnFamily::Meta, &apply_key(SHARD)).unwrap(), None);
    assert!(matches!(
        within("status", newcomer.shard_status(SHARD)).await,
        Err(RaftError::UnknownShard { shard_id: SHARD })
    ));
    assert!(matches!(
        within("remove twice", newcomer.remove_shard(SHARD)).await,
        Err(RaftError::UnknownShard { shard_id: SHARD })
    ));
    let refused = within("propose", newcomer.propose(SHARD, b"x".to_vec(), far_deadline())).await;
    assert_eq!(refused, Err(ProposeError::UnknownShard { shard_id: SHARD }));

    // Step 3: the group goes on; node 4 joins again, empty, and catches up by a new snapshot.
    let more = cluster.propose_many(1, "while-away", 10).await;
    within("join again", newcomer.join_shard(SHARD)).await.unwrap();
    let membership = within(
        "add learner again",
        cluster.handle(1).change_membership(SHARD, MembershipChange::AddLearner(4), far_deadline()),
    )
    .await
    .unwrap();
    assert_eq!(membership, Membership { voters: vec![1, 2, 3], learners: vec![4] });
    cluster.await_applied(4, more).await;
    let installed = cluster.snapshots_installed(4);
    assert_eq!(installed.len(), 2, "a fresh snapshot: {installed:?}");
    assert!(installed[1].1 >= more, "{installed:?}");
    let last = cluster.propose_many(1, "after", 3).await;
    cluster.await_applied(4, last).await;
    assert_eq!(stored_commands(cluster.engine(4), SHARD), stored_commands(cluster.engine(1), SHARD));
    cluster.shutdown();
}

#[tokio::test]
async fn a_leader_cut_off_from_the_majority_serves_no_linearizable_read() {
    // Short election timeout (300 ms): the majority elects a new leader by itself.
    let config = RaftConfig { election_ticks: 30, ..test_config() };
    let cluster = Cluster::start(config, 3).await;
    let before = cluster.propose_many(1, "before", 3).await;
    let read = within("read", cluster.handle(1).read_index(SHARD, far_deadline())).await.unwrap();
    assert!(read >= before);

    // Step 1: the old leader cannot confirm its leadership: no read index.
    cluster.network.isolate(1);
    let read = within(
        "read on the cut-off leader",
        cluster.handle(1).read_index(SHARD, Instant::now() + Duration::from_millis(500)),
    )
    .await;
    assert!(matches!(read, Err(ProposeError::Timeout { .. } | ProposeError::NotLeader { .. })), "{read:?}");

    // Step 2: the majority elects a leader that serves reads covering its writes.
    let new_leader =
        eventually("a new leader", || async { cluster.leader().await.filter(|&leader| leader != 1) }).await;
    let written = cluster.propose_many(new_leader, "after", 2).await;
    let read = within("read on the new leader", cluster.handle(new_leader).read_index(SHARD, far_deadline()))
        .await
        .unwrap();
    assert!(read >= written, "read index {read} < written {written}");
    let stale = within(
        "read on the old leader",
        cluster.handle(1).read_index(SHARD, Instant::now() + Duration::from_millis(300)),
    )
    .await;
    assert!(stale.is_err(), "{stale:?}");

    // Step 3: healed, the old leader follows and redirects reads.
    cluster.network.heal();
    cluster.await_applied(1, written).await;
    let redirected = within("read", cluster.handle(1).read_index(SHARD, far_deadline())).await;
    assert!(matches!(redirected, Err(ProposeError::NotLeader { .. })), "{redirected:?}");
    cluster.shutdown();
}
