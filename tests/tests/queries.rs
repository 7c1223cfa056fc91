//! The collective queries end to end: segment stats, migration matrix, top customers and
//! category affinity, each against what the model says for the same events (read back through
//! `BatchGetActivity`), and every bad input named.

use std::collections::BTreeMap;

use pulse_proto::v1;
use pulse_proto::v1::activity_service_client::ActivityServiceClient;
use pulse_proto::v1::admin_service_client::AdminServiceClient;
use pulse_tests::{DAY_MS, START_MS, TestServer, bounded};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

const CATEGORIES: [&str; 4] = ["books", "garden", "toys", ""];

/// A deterministic mix of customers: event days, kinds, categories and amounts vary.
fn population(customers: usize, now_ms: i64, id_prefix: &str) -> Vec<v1::Event> {
    let mut seed: u64 = 0x5eed_1234;
    let mut next = move |bound: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % bound
    };
    let mut events = Vec::new();
    for c in 0..customers {
        let count = 1 + next(12);
        for e in 0..count {
            let days_ago = next(70) as i64;
            events.push(v1::Event {
                customer_id: format!("{id_prefix}{c:03}"),
                event_id: format!("{id_prefix}{c}-{e}"),
                timestamp_ms: now_ms - days_ago * DAY_MS - 1_000 * (1 + next(3_600)) as i64,
                kind: 1 + next(5) as i32,
                category: CATEGORIES[next(4) as usize].to_uppercase(),
                amount: next(200) as f64,
                channel: String::new(),
            });
        }
    }
    events
}

/// The segment of a customer's activity along one dimension.
type SegmentOf = fn(&v1::CustomerActivity) -> String;

fn ids(events: &[v1::Event]) -> Vec<String> {
    let mut ids: Vec<String> = events.iter().map(|e| e.customer_id.clone()).collect();
    ids.sort();
    ids.dedup();
    ids
}

async fn ingest(client: &mut ActivityServiceClient<Channel>, events: Vec<v1::Event>) {
    for chunk in events.chunks(1_000) {
        bounded(client.ingest(v1::IngestRequest { events: chunk.to_vec() })).await.unwrap();
    }
}

/// Every customer's activity now, through the point-read API.
async fn activities(
    client: &mut ActivityServiceClient<Channel>,
    customer_ids: &[String],
) -> Vec<v1::CustomerActivity> {
    let request =
        v1::BatchGetActivityRequest { customer_ids: customer_ids.to_vec(), as_of_ms: 0, consistency: 0 };
    let response = bounded(client.batch_get_activity(request)).await.unwrap().into_inner();
    assert!(response.missing_customer_ids.is_empty());
    response.activities
}

