//! The standalone server end to end over gRPC: ingest, reads equal to the model, all-or-nothing
//! validation, idempotent re-sends, batch reads, health and the manual clock.
//!
//! Every wait is bounded by a timeout; the server is stopped through its shutdown future.

use pulse_proto::v1;
use pulse_proto::v1::activity_service_client::ActivityServiceClient;
use pulse_proto::v1::admin_service_client::AdminServiceClient;
use pulse_scoring::{CustomerState, Event, EventInput, ScoringConfig, score};
use pulse_tests::{DAY_MS, DAY0, START_MS, TestServer, bounded};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

fn event(customer: &str, id: &str, day: i64, amount: f64) -> v1::Event {
    v1::Event {
        customer_id: customer.into(),
        event_id: id.into(),
        timestamp_ms: DAY0 + day * DAY_MS,
        kind: v1::EventKind::Purchase as i32,
        category: "books".into(),
        amount,
        channel: "web".into(),
    }
}

/// What the model says about `customer` after `events`, through the proto conversion.
fn expected(customer: &str, events: &[v1::Event], as_of_ms: i64) -> v1::CustomerActivity {
    let config = ScoringConfig::default();
    let mut state = CustomerState::default();
    for wire in events.iter().filter(|e| e.customer_id == customer) {
        let event = Event::validate(EventInput::from(wire.clone()), START_MS, &config).unwrap();
        state.apply(&event, &config);
    }
    v1::CustomerActivity::from(score(customer, &state, as_of_ms, &config).unwrap())
}

async fn get(
    client: &mut ActivityServiceClient<Channel>,
    customer: &str,
    as_of_ms: i64,
) -> Result<v1::CustomerActivity, tonic::Status> {
    let request = v1::GetActivityRequest { customer_id: customer.into(), as_of_ms, consistency: 0 };
    bounded(client.get_activity(request)).await.map(tonic::Response::into_inner)
}

/// Streams a whole `ListSegmentMembers` answer.
async fn list(
    client: &mut ActivityServiceClient<Channel>,
    dimension: v1::Dimension,
    segment: &str,
    page_size: u32,
    page_token: &str,
) -> Result<Vec<v1::SegmentMember>, tonic::Status> {
    let request = v1::ListSegmentMembersRequest {
        dimension: dimension as i32,
        segment: segment.into(),
        page_size,
        page_token: page_token.into(),
    };
    let mut stream = bounded(client.list_segment_members(request)).await?.into_inner();
    let mut members = Vec::new();
    while let Some(member) = bounded(stream.message()).await? {
        members.push(member);
    }
    Ok(members)
}

