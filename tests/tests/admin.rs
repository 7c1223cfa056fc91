//! The admin API end to end over gRPC: the versioned scoring config (optimistic concurrency,
//! whole-config validation), custom segment definitions and the CONFIG re-evaluation of
//! existing customers, the BG/NBD fit and the RFM edges over simulated purchase histories, and
//! the manual clock.
//!
//! Every wait is bounded by a timeout; the server is stopped through its shutdown future.

use pulse_coordinator::{ClockKind, ServerConfig};
use pulse_node::ShardCommand;
use pulse_proto::v1;
use pulse_proto::v1::activity_service_client::ActivityServiceClient;
use pulse_proto::v1::admin_service_client::AdminServiceClient;
use pulse_storage::{ColumnFamily, RocksEngine, StorageEngine, WriteBatch, WriteOptions};
use pulse_tests::{DAY_MS, DAY0, START_MS, TestServer, bounded};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

type Admin = AdminServiceClient<Channel>;
type Activity = ActivityServiceClient<Channel>;

fn purchase(customer: &str, id: &str, timestamp_ms: i64, amount: f64) -> v1::Event {
    v1::Event {
        customer_id: customer.into(),
        event_id: id.into(),
        timestamp_ms,
        kind: v1::EventKind::Purchase as i32,
        category: "books".into(),
        amount,
        channel: "web".into(),
    }
}

fn visit(customer: &str, id: &str, timestamp_ms: i64) -> v1::Event {
    v1::Event { kind: v1::EventKind::Visit as i32, amount: 0.0, ..purchase(customer, id, timestamp_ms, 0.0) }
}

async fn ingest(activity: &mut Activity, events: Vec<v1::Event>) {
    let sent = events.len() as u32;
    let response = bounded(activity.ingest(v1::IngestRequest { events })).await.unwrap().into_inner();
    assert_eq!(response.accepted, sent);
}

async fn get(activity: &mut Activity, customer: &str) -> v1::CustomerActivity {
    let request = v1::GetActivityRequest { customer_id: customer.into(), as_of_ms: 0, consistency: 0 };
    bounded(activity.get_activity(request)).await.unwrap().into_inner()
}

async fn get_config(admin: &mut Admin) -> v1::ScoringConfig {
    bounded(admin.get_scoring_config(v1::GetScoringConfigRequest {})).await.unwrap().into_inner()
}

async fn update_config(admin: &mut Admin, config: v1::ScoringConfig) -> Result<v1::ScoringConfig, Status> {
    let request = v1::UpdateScoringConfigRequest { config: Some(config) };
    bounded(admin.update_scoring_config(request)).await.map(tonic::Response::into_inner)
}

async fn put_segment(admin: &mut Admin, id: &str, enter: &str) -> Result<v1::SegmentDefinition, Status> {
    let definition = v1::SegmentDefinition {
        id: id.into(),
        name: format!("segment {id}"),
        enter: enter.into(),
        exit: String::new(),
    };
    let request = v1::PutSegmentDefinitionRequest { definition: Some(definition) };
    bounded(admin.put_segment_definition(request)).await.map(tonic::Response::into_inner)
}

async fn segment_ids(admin: &mut Admin) -> Vec<String> {
    let response =
        bounded(admin.list_segment_definitions(v1::ListSegmentDefinitionsRequest {})).await.unwrap();
    response.into_inner().definitions.into_iter().map(|d| d.id).collect()
}

async fn advance(admin: &mut Admin, now_ms: i64) {
    bounded(admin.advance_clock(v1::AdvanceClockRequest { now_ms })).await.unwrap();
}

