//! Three runtimes over a `LocalNetwork`, one shard with three voters: election, replication,
//! redirection of proposals sent to a follower, and an isolated leader's proposals.

mod common;

use std::time::{Duration, Instant};

use common::{RecordingStateMachine, eventually, far_deadline, stored_commands, test_config, within};
use pulse_raft::{LocalNetwork, ProposeError, RaftConfig, RaftRuntime, RuntimeHandle, ShardRole};
use pulse_storage::MemoryEngine;

const SHARD: u64 = 1;
const NODES: [u64; 3] = [1, 2, 3];

struct Cluster {
    network: LocalNetwork,
    nodes: Vec<(RuntimeHandle<u64>, MemoryEngine)>,
}

impl Cluster {
    /// Three runtimes hosting SHARD, node 1 elected by an explicit campaign.
    async fn start(config: RaftConfig) -> Cluster {
        let network = LocalNetwork::new();
        let mut nodes = Vec::new();
        for node_id in NODES {
            let engine = MemoryEngine::new();
            let state_machine = RecordingStateMachine::new(engine.clone());
            let handle = RaftRuntime::start(
                node_id,
                config.clone(),
                engine.clone(),
                state_machine,
                network.transport(node_id),
            )
            .unwrap();
            network.register(&handle);
            within("add shard", handle.add_shard(SHARD, NODES.to_vec())).await.unwrap();
            nodes.push((handle, engine));
        }
        let cluster = Cluster { network, nodes };
        within("campaign", cluster.handle(1).campaign(SHARD)).await.unwrap();
        eventually("node 1 leads", || async {
            let status = cluster.handle(1).shard_status(SHARD).await.unwrap();
            (status.role == ShardRole::Leader).then_some(())
        })
        .await;
        cluster
    }

    fn handle(&self, node_id: u64) -> &RuntimeHandle<u64> {
        &self.nodes[(node_id - 1) as usize].0
    }

    fn engine(&self, node_id: u64) -> &MemoryEngine {
        &self.nodes[(node_id - 1) as usize].1
    }

    /// The node that currently leads SHARD, if any.
    async fn leader(&self) -> Option<u64> {
        for node_id in NODES {
            let status = self.handle(node_id).shard_status(SHARD).await.ok()?;
            if status.role == ShardRole::Leader {
                return Some(node_id);
            }
        }
        None
    }

    fn shutdown(&self) {
        for (handle, _) in &self.nodes {
            handle.shutdown().unwrap();
        }
    }
}

#[tokio::test]
async fn the_leader_replicates_to_every_node_and_followers_redirect() {
    let cluster = Cluster::start(test_config()).await;
    let mut last = 0;
    for i in 0..10u8 {
        last = within("propose", cluster.handle(1).propose(SHARD, vec![i], far_deadline())).await.unwrap();
    }

    for node_id in NODES {
        eventually("followers apply", || async {
            let status = cluster.handle(node_id).shard_status(SHARD).await.unwrap();
            (status.applied_index >= last).then_some(())
        })
        .await;
    }
    let leader_state = stored_commands(cluster.engine(1), SHARD);
    assert_eq!(leader_state.len(), 10);
    for node_id in [2, 3] {
        assert_eq!(stored_commands(cluster.engine(node_id), SHARD), leader_state, "node {node_id} diverged");
        let status = within("status", cluster.handle(node_id).shard_status(SHARD)).await.unwrap();
        assert_eq!((status.role, status.leader_id), (ShardRole::Follower, Some(1)));
    }

    let redirected = within("propose", cluster.handle(2).propose(SHARD, b"x".to_vec(), far_deadline())).await;
    assert_eq!(redirected, Err(ProposeError::NotLeader { shard_id: SHARD, leader_hint: Some(1) }));
    let read = within("read", cluster.handle(3).read_index(SHARD, far_deadline())).await;
    assert_eq!(read, Err(ProposeError::NotLeader { shard_id: SHARD, leader_hint: Some(1) }));
    let read_index = within("read", cluster.handle(1).read_index(SHARD, far_deadline())).await.unwrap();
    assert!(read_index >= last);
    assert!(cluster.network.delivered_messages() > 0);
    cluster.shutdown();
}

