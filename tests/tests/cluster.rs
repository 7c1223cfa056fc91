//! A real cluster of `pulsed` processes on loopback: one coordinator and three storage nodes,
//! replication factor 3.
//!
//! `acknowledged_events_survive_a_leader_kill_and_a_full_restart`:
//! 1. start the cluster and wait until every shard has a leader (bounded polling of
//!    `GetClusterState`: the cluster is other processes, there is no signal to wait on);
//! 2. pick the node leading the most shards as the victim; clients ingest batches of purchases
//!    with unique event ids through the coordinator's and another node's gateway;
//! 3. SIGKILL the victim mid-load; the clients keep going (the gateways retry on the new
//!    leaders) and writes resume — the time from the kill to the next acknowledgement is
//!    printed (an election takes one to two election timeouts, 1–2 s by default);
//! 4. restart the victim; every customer holds acknowledged <= applied <= sent events; re-sending
//!    every batch makes each customer hold every event exactly once;
//! 5. `CheckConsistency` finds every replica of every shard equal (the restarted node caught up);
//! 6. stop every process and start them again on the same directories: the same state.
//!
//! `the_cluster_survives_the_loss_of_the_coordinator_leader`: three coordinators and three
//! nodes; SIGKILL the coordinator leader; ingest and reads go on, and a fourth node registers
//! with the new leader.
//!
//! Every process is SIGKILLed when dropped, so a failing test leaves nothing behind.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pulse_proto::v1;
use pulse_proto::v1::activity_service_client::ActivityServiceClient;
use pulse_proto::v1::admin_service_client::AdminServiceClient;
use pulse_tests::cluster::{
    CLUSTER_WAIT, LocalCluster, args, connect, coordinator_leader, start_node, wait_consistent,
    wait_for_state,
};
use pulse_tests::process::{PulsedProcess, free_address};
use pulse_tests::totals;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

/// Storage nodes.
const NODES: usize = 3;
/// Shards of the cluster (fewer than the default keeps the debug build quick).
const SHARDS: u64 = 8;
/// Customers the events are spread over.
const CUSTOMERS: usize = 24;
/// Events per IngestRequest.
const BATCH_EVENTS: usize = 24;
/// Upper bound of batches per client.
const MAX_BATCHES: usize = 5_000;
/// Batches acknowledged before the kill, and again after it.
const ACKED_PER_PHASE: usize = 20;
/// Deadline of one Ingest request (the gateway retries inside it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

fn purchase(client: usize, batch: usize, index: usize, base_ms: i64) -> v1::Event {
    let sequence = (batch * BATCH_EVENTS + index) as i64;
    let customer = (client * 7 + batch * 5 + index) % CUSTOMERS;
    // Purchase days differ per customer: every third customer stopped buying after its first
    // ten days (of sixty), the others buy every 1 to 5 days until yesterday, so the purchase
    // histories show both repeat buying and dropout and the lifetime fit is identifiable.
    let spread = 1 + (customer % 5) as i64;
    let active_days = if customer.is_multiple_of(3) { 10 } else { 59 };
    let day = (sequence * spread) % active_days;
    v1::Event {
        customer_id: format!("cluster-{customer:02}"),
        event_id: format!("c{client}-b{batch}-e{index}"),
        timestamp_ms: base_ms + day * 86_400_000 + sequence,
        kind: v1::EventKind::Purchase as i32,
        category: "books".into(),
        amount: (1 + sequence % 5) as f64,
        channel: "web".into(),
    }
}

/// What a client sent and which requests were acknowledged.
#[derive(Default)]
struct Sent {
    requests: Vec<(v1::IngestRequest, bool)>,
}

