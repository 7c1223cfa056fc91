//! Crash safety of the real `pulsed standalone` binary: SIGKILL in the middle of a concurrent
//! ingest load, restart on the same data directory, and every acknowledged event is applied
//! exactly once.
//!
//! Steps:
//! 1. build `pulsed` (`cargo build -p pulsed`, a no-op when it is fresh; `PULSED_BIN` overrides)
//!    and start it on 127.0.0.1 with a free port and a temporary data directory;
//! 2. wait until the gRPC health service says SERVING (bounded polling: the server is another
//!    process, there is no signal to wait on);
//! 3. several clients ingest batches of purchases with unique event ids concurrently, recording
//!    which requests were acknowledged;
//! 4. once enough batches are acknowledged, SIGKILL the server (`Child::kill`), clients see
//!    their in-flight requests fail and stop;
//! 5. restart on the same directory and check every customer: acknowledged <= applied <=
//!    acknowledged + unacknowledged, for the purchase count and the spend;
//! 6. re-send every batch: the events applied before are all reported as duplicates, and each
//!    customer ends with every event applied exactly once.
//!
//! The server process is killed in `Drop` too, so a failing test leaves nothing behind.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pulse_proto::v1;
use pulse_proto::v1::activity_service_client::ActivityServiceClient;
use pulse_tests::bounded;
use pulse_tests::process::{PulsedProcess, free_address};
use pulse_tests::totals;
use tokio::sync::Notify;
use tonic::transport::{Channel, Endpoint};

/// Concurrent ingesting clients.
const CLIENTS: usize = 4;
/// Customers the events are spread over.
const CUSTOMERS: usize = 16;
/// Events per IngestRequest.
const BATCH_EVENTS: usize = 40;
/// Upper bound of batches per client (the kill comes long before).
const MAX_BATCHES_PER_CLIENT: usize = 10_000;
/// Acknowledged batches (over every client) before the server is killed.
const ACKED_BEFORE_KILL: usize = 60;
/// Deadline of one Ingest request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// One IngestRequest a client sent, and whether the server acknowledged it.
struct Sent {
    request: v1::IngestRequest,
    acknowledged: bool,
}

/// Purchase `index` of `client`'s batch `batch`: a unique event id, an integral amount (sums
/// are exact), a timestamp an hour in the past.
fn purchase(client: usize, batch: usize, index: usize, base_ms: i64) -> v1::Event {
    let sequence = batch * BATCH_EVENTS + index;
    v1::Event {
        customer_id: format!("crash-{:02}", (client * 7 + sequence) % CUSTOMERS),
        event_id: format!("c{client}-b{batch}-e{index}"),
        timestamp_ms: base_ms + sequence as i64,
        kind: v1::EventKind::Purchase as i32,
        category: "books".into(),
        amount: (1 + sequence % 5) as f64,
        channel: "web".into(),
    }
}

/// Sends batches until one fails; returns every batch sent with its outcome.
async fn ingest_until_failure(
    client_number: usize,
    channel: Channel,
    base_ms: i64,
    acknowledged: Arc<AtomicUsize>,
    progress: Arc<Notify>,
) -> Vec<Sent> {
    let mut client = ActivityServiceClient::new(channel);
    let mut sent = Vec::new();
    for batch in 0..MAX_BATCHES_PER_CLIENT {
        let events = (0..BATCH_EVENTS).map(|i| purchase(client_number, batch, i, base_ms)).collect();
        let request = v1::IngestRequest { events };
        let mut call = tonic::Request::new(request.clone());
        call.set_timeout(REQUEST_TIMEOUT);
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, client.ingest(call)).await;
        let ok = matches!(outcome, Ok(Ok(_)));
        sent.push(Sent { request, acknowledged: ok });
        if !ok {
            break;
        }
        acknowledged.fetch_add(1, Ordering::SeqCst);
        progress.notify_one();
    }
    sent
}

