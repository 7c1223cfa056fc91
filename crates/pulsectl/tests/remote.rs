//! `pulsectl` against a standalone server started in-process on 127.0.0.1:0 with a manual
//! clock: ingest of JSON lines and CSV files, `get` (table and `--json`) equal to what the
//! server answers a gRPC client, a bad line failing before anything is sent, segment listing,
//! health and the manual clock.
//!
//! The binary runs as a child process (blocking, on tokio's blocking pool) while the server
//! runs on the test's runtime; every wait is bounded.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use pulse_coordinator::{ClockKind, ServerConfig, Standalone};
use pulse_proto::v1;
use pulse_proto::v1::activity_service_client::ActivityServiceClient;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// 2026-01-15T00:00:00Z: the manual clock of the server.
const NOW_MS: i64 = 1_768_435_200_000;
/// One day, ms.
const DAY_MS: i64 = 86_400_000;
/// Bound of every wait.
const WAIT: Duration = Duration::from_secs(30);

/// A standalone server on 127.0.0.1:0 with a manual clock at [`NOW_MS`].
struct Server {
    address: String,
    stop: oneshot::Sender<()>,
    serving: JoinHandle<pulse_coordinator::Result<()>>,
}

impl Server {
    async fn start(data_dir: &Path) -> Self {
        let config = ServerConfig {
            data_dir: data_dir.to_path_buf(),
            clock: ClockKind::Manual,
            manual_clock_start_ms: NOW_MS,
            ..ServerConfig::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let server = bounded(Standalone::start(config)).await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(server.serve(listener, async move {
            let _ = stopped.await;
        }));
        Self { address, stop, serving }
    }

    async fn client(&self) -> ActivityServiceClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.address)).unwrap();
        ActivityServiceClient::new(bounded(channel.connect()).await.unwrap())
    }

    /// Runs `pulsectl --addr ADDRESS ARGS...` to completion.
    async fn pulsectl(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pulsectl"));
        command.env_remove("PULSE_ADDR").arg("--addr").arg(&self.address).args(args);
        bounded(tokio::task::spawn_blocking(move || command.output())).await.unwrap().unwrap()
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        bounded(self.serving).await.unwrap().unwrap();
    }
}

async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future).await.expect("bounded wait timed out")
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "pulsectl failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// The JSON lines of an output, parsed.
fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

/// `name value` rows of a key-value table, value as printed.
fn row<'a>(table: &'a str, name: &str) -> &'a str {
    let line = table
        .lines()
        .find(|l| l.trim_start().starts_with(name))
        .unwrap_or_else(|| panic!("{name} in {table}"));
    line.trim_start()[name.len()..].trim()
}

