//! The elastic cluster (issue 6) with real `pulsed` processes on loopback: the coordinator's
//! scheduler moves replicas while clients keep working.
//!
//! - `scale_out_from_3_to_5_nodes_then_drain_back_to_3_under_load`: two nodes join a 3-node
//!   cluster under a mixed load (ingest + linearizable reads): they receive replicas until
//!   replicas and leaders are balanced within ±1; then two of the original nodes are drained
//!   (one with `pulsectl cluster drain`), removed and stopped. No client request fails, every
//!   acknowledged event is there exactly once, and every replica is equal (CheckConsistency).
//! - `a_node_lost_for_good_has_its_replicas_recreated_on_the_others`: SIGKILL one node of 4
//!   under load: once it is down (`node_down_after_ms`, 4 s here) its replicas are re-created
//!   on the other three within a bounded time, nothing acknowledged is lost; when it comes
//!   back it is UP again and gets replicas back.
//! - `a_scale_out_completes_across_a_coordinator_leader_kill`: three coordinators; a node joins,
//!   the coordinator leader is SIGKILLed while the moves run, and the new leader finishes them.
//!
//! The coordinators run with a config file that shortens the scheduler's and the failure
//! detector's timings; everything else is the default. Every wait is bounded (the cluster is
//! other processes: there is no signal to wait on, so state is polled).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pulse_proto::v1;
use pulse_proto::v1::activity_service_client::ActivityServiceClient;
use pulse_proto::v1::cluster_service_client::ClusterServiceClient;
use pulse_tests::cluster::{
    CLUSTER_WAIT, args, connect, coordinator_leader, start_node, wait_consistent, wait_for_state,
};
use pulse_tests::process::{PulsedProcess, free_address, pulsectl_binary};
use pulse_tests::totals;
use tonic::transport::Channel;

/// Shards of every test cluster (few keep the debug build quick; enough to balance).
const SHARDS: u64 = 8;
/// Customers the events are spread over.
const CUSTOMERS: usize = 32;
/// Events per IngestRequest.
const BATCH_EVENTS: usize = 16;
/// Deadline of one client request (the gateway retries inside it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Bound of a whole scale-out, drain or re-creation.
const MOVES_WAIT: Duration = Duration::from_secs(150);
/// Held by each test for its whole run: three clusters at once would starve each other on two
/// cores, and the tests are about moves, not about CPU starvation.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The coordinators' config: a fast scheduler and failure detector.
const COORDINATOR_CONFIG: &str =
    "node_down_after_ms = 4000\nschedule_interval_ms = 300\nmax_concurrent_moves = 4\n";