/// A page token from a listing (of the first member, which always continues the listing).
fn token_of(members: &[v1::SegmentMember]) -> String {
    members.iter().map(|m| m.next_page_token.clone()).find(|t| !t.is_empty()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_serves_the_activity_api() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(data_dir.path()).await;
    let channel = server.channel().await;
    let mut client = ActivityServiceClient::new(channel.clone());

    // step: health is SERVING.
    let health =
        bounded(HealthClient::new(channel.clone()).check(HealthCheckRequest { service: String::new() }))
            .await
            .unwrap()
            .into_inner();
    assert_eq!(health.status, ServingStatus::Serving as i32);

    // step: ingest a batch spread over several shards.
    let events = vec![
        event("alice", "a1", 1, 20.0),
        event("alice", "a2", 3, 35.5),
        event("bob", "b1", 2, 12.0),
        event("carol", "c1", 5, 99.0),
        event("alice", "a3", 8, 5.0),
    ];
    let response =
        bounded(client.ingest(v1::IngestRequest { events: events.clone() })).await.unwrap().into_inner();
    assert_eq!((response.accepted, response.duplicates), (5, 0));

    // step: reads equal the model on the same events.
    let as_of_ms = START_MS + DAY_MS;
    for customer in ["alice", "bob", "carol"] {
        let activity = get(&mut client, customer, as_of_ms).await.unwrap();
        assert_eq!(activity, expected(customer, &events, as_of_ms), "{customer}");
    }
    let stale = bounded(client.get_activity(v1::GetActivityRequest {
        customer_id: "bob".into(),
        as_of_ms,
        consistency: v1::Consistency::Stale as i32,
    }))
    .await
    .unwrap()
    .into_inner();
    assert_eq!(stale, expected("bob", &events, as_of_ms));

    // step: an as_of before the last event is INVALID_ARGUMENT naming as_of_ms.
    let status = get(&mut client, "alice", DAY0).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let details = status.get_error_details();
    assert_eq!(details.bad_request().unwrap().field_violations[0].field, "as_of_ms");

    // step: one bad event rejects the whole batch; nothing of it is applied.
    let bad_batch =
        vec![event("dave", "d1", 1, 10.0), event("erin", "e1", 1, f64::NAN), event("frank", "f1", 2, 3.0)];
    let status = bounded(client.ingest(v1::IngestRequest { events: bad_batch })).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let details = status.get_error_details();
    let fields: Vec<&str> =
        details.bad_request().unwrap().field_violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["events[1].amount"]);
    for customer in ["dave", "erin", "frank"] {
        assert_eq!(get(&mut client, customer, 0).await.unwrap_err().code(), Code::NotFound, "{customer}");
    }

    // step: re-sending the same events counts duplicates and changes nothing.
    let response =
        bounded(client.ingest(v1::IngestRequest { events: events.clone() })).await.unwrap().into_inner();
    assert_eq!((response.accepted, response.duplicates), (0, 5));
    assert_eq!(get(&mut client, "alice", as_of_ms).await.unwrap(), expected("alice", &events, as_of_ms));

    // step: batch reads list missing ids without failing.
    let batch = bounded(client.batch_get_activity(v1::BatchGetActivityRequest {
        customer_ids: vec!["carol".into(), "nobody".into(), "alice".into(), "carol".into()],
        as_of_ms,
        consistency: 0,
    }))
    .await
    .unwrap()
    .into_inner();
    let found: Vec<&str> = batch.activities.iter().map(|a| a.customer_id.as_str()).collect();
    assert_eq!(found, ["carol", "alice"]);
    assert_eq!(batch.missing_customer_ids, ["nobody"]);

    // step: the manual clock moves forward only; reads at "now" follow it.
    let mut admin = AdminServiceClient::new(channel.clone());
    let later = START_MS + 30 * DAY_MS;
    let advanced =
        bounded(admin.advance_clock(v1::AdvanceClockRequest { now_ms: later })).await.unwrap().into_inner();
    assert_eq!(advanced.now_ms, later);
    let status =
        bounded(admin.advance_clock(v1::AdvanceClockRequest { now_ms: START_MS })).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let now = get(&mut client, "carol", 0).await.unwrap();
    assert_eq!(now.as_of_ms, later);
    assert_eq!(now, expected("carol", &events, later));

    // step: erasure forgets the customer, and a second erasure finds nothing.
    assert!(get(&mut client, "alice", 0).await.is_ok());
    bounded(client.delete_customer(v1::DeleteCustomerRequest { customer_id: "alice".into() })).await.unwrap();
    assert_eq!(get(&mut client, "alice", 0).await.unwrap_err().code(), Code::NotFound);
    let status = bounded(client.delete_customer(v1::DeleteCustomerRequest { customer_id: "alice".into() }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // step: a stream of ingest requests gets one response per request.
    let requests = vec![
        v1::IngestRequest { events: vec![event("gina", "g1", 20, 1.0), event("hank", "h1", 20, 2.0)] },
        v1::IngestRequest { events: vec![event("gina", "g1", 20, 1.0), event("gina", "g2", 21, 4.0)] },
    ];
    let mut responses =
        bounded(client.ingest_stream(tokio_stream::iter(requests))).await.unwrap().into_inner();
    let mut counts = Vec::new();
    while let Some(response) = bounded(responses.message()).await.unwrap() {
        counts.push((response.accepted, response.duplicates));
    }
    assert_eq!(counts, [(2, 0), (1, 1)]);

    // step: a segment listing merges every shard in customer-id order and resumes from tokens.
    let newcomers: Vec<v1::Event> = ["seg-e", "seg-a", "seg-d", "seg-b", "seg-c"]
        .iter()
        .map(|c| event(c, &format!("{c}-1"), 20, 3.0))
        .collect();
    bounded(client.ingest(v1::IngestRequest { events: newcomers })).await.unwrap();
    let probe = get(&mut client, "seg-a", 0).await.unwrap();
    let lifecycle =
        v1::Lifecycle::try_from(probe.lifecycle).unwrap().as_str_name().trim_start_matches("LIFECYCLE_");
    let whole = list(&mut client, v1::Dimension::Lifecycle, lifecycle, 0, "").await.unwrap();
    let ids: Vec<&str> = whole.iter().map(|m| m.customer_id.as_str()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "sorted and unique: {ids:?}");
    for newcomer in ["seg-a", "seg-b", "seg-c", "seg-d", "seg-e"] {
        assert!(ids.contains(&newcomer), "{newcomer} listed in {lifecycle}");
    }
    assert!(whole.last().unwrap().next_page_token.is_empty(), "the last member ends the listing");
    let mut paged = Vec::new();
    let mut token = String::new();
    for _ in 0..ids.len() {
        let page = list(&mut client, v1::Dimension::Lifecycle, lifecycle, 2, &token).await.unwrap();
        assert!(!page.is_empty() && page.len() <= 2);
        token = page.last().unwrap().next_page_token.clone();
        paged.extend(page.into_iter().map(|m| m.customer_id));
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(paged, ids, "pages of two resume exactly where the previous page ended");
    let unknown = list(&mut client, v1::Dimension::Lifecycle, "NOPE", 0, "").await.unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    let missing = list(&mut client, v1::Dimension::Custom, "no-such-segment", 0, "").await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let foreign = list(&mut client, v1::Dimension::Level, "HIGH", 0, &token_of(&whole)).await.unwrap_err();
    assert_eq!(foreign.code(), Code::InvalidArgument, "a token only resumes its own segment");

    drop(client);
    drop(admin);
    drop(channel);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_and_event_ids_survive_a_restart() {
    let data_dir = tempfile::tempdir().unwrap();
    let events = vec![event("ivan", "i1", 1, 10.0), event("judy", "j1", 2, 20.0)];
    let as_of_ms = START_MS;

    let server = TestServer::start(data_dir.path()).await;
    let mut client = ActivityServiceClient::new(server.channel().await);
    let response =
        bounded(client.ingest(v1::IngestRequest { events: events.clone() })).await.unwrap().into_inner();
    assert_eq!((response.accepted, response.duplicates), (2, 0));
    drop(client);
    server.stop().await;

    // step: same directory, new process state.
    let server = TestServer::start(data_dir.path()).await;
    let mut client = ActivityServiceClient::new(server.channel().await);
    for customer in ["ivan", "judy"] {
        assert_eq!(
            get(&mut client, customer, as_of_ms).await.unwrap(),
            expected(customer, &events, as_of_ms)
        );
    }
    let response = bounded(client.ingest(v1::IngestRequest { events })).await.unwrap().into_inner();
    assert_eq!((response.accepted, response.duplicates), (0, 2));
    drop(client);
    server.stop().await;
}
