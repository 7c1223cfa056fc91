//! `WatchTransitions` end to end: transitions caused by events and by time arrive on the stream,
//! a resumed watch neither skips nor repeats a transition across shards, filters apply, and a
//! malformed resume token is INVALID_ARGUMENT.
//!
//! Every wait for a transition is bounded; none sleeps.

use std::collections::BTreeSet;

use pulse_coordinator::{ClockKind, ServerConfig};
use pulse_proto::v1;
use pulse_proto::v1::activity_service_client::ActivityServiceClient;
use pulse_proto::v1::admin_service_client::AdminServiceClient;
use pulse_tests::{DAY_MS, START_MS, TestServer, bounded};
use tonic::transport::Channel;
use tonic::{Code, Streaming};
use tonic_types::StatusExt;

/// A transition without its token: what identifies it.
type Key = (String, i32, String, String, i64, String);

fn key(t: &v1::Transition) -> Key {
    (t.customer_id.clone(), t.dimension, t.from.clone(), t.to.clone(), t.at_ms, t.cause.clone())
}

async fn watch(
    client: &mut ActivityServiceClient<Channel>,
    dimensions: Vec<v1::Dimension>,
    segments: Vec<String>,
    resume_token: Vec<u8>,
) -> Result<Streaming<v1::Transition>, tonic::Status> {
    let request = v1::WatchTransitionsRequest {
        dimensions: dimensions.into_iter().map(|d| d as i32).collect(),
        segments,
        resume_token,
    };
    bounded(client.watch_transitions(request)).await.map(tonic::Response::into_inner)
}

/// The next `n` transitions of `stream`, each wait bounded.
async fn take(stream: &mut Streaming<v1::Transition>, n: usize) -> Vec<v1::Transition> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let transition = bounded(stream.message()).await.unwrap().expect("the watch ended early");
        assert!(!transition.resume_token.is_empty(), "every transition carries its resume token");
        out.push(transition);
    }
    out
}