/// Writes the coordinators' config file into `dir`.
fn coordinator_config(dir: &Path) -> String {
    let path = dir.join("coordinator.toml");
    std::fs::write(&path, COORDINATOR_CONFIG).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Starts `count` coordinators (peers of each other when more than one) in `dir`.
fn start_coordinators(dir: &Path, count: usize) -> Vec<PulsedProcess> {
    let config = coordinator_config(dir);
    let addresses: Vec<String> = (0..count).map(|_| free_address()).collect();
    let peers = addresses.join(",");
    addresses
        .iter()
        .enumerate()
        .map(|(i, address)| {
            let data_dir = dir.join(format!("coordinator-{i}"));
            let mut command = vec![
                "coordinator",
                "--listen",
                address,
                "--data-dir",
                data_dir.to_str().unwrap(),
                "--config",
                &config,
                "--initial-shards",
                "8",
            ];
            if count > 1 {
                command.extend(["--peers", &peers]);
            }
            PulsedProcess::start(address, args(&command), dir.join(format!("coordinator-{i}.log")))
        })
        .collect()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn event(client: usize, batch: usize, index: usize, base_ms: i64) -> v1::Event {
    let sequence = (batch * BATCH_EVENTS + index) as i64;
    let customer = (client * 11 + batch * 3 + index) % CUSTOMERS;
    v1::Event {
        customer_id: format!("elastic-{customer:02}"),
        event_id: format!("e{client}-{batch}-{index}"),
        timestamp_ms: base_ms + sequence,
        kind: v1::EventKind::Purchase as i32,
        category: "games".into(),
        amount: (1 + sequence % 7) as f64,
        channel: "app".into(),
    }
}

/// A mixed load on some gateways: each client alternates an Ingest batch and a linearizable
/// GetActivity, counting what failed.
struct Load {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicUsize>,
    failures: Arc<std::sync::Mutex<Vec<String>>>,
    clients: Vec<tokio::task::JoinHandle<Vec<(v1::IngestRequest, bool)>>>,
}

impl Load {
    fn start(gateways: &[Channel]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let base_ms = now_ms() - 86_400_000;
        let clients = gateways
            .iter()
            .enumerate()
            .map(|(number, channel)| {
                let (channel, stop, acknowledged, failures) =
                    (channel.clone(), stop.clone(), acknowledged.clone(), failures.clone());
                tokio::spawn(async move {
                    let mut client = ActivityServiceClient::new(channel);
                    let mut sent = Vec::new();
                    for batch in 0..100_000 {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let events = (0..BATCH_EVENTS).map(|i| event(number, batch, i, base_ms)).collect();
                        let request = v1::IngestRequest { events };
                        let mut call = tonic::Request::new(request.clone());
                        call.set_timeout(REQUEST_TIMEOUT);
                        let ok = match tokio::time::timeout(REQUEST_TIMEOUT, client.ingest(call)).await {
                            Ok(Ok(_)) => true,
                            Ok(Err(status)) => {
                                failures.lock().unwrap().push(format!("ingest: {status}"));
                                false
                            }
                            Err(_) => {
                                failures.lock().unwrap().push("ingest: timed out".into());
                                false
                            }
                        };
                        if ok {
                            acknowledged.fetch_add(1, Ordering::SeqCst);
                        }
                        sent.push((request, ok));
                        let customer_id = format!("elastic-{:02}", batch % CUSTOMERS);
                        let mut read = tonic::Request::new(v1::GetActivityRequest {
                            customer_id,
                            as_of_ms: 0,
                            consistency: v1::Consistency::Linearizable as i32,
                        });
                        read.set_timeout(REQUEST_TIMEOUT);
                        match tokio::time::timeout(REQUEST_TIMEOUT, client.get_activity(read)).await {
                            Ok(Ok(_)) => {}
                            Ok(Err(status)) if status.code() == tonic::Code::NotFound => {}
                            Ok(Err(status)) => failures.lock().unwrap().push(format!("get: {status}")),
                            Err(_) => failures.lock().unwrap().push("get: timed out".into()),
                        }
                    }
                    sent
                })
            })
            .collect();
        Load { stop, acknowledged, failures, clients }
    }

    /// Waits until `more` further batches are acknowledged (the load makes progress).
    async fn wait_progress(&self, more: usize) {
        let target = self.acknowledged.load(Ordering::SeqCst) + more;
        let started = Instant::now();
        while self.acknowledged.load(Ordering::SeqCst) < target {
            assert!(started.elapsed() < CLUSTER_WAIT, "the load made no progress in {CLUSTER_WAIT:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the clients; every request they sent with whether it was acknowledged, and the
    /// failures they saw.
    async fn stop(self) -> (Vec<(v1::IngestRequest, bool)>, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let mut sent = Vec::new();
        for client in self.clients {
            sent.extend(tokio::time::timeout(CLUSTER_WAIT, client).await.expect("a client hung").unwrap());
        }
        let failures = self.failures.lock().unwrap().clone();
        (sent, failures)
    }
}

/// Purchase count and spend of every customer, as the cluster says (linearizable reads).
async fn cluster_totals(channel: &Channel) -> BTreeMap<String, (u64, f64)> {
    let mut client = ActivityServiceClient::new(channel.clone());
    let ids = (0..CUSTOMERS).map(|c| format!("elastic-{c:02}")).collect();
    let mut request =
        tonic::Request::new(v1::BatchGetActivityRequest { customer_ids: ids, as_of_ms: 0, consistency: 0 });
    request.set_timeout(REQUEST_TIMEOUT);
    let answer = client.batch_get_activity(request).await.unwrap().into_inner();
    answer.activities.into_iter().map(|a| (a.customer_id, (a.purchase_count, a.total_amount))).collect()
}

/// Whether the cluster is settled over exactly the nodes `members` (ids): every shard has 3
/// voters on them and no learner, and replicas and leaders are balanced within ±1.
fn settled_over(state: &v1::ClusterState, members: &[u64]) -> bool {
    let placed = state.shards.iter().all(|s| {
        s.replicas.len() == 3
            && s.learners.is_empty()
            && s.leader != 0
            && s.replicas.iter().all(|r| members.contains(r))
    });
    let of_members: Vec<&v1::NodeInfo> =
        state.nodes.iter().filter(|n| members.contains(&n.node_id)).collect();
    let spread = |count: fn(&v1::NodeInfo) -> u32| {
        let counts: Vec<u32> = of_members.iter().map(|n| count(n)).collect();
        counts.iter().max().unwrap_or(&0) - counts.iter().min().unwrap_or(&0)
    };
    placed
        && of_members.len() == members.len()
        && spread(|n| n.replica_count) <= 1
        && spread(|n| n.leader_count) <= 1
}

/// Polls the cluster state on `channel` until `ready`, for at most [`MOVES_WAIT`]; the state and
/// how long it took.
async fn wait_moves(
    channel: &Channel,
    what: &str,
    ready: impl Fn(&v1::ClusterState) -> bool,
) -> (v1::ClusterState, Duration) {
    let started = Instant::now();
    let mut client = ClusterServiceClient::new(channel.clone());
    let mut last = None;
    while started.elapsed() < MOVES_WAIT {
        let mut request = tonic::Request::new(v1::GetClusterStateRequest {});
        request.set_timeout(Duration::from_secs(5));
        if let Ok(state) = client.get_cluster_state(request).await {
            let state = state.into_inner();
            if ready(&state) {
                return (state, started.elapsed());
            }
            last = Some(state);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{what}: not reached in {MOVES_WAIT:?}; last state {last:#?}");
}

fn node_id_of(state: &v1::ClusterState, address: &str) -> u64 {
    state
        .nodes
        .iter()
        .find(|n| n.address == address)
        .unwrap_or_else(|| panic!("no node at {address}"))
        .node_id
}

/// Every acknowledged event is in the cluster exactly once (none acknowledged was lost), and
/// nothing that was never sent is there.
async fn check_acknowledged(channel: &Channel, sent: &[(v1::IngestRequest, bool)]) {
    let acknowledged = totals(sent.iter().filter(|(_, ok)| *ok).flat_map(|(r, _)| r.events.iter()));
    let everything = totals(sent.iter().flat_map(|(r, _)| r.events.iter()));
    let held = cluster_totals(channel).await;
    for (customer, (sent_count, _)) in &everything {
        let (held_count, _) = held.get(customer).copied().unwrap_or_default();
        let (acked_count, _) = acknowledged.get(customer).copied().unwrap_or_default();
        assert!(
            acked_count <= held_count && held_count <= *sent_count,
            "{customer}: acknowledged {acked_count} <= held {held_count} <= sent {sent_count}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scale_out_from_3_to_5_nodes_then_drain_back_to_3_under_load() {
    let _alone = ONE_CLUSTER_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut coordinators = start_coordinators(dir.path(), 1);
    let coordinator = coordinators[0].address.clone();
    let mut nodes: Vec<PulsedProcess> =
        (1..=3).map(|i| start_node(dir.path(), &format!("node-{i}"), &coordinator)).collect();
    let channel = coordinators[0].wait_serving().await;
    for node in &mut nodes {
        node.wait_serving().await;
    }
    let state = wait_for_state(&channel, |s| {
        s.nodes.len() == 3 && s.shards.iter().all(|s| s.leader != 0) && !s.shards.is_empty()
    })
    .await;
    let original: Vec<u64> = state.nodes.iter().map(|n| n.node_id).collect();

    // Clients on the coordinator and node 1, which stay throughout.
    let node_1 = connect(&nodes[0].address).await;
    let load = Load::start(&[channel.clone(), node_1.clone()]);
    load.wait_progress(10).await;

    // Scale out: two nodes join; the scheduler balances replicas and leaders onto them.
    for i in 4..=5 {
        let mut node = start_node(dir.path(), &format!("node-{i}"), &coordinator);
        node.wait_serving().await;
        nodes.push(node);
    }
    let (state, took) = wait_moves(&channel, "balanced over 5 nodes", |s| {
        let ids: Vec<u64> = s.nodes.iter().map(|n| n.node_id).collect();
        ids.len() == 5 && settled_over(s, &ids)
    })
    .await;
    println!("scale-out 3 -> 5 settled in {took:?}: {:?}", state.nodes);
    assert!(state.nodes.iter().all(|n| n.replica_count >= 4), "24 replicas over 5 nodes: {:?}", state.nodes);
    load.wait_progress(10).await;

    // Drain two of the original nodes (not node 1, which serves a client): one through
    // pulsectl (its progress bar), one through the API.
    let drained: Vec<u64> =
        original.iter().copied().filter(|&id| id != node_id_of(&state, &nodes[0].address)).take(2).collect();
    let pulsectl = std::process::Command::new(pulsectl_binary())
        .args(["--addr", &coordinator, "cluster", "drain", &drained[0].to_string(), "--timeout", "150s"])
        .output()
        .expect("running pulsectl");
    assert!(
        pulsectl.status.success(),
        "pulsectl cluster drain failed: {}",
        String::from_utf8_lossy(&pulsectl.stderr)
    );
    assert!(String::from_utf8_lossy(&pulsectl.stderr).contains("replicas moved"), "a progress bar was drawn");
    let mut cluster = ClusterServiceClient::new(node_1.clone());
    cluster.drain_node(v1::DrainNodeRequest { node_id: drained[1] }).await.unwrap();
    let remaining: Vec<u64> =
        state.nodes.iter().map(|n| n.node_id).filter(|id| !drained.contains(id)).collect();
    let (state, took) = wait_moves(&channel, "drained onto 3 nodes", |s| {
        settled_over(s, &remaining)
            && s.nodes
                .iter()
                .filter(|n| drained.contains(&n.node_id))
                .all(|n| n.state == v1::NodeState::Drained as i32)
    })
    .await;
    println!("drain 5 -> 3 settled in {took:?}: {:?}", state.nodes);

    // Remove the drained nodes and stop them; an up node with replicas cannot be removed.
    let refused = cluster.remove_node(v1::RemoveNodeRequest { node_id: remaining[0] }).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused}");
    let unknown = cluster.remove_node(v1::RemoveNodeRequest { node_id: 999 }).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown}");
    for &node_id in &drained {
        cluster.remove_node(v1::RemoveNodeRequest { node_id }).await.unwrap();
        let address = state.nodes.iter().find(|n| n.node_id == node_id).unwrap().address.clone();
        nodes.iter_mut().find(|n| n.address == address).unwrap().kill();
    }
    wait_moves(&channel, "removed nodes forgotten", |s| s.nodes.len() == 3 && settled_over(s, &remaining))
        .await;
    load.wait_progress(10).await;

    let (sent, failures) = load.stop().await;
    assert!(failures.is_empty(), "clients saw failures during the moves: {failures:?}");
    let everything = totals(sent.iter().flat_map(|(r, _)| r.events.iter()));
    assert_eq!(cluster_totals(&channel).await, everything, "every acknowledged event exactly once");
    wait_consistent(&channel, SHARDS as usize, 3).await;
    drop(coordinators.pop());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_lost_for_good_has_its_replicas_recreated_on_the_others() {
    let _alone = ONE_CLUSTER_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut coordinators = start_coordinators(dir.path(), 1);
    let coordinator = coordinators[0].address.clone();
    let mut nodes: Vec<PulsedProcess> =
        (1..=4).map(|i| start_node(dir.path(), &format!("node-{i}"), &coordinator)).collect();
    let channel = coordinators[0].wait_serving().await;
    for node in &mut nodes {
        node.wait_serving().await;
    }
    let state = wait_moves(&channel, "balanced over 4 nodes", |s| {
        let ids: Vec<u64> = s.nodes.iter().map(|n| n.node_id).collect();
        ids.len() == 4 && settled_over(s, &ids)
    })
    .await
    .0;

    // The victim leads the most shards; the clients use the coordinator and another node.
    let victim_id = state.nodes.iter().max_by_key(|n| n.leader_count).unwrap().node_id;
    let victim = nodes.iter().position(|n| node_id_of(&state, &n.address) == victim_id).unwrap();
    let other = connect(&nodes[(victim + 1) % 4].address).await;
    let load = Load::start(&[channel.clone(), other.clone()]);
    load.wait_progress(10).await;
    nodes[victim].kill();
    let killed = Instant::now();

    let survivors: Vec<u64> = state.nodes.iter().map(|n| n.node_id).filter(|&id| id != victim_id).collect();
    wait_moves(&channel, "replicas re-created on the survivors", |s| {
        let down = s.nodes.iter().any(|n| n.node_id == victim_id && n.state == v1::NodeState::Down as i32);
        down && s.shards.iter().all(|shard| {
            shard.replicas.len() == 3
                && shard.learners.is_empty()
                && shard.replicas.iter().all(|r| survivors.contains(r))
        })
    })
    .await;
    println!("replicas of the lost node re-created {:?} after the kill (down after 4 s)", killed.elapsed());
    load.wait_progress(10).await;
    let (sent, _failures) = load.stop().await;
    check_acknowledged(&channel, &sent).await;
    wait_consistent(&channel, SHARDS as usize, 3).await;

    // The node comes back: UP again, its stale replicas are dropped, and it gets replicas back.
    nodes[victim].restart();
    nodes[victim].wait_serving().await;
    let all: Vec<u64> = state.nodes.iter().map(|n| n.node_id).collect();
    wait_moves(&channel, "the returning node rebalanced", |s| {
        s.nodes.iter().all(|n| n.state == v1::NodeState::Up as i32) && settled_over(s, &all)
    })
    .await;
    // Its replicas of shards that were re-created elsewhere while it was down were deleted.
    let log = std::fs::read_to_string(&nodes[victim].log).unwrap();
    assert!(log.contains("removed a shard replica moved to other nodes"), "no stale replica collected");
    check_acknowledged(&channel, &sent).await;
    wait_consistent(&channel, SHARDS as usize, 3).await;
    drop(coordinators.pop());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scale_out_completes_across_a_coordinator_leader_kill() {
    let _alone = ONE_CLUSTER_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut coordinators = start_coordinators(dir.path(), 3);
    let peers: Vec<String> = coordinators.iter().map(|c| c.address.clone()).collect();
    let join = peers.join(",");
    let mut nodes: Vec<PulsedProcess> =
        (1..=3).map(|i| start_node(dir.path(), &format!("node-{i}"), &join)).collect();
    for process in coordinators.iter_mut().chain(nodes.iter_mut()) {
        process.wait_serving().await;
    }
    let node_1 = connect(&nodes[0].address).await;
    wait_for_state(&node_1, |s| {
        s.nodes.len() == 3 && !s.shards.is_empty() && s.shards.iter().all(|s| s.leader != 0)
    })
    .await;
    let load = Load::start(std::slice::from_ref(&node_1));
    load.wait_progress(5).await;

    let mut late = start_node(dir.path(), "node-4", &join);
    late.wait_serving().await;
    // The first move has started: the new node holds a replica (a learner at least).
    wait_moves(&node_1, "a move to the new node started", |s| {
        s.nodes.len() == 4 && s.nodes.iter().all(|n| n.replica_count > 0)
    })
    .await;
    let leader = coordinator_leader(&coordinators);
    coordinators[leader].kill();

    let (state, took) = wait_moves(&node_1, "balanced over 4 nodes after the failover", |s| {
        let ids: Vec<u64> = s.nodes.iter().map(|n| n.node_id).collect();
        ids.len() == 4 && settled_over(s, &ids)
    })
    .await;
    println!("scale-out finished {took:?} after the coordinator leader was killed: {:?}", state.nodes);
    let (sent, failures) = load.stop().await;
    assert!(failures.is_empty(), "clients saw failures: {failures:?}");
    assert_eq!(cluster_totals(&node_1).await, totals(sent.iter().flat_map(|(r, _)| r.events.iter())));
    wait_consistent(&node_1, SHARDS as usize, 3).await;
    nodes.push(late);
}
