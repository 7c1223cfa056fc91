//! A real cluster of `pulsed` processes, each in its own Linux network namespace (see
//! [`pulse_tests::netns`]), and a network partition that cuts one storage node off.
//!
//! `the_majority_serves_through_a_partition_and_the_cut_node_catches_up`:
//! 1. create the network (a bridge in a hub namespace, one namespace per process, a veth from
//!    the test's own namespace so its gRPC clients reach every process), start one coordinator
//!    and three storage nodes (replication factor 3), wait until every node is UP and every
//!    shard has a leader (bounded polling of `GetClusterState`: the cluster is other processes);
//! 2. ingest a first set of purchases (unique event ids) through a node's gateway;
//! 3. cut off the node leading the most shards (its bridge port goes down: packets are dropped,
//!    connections hang); check the test cannot reach it any more;
//! 4. ingest a second set through another node's gateway: every request should succeed inside
//!    its deadline (the gateway retries while the majority elects new leaders); a failed batch is
//!    sent again (same event ids) so the scenario goes on, and the failures fail the test at the
//!    end; linearizable reads through the majority's gateways return both sets;
//! 5. heal; the cut node catches up: `CheckConsistency` (bounded polling) finds 3 equal hashes
//!    at the same raft index for every shard, and every customer holds exactly the events sent,
//!    read through every gateway including the healed node's.
//!
//! Needs root and iproute2; without them the test fails, unless `PULSE_SKIP_NETNS=1`, which makes
//! it print why and pass. Processes are SIGKILLed and the network removed when dropped, so a
//! failing test leaves nothing behind.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pulse_proto::v1;
use pulse_proto::v1::activity_service_client::ActivityServiceClient;
use pulse_tests::cluster::{args, node_args, wait_consistent, wait_for_state};
use pulse_tests::netns::{Host, Network};
use pulse_tests::process::PulsedProcess;
use pulse_tests::totals;
use tonic::transport::{Channel, Endpoint};

/// Storage nodes.
const NODES: usize = 3;
/// Shards of the cluster (fewer than the default keeps the debug build quick).
const SHARDS: usize = 8;
/// The port every process listens on (each has an address of its own).
const PORT: u16 = 7000;
/// Customers the events are spread over.
const CUSTOMERS: usize = 24;
/// Events per IngestRequest.
const BATCH_EVENTS: usize = 24;
/// Batches sent before the partition, and again during it.
const BATCHES_PER_PHASE: usize = 10;
/// Attempts of one batch before the test gives up (only the first should ever be needed).
const ATTEMPTS: usize = 3;
/// Deadline of one Ingest request (the gateway retries inside it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The processes of the cluster, each in its host namespace.
struct Cluster {
    coordinator: PulsedProcess,
    nodes: Vec<PulsedProcess>,
    /// The namespace of each node, in the order of `nodes`.
    node_hosts: Vec<Host>,
}

impl Cluster {
    fn start(network: &mut Network, dir: &Path) -> Self {
        let coordinator_host = network.add_host("coordinator");
        let coordinator_address = format!("{}:{PORT}", coordinator_host.ip);
        let coordinator = PulsedProcess::start_wrapped(
            network.wrapper(&coordinator_host),
            &coordinator_address,
            args(&[
                "coordinator",
                "--listen",
                &coordinator_address,
                "--data-dir",
                dir.join("coordinator").to_str().unwrap(),
                "--replication-factor",
                "3",
                "--initial-shards",
                &SHARDS.to_string(),
            ]),
            dir.join("coordinator.log"),
        );
        let mut nodes = Vec::new();
        let mut node_hosts = Vec::new();
        for i in 1..=NODES {
            let host = network.add_host(&format!("node-{i}"));
            let address = format!("{}:{PORT}", host.ip);
            nodes.push(PulsedProcess::start_wrapped(
                network.wrapper(&host),
                &address,
                node_args(&address, &dir.join(format!("node-{i}")), &coordinator_address),
                dir.join(format!("node-{i}.log")),
            ));
            node_hosts.push(host);
        }
        Self { coordinator, nodes, node_hosts }
    }

    /// Waits until every process serves, every node is UP and every shard has a leader; the
    /// cluster state then.
    async fn wait_ready(&mut self) -> v1::ClusterState {
        let channel = self.coordinator.wait_serving().await;
        for node in &mut self.nodes {
            node.wait_serving().await;
        }
        wait_for_state(&channel, |state| {
            let up = state.nodes.iter().filter(|n| n.state == v1::NodeState::Up as i32).count();
            up == NODES && state.shards.len() == SHARDS && state.shards.iter().all(|s| s.leader != 0)
        })
        .await
    }