/// The field a BadRequest names, checking the code.
fn bad_field(status: tonic::Status, code: Code) -> String {
    assert_eq!(status.code(), code, "{status:?}");
    let details = status.get_error_details();
    details.bad_request().expect("a BadRequest detail").field_violations[0].field.clone()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

async fn stats(client: &mut ActivityServiceClient<Channel>, dimension: v1::Dimension) -> v1::SegmentStats {
    let request = v1::GetSegmentStatsRequest { dimension: dimension as i32 };
    bounded(client.get_segment_stats(request)).await.unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_stats_top_customers_and_affinity_match_the_model() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(data_dir.path()).await;
    let mut client = ActivityServiceClient::new(server.channel().await);
    let events = population(60, START_MS, "c");
    let customer_ids = ids(&events);
    ingest(&mut client, events).await;
    let all = activities(&mut client, &customer_ids).await;

    // Segment stats of each built-in dimension = grouping the per-customer activity.
    let dimensions: [(v1::Dimension, Vec<&str>, SegmentOf); 3] = [
        (v1::Dimension::ActivitySegment, vec!["DAILY", "WEEKLY", "MONTHLY", "DORMANT", "CHURNED"], |a| {
            v1::ActivitySegment::try_from(a.segment)
                .unwrap()
                .as_str_name()
                .trim_start_matches("ACTIVITY_SEGMENT_")
                .into()
        }),
        (v1::Dimension::Lifecycle, vec!["NEW", "RETURNING", "RESURRECTING", "DORMANT"], |a| {
            v1::Lifecycle::try_from(a.lifecycle)
                .unwrap()
                .as_str_name()
                .trim_start_matches("LIFECYCLE_")
                .into()
        }),
        (v1::Dimension::Level, vec!["HIGH", "MEDIUM", "LOW", "INACTIVE"], |a| {
            v1::ActivityLevel::try_from(a.level)
                .unwrap()
                .as_str_name()
                .trim_start_matches("ACTIVITY_LEVEL_")
                .into()
        }),
    ];
    for (dimension, order, segment_of) in dimensions {
        let got = stats(&mut client, dimension).await;
        let names: Vec<&str> = got.segments.iter().map(|s| s.segment.as_str()).collect();
        assert_eq!(names, order, "every value in enum order, also when empty");
        let mut expected: BTreeMap<String, (u64, f64)> = BTreeMap::new();
        for activity in &all {
            let slot = expected.entry(segment_of(activity)).or_default();
            slot.0 += 1;
            slot.1 += activity.activity_index;
        }
        for summary in &got.segments {
            let (customers, sum) = expected.get(&summary.segment).copied().unwrap_or_default();
            assert_eq!(summary.customers, customers, "{dimension:?} {}", summary.segment);
            let mean = if customers == 0 { 0.0 } else { sum / customers as f64 };
            assert!(close(summary.mean_activity_index, mean), "{dimension:?} {}", summary.segment);
        }
        let active = |days: i64| {
            all.iter()
                .filter(|a| a.last_seen_ms >= START_MS - days * DAY_MS && a.last_seen_ms <= START_MS)
                .count() as u64
        };
        assert_eq!((got.active_1d, got.active_7d, got.active_30d), (active(1), active(7), active(30)));
        assert!(got.active_30d > got.active_1d && got.active_1d > 0, "a population worth testing");
        assert!(close(got.stickiness, got.active_1d as f64 / got.active_30d as f64));
    }
    // RFM: every segment listed in RfmScore.segment order, empty without RFM edges; no custom
    // segments are defined.
    let rfm = stats(&mut client, v1::Dimension::RfmSegment).await;
    assert_eq!(rfm.segments.len(), 10);
    assert_eq!(rfm.segments[0].segment, "Champions");
    assert!(rfm.segments.iter().all(|s| s.customers == 0 && s.mean_activity_index == 0.0));
    assert!(stats(&mut client, v1::Dimension::Custom).await.segments.is_empty());

    // Top customers: the model's ranking, overall and within a category (normalised).
    let mut ranking: Vec<(f64, String)> =
        all.iter().map(|a| (a.activity_index, a.customer_id.clone())).collect();
    ranking.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let top = bounded(client.top_customers(v1::TopCustomersRequest { category: String::new(), limit: 7 }))
        .await
        .unwrap()
        .into_inner();
    let got: Vec<(f64, String)> =
        top.customers.into_iter().map(|c| (c.activity_index, c.customer_id)).collect();
    assert_eq!(got, ranking[..7]);
    let default_limit = bounded(client.top_customers(v1::TopCustomersRequest::default())).await.unwrap();
    assert_eq!(default_limit.into_inner().customers.len(), 10);
    let mut in_books: Vec<(f64, String)> = all
        .iter()
        .filter_map(|a| {
            let c = a.categories.iter().find(|c| c.category == "books")?;
            Some((c.activity_index, a.customer_id.clone()))
        })
        .collect();
    in_books.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let request = v1::TopCustomersRequest { category: "  Books ".into(), limit: 10_000 };
    let top = bounded(client.top_customers(request)).await.unwrap().into_inner();
    let got: Vec<(f64, String)> =
        top.customers.into_iter().map(|c| (c.activity_index, c.customer_id)).collect();
    assert_eq!(got, in_books);

    // Category affinity: counted from every customer's categories.
    let wanted = ["books", "garden", "toys"];
    for threshold in [0.0, 0.3] {
        let attached = |a: &v1::CustomerActivity, name: &str| {
            a.categories.iter().any(|c| c.category == name && c.affinity > 0.0 && c.affinity >= threshold)
        };
        let request = v1::GetCategoryAffinityRequest {
            categories: vec!["BOOKS".into(), " garden".into(), "toys".into()],
            threshold,
        };
        let got = bounded(client.get_category_affinity(request)).await.unwrap().into_inner();
        assert_eq!(got.customers, all.len() as u64);
        for (i, name) in wanted.iter().enumerate() {
            assert_eq!(got.categories[i].category, *name);
            let count = all.iter().filter(|a| attached(a, name)).count() as u64;
            assert_eq!(got.categories[i].customers, count, "{name} at {threshold}");
        }
        let pairs: Vec<(&str, &str)> = vec![("books", "garden"), ("books", "toys"), ("garden", "toys")];
        assert_eq!(got.pairs.len(), 3);
        for (pair, (a, b)) in got.pairs.iter().zip(pairs) {
            assert_eq!((pair.category_a.as_str(), pair.category_b.as_str()), (a, b));
            let both = all.iter().filter(|x| attached(x, a) && attached(x, b)).count() as u64;
            assert_eq!(pair.customers, both);
            let (na, nb) = (
                all.iter().filter(|x| attached(x, a)).count() as f64,
                all.iter().filter(|x| attached(x, b)).count() as f64,
            );
            let lift = if na == 0.0 || nb == 0.0 { 0.0 } else { all.len() as f64 * both as f64 / (na * nb) };
            assert!(close(pair.lift, lift), "{a}/{b}");
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_matrix_counts_every_customer_once() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(data_dir.path()).await;
    let channel = server.channel().await;
    let mut client = ActivityServiceClient::new(channel.clone());
    let mut admin = AdminServiceClient::new(channel);
    let first = population(40, START_MS, "a");
    let first_ids = ids(&first);
    ingest(&mut client, first).await;
    let segment = |a: &v1::CustomerActivity| {
        v1::ActivitySegment::try_from(a.segment)
            .unwrap()
            .as_str_name()
            .trim_start_matches("ACTIVITY_SEGMENT_")
            .to_owned()
    };
    let before: BTreeMap<String, String> = activities(&mut client, &first_ids)
        .await
        .iter()
        .map(|a| (a.customer_id.clone(), segment(a)))
        .collect();

    // An hour later (same day: activity segments only move with events), new customers arrive
    // and some known ones come back.
    let later = START_MS + 3_600_000;
    bounded(admin.advance_clock(v1::AdvanceClockRequest { now_ms: later })).await.unwrap();
    let mut second = population(25, later, "b");
    for (i, id) in first_ids.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        for day in 0..6 {
            second.push(v1::Event {
                customer_id: id.clone(),
                event_id: format!("back-{i}-{day}"),
                timestamp_ms: later - day * DAY_MS - 60_000,
                kind: v1::EventKind::Visit as i32,
                ..v1::Event::default()
            });
        }
    }
    let mut all_ids = first_ids.clone();
    all_ids.extend(ids(&second));
    all_ids.sort();
    all_ids.dedup();
    ingest(&mut client, second).await;
    let after: BTreeMap<String, String> =
        activities(&mut client, &all_ids).await.iter().map(|a| (a.customer_id.clone(), segment(a))).collect();

    let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (customer, to) in &after {
        let from = before.get(customer).cloned().unwrap_or_default();
        *expected.entry((from, to.clone())).or_default() += 1;
    }
    assert!(expected.keys().any(|(from, to)| from != to && !from.is_empty()), "some customers moved");
    let request = v1::GetMigrationMatrixRequest {
        dimension: v1::Dimension::ActivitySegment as i32,
        from_ms: START_MS + 1,
        to_ms: 0,
    };
    let matrix = bounded(client.get_migration_matrix(request)).await.unwrap().into_inner();
    let got: BTreeMap<(String, String), u64> =
        matrix.cells.iter().map(|c| ((c.from.clone(), c.to.clone()), c.customers)).collect();
    assert_eq!(got, expected);
    let keys: Vec<(String, String)> = matrix.cells.iter().map(|c| (c.from.clone(), c.to.clone())).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "ordered by (from, to)");
    let mut rows: BTreeMap<&str, f64> = BTreeMap::new();
    for cell in &matrix.cells {
        let row: u64 = expected.iter().filter(|((from, _), _)| *from == cell.from).map(|(_, n)| n).sum();
        assert!(close(cell.rate, cell.customers as f64 / row as f64));
        *rows.entry(&cell.from).or_default() += cell.rate;
    }
    assert!(rows.values().all(|sum| close(*sum, 1.0)));

    // A window ending before the second batch: the first population where it stood.
    let request = v1::GetMigrationMatrixRequest {
        dimension: v1::Dimension::ActivitySegment as i32,
        from_ms: START_MS - DAY_MS,
        to_ms: START_MS + 1,
    };
    let matrix = bounded(client.get_migration_matrix(request)).await.unwrap().into_inner();
    let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
    for customer in &all_ids {
        let to = before.get(customer).cloned().unwrap_or_default();
        *expected.entry((String::new(), to)).or_default() += 1;
    }
    let got: BTreeMap<(String, String), u64> =
        matrix.cells.iter().map(|c| ((c.from.clone(), c.to.clone()), c.customers)).collect();
    assert_eq!(got, expected, "everyone was unknown a day before the first events arrived");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_inputs_are_named() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(data_dir.path()).await;
    let mut client = ActivityServiceClient::new(server.channel().await);

    let status =
        bounded(client.get_segment_stats(v1::GetSegmentStatsRequest { dimension: 0 })).await.unwrap_err();
    assert_eq!(bad_field(status, Code::InvalidArgument), "dimension");

    let matrix = |dimension: v1::Dimension, from_ms: i64, to_ms: i64| v1::GetMigrationMatrixRequest {
        dimension: dimension as i32,
        from_ms,
        to_ms,
    };
    let cases = [
        (matrix(v1::Dimension::Unspecified, START_MS - 1, 0), Code::InvalidArgument, "dimension"),
        (matrix(v1::Dimension::Level, START_MS, START_MS), Code::InvalidArgument, "to_ms"),
        (matrix(v1::Dimension::Level, START_MS + 10, 0), Code::InvalidArgument, "to_ms"),
        (matrix(v1::Dimension::Level, START_MS - 31 * DAY_MS, 0), Code::OutOfRange, "from_ms"),
    ];
    for (request, code, field) in cases {
        let status = bounded(client.get_migration_matrix(request)).await.unwrap_err();
        assert_eq!(bad_field(status, code), field);
    }

    let status =
        bounded(client.top_customers(v1::TopCustomersRequest { category: String::new(), limit: 10_001 }))
            .await
            .unwrap_err();
    assert_eq!(bad_field(status, Code::InvalidArgument), "limit");
    let status =
        bounded(client.top_customers(v1::TopCustomersRequest { category: "x".repeat(65), limit: 1 }))
            .await
            .unwrap_err();
    assert_eq!(bad_field(status, Code::InvalidArgument), "category");

    let affinity =
        |categories: Vec<String>, threshold: f64| v1::GetCategoryAffinityRequest { categories, threshold };
    let cases = [
        (affinity(vec![], 0.0), "categories"),
        (affinity((0..65).map(|i| format!("c{i}")).collect(), 0.0), "categories"),
        (affinity(vec!["books".into(), " ".into()], 0.0), "categories[1]"),
        (affinity(vec!["books".into(), "toys".into(), " BOOKS".into()], 0.0), "categories[2]"),
        (affinity(vec!["books".into()], 1.5), "threshold"),
        (affinity(vec!["books".into()], f64::NAN), "threshold"),
    ];
    for (request, field) in cases {
        let status = bounded(client.get_category_affinity(request)).await.unwrap_err();
        assert_eq!(bad_field(status, Code::InvalidArgument), field);
    }
    server.stop().await;
}