/// Every member of a custom segment (the index, maintained only by re-evaluation).
async fn custom_members(activity: &mut Activity, segment: &str) -> Vec<String> {
    let request = v1::ListSegmentMembersRequest {
        dimension: v1::Dimension::Custom as i32,
        segment: segment.into(),
        page_size: 0,
        page_token: String::new(),
    };
    let mut stream = bounded(activity.list_segment_members(request)).await.unwrap().into_inner();
    let mut members = Vec::new();
    while let Some(member) = bounded(stream.message()).await.unwrap() {
        members.push(member.customer_id);
    }
    members
}

/// The fields named by a status's `BadRequest`.
fn bad_fields(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    details
        .bad_request()
        .expect("BadRequest details")
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoring_config_round_trips_with_versions_and_whole_validation() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(data_dir.path()).await;
    let mut admin = Admin::new(server.channel().await);

    let initial = get_config(&mut admin).await;
    assert_eq!(initial, v1::ScoringConfig::from(pulse_scoring::ScoringConfig::default()));
    assert_eq!(initial.version, 0);

    // Version 0 replaces unconditionally; edges and lifetime parameters are kept as sent.
    let edges = v1::RfmEdges {
        version: 4,
        recency_days: vec![3.0, 10.0, 30.0, 90.0],
        frequency: vec![1.0, 2.0, 3.0, 6.0],
        monetary: vec![10.0, 40.0, 100.0, 400.0],
        customers: 0,
    };
    let lifetime = v1::LifetimeParams { r: 0.3, alpha: 5.0, a: 0.8, b: 2.5, modified: false };
    let changed = v1::ScoringConfig {
        level_high: 75.0,
        frequency_scale: 12.0,
        rfm_edges: Some(edges.clone()),
        lifetime: Some(lifetime),
        ..initial.clone()
    };
    let stored = update_config(&mut admin, changed.clone()).await.unwrap();
    assert_eq!(stored, v1::ScoringConfig { version: 1, ..changed.clone() });
    assert_eq!(get_config(&mut admin).await, stored);

    // Derived from the stored version: accepted and bumped.
    let second =
        update_config(&mut admin, v1::ScoringConfig { level_medium: 45.0, ..stored.clone() }).await.unwrap();
    assert_eq!((second.version, second.level_medium), (2, 45.0));
    // Derived from version 1 again: someone else updated in between.
    let stale = update_config(&mut admin, v1::ScoringConfig { level_medium: 50.0, ..stored.clone() })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::FailedPrecondition, "{stale:?}");
    assert_eq!(get_config(&mut admin).await, second);

    // Every bad field is named, and nothing changes.
    let invalid = v1::ScoringConfig { short_half_life_days: -1.0, max_categories: 0, ..second.clone() };
    let status = update_config(&mut admin, invalid).await.unwrap_err();
    let fields = bad_fields(&status);
    assert!(fields.contains(&"config.short_half_life_days".to_owned()), "{fields:?}");
    assert!(fields.contains(&"config.max_categories".to_owned()), "{fields:?}");
    let missing = v1::ScoringConfig { kind_weights: None, ..second.clone() };
    assert_eq!(bad_fields(&update_config(&mut admin, missing).await.unwrap_err()), ["config.kind_weights"]);
    let status = bounded(admin.update_scoring_config(v1::UpdateScoringConfigRequest { config: None }))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["config"]);
    assert_eq!(get_config(&mut admin).await, second);

    // The config is durable: a restarted server has the same version.
    server.stop().await;
    let server = TestServer::start(data_dir.path()).await;
    let mut admin = Admin::new(server.channel().await);
    assert_eq!(get_config(&mut admin).await, second);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_definitions_and_config_reevaluation_of_existing_customers() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(data_dir.path()).await;
    let channel = server.channel().await;
    let (mut admin, mut activity) = (Admin::new(channel.clone()), Activity::new(channel));

    let mut events = Vec::new();
    for i in 0..12 {
        let customer = format!("c{i:02}");
        // Customers with an even number spend 60 twice (120 in all), the others 20 once.
        let t = START_MS - DAY_MS + i * 60_000;
        events.push(purchase(&customer, "p1", t, if i % 2 == 0 { 60.0 } else { 20.0 }));
        if i % 2 == 0 {
            events.push(purchase(&customer, "p2", t + 1_000, 60.0));
        }
    }
    events.push(visit("browser", "v1", START_MS - DAY_MS));
    ingest(&mut activity, events).await;

    // A bad expression is refused with the parser's message, naming the field; nothing stored.
    let status = put_segment(&mut admin, "big", "revenue >= ").await.unwrap_err();
    assert_eq!(bad_fields(&status), ["definition.enter"]);
    let status = put_segment(&mut admin, "big", "revenu >= 100.0").await.unwrap_err();
    assert_eq!(bad_fields(&status), ["definition.enter"], "unknown variable");
    let status = put_segment(&mut admin, "bad id!", "revenue >= 100.0").await.unwrap_err();
    assert_eq!(bad_fields(&status), ["definition.id"]);
    assert!(segment_ids(&mut admin).await.is_empty());
    assert_eq!(get_config(&mut admin).await.version, 0);

    let stored = put_segment(&mut admin, "big", "revenue >= 100.0").await.unwrap();
    assert_eq!(stored.enter, "revenue >= 100.0");
    assert_eq!(get_config(&mut admin).await.version, 1);
    // Applying time-driven changes up to now includes the CONFIG re-evaluation pass.
    advance(&mut admin, START_MS).await;
    let expected: Vec<String> = (0..12).filter(|i| i % 2 == 0).map(|i| format!("c{i:02}")).collect();
    assert_eq!(custom_members(&mut activity, "big").await, expected);
    assert_eq!(get(&mut activity, "c00").await.custom_segments, ["big"]);
    assert!(get(&mut activity, "c01").await.custom_segments.is_empty());

    // Replacing a definition by id re-evaluates everyone under the new rule.
    put_segment(&mut admin, "big", "revenue >= 10.0 && purchases >= 1").await.unwrap();
    put_segment(&mut admin, "a-browsers", "purchases == 0").await.unwrap();
    advance(&mut admin, START_MS + 1).await;
    let everyone: Vec<String> = (0..12).map(|i| format!("c{i:02}")).collect();
    assert_eq!(custom_members(&mut activity, "big").await, everyone);
    assert_eq!(custom_members(&mut activity, "a-browsers").await, ["browser"]);
    assert_eq!(segment_ids(&mut admin).await, ["a-browsers", "big"], "ordered by id");

    bounded(admin.delete_segment_definition(v1::DeleteSegmentDefinitionRequest { id: "big".into() }))
        .await
        .unwrap();
    let again =
        bounded(admin.delete_segment_definition(v1::DeleteSegmentDefinitionRequest { id: "big".into() }))
            .await
            .unwrap_err();
    assert_eq!(again.code(), Code::NotFound, "{again:?}");
    assert_eq!(segment_ids(&mut admin).await, ["a-browsers"]);
    advance(&mut admin, START_MS + 2).await;
    assert!(get(&mut activity, "c00").await.custom_segments.is_empty(), "members left the deleted segment");
    assert_eq!(get_config(&mut admin).await.version, 4);
    server.stop().await;
}