#[tokio::test]
async fn an_isolated_leader_times_out_proposals_and_fails_them_on_shutdown() {
    // A 5 s election timeout: the isolated leader keeps leading however slow the machine is.
    let cluster = Cluster::start(RaftConfig { election_ticks: 500, ..test_config() }).await;
    within("propose", cluster.handle(1).propose(SHARD, b"before".to_vec(), far_deadline())).await.unwrap();

    cluster.network.isolate(1);
    // The leader keeps believing it leads while these wait.
    let short =
        cluster.handle(1).propose(SHARD, b"short".to_vec(), Instant::now() + Duration::from_millis(100));
    let long = cluster.handle(1).propose(SHARD, b"long".to_vec(), far_deadline());
    assert_eq!(within("propose", short).await, Err(ProposeError::Timeout { shard_id: SHARD }));
    cluster.handle(1).shutdown().unwrap();
    assert_eq!(within("propose", long).await, Err(ProposeError::Stopped));
    assert!(cluster.network.dropped_messages() > 0);

    // Neither reached a quorum: no follower applied them.
    for node_id in [2, 3] {
        let stored = stored_commands(cluster.engine(node_id), SHARD);
        assert!(stored.iter().all(|(_, data)| data != b"short" && data != b"long"), "{stored:?}");
    }
    cluster.shutdown();
}

#[tokio::test]
async fn leadership_moves_with_a_transfer_and_proposals_follow_it() {
    let cluster = Cluster::start(test_config()).await;
    within("propose", cluster.handle(1).propose(SHARD, b"on 1".to_vec(), far_deadline())).await.unwrap();
    within("transfer", cluster.handle(1).transfer_leader(SHARD, 2)).await.unwrap();
    eventually("node 2 leads", || async { (cluster.leader().await == Some(2)).then_some(()) }).await;
    // Node 1 steps down on node 2's vote request, and learns who leads from its first append.
    eventually("node 1 knows node 2 leads", || async {
        let status = cluster.handle(1).shard_status(SHARD).await.unwrap();
        (status.leader_id == Some(2)).then_some(())
    })
    .await;

    let refused = within("propose", cluster.handle(1).propose(SHARD, b"x".to_vec(), far_deadline())).await;
    assert_eq!(refused, Err(ProposeError::NotLeader { shard_id: SHARD, leader_hint: Some(2) }));
    let index =
        within("propose", cluster.handle(2).propose(SHARD, b"on 2".to_vec(), far_deadline())).await.unwrap();
    for node_id in NODES {
        eventually("every node applies", || async {
            let status = cluster.handle(node_id).shard_status(SHARD).await.unwrap();
            (status.applied_index >= index).then_some(())
        })
        .await;
    }
    let expected = stored_commands(cluster.engine(2), SHARD);
    assert_eq!(expected.iter().map(|(_, data)| data.as_slice()).collect::<Vec<_>>(), [&b"on 1"[..], b"on 2"]);
    for node_id in [1, 3] {
        assert_eq!(stored_commands(cluster.engine(node_id), SHARD), expected);
    }
    cluster.shutdown();
}

#[tokio::test]
async fn a_deposed_leader_fails_its_pending_proposals_with_not_leader() {
    // Short election timeout (300 ms): the isolated leader steps down (check_quorum) and the
    // others elect a new leader by themselves.
    let config = RaftConfig { election_ticks: 30, ..test_config() };
    let cluster = Cluster::start(config).await;
    within("propose", cluster.handle(1).propose(SHARD, b"before".to_vec(), far_deadline())).await.unwrap();

    cluster.network.isolate(1);
    let pending = cluster.handle(1).propose(SHARD, b"orphan".to_vec(), far_deadline());
    let error = within("propose", pending).await.unwrap_err();
    assert!(matches!(error, ProposeError::NotLeader { shard_id: SHARD, .. }), "{error}");
    let new_leader =
        eventually("a new leader", || async { cluster.leader().await.filter(|&leader| leader != 1) }).await;

    cluster.network.heal();
    let index =
        within("propose", cluster.handle(new_leader).propose(SHARD, b"after".to_vec(), far_deadline()))
            .await
            .unwrap();
    for node_id in NODES {
        eventually("every node, node 1 included, catches up", || async {
            let status = cluster.handle(node_id).shard_status(SHARD).await.unwrap();
            (status.applied_index >= index).then_some(())
        })
        .await;
        let stored: Vec<Vec<u8>> =
            stored_commands(cluster.engine(node_id), SHARD).into_iter().map(|(_, data)| data).collect();
        assert_eq!(
            stored,
            [b"before".to_vec(), b"after".to_vec()],
            "node {node_id}: the orphan never applies"
        );
    }
    cluster.shutdown();
}