/// One first event for each of `customers` new customers: 3 transitions each (activity
/// segment, lifecycle and level from ""; no RFM edges, no custom segments), and nothing else
/// while the clock stands still.
async fn new_customers(client: &mut ActivityServiceClient<Channel>, prefix: &str, customers: usize) {
    let events = (0..customers)
        .map(|i| v1::Event {
            customer_id: format!("{prefix}{i}"),
            event_id: "first".into(),
            timestamp_ms: START_MS - 60_000,
            kind: v1::EventKind::Visit as i32,
            ..v1::Event::default()
        })
        .collect();
    bounded(client.ingest(v1::IngestRequest { events })).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_watch_neither_skips_nor_repeats() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(data_dir.path()).await;
    let mut client = ActivityServiceClient::new(server.channel().await);

    let mut full = watch(&mut client, vec![], vec![], vec![]).await.unwrap();
    let mut first = watch(&mut client, vec![], vec![], vec![]).await.unwrap();
    let mut daily = watch(
        &mut client,
        vec![v1::Dimension::ActivitySegment],
        vec!["DAILY".into(), "MONTHLY".into()],
        vec![],
    )
    .await
    .unwrap();
    new_customers(&mut client, "a", 20).await;
    let k = 25;
    let read_first = take(&mut first, k).await;
    let token = read_first.last().unwrap().resume_token.clone();
    drop(first);
    new_customers(&mut client, "b", 20).await;

    let total = 3 * 40;
    let everything = take(&mut full, total).await;
    let all_keys: BTreeSet<Key> = everything.iter().map(key).collect();
    assert_eq!(all_keys.len(), total, "each transition once on a token-less watch");

    let mut resumed = watch(&mut client, vec![], vec![], token).await.unwrap();
    let rest = take(&mut resumed, total - k).await;
    let mut seen: Vec<Key> = read_first.iter().chain(&rest).map(key).collect();
    seen.sort();
    let unique: BTreeSet<Key> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "nothing repeated across the resume");
    assert_eq!(unique, all_keys, "nothing skipped across the resume");

    // Filters: one dimension, transitions from or to the listed segments.
    let wanted: Vec<&v1::Transition> = everything
        .iter()
        .filter(|t| t.dimension == v1::Dimension::ActivitySegment as i32)
        .filter(|t| {
            ["DAILY", "MONTHLY"].contains(&t.from.as_str()) || ["DAILY", "MONTHLY"].contains(&t.to.as_str())
        })
        .collect();
    assert!(!wanted.is_empty());
    let filtered: BTreeSet<Key> = take(&mut daily, wanted.len()).await.iter().map(key).collect();
    assert_eq!(filtered, wanted.into_iter().map(key).collect());

    // A resume from the last token of the full watch waits for new transitions only.
    let last = everything.last().unwrap().resume_token.clone();
    drop((full, resumed, daily));
    let mut tail = watch(&mut client, vec![], vec![], last).await.unwrap();
    new_customers(&mut client, "c", 1).await;
    let next = take(&mut tail, 3).await;
    assert!(next.iter().all(|t| t.customer_id == "c0"), "{next:?}");
    drop(tail);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_resume_tokens_are_invalid_arguments() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(data_dir.path()).await;
    let mut client = ActivityServiceClient::new(server.channel().await);
    let mut unknown_shard = vec![1u8];
    unknown_shard.extend_from_slice(&999u64.to_be_bytes());
    unknown_shard.extend_from_slice(&[0; 12]);
    for token in [vec![0xff], vec![1, 2, 3], unknown_shard] {
        let status = watch(&mut client, vec![], vec![], token).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        assert_eq!(details.bad_request().unwrap().field_violations[0].field, "resume_token");
    }
    let status = watch(&mut client, vec![v1::Dimension::Unspecified], vec![], vec![]).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    // A graceful shutdown does not wait for a watching client: the watch ends UNAVAILABLE.
    let mut open = watch(&mut client, vec![], vec![], vec![]).await.unwrap();
    server.stop().await;
    let ended = bounded(open.message()).await.unwrap_err();
    assert_eq!(ended.code(), Code::Unavailable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_moves_a_customer_through_every_activity_segment() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(data_dir.path()).await;
    let channel = server.channel().await;
    let mut client = ActivityServiceClient::new(channel.clone());
    let mut admin = AdminServiceClient::new(channel);
    let mut segments =
        watch(&mut client, vec![v1::Dimension::ActivitySegment], vec![], vec![]).await.unwrap();

    // Active on days 0, 7, 14 and 21-25 of a calendar whose day 26 starts at START_MS.
    let base = START_MS - 26 * DAY_MS;
    let events = [0, 7, 14, 21, 22, 23, 24, 25]
        .iter()
        .map(|day| v1::Event {
            customer_id: "carol".into(),
            event_id: format!("c{day}"),
            timestamp_ms: base + day * DAY_MS + 10 * 3_600_000,
            kind: v1::EventKind::Visit as i32,
            ..v1::Event::default()
        })
        .collect();
    bounded(client.ingest(v1::IngestRequest { events })).await.unwrap();
    let entered = take(&mut segments, 1).await.remove(0);
    assert_eq!((entered.from.as_str(), entered.to.as_str(), entered.cause.as_str()), ("", "DAILY", "c25"));

    let mut previous = "DAILY";
    for (day, segment) in [(28, "WEEKLY"), (40, "MONTHLY"), (60, "DORMANT"), (120, "CHURNED")] {
        let now_ms = base + day * DAY_MS + 12 * 3_600_000;
        bounded(admin.advance_clock(v1::AdvanceClockRequest { now_ms })).await.unwrap();
        // The tick loop proposes a Tick at the new time within a tick interval.
        let moved = take(&mut segments, 1).await.remove(0);
        assert_eq!(moved.customer_id, "carol");
        assert_eq!((moved.from.as_str(), moved.to.as_str()), (previous, segment), "day {day}");
        assert_eq!(moved.cause, "TIME");
        assert_eq!(moved.at_ms, now_ms, "re-evaluated at the tick's clock");
        previous = segment;
    }
    drop(segments);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_older_than_the_retention_is_out_of_range() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = |start_ms: i64| ServerConfig {
        data_dir: data_dir.path().to_path_buf(),
        clock: ClockKind::Manual,
        manual_clock_start_ms: start_ms,
        transition_retention_ms: DAY_MS,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config(START_MS)).await;
    let mut client = ActivityServiceClient::new(server.channel().await);
    let mut stream = watch(&mut client, vec![], vec![], vec![]).await.unwrap();
    new_customers(&mut client, "old", 2).await;
    let token = take(&mut stream, 1).await.remove(0).resume_token;
    drop(stream);
    assert!(watch(&mut client, vec![], vec![], token.clone()).await.is_ok(), "within the retention");
    server.stop().await;

    // Two days later the retention round run at start-up prunes those transitions (a raft
    // entry of every shard; each attempt below is a linearizable read after it was proposed).
    let server = TestServer::start_with(config(START_MS + 2 * DAY_MS)).await;
    let mut client = ActivityServiceClient::new(server.channel().await);
    // The pruning runs in the background (fsynced raft entries): poll, bounded to 10 s.
    let mut status = None;
    for _ in 0..500 {
        match watch(&mut client, vec![], vec![], token.clone()).await {
            Ok(stream) => drop(stream),
            Err(error) => {
                status = Some(error);
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let status = status.expect("the token went out of range within 10 s");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert_eq!(status.get_error_details().bad_request().unwrap().field_violations[0].field, "resume_token");
    server.stop().await;
}

/// A custom segment with hysteresis (enter at index ≥ 40, leave below 20) seen on a watch: one
/// enter transition caused by the event that lifted the index, no exit while the index decays
/// through the band in between, one exit caused by time once it falls below 20; a watch
/// resumed from the enter transition's token delivers exactly the exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_segment_with_hysteresis_enters_and_exits_once_on_a_watch() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(data_dir.path()).await;
    let channel = server.channel().await;
    let mut client = ActivityServiceClient::new(channel.clone());
    let mut admin = AdminServiceClient::new(channel);
    let definition = v1::SegmentDefinition {
        id: "engaged".into(),
        name: "Engaged".into(),
        enter: "activity_index >= 40.0".into(),
        exit: "activity_index < 20.0".into(),
    };
    bounded(admin.put_segment_definition(v1::PutSegmentDefinitionRequest { definition: Some(definition) }))
        .await
        .unwrap();
    let mut stream =
        watch(&mut client, vec![v1::Dimension::Custom], vec!["engaged".into()], vec![]).await.unwrap();

    // Five purchases within the last hour lift the index well above 40.
    let events = (0..5)
        .map(|i| v1::Event {
            customer_id: "hilda".into(),
            event_id: format!("p{i}"),
            timestamp_ms: START_MS - 3_600_000 + i * 60_000,
            kind: v1::EventKind::Purchase as i32,
            amount: 50.0,
            ..v1::Event::default()
        })
        .collect();
    bounded(client.ingest(v1::IngestRequest { events })).await.unwrap();
    let enter = take(&mut stream, 1).await.remove(0);
    assert_eq!(
        (enter.customer_id.as_str(), enter.from.as_str(), enter.to.as_str()),
        ("hilda", "", "engaged")
    );
    assert!(enter.cause.starts_with('p'), "caused by an event: {}", enter.cause);
    let enter_token = enter.resume_token.clone();

    // Day by day the index decays; hilda stays a member through [20, 40) and leaves below 20.
    let mut in_band_days = 0;
    let mut exit_day = None;
    for day in 1..=80 {
        let now_ms = START_MS + day * DAY_MS;
        bounded(admin.advance_clock(v1::AdvanceClockRequest { now_ms })).await.unwrap();
        let request = v1::GetActivityRequest { customer_id: "hilda".into(), ..Default::default() };
        let activity = bounded(client.get_activity(request)).await.unwrap().into_inner();
        let member = activity.custom_segments.contains(&"engaged".to_owned());
        let index = activity.activity_index;
        if index >= 20.0 {
            assert!(member, "day {day}: index {index:.1} >= 20 keeps the member");
            if index < 40.0 {
                in_band_days += 1;
            }
        } else {
            assert!(!member, "day {day}: index {index:.1} < 20 is out");
            exit_day = Some(day);
            break;
        }
    }
    assert!(in_band_days > 0, "the index passed through the hysteresis band");
    let exit_day = exit_day.expect("the index fell below 20 within 80 days");

    let exit = take(&mut stream, 1).await.remove(0);
    assert_eq!((exit.customer_id.as_str(), exit.from.as_str(), exit.to.as_str()), ("hilda", "engaged", ""));
    assert_eq!(exit.cause, "TIME");
    assert!(
        exit.at_ms > START_MS + (exit_day - 1) * DAY_MS && exit.at_ms <= START_MS + exit_day * DAY_MS,
        "left between the last two clock steps"
    );

    // Resuming from the enter transition gives exactly the exit, then the next new transition
    // (ivan entering), not a repeat.
    drop(stream);
    let mut resumed = watch(&mut client, vec![v1::Dimension::Custom], vec![], enter_token).await.unwrap();
    let now_ms = START_MS + exit_day * DAY_MS;
    let events = (0..5)
        .map(|i| v1::Event {
            customer_id: "ivan".into(),
            event_id: format!("i{i}"),
            timestamp_ms: now_ms - 3_600_000 + i * 60_000,
            kind: v1::EventKind::Purchase as i32,
            amount: 50.0,
            ..v1::Event::default()
        })
        .collect();
    bounded(client.ingest(v1::IngestRequest { events })).await.unwrap();
    let next = take(&mut resumed, 2).await;
    assert_eq!(key(&next[0]), key(&exit), "the exit, once, right after the enter");
    assert_eq!(
        (next[1].customer_id.as_str(), next[1].to.as_str()),
        ("ivan", "engaged"),
        "then only new ones"
    );
    drop(resumed);
    server.stop().await;
}