/// Sends batches until `stop`; a failed request is recorded and the client goes on.
async fn ingest_until_stopped(
    client_number: usize,
    channel: Channel,
    base_ms: i64,
    acknowledged: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> Sent {
    let mut client = ActivityServiceClient::new(channel);
    let mut sent = Sent::default();
    for batch in 0..MAX_BATCHES {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let events = (0..BATCH_EVENTS).map(|i| purchase(client_number, batch, i, base_ms)).collect();
        let request = v1::IngestRequest { events };
        let mut call = tonic::Request::new(request.clone());
        call.set_timeout(REQUEST_TIMEOUT);
        let ok = matches!(tokio::time::timeout(REQUEST_TIMEOUT, client.ingest(call)).await, Ok(Ok(_)));
        if ok {
            acknowledged.fetch_add(1, Ordering::SeqCst);
        }
        sent.requests.push((request, ok));
    }
    sent
}

/// Purchase count and spend of every customer, as the cluster says (linearizable reads).
async fn cluster_totals(channel: &Channel) -> BTreeMap<String, (u64, f64)> {
    let mut client = ActivityServiceClient::new(channel.clone());
    let ids = (0..CUSTOMERS).map(|c| format!("cluster-{c:02}")).collect();
    let request = v1::BatchGetActivityRequest { customer_ids: ids, as_of_ms: 0, consistency: 0 };
    let answer = tokio::time::timeout(CLUSTER_WAIT, client.batch_get_activity(request))
        .await
        .expect("batch get timed out")
        .unwrap()
        .into_inner();
    answer.activities.into_iter().map(|a| (a.customer_id, (a.purchase_count, a.total_amount))).collect()
}

/// Waits until `acknowledged` reaches `target`, for at most [`CLUSTER_WAIT`].
async fn wait_acknowledged(acknowledged: &AtomicUsize, target: usize) {
    let started = Instant::now();
    while acknowledged.load(Ordering::SeqCst) < target {
        assert!(
            started.elapsed() < CLUSTER_WAIT,
            "only {} of {target} batches acknowledged",
            acknowledged.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Transitions of a watch, as they arrive.
type Watched = Arc<std::sync::Mutex<Vec<v1::Transition>>>;

/// Opens a watch of every transition on `channel` and collects them in the background.
async fn watch_everything(channel: Channel) -> Watched {
    let mut client = ActivityServiceClient::new(channel);
    let request = v1::WatchTransitionsRequest { dimensions: vec![], segments: vec![], resume_token: vec![] };
    let mut stream = client.watch_transitions(request).await.unwrap().into_inner();
    let watched = Watched::default();
    let sink = watched.clone();
    tokio::spawn(async move {
        while let Some(Ok(transition)) = stream.next().await {
            sink.lock().unwrap().push(transition);
        }
    });
    watched
}

fn key(t: &v1::Transition) -> (String, i32, String, String, i64, String) {
    (t.customer_id.clone(), t.dimension, t.from.clone(), t.to.clone(), t.at_ms, t.cause.clone())
}

/// Waits until every customer's first activity segment transition (from no segment) arrived,
/// checks each arrived once and nothing arrived twice; the transitions so far.
async fn wait_new_customers(watched: &Watched) -> Vec<v1::Transition> {
    let started = Instant::now();
    let activity = v1::Dimension::ActivitySegment as i32;
    loop {
        let seen = watched.lock().unwrap().clone();
        let new: Vec<&v1::Transition> =
            seen.iter().filter(|t| t.dimension == activity && t.from.is_empty()).collect();
        if new.len() >= CUSTOMERS {
            let customers: std::collections::BTreeSet<&str> =
                new.iter().map(|t| t.customer_id.as_str()).collect();
            assert_eq!(
                (new.len(), customers.len()),
                (CUSTOMERS, CUSTOMERS),
                "each customer entered an activity segment exactly once"
            );
            let keys: std::collections::BTreeSet<_> = seen.iter().map(key).collect();
            assert_eq!(keys.len(), seen.len(), "no transition delivered twice");
            return seen;
        }
        assert!(
            started.elapsed() < CLUSTER_WAIT,
            "only {} of {CUSTOMERS} customers entered a segment after {CLUSTER_WAIT:?}",
            new.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Resumes from the token of a transition in the middle of `originals` through `gateway`:
/// everything after it arrives, nothing up to it.
async fn check_resume(gateway: &str, originals: &[v1::Transition]) {
    let middle = originals.len() / 2;
    let request = v1::WatchTransitionsRequest {
        dimensions: vec![],
        segments: vec![],
        resume_token: originals[middle].resume_token.clone(),
    };
    let mut client = ActivityServiceClient::new(connect(gateway).await);
    let mut stream = client.watch_transitions(request).await.unwrap().into_inner();
    let before: std::collections::BTreeSet<_> = originals[..=middle].iter().map(key).collect();
    let mut missing: std::collections::BTreeSet<_> = originals[middle + 1..].iter().map(key).collect();
    let started = Instant::now();
    while !missing.is_empty() {
        let left = CLUSTER_WAIT.saturating_sub(started.elapsed());
        let next =
            tokio::time::timeout(left, stream.next()).await.expect("resumed watch stalled").unwrap().unwrap();
        assert!(!before.contains(&key(&next)), "resumed watch repeated {next:?}");
        missing.remove(&key(&next));
    }
}

/// A custom segment defined through one node shows on another; an RFM edge refresh through the
/// coordinator merges every shard's customers and installs a new config version everywhere.
async fn administer(cluster: &LocalCluster) {
    let mut admin = AdminServiceClient::new(connect(&cluster.nodes[0].address).await);
    let definition = v1::SegmentDefinition {
        id: "frequent".into(),
        name: "Frequent buyers".into(),
        enter: "purchases >= 10".into(),
        exit: "purchases < 5".into(),
    };
    admin
        .put_segment_definition(v1::PutSegmentDefinitionRequest { definition: Some(definition) })
        .await
        .unwrap();
    let mut elsewhere = AdminServiceClient::new(connect(&cluster.nodes[1].address).await);
    let listed =
        elsewhere.list_segment_definitions(v1::ListSegmentDefinitionsRequest {}).await.unwrap().into_inner();
    assert_eq!(listed.definitions.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), vec!["frequent"]);
    let mut coordinator = AdminServiceClient::new(connect(&cluster.coordinator.address).await);
    let before =
        coordinator.get_scoring_config(v1::GetScoringConfigRequest {}).await.unwrap().into_inner().version;
    let edges = coordinator.refresh_rfm_edges(v1::RefreshRfmEdgesRequest {}).await.unwrap().into_inner();
    assert_eq!(edges.customers, CUSTOMERS as u64, "the edges come from every shard's customers");
    let after = elsewhere.get_scoring_config(v1::GetScoringConfigRequest {}).await.unwrap().into_inner();
    assert_eq!(after.version, before + 1);
    assert!(after.rfm_edges.is_some(), "the refreshed edges are installed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_events_survive_a_leader_kill_and_a_full_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = LocalCluster::start(dir.path(), NODES, SHARDS);
    let state = cluster.wait_ready().await;

    // 2. The victim leads the most shards; clients use the coordinator and another node.
    let victim_id = state.nodes.iter().max_by_key(|n| n.leader_count).unwrap().node_id;
    let victim = cluster.node_index(&state, victim_id);
    let other = (victim + 1) % NODES;
    let gateways = [cluster.coordinator.address.clone(), cluster.nodes[other].address.clone()];
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let base_ms = now_ms - 60 * 86_400_000;
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let watched = watch_everything(connect(&cluster.coordinator.address).await).await;
    let mut clients = Vec::new();
    for (client_number, gateway) in gateways.iter().enumerate() {
        let channel = connect(gateway).await;
        clients.push(tokio::spawn(ingest_until_stopped(
            client_number,
            channel,
            base_ms,
            acknowledged.clone(),
            stop.clone(),
        )));
    }
    wait_acknowledged(&acknowledged, ACKED_PER_PHASE).await;

    // 3. Kill the victim mid-load; writes resume on the new leaders.
    let before_kill = acknowledged.load(Ordering::SeqCst);
    cluster.nodes[victim].kill();
    let killed_at = Instant::now();
    // Each client has at most one request in flight at the kill: the next acknowledgement after
    // those was sent after the kill.
    wait_acknowledged(&acknowledged, before_kill + gateways.len() + 1).await;
    eprintln!(
        "writes resumed {:?} after killing node {victim_id} (leader of {} shards)",
        killed_at.elapsed(),
        state.nodes.iter().find(|n| n.node_id == victim_id).unwrap().leader_count
    );
    wait_acknowledged(&acknowledged, before_kill + ACKED_PER_PHASE).await;
    stop.store(true, Ordering::SeqCst);
    let mut sent = Vec::new();
    for client in clients {
        sent.extend(tokio::time::timeout(CLUSTER_WAIT, client).await.unwrap().unwrap().requests);
    }

    // 4. Restart the victim: acknowledged <= applied <= sent; re-sending makes it exact.
    cluster.nodes[victim].restart();
    cluster.wait_ready().await;
    let channel = connect(&cluster.nodes[victim].address).await;
    let acked = totals(sent.iter().filter(|(_, ok)| *ok).flat_map(|(r, _)| r.events.iter()));
    let everything = totals(sent.iter().flat_map(|(r, _)| r.events.iter()));
    let applied = cluster_totals(&channel).await;
    for (customer, &(all_count, _)) in &everything {
        let (acked_count, _) = acked.get(customer).copied().unwrap_or((0, 0.0));
        let (applied_count, _) = applied.get(customer).copied().unwrap_or((0, 0.0));
        assert!(
            acked_count <= applied_count && applied_count <= all_count,
            "{customer}: acknowledged {acked_count} <= applied {applied_count} <= sent {all_count}"
        );
    }
    let mut client = ActivityServiceClient::new(channel.clone());
    for (request, _) in &sent {
        let mut call = tonic::Request::new(request.clone());
        call.set_timeout(REQUEST_TIMEOUT);
        client.ingest(call).await.unwrap();
    }
    let exact = cluster_totals(&channel).await;
    for (customer, &(count, amount)) in &everything {
        let (applied_count, applied_amount) = exact[customer];
        assert_eq!(applied_count, count, "{customer}: every event applied exactly once");
        assert!((applied_amount - amount).abs() < 1e-6, "{customer}: spend {applied_amount} != {amount}");
    }

    // The watch opened before the load went on across the kill: every customer's first
    // purchase put it in an activity segment, exactly once. Resuming from a token through another gateway sends
    // exactly what came after it.
    let originals = wait_new_customers(&watched).await;
    check_resume(&cluster.nodes[other].address, &originals).await;

    // 5. Model administration through the gateways, then every replica equal.
    administer(&cluster).await;
    wait_consistent(&channel, SHARDS as usize, 3).await;

    // 6. Stop everything, start again on the same directories: the same state.
    cluster.coordinator.restart();
    for node in &mut cluster.nodes {
        node.restart();
    }
    cluster.wait_ready().await;
    let channel = connect(&cluster.nodes[other].address).await;
    assert_eq!(cluster_totals(&channel).await, exact, "the same state after a full restart");
    wait_consistent(&channel, SHARDS as usize, 3).await;
}

/// Three coordinators: killing the coordinator leader keeps the data path serving, and the new
/// leader takes registrations and heartbeats (a fourth node joins after the kill).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cluster_survives_the_loss_of_the_coordinator_leader() {
    let dir = tempfile::tempdir().unwrap();
    let addresses: Vec<String> = (0..3).map(|_| free_address()).collect();
    let peers = addresses.join(",");
    let mut coordinators: Vec<PulsedProcess> = addresses
        .iter()
        .enumerate()
        .map(|(i, address)| {
            let data_dir = dir.path().join(format!("coordinator-{i}"));
            PulsedProcess::start(
                address,
                args(&[
                    "coordinator",
                    "--listen",
                    address,
                    "--data-dir",
                    data_dir.to_str().unwrap(),
                    "--peers",
                    &peers,
                    "--initial-shards",
                    "4",
                ]),
                dir.path().join(format!("coordinator-{i}.log")),
            )
        })
        .collect();
    let mut nodes: Vec<PulsedProcess> =
        (1..=NODES).map(|i| start_node(dir.path(), &format!("node-{i}"), &peers)).collect();
    for process in coordinators.iter_mut().chain(nodes.iter_mut()) {
        process.wait_serving().await;
    }
    let node_channel = connect(&nodes[0].address).await;
    wait_for_state(&node_channel, |state| {
        state.nodes.len() == NODES && !state.shards.is_empty() && state.shards.iter().all(|s| s.leader != 0)
    })
    .await;

    let leader = coordinator_leader(&coordinators);
    coordinators[leader].kill();

    // The data path serves without the coordinator leader.
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let events: Vec<v1::Event> = (0..20).map(|i| purchase(0, 0, i, now_ms - 60 * 86_400_000)).collect();
    let mut client = ActivityServiceClient::new(node_channel.clone());
    let mut call = tonic::Request::new(v1::IngestRequest { events });
    call.set_timeout(REQUEST_TIMEOUT);
    let ingested = client.ingest(call).await.unwrap().into_inner();
    assert_eq!(ingested.accepted, 20);

    // A new node registers with the new leader and shows up in the cluster state.
    let mut late = start_node(dir.path(), "node-late", &peers);
    late.wait_serving().await;
    let survivor = connect(&addresses[(leader + 1) % 3]).await;
    wait_for_state(&survivor, |state| {
        state.nodes.len() == NODES + 1 && state.nodes.iter().all(|n| n.state == v1::NodeState::Up as i32)
    })
    .await;
    let totals = cluster_totals(&node_channel).await;
    assert_eq!(totals.values().map(|(count, _)| count).sum::<u64>(), 20, "every event readable");
}