    /// The index in `nodes` of node `node_id` of `state`.
    fn node_index(&self, state: &v1::ClusterState, node_id: u64) -> usize {
        let address = &state.nodes.iter().find(|n| n.node_id == node_id).unwrap().address;
        self.nodes.iter().position(|n| &n.address == address).unwrap()
    }
}

/// A lazily connecting channel to `address` (a cut process must not block the test).
fn channel(address: &str) -> Channel {
    Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(1))
        .connect_lazy()
}

/// Prints a step of the test with the time since it started.
fn step(started: Instant, message: &str) {
    eprintln!("[{:>6.1}s] {message}", started.elapsed().as_secs_f64());
}

/// Event `index` of batch `batch` of phase `phase`: a purchase with a unique event id.
fn purchase(phase: usize, batch: usize, index: usize, base_ms: i64) -> v1::Event {
    let sequence = ((phase * BATCHES_PER_PHASE + batch) * BATCH_EVENTS + index) as i64;
    v1::Event {
        customer_id: format!("partition-{:02}", (batch * 5 + index) % CUSTOMERS),
        event_id: format!("p{phase}-b{batch}-e{index}"),
        timestamp_ms: base_ms + sequence,
        kind: v1::EventKind::Purchase as i32,
        category: "books".into(),
        amount: (1 + sequence % 5) as f64,
        channel: "web".into(),
    }
}

/// Sends the batches of `phase` through `gateway`, one at a time, each with a deadline of
/// [`REQUEST_TIMEOUT`]; a failed batch is sent again (the same event ids: applied once), at most
/// [`ATTEMPTS`] times. The events sent and the failed attempts (each should have succeeded).
async fn ingest_phase(
    started: Instant,
    phase: usize,
    gateway: &str,
    base_ms: i64,
) -> (Vec<v1::Event>, Vec<String>) {
    let mut client = ActivityServiceClient::new(channel(gateway));
    let mut sent = Vec::new();
    let mut failures = Vec::new();
    for batch in 0..BATCHES_PER_PHASE {
        let events: Vec<v1::Event> = (0..BATCH_EVENTS).map(|i| purchase(phase, batch, i, base_ms)).collect();
        let mut acknowledged = false;
        for attempt in 1..=ATTEMPTS {
            let mut call = tonic::Request::new(v1::IngestRequest { events: events.clone() });
            call.set_timeout(REQUEST_TIMEOUT);
            let sent_at = Instant::now();
            let answer =
                tokio::time::timeout(REQUEST_TIMEOUT + Duration::from_secs(1), client.ingest(call)).await;
            let took = sent_at.elapsed();
            let failure = match answer {
                Ok(Ok(_)) => None,
                Ok(Err(status)) => Some(format!("{:?}: {}", status.code(), status.message())),
                Err(_) => Some("no answer inside the deadline".to_owned()),
            };
            if let Some(failure) = failure {
                let failure = format!(
                    "phase {phase} batch {batch} attempt {attempt} through {gateway} after {took:?}: {failure}"
                );
                step(started, &failure);
                failures.push(failure);
                continue;
            }
            if took > Duration::from_secs(1) {
                step(started, &format!("phase {phase} batch {batch} acknowledged after {took:?}"));
            }
            acknowledged = true;
            break;
        }
        assert!(acknowledged, "phase {phase} batch {batch}: {ATTEMPTS} attempts failed: {failures:#?}");
        sent.extend(events);
    }
    (sent, failures)
}

/// Purchase count and spend of every customer, as `gateway` answers (linearizable reads).
async fn cluster_totals(gateway: &str) -> BTreeMap<String, (u64, f64)> {
    let mut client = ActivityServiceClient::new(channel(gateway));
    let ids = (0..CUSTOMERS).map(|c| format!("partition-{c:02}")).collect();
    let message = v1::BatchGetActivityRequest {
        customer_ids: ids,
        as_of_ms: 0,
        consistency: v1::Consistency::Linearizable as i32,
    };
    let mut request = tonic::Request::new(message);
    request.set_timeout(REQUEST_TIMEOUT);
    let answer =
        tokio::time::timeout(REQUEST_TIMEOUT + Duration::from_secs(1), client.batch_get_activity(request))
            .await
            .unwrap_or_else(|_| panic!("linearizable read through {gateway}: no answer inside the deadline"))
            .unwrap_or_else(|status| panic!("linearizable read through {gateway} failed: {status:?}"))
            .into_inner();
    answer.activities.into_iter().map(|a| (a.customer_id, (a.purchase_count, a.total_amount))).collect()
}