/// Three purchases and a visit of alice, two visits of bob, as JSON lines.
fn jsonl_events() -> String {
    let lines = [
        (1, "alice", "a1", 10, "EVENT_KIND_PURCHASE", 12.5),
        (2, "alice", "a2", 8, "EVENT_KIND_PURCHASE", 7.5),
        (3, "bob", "b1", 5, "EVENT_KIND_VISIT", 0.0),
        (4, "alice", "a3", 2, "EVENT_KIND_VISIT", 0.0),
        (5, "alice", "a4", 1, "EVENT_KIND_PURCHASE", 30.0),
        (6, "bob", "b2", 1, "EVENT_KIND_VISIT", 0.0),
    ];
    lines
        .iter()
        .map(|(_, customer, id, days_ago, kind, amount)| {
            format!(
                "{{\"customerId\":\"{customer}\",\"eventId\":\"{id}\",\"timestampMs\":\"{}\",\"kind\":\"{kind}\",\
                 \"category\":\"books\",\"amount\":{amount}}}\n",
                NOW_MS - days_ago * DAY_MS
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonl_ingest_then_get_answers_what_the_server_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, jsonl_events()).unwrap();

    let summary =
        stdout(&server.pulsectl(&["ingest", "--file", file.to_str().unwrap(), "--batch-size", "4"]).await);
    assert_eq!(row(&summary, "sent"), "6", "{summary}");
    assert_eq!(row(&summary, "accepted"), "6", "{summary}");
    assert_eq!(row(&summary, "duplicates"), "0", "{summary}");
    assert_eq!(row(&summary, "rejected batches"), "0", "{summary}");

    // Sending the file again: everything is a duplicate (JSON summary this time).
    let again = stdout(&server.pulsectl(&["--json", "ingest", "--file", file.to_str().unwrap()]).await);
    let again = &json_lines(&again)[0];
    assert_eq!((again["accepted"].as_u64(), again["duplicates"].as_u64()), (Some(0), Some(6)), "{again}");

    let mut client = server.client().await;
    let request = v1::GetActivityRequest { customer_id: "alice".into(), as_of_ms: 0, consistency: 0 };
    let answer = bounded(client.get_activity(request)).await.unwrap().into_inner();
    assert_eq!(answer.purchase_count, 3);

    let printed = stdout(&server.pulsectl(&["--json", "get", "alice"]).await);
    assert_eq!(printed, format!("{}\n", serde_json::to_string(&answer).unwrap()));

    let table = stdout(&server.pulsectl(&["get", "alice"]).await);
    assert_eq!(row(&table, "customer"), "alice");
    assert_eq!(row(&table, "purchases"), "3");
    assert_eq!(row(&table, "total amount"), "50.00");
    assert_eq!(row(&table, "activity index"), format!("{:.2}", answer.activity_index));
    assert_eq!(row(&table, "as of"), "2026-01-15T00:00:00.000Z");
    assert!(table.lines().any(|l| l.trim_start().starts_with("books")), "categories table: {table}");

    let unknown = server.pulsectl(&["get", "nobody"]).await;
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("GetActivity failed: NOT_FOUND"), "{}", stderr(&unknown));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_ingest_then_batch_get() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;
    let file = dir.path().join("events.csv");
    let rows: String = [
        ("carol", "c1", 3, "PURCHASE", "20"),
        ("carol", "c2", 2, "purchase", "5"),
        ("dave", "d1", 1, "EVENT_KIND_SUPPORT", ""),
    ]
    .iter()
    .map(|(customer, id, days_ago, kind, amount)| {
        format!("{customer},{id},{},{kind},toys,{amount},app\n", NOW_MS - days_ago * DAY_MS)
    })
    .collect();
    std::fs::write(&file, format!("customer_id,event_id,timestamp_ms,kind,category,amount,channel\n{rows}"))
        .unwrap();

    let summary = stdout(&server.pulsectl(&["--json", "ingest", "--file", file.to_str().unwrap()]).await);
    let summary = &json_lines(&summary)[0];
    assert_eq!((summary["sent"].as_u64(), summary["accepted"].as_u64()), (Some(3), Some(3)), "{summary}");

    let mut client = server.client().await;
    let ids = vec!["dave".to_owned(), "carol".to_owned(), "erin".to_owned()];
    let request = v1::BatchGetActivityRequest { customer_ids: ids, as_of_ms: 0, consistency: 0 };
    let answer = bounded(client.batch_get_activity(request)).await.unwrap().into_inner();
    assert_eq!(answer.missing_customer_ids, ["erin"]);

    let printed = stdout(&server.pulsectl(&["--json", "get", "dave", "carol", "erin"]).await);
    assert_eq!(printed, format!("{}\n", serde_json::to_string(&answer).unwrap()));

    let output = server.pulsectl(&["get", "dave", "carol", "erin"]).await;
    let table = stdout(&output);
    let carol = table.lines().find(|l| l.trim_start().starts_with("carol")).unwrap();
    let columns: Vec<&str> = carol.split_whitespace().collect();
    assert_eq!(columns[6..8], ["2", "25.00"], "purchases and total of carol: {table}");
    assert!(stderr(&output).contains("not found: erin"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_line_fails_naming_line_and_field_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;
    let file = dir.path().join("bad.jsonl");
    let mut lines = jsonl_events();
    lines.push_str(&format!(
        "{{\"customerId\":\"zoe\",\"timestampMs\":\"{NOW_MS}\",\"kind\":\"EVENT_KIND_REFUND\"}}\n"
    ));
    std::fs::write(&file, lines).unwrap();
    let name = file.to_str().unwrap();

    let output = server.pulsectl(&["ingest", "--file", name]).await;
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains(&format!("{name}:7: kind: unknown variant `EVENT_KIND_REFUND`")), "{message}");

    // A semantically invalid event is caught locally as well, naming the field.
    let negative = dir.path().join("negative.csv");
    std::fs::write(&negative, format!("customer_id,timestamp_ms,kind,amount\nzoe,{NOW_MS},PURCHASE,-3\n"))
        .unwrap();
    let output = server.pulsectl(&["ingest", "--file", negative.to_str().unwrap()]).await;
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains(&format!("{}:2: invalid event: amount", negative.display())), "{message}");

    // Nothing of either file reached the server.
    let mut client = server.client().await;
    for customer in ["alice", "bob", "zoe"] {
        let request = v1::GetActivityRequest { customer_id: customer.into(), as_of_ms: 0, consistency: 0 };
        let status = bounded(client.get_activity(request)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound, "{customer}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_health_and_clock() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, jsonl_events()).unwrap();
    stdout(&server.pulsectl(&["ingest", "--file", file.to_str().unwrap()]).await);

    let health = server.pulsectl(&["health"]).await;
    assert_eq!(stdout(&health).trim(), "SERVING");
    let health = server.pulsectl(&["--json", "health"]).await;
    assert_eq!(json_lines(&stdout(&health)), [serde_json::json!({"status": "SERVING"})]);

    // Both customers are in the MONTHLY activity segment; listing agrees with the server.
    let mut client = server.client().await;
    let request = v1::ListSegmentMembersRequest {
        dimension: v1::Dimension::ActivitySegment as i32,
        segment: "MONTHLY".into(),
        page_size: 0,
        page_token: String::new(),
    };
    let mut stream = bounded(client.list_segment_members(request)).await.unwrap().into_inner();
    let mut members = Vec::new();
    while let Some(member) = bounded(stream.message()).await.unwrap() {
        members.push(format!("{}\n", serde_json::to_string(&member).unwrap()));
    }
    assert_eq!(members.len(), 2);
    let printed = stdout(&server.pulsectl(&["--json", "segments", "activity-segment", "MONTHLY"]).await);
    assert_eq!(printed, members.concat());
    let table = stdout(&server.pulsectl(&["segments", "DIMENSION_ACTIVITY_SEGMENT", "MONTHLY"]).await);
    let customers: Vec<&str> = table.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(customers, ["alice", "bob"], "{table}");
    let first_page = server.pulsectl(&["segments", "activity-segment", "MONTHLY", "--page-size", "1"]).await;
    let token =
        stderr(&first_page).lines().find_map(|l| l.strip_prefix("more: --page-token ")).unwrap().to_owned();
    let rest =
        stdout(&server.pulsectl(&["segments", "activity-segment", "MONTHLY", "--page-token", &token]).await);
    assert_eq!(rest.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect::<Vec<_>>(), ["bob"]);

    // The manual clock moves forward, never back; the refusal shows code and field.
    let later = NOW_MS + 40 * DAY_MS;
    let moved = stdout(&server.pulsectl(&["advance-clock", &later.to_string()]).await);
    assert_eq!(moved.trim(), format!("clock: {later} (2026-02-24T00:00:00.000Z)"));
    let back = server.pulsectl(&["advance-clock", &NOW_MS.to_string()]).await;
    assert!(!back.status.success());
    let message = stderr(&back);
    assert!(message.contains("AdvanceClock failed: INVALID_ARGUMENT"), "{message}");
    assert!(message.contains("\n  now_ms: "), "{message}");
    // Reads now score at the new time.
    let table = stdout(&server.pulsectl(&["get", "alice"]).await);
    assert_eq!(row(&table, "as of"), "2026-02-24T00:00:00.000Z");
    server.stop().await;
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_pulsectl"))
        .args(["--addr", "127.0.0.1:1", "health"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains("cannot connect to http://127.0.0.1:1"), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_the_server_rejects_is_reported_with_its_lines_and_the_rest_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;
    let file = dir.path().join("skewed.jsonl");
    // Line 4 is a day ahead of the server's clock: only the server can tell.
    let lines: String = (1..=6)
        .map(|line| {
            let at = if line == 4 { NOW_MS + DAY_MS } else { NOW_MS - line * 1000 };
            format!("{{\"customerId\":\"c{line}\",\"timestampMs\":\"{at}\",\"kind\":\"EVENT_KIND_VISIT\"}}\n")
        })
        .collect();
    std::fs::write(&file, lines).unwrap();
    let name = file.to_str().unwrap();

    let output = server.pulsectl(&["ingest", "--file", name, "--batch-size", "2"]).await;
    assert!(!output.status.success());
    assert!(stderr(&output).contains("1 of 3 batches rejected"), "{}", stderr(&output));
    let summary = String::from_utf8(output.stdout).unwrap();
    assert_eq!(row(&summary, "sent"), "4", "{summary}");
    assert_eq!(row(&summary, "accepted"), "4", "{summary}");
    assert_eq!(row(&summary, "rejected batches"), "1", "{summary}");
    assert!(summary.contains(&format!("batch 1 ({name} lines 3-4) rejected: INVALID_ARGUMENT")), "{summary}");
    assert!(summary.contains(&format!("  events[1].timestamp_ms ({name}:4): ")), "{summary}");

    // The batches before and after the rejected one were applied; the rejected one was not.
    let mut client = server.client().await;
    let ids = (1..=6).map(|line| format!("c{line}")).collect();
    let request = v1::BatchGetActivityRequest { customer_ids: ids, as_of_ms: 0, consistency: 0 };
    let answer = bounded(client.batch_get_activity(request)).await.unwrap().into_inner();
    assert_eq!(answer.missing_customer_ids, ["c3", "c4"]);
    server.stop().await;
}