/// Purchase count and spend of every customer, as the server says.
async fn server_totals(channel: &Channel) -> BTreeMap<String, (u64, f64)> {
    let mut client = ActivityServiceClient::new(channel.clone());
    let ids = (0..CUSTOMERS).map(|c| format!("crash-{c:02}")).collect();
    let request = v1::BatchGetActivityRequest { customer_ids: ids, as_of_ms: 0, consistency: 0 };
    let answer = bounded(client.batch_get_activity(request)).await.unwrap().into_inner();
    answer.activities.into_iter().map(|a| (a.customer_id, (a.purchase_count, a.total_amount))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_events_survive_sigkill_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let standalone = |address: &str| -> Vec<String> {
        let data_dir = data_dir.to_str().unwrap();
        ["standalone", "--clock", "wall", "--listen", address, "--data-dir", data_dir]
            .map(String::from)
            .to_vec()
    };

    // 1-2. Start and wait until serving.
    let address = free_address();
    let mut server = PulsedProcess::start(&address, standalone(&address), dir.path().join("pulsed-1.log"));
    server.wait_serving().await;
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let base_ms = now_ms - 3_600_000;

    // 3. Concurrent clients, each on its own connection.
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(Notify::new());
    let mut clients = Vec::new();
    for client_number in 0..CLIENTS {
        let endpoint = Endpoint::from_shared(format!("http://{}", server.address)).unwrap();
        let channel = bounded(endpoint.connect()).await.unwrap();
        clients.push(tokio::spawn(ingest_until_failure(
            client_number,
            channel,
            base_ms,
            Arc::clone(&acknowledged),
            Arc::clone(&progress),
        )));
    }

    // 4. Kill mid-load, once enough batches are acknowledged.
    bounded(async {
        while acknowledged.load(Ordering::SeqCst) < ACKED_BEFORE_KILL {
            progress.notified().await;
        }
    })
    .await;
    server.kill();
    let mut batches = Vec::new();
    for client in clients {
        batches.extend(bounded(client).await.unwrap());
    }
    let acked_batches = batches.iter().filter(|b| b.acknowledged).count();
    let unacked_batches = batches.len() - acked_batches;
    assert!(acked_batches >= ACKED_BEFORE_KILL);
    assert_eq!(unacked_batches, CLIENTS, "every client stops at its first failed request");
    eprintln!("killed pulsed with {acked_batches} batches acknowledged, {unacked_batches} in flight");

    // 5. Restart on the same directory: acknowledged <= applied <= acknowledged + in flight.
    let address = free_address();
    let mut server = PulsedProcess::start(&address, standalone(&address), dir.path().join("pulsed-2.log"));
    let channel = server.wait_serving().await;
    let acked = totals(batches.iter().filter(|b| b.acknowledged).flat_map(|b| b.request.events.iter()));
    let everything = totals(batches.iter().flat_map(|b| b.request.events.iter()));
    let applied = server_totals(&channel).await;
    for (customer, &(all_count, all_amount)) in &everything {
        let (acked_count, acked_amount) = acked.get(customer).copied().unwrap_or((0, 0.0));
        let (count, amount) = applied.get(customer).copied().unwrap_or((0, 0.0));
        assert!(
            acked_count <= count && count <= all_count,
            "{customer}: {count} purchases applied, {acked_count} acknowledged, {all_count} sent"
        );
        assert!(
            acked_amount <= amount && amount <= all_amount,
            "{customer}: spend {amount} applied, {acked_amount} acknowledged, {all_amount} sent"
        );
    }
    let applied_before: u64 = applied.values().map(|(count, _)| count).sum();

    // 6. Re-send everything: what was applied is a duplicate, the rest is applied, once.
    let mut client = ActivityServiceClient::new(channel.clone());
    let mut duplicates = 0u64;
    for batch in &batches {
        let answer = bounded(client.ingest(batch.request.clone())).await.unwrap().into_inner();
        assert_eq!((answer.accepted + answer.duplicates) as usize, batch.request.events.len());
        if batch.acknowledged {
            assert_eq!(
                answer.duplicates as usize,
                batch.request.events.len(),
                "acknowledged batch re-applied"
            );
        }
        duplicates += u64::from(answer.duplicates);
    }
    assert_eq!(duplicates, applied_before, "exactly the events applied before the crash are duplicates");
    assert_eq!(server_totals(&channel).await, everything, "every event applied exactly once");
    server.kill();
}