#[tokio::test]
async fn lease_reads_answer_on_the_leader_and_stop_during_a_transfer() {
    // A 5 s election timeout: raft abandons a pending transfer after it, however slow the machine.
    let cluster =
        Cluster::start(RaftConfig { lease_reads: true, election_ticks: 500, ..test_config() }).await;
    let last = within("propose", cluster.handle(1).propose(SHARD, vec![1], far_deadline())).await.unwrap();
    let read_index = within("read", cluster.handle(1).read_index(SHARD, far_deadline())).await.unwrap();
    assert!(read_index >= last, "a lease read covers every acknowledged write");
    let follower = within("read", cluster.handle(2).read_index(SHARD, far_deadline())).await;
    assert!(matches!(follower, Err(ProposeError::NotLeader { .. })));

    // While a transfer to an isolated node is pending, the old leader serves no lease read.
    cluster.network.isolate(3);
    within("transfer", cluster.handle(1).transfer_leader(SHARD, 3)).await.unwrap();
    let during = within("read", cluster.handle(1).read_index(SHARD, far_deadline())).await;
    assert_eq!(during, Err(ProposeError::NotLeader { shard_id: SHARD, leader_hint: Some(3) }));
    cluster.network.heal();
    cluster.shutdown();
}

/// Polls `probe` every 10 ms for up to 20 s (an election after a hibernating leader's node goes
/// silent takes a silence and an election timeout, ~3 s with `test_config`).
async fn eventually_slow<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..2_000 {
        if let Some(value) = probe().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not reached in 20 s");
}

async fn all_hibernating(cluster: &Cluster, nodes: &[u64]) -> Option<()> {
    for &node_id in nodes {
        if !cluster.handle(node_id).shard_status(SHARD).await.ok()?.hibernating {
            return None;
        }
    }
    Some(())
}

fn replica_ticks(cluster: &Cluster) -> u64 {
    NODES.iter().map(|&node_id| cluster.handle(node_id).stats().snapshot().replica_ticks).sum()
}

#[tokio::test]
async fn idle_replicas_stop_ticking_wake_on_demand_and_elect_when_the_leaders_node_dies() {
    let cluster = Cluster::start(test_config()).await;
    within("propose", cluster.handle(1).propose(SHARD, b"a".to_vec(), far_deadline())).await.unwrap();
    eventually("every replica hibernates", || all_hibernating(&cluster, &NODES)).await;

    // Asleep, no replica ticks, although the Ready loops keep running rounds.
    let ticks = replica_ticks(&cluster);
    let rounds = cluster.handle(1).stats().snapshot().rounds;
    eventually("30 more rounds", || async {
        (cluster.handle(1).stats().snapshot().rounds >= rounds + 30).then_some(())
    })
    .await;
    assert_eq!(replica_ticks(&cluster), ticks, "a hibernating replica ticked");
    assert_eq!(cluster.leader().await, Some(1));

    // A proposal wakes the group, and a write goes through as usual; so does a read.
    let index =
        within("propose", cluster.handle(1).propose(SHARD, b"b".to_vec(), far_deadline())).await.unwrap();
    let read = within("read", cluster.handle(1).read_index(SHARD, far_deadline())).await.unwrap();
    assert!(read >= index);
    assert!(cluster.handle(1).stats().snapshot().wakeups >= 1);
    eventually("hibernates again", || all_hibernating(&cluster, &NODES)).await;

    // The leader's node goes silent: the followers wake and elect one of them.
    cluster.network.isolate(1);
    let new_leader = eventually_slow("a follower is elected", || async {
        for node_id in [2, 3] {
            let status = cluster.handle(node_id).shard_status(SHARD).await.ok()?;
            if status.role == ShardRole::Leader {
                return Some(node_id);
            }
        }
        None
    })
    .await;
    let written = within("propose", cluster.handle(new_leader).propose(SHARD, b"c".to_vec(), far_deadline()))
        .await
        .unwrap();
    assert!(written > index);

    // Healed, the old leader (asleep, it never noticed) learns of the new term and follows.
    cluster.network.heal();
    eventually_slow("the old leader follows", || async {
        let status = cluster.handle(1).shard_status(SHARD).await.ok()?;
        (status.role == ShardRole::Follower && status.applied_index >= written).then_some(())
    })
    .await;
    cluster.shutdown();
}

#[tokio::test]
async fn with_lease_reads_a_group_never_hibernates() {
    let cluster = Cluster::start(RaftConfig { lease_reads: true, ..test_config() }).await;
    within("propose", cluster.handle(1).propose(SHARD, b"a".to_vec(), far_deadline())).await.unwrap();
    let ticks = cluster.handle(1).stats().snapshot().replica_ticks;
    // 20 quiet ticks would hibernate the group; give it three times as many.
    eventually("60 more ticks", || async {
        (cluster.handle(1).stats().snapshot().replica_ticks >= ticks + 60).then_some(())
    })
    .await;
    for node_id in NODES {
        assert_eq!(cluster.handle(node_id).stats().snapshot().hibernations, 0, "node {node_id} hibernated");
    }
    cluster.shutdown();
}
