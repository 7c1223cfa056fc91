//! `pulse_client::Client` against a real cluster of `pulsed` processes on loopback: one
//! coordinator and three storage nodes, replication factor 3, four shards.
//!
//! `the_client_routes_to_leaders_and_reroutes_after_a_leader_kill`:
//! 1. start the cluster and wait until every shard has a leader (bounded polling of
//!    `GetClusterState`: the cluster is other processes, there is no signal to wait on);
//! 2. connect the client through the coordinator and one node; ingest 200 events for 20
//!    customers (parts go straight to the shard leaders);
//! 3. read every customer back with `batch_get_activity` (plus an unknown id, reported
//!    missing) and `get_activity`: the counts match what was sent;
//! 4. SIGKILL the node leading the most shards; the client ingests 200 more events and reads
//!    them back within its deadline (it follows hints and refreshes its table to the new
//!    leaders);
//! 5. every process is SIGKILLed when dropped, so a failing test leaves nothing behind.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pulse_client::{Client, ClientConfig, v1};
use pulse_tests::cluster::LocalCluster;

/// Storage nodes.
const NODES: usize = 3;
/// Shards of the cluster.
const SHARDS: u64 = 4;
/// Customers the events are spread over.
const CUSTOMERS: usize = 20;
/// Events per phase.
const EVENTS: usize = 200;
/// The client's per-call deadline (an election after a kill takes 1–2 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

fn customer(index: usize) -> String {
    format!("client-{index:02}")
}

/// `EVENTS` purchases of phase `phase`, spread evenly over the customers, with unique ids.
fn purchases(phase: usize, base_ms: i64) -> Vec<v1::Event> {
    (0..EVENTS)
        .map(|i| v1::Event {
            customer_id: customer(i % CUSTOMERS),
            event_id: format!("p{phase}-e{i}"),
            timestamp_ms: base_ms + (phase * EVENTS + i) as i64,
            kind: v1::EventKind::Purchase as i32,
            category: "books".into(),
            amount: 1.0 + (i % 5) as f64,
            channel: "web".into(),
        })
        .collect()
}

/// `future`, failing the test if it outlasts the client's own deadline by more than a margin.
async fn within_deadline<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    let bound = REQUEST_TIMEOUT + Duration::from_secs(5);
    tokio::time::timeout(bound, future).await.unwrap_or_else(|_| panic!("{what}: no answer within {bound:?}"))
}

/// Reads every customer with `batch_get_activity` (plus an unknown id) and a few with
/// `get_activity`; checks each holds `expected` purchases.
async fn check_counts(client: &Client, expected: u64) {
    let mut ids: Vec<String> = (0..CUSTOMERS).map(customer).rev().collect();
    ids.insert(3, "client-unknown".into());
    ids.push(customer(0)); // a duplicate is answered once
    let answer = within_deadline(
        "batch_get_activity",
        client.batch_get_activity(ids.clone(), 0, v1::Consistency::Linearizable),
    )
    .await
    .unwrap();
    let order: Vec<&str> = answer.activities.iter().map(|a| a.customer_id.as_str()).collect();
    let expected_order: Vec<&str> =
        ids[..CUSTOMERS + 1].iter().map(String::as_str).filter(|id| *id != "client-unknown").collect();
    assert_eq!(order, expected_order, "request order, duplicates once");
    assert_eq!(answer.missing_customer_ids, vec!["client-unknown".to_owned()]);
    let counts: BTreeMap<&str, u64> =
        answer.activities.iter().map(|a| (a.customer_id.as_str(), a.purchase_count)).collect();
    assert!(counts.values().all(|&count| count == expected), "{expected} purchases each: {counts:?}");

    for index in [0, 7, 19] {
        let one = within_deadline(
            "get_activity",
            client.get_activity(&customer(index), 0, v1::Consistency::Linearizable),
        )
        .await
        .unwrap();
        assert_eq!(one.purchase_count, expected, "{}", customer(index));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_client_routes_to_leaders_and_reroutes_after_a_leader_kill() {
    // 1. The cluster, every shard led.
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = LocalCluster::start(dir.path(), NODES, SHARDS);
    let state = cluster.wait_ready().await;
    assert_eq!(state.shards.len() as u64, SHARDS);
    eprintln!(
        "step 1: cluster ready, leaders {:?}",
        state.shards.iter().map(|s| s.leader).collect::<Vec<_>>()
    );

    // 2. Ingest through the client, seeded with the coordinator and one node.
    let victim_id = state.nodes.iter().max_by_key(|n| n.leader_count).unwrap().node_id;
    let victim = cluster.node_index(&state, victim_id);
    let other = (victim + 1) % NODES;
    let seeds = vec![cluster.coordinator.address.clone(), cluster.nodes[other].address.clone()];
    let config = ClientConfig { request_timeout: REQUEST_TIMEOUT, ..ClientConfig::default() };
    let client = within_deadline("connect", Client::connect_with(&seeds, config)).await.unwrap();
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let base_ms = now_ms - 3_600_000;
    let ingested = within_deadline("ingest", client.ingest(purchases(0, base_ms))).await.unwrap();
    assert_eq!((ingested.accepted, ingested.duplicates), (EVENTS as u32, 0));
    let again = within_deadline("ingest again", client.ingest(purchases(0, base_ms))).await.unwrap();
    assert_eq!((again.accepted, again.duplicates), (0, EVENTS as u32), "re-sent events are duplicates");
    eprintln!("step 2: {EVENTS} events ingested through the client");

    // 3. Read them back.
    let per_customer = (EVENTS / CUSTOMERS) as u64;
    check_counts(&client, per_customer).await;
    let unknown = client.get_activity("client-unknown", 0, v1::Consistency::Linearizable).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound, "returned as it is: {unknown}");
    eprintln!("step 3: counts read back with batch_get_activity and get_activity");

    // 4. Kill the node leading the most shards; the client re-routes.
    let led = state.nodes.iter().find(|n| n.node_id == victim_id).unwrap().leader_count;
    cluster.nodes[victim].kill();
    let killed_at = Instant::now();
    let after = within_deadline("ingest after kill", client.ingest(purchases(1, base_ms))).await;
    let after = after.unwrap_or_else(|e| panic!("ingest after killing node {victim_id}: {e}"));
    assert_eq!(after.accepted + after.duplicates, EVENTS as u32);
    eprintln!(
        "step 4: ingest answered {:?} after killing node {victim_id} (leader of {led} shards)",
        killed_at.elapsed()
    );
    check_counts(&client, 2 * per_customer).await;
    eprintln!("step 4: reads answered after the kill");

    // The gateway escape hatch still serves collective queries.
    let mut gateway = client.gateway();
    let request = v1::TopCustomersRequest { limit: 5, ..Default::default() };
    let top = within_deadline("top_customers", gateway.top_customers(request)).await.unwrap().into_inner();
    assert_eq!(top.customers.len(), 5);
    // 5. Every process is killed on drop.
}