/// BG/NBD-like purchase histories over four months: a few hundred buyers, each with its own
/// purchase rate and dropout probability, plus visitors that never buy. Returns the events and
/// the ids of the buyers.
fn simulated_histories(now_ms: i64) -> (Vec<v1::Event>, Vec<String>) {
    let mut rng = StdRng::seed_from_u64(20_260_105);
    let horizon_days = ((now_ms - DAY0) / DAY_MS) as f64;
    let mut events = Vec::new();
    let mut buyers = Vec::new();
    for i in 0..300 {
        let customer = format!("buyer-{i:03}");
        let rate_per_day: f64 = rng.random_range(0.02..0.4);
        let dropout: f64 = rng.random_range(0.05..0.5);
        let mut day: f64 = rng.random_range(0.0..horizon_days * 0.8);
        let mut n = 0;
        while day < horizon_days - 0.01 {
            let at = DAY0 + (day * DAY_MS as f64) as i64;
            events.push(purchase(&customer, &format!("p{n}"), at, rng.random_range(5.0..200.0)));
            n += 1;
            if rng.random::<f64>() < dropout {
                break;
            }
            day += -(1.0 - rng.random::<f64>()).ln() / rate_per_day;
        }
        buyers.push(customer);
    }
    for i in 0..40 {
        let at = DAY0 + rng.random_range(0..(now_ms - DAY0));
        events.push(visit(&format!("visitor-{i:02}"), "v", at));
    }
    (events, buyers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifetime_fit_and_rfm_edges_over_simulated_purchases() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(data_dir.path()).await;
    let channel = server.channel().await;
    let (mut admin, mut activity) = (Admin::new(channel.clone()), Activity::new(channel));

    // Nothing to fit on an empty server.
    let fit_request = |as_of_ms| v1::FitLifetimeModelRequest { as_of_ms, modified: false };
    let status = bounded(admin.fit_lifetime_model(fit_request(0))).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let status = bounded(admin.refresh_rfm_edges(v1::RefreshRfmEdgesRequest {})).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let status = bounded(admin.fit_lifetime_model(fit_request(-1))).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["as_of_ms"]);
    assert_eq!(get_config(&mut admin).await.version, 0, "nothing installed");

    let now_ms = DAY0 + 120 * DAY_MS;
    advance(&mut admin, now_ms).await;
    let (events, buyers) = simulated_histories(now_ms);
    ingest(&mut activity, events).await;
    assert!(get(&mut activity, &buyers[0]).await.lifetime.is_none(), "no model yet");
    assert!(get(&mut activity, &buyers[0]).await.rfm.is_none(), "no edges yet");

    let model = bounded(admin.fit_lifetime_model(fit_request(0))).await.unwrap().into_inner();
    assert_eq!(model.customers, buyers.len() as u64, "every buyer, no visitor");
    assert!([model.r, model.alpha, model.a, model.b].iter().all(|p| p.is_finite() && *p > 0.0), "{model:?}");
    assert!(model.log_likelihood < 0.0, "{model:?}");
    assert!(!model.modified);
    assert_eq!(model.version, 1);
    let config = get_config(&mut admin).await;
    assert_eq!(config.version, 1);
    assert_eq!(
        config.lifetime,
        Some(v1::LifetimeParams { r: model.r, alpha: model.alpha, a: model.a, b: model.b, modified: false })
    );
    for buyer in buyers.iter().take(50) {
        let lifetime = get(&mut activity, buyer).await.lifetime.expect("a buyer has a lifetime prediction");
        assert!(lifetime.p_alive > 0.0 && lifetime.p_alive <= 1.0, "{buyer}: {lifetime:?}");
    }
    assert!(get(&mut activity, "visitor-00").await.lifetime.is_none());

    let edges = bounded(admin.refresh_rfm_edges(v1::RefreshRfmEdgesRequest {})).await.unwrap().into_inner();
    assert_eq!((edges.version, edges.customers), (1, buyers.len() as u64));
    for cuts in [&edges.recency_days, &edges.frequency, &edges.monetary] {
        assert_eq!(cuts.len(), 4, "{edges:?}");
        assert!(cuts.windows(2).all(|pair| pair[0] <= pair[1]), "ascending: {edges:?}");
    }
    assert!(edges.monetary[0] < edges.monetary[3], "spends differ: {edges:?}");
    let config = get_config(&mut admin).await;
    assert_eq!(config.version, 2);
    assert_eq!(config.rfm_edges, Some(v1::RfmEdges { customers: 0, ..edges.clone() }));
    assert!(config.lifetime.is_some(), "the fit stays installed");
    for buyer in buyers.iter().take(50) {
        let rfm = get(&mut activity, buyer).await.rfm.expect("a buyer has an RFM score");
        assert!((1..=5).contains(&rfm.r) && (1..=5).contains(&rfm.f) && (1..=5).contains(&rfm.m), "{rfm:?}");
    }
    assert!(get(&mut activity, "visitor-00").await.rfm.is_none());
    let again = bounded(admin.refresh_rfm_edges(v1::RefreshRfmEdgesRequest {})).await.unwrap().into_inner();
    assert_eq!(again.version, 2, "each refresh bumps the edges version");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_rfm_refresh_installs_edges_once_there_are_purchases() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(ServerConfig {
        data_dir: data_dir.path().to_path_buf(),
        clock: ClockKind::Manual,
        manual_clock_start_ms: START_MS,
        rfm_refresh_interval_ms: 50,
        ..ServerConfig::default()
    })
    .await;
    let channel = server.channel().await;
    let (mut admin, mut activity) = (Admin::new(channel.clone()), Activity::new(channel));
    ingest(&mut activity, vec![purchase("solo", "p1", START_MS - DAY_MS, 30.0)]).await;
    // Wait (bounded) for the background refresh to install edges.
    bounded(async {
        loop {
            if get_config(&mut admin).await.rfm_edges.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(get(&mut activity, "solo").await.rfm.is_some());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_brings_every_shard_to_the_newest_config_version() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(data_dir.path()).await;
    let mut activity = Activity::new(server.channel().await);
    let customers: Vec<String> = (0..40).map(|i| format!("k{i:02}")).collect();
    let events = customers.iter().map(|c| visit(c, "v1", START_MS - DAY_MS)).collect();
    ingest(&mut activity, events).await;
    server.stop().await;

    // As if a change had reached only shard 1 before a crash: its stored config (meta key
    // `shard | 0x02`) is version 3 with a segment every customer satisfies; the others have 0.
    let set_config = ShardCommand::SetConfig {
        config: Box::new(pulse_scoring::ScoringConfig { version: 3, ..Default::default() }),
        segments: vec![pulse_scoring::SegmentDefinition {
            id: "everyone".into(),
            name: "Everyone".into(),
            enter: "activity_index >= 0.0".into(),
            exit: String::new(),
        }],
    };
    {
        let engine = RocksEngine::open(data_dir.path()).unwrap();
        let mut key = 1u64.to_be_bytes().to_vec();
        key.push(0x02);
        let mut batch = WriteBatch::new();
        batch.put(ColumnFamily::Meta, &key, &set_config.encode());
        engine.write(&batch, WriteOptions { sync: true }).unwrap();
    }

    let server = TestServer::start(data_dir.path()).await;
    let channel = server.channel().await;
    let (mut admin, mut activity) = (Admin::new(channel.clone()), Activity::new(channel));
    assert_eq!(get_config(&mut admin).await.version, 3);
    assert_eq!(segment_ids(&mut admin).await, ["everyone"]);
    // Reads evaluate custom segments with their own shard's config: every shard has it now.
    for customer in &customers {
        assert_eq!(get(&mut activity, customer).await.custom_segments, ["everyone"], "{customer}");
    }
    // The next change builds on the newest version.
    put_segment(&mut admin, "more", "activity_index >= 1.0").await.unwrap();
    assert_eq!(get_config(&mut admin).await.version, 4);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advance_clock_on_a_wall_clock_is_a_failed_precondition() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(ServerConfig {
        data_dir: data_dir.path().to_path_buf(),
        clock: ClockKind::Wall,
        ..ServerConfig::default()
    })
    .await;
    let mut admin = Admin::new(server.channel().await);
    let status =
        bounded(admin.advance_clock(v1::AdvanceClockRequest { now_ms: START_MS })).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    server.stop().await;
}