/// Asserts that `gateway` reads exactly `expected` for every customer.
async fn assert_totals(gateway: &str, expected: &BTreeMap<String, (u64, f64)>) {
    let applied = cluster_totals(gateway).await;
    for (customer, &(count, amount)) in expected {
        let (applied_count, applied_amount) = applied.get(customer).copied().unwrap_or((0, 0.0));
        assert_eq!(applied_count, count, "{customer} through {gateway}: every event applied exactly once");
        assert!(
            (applied_amount - amount).abs() < 1e-6,
            "{customer} through {gateway}: spend {applied_amount} != {amount}"
        );
    }
}

/// Whether `address` answers a health check within `wait`.
async fn reachable(address: &str, wait: Duration) -> bool {
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel(address));
    let request = tonic_health::pb::HealthCheckRequest { service: String::new() };
    matches!(tokio::time::timeout(wait, client.check(request)).await, Ok(Ok(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_majority_serves_through_a_partition_and_the_cut_node_catches_up() {
    let started = Instant::now();
    let mut network = match Network::create() {
        Ok(network) => network,
        Err(reason) if std::env::var("PULSE_SKIP_NETNS").is_ok_and(|v| v == "1") => {
            eprintln!("skipped (PULSE_SKIP_NETNS=1): {reason}");
            return;
        }
        Err(reason) => panic!(
            "the partition test needs Linux network namespaces: {reason}; run it as root with \
             iproute2, or set PULSE_SKIP_NETNS=1 to skip it"
        ),
    };
    let dir = tempfile::tempdir().unwrap();
    // Declared after the network, so dropped before it: processes stop, then namespaces go.
    let mut cluster = Cluster::start(&mut network, dir.path());

    // 1. Every node UP, every shard led.
    let state = cluster.wait_ready().await;
    step(started, "cluster ready");

    // 2. First set through a node that stays connected.
    let victim_id = state.nodes.iter().max_by_key(|n| n.leader_count).unwrap().node_id;
    let victim_leads = state.nodes.iter().find(|n| n.node_id == victim_id).unwrap().leader_count;
    let victim = cluster.node_index(&state, victim_id);
    let writer = cluster.nodes[(victim + 1) % NODES].address.clone();
    let reader = cluster.nodes[(victim + 2) % NODES].address.clone();
    let victim_address = cluster.nodes[victim].address.clone();
    let base_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64 - 3_600_000;
    let (mut sent, failures) = ingest_phase(started, 0, &writer, base_ms).await;
    assert!(failures.is_empty(), "writes failed before the partition: {failures:#?}");
    assert_totals(&reader, &totals(sent.iter())).await;
    step(started, &format!("first {} events acknowledged and read", sent.len()));

    // 3. Cut off the node leading the most shards.
    network.cut(&cluster.node_hosts[victim]);
    let cut_at = Instant::now();
    step(
        started,
        &format!("cut off node {victim_id} ({victim_address}, leader of {victim_leads} of {SHARDS} shards)"),
    );
    assert!(!reachable(&victim_address, Duration::from_secs(2)).await, "the cut node still answers");

    // 4. The majority keeps serving: writes through another node, linearizable reads.
    let (second, partition_failures) = ingest_phase(started, 1, &writer, base_ms).await;
    step(started, &format!("{} more events acknowledged {:?} after the cut", second.len(), cut_at.elapsed()));
    sent.extend(second);
    let expected = totals(sent.iter());
    assert_totals(&reader, &expected).await;
    assert_totals(&writer, &expected).await;
    assert_totals(&cluster.coordinator.address, &expected).await;
    step(started, "linearizable reads through the majority return every event");

    // 5. Heal: the cut node catches up, every replica equal, every event there exactly once.
    network.heal(&cluster.node_hosts[victim]);
    let healed_at = Instant::now();
    step(started, &format!("healed node {victim_id}"));
    let checks = wait_consistent(&channel(&victim_address), SHARDS, NODES).await;
    step(
        started,
        &format!("every replica equal {:?} after healing ({checks} consistency checks)", healed_at.elapsed()),
    );
    for gateway in [&victim_address, &writer, &reader, &cluster.coordinator.address] {
        assert_totals(gateway, &expected).await;
    }
    step(started, "every event exactly once through every gateway");
    assert!(
        partition_failures.is_empty(),
        "writes through the majority failed during the partition (they should succeed inside \
         their deadline, the gateway retrying on the new leaders): {partition_failures:#?}"
    );

    drop(cluster);
    drop(network);
}
