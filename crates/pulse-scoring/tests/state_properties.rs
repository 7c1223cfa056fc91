//! Property tests of the customer state: arrival order, duplicates, encoding, ranges, size.

use proptest::prelude::*;
use pulse_scoring::{
    Cause, CustomerState, Event, EventInput, EventKind, MS_PER_DAY, Memberships, RecentEventIds,
    ScoringConfig, score,
};

/// 2026-01-01T00:00:00Z.
const START_MS: i64 = 1_767_225_600_000;
const CATEGORIES: [&str; 6] = ["beauty", "books", "food", "garden", "toys", "travel"];

fn event_strategy() -> impl Strategy<Value = EventInput> {
    (
        0..120 * MS_PER_DAY,
        0..EventKind::COUNT,
        proptest::option::of(0..CATEGORIES.len()),
        0.0..500.0f64,
        0..1000u32,
    )
        .prop_map(|(offset, kind, category, amount, id)| EventInput {
            customer_id: "c1".into(),
            event_id: format!("e{id}"),
            timestamp_ms: START_MS + offset,
            kind: Some(EventKind::ALL[kind]),
            category: category.map(|c| CATEGORIES[c].to_owned()).unwrap_or_default(),
            amount: (amount * 100.0).round() / 100.0,
            channel: String::new(),
        })
}

/// Applies events with deduplication by event id, as a shard does.
fn apply_all(inputs: &[EventInput], config: &ScoringConfig) -> CustomerState {
    let now = START_MS + 200 * MS_PER_DAY;
    let mut state = CustomerState::new();
    let mut seen = RecentEventIds::default();
    for input in inputs {
        let event = Event::validate(input.clone(), now, config).unwrap();
        if seen.insert(&event.event_id, now, config.dedup_window_ms) {
            state.apply(&event, config);
        }
    }
    state
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

fn assert_same_activity(a: &CustomerState, b: &CustomerState, as_of_ms: i64, config: &ScoringConfig) {
    let x = score("c1", a, as_of_ms, config).unwrap();
    let y = score("c1", b, as_of_ms, config).unwrap();
    assert!(close(x.activity_index, y.activity_index), "{} vs {}", x.activity_index, y.activity_index);
    assert!(close(x.trend, y.trend));
    assert!(close(x.components.frequency, y.components.frequency));
    assert!(close(x.components.monetary, y.components.monetary));
    assert!(close(x.components.engagement, y.components.engagement));
    assert_eq!(x.components.recency, y.components.recency);
    assert_eq!((x.segment, x.lifecycle, x.weekday_pattern), (y.segment, y.lifecycle, y.weekday_pattern));
    assert_eq!(
        (x.active_days_7, x.active_days_30, x.active_days_90),
        (y.active_days_7, y.active_days_30, y.active_days_90)
    );
    assert_eq!(
        (x.first_seen_ms, x.last_seen_ms, x.last_purchase_ms),
        (y.first_seen_ms, y.last_seen_ms, y.last_purchase_ms)
    );
    assert_eq!(x.purchase_count, y.purchase_count);
    assert!(close(x.total_amount, y.total_amount));
    assert_eq!(x.categories.len(), y.categories.len());
    let mut xc = x.categories.clone();
    let mut yc = y.categories.clone();
    xc.sort_by(|p, q| p.category.cmp(&q.category));
    yc.sort_by(|p, q| p.category.cmp(&q.category));
    for (p, q) in xc.iter().zip(&yc) {
        assert_eq!(p.category, q.category);
        assert!(close(p.activity_index, q.activity_index));
        assert!(close(p.affinity, q.affinity));
        assert!(close(p.trend, q.trend));
        assert_eq!(p.last_seen_ms, q.last_seen_ms);
    }
    assert_eq!(a.purchase_days, b.purchase_days);
    assert_eq!(a.active_days, b.active_days);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arrival_order_never_changes_the_result(
        events in proptest::collection::vec(event_strategy(), 1..60),
        seed in any::<u64>(),
        extra_days in 0..100i64,
    ) {
        let config = ScoringConfig::default();
        // Deduplication keeps the first arrival of an id; make ids unique so both orders keep
        // the same events.
        let unique: Vec<EventInput> = events.iter().enumerate()
            .map(|(i, e)| EventInput { event_id: format!("u{i}"), ..e.clone() }).collect();
        let mut unique_shuffled = unique.clone();
        // A deterministic Fisher–Yates shuffle driven by the seed.
        let mut s = seed | 1;
        for i in (1..unique_shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            unique_shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let a = apply_all(&unique, &config);
        let b = apply_all(&unique_shuffled, &config);
        let as_of = a.last_seen_ms + extra_days * MS_PER_DAY;
        assert_same_activity(&a, &b, as_of, &config);
    }

    #[test]
    fn duplicates_change_nothing(
        events in proptest::collection::vec(event_strategy(), 1..40),
        repeats in proptest::collection::vec(0..40usize, 0..40),
    ) {
        let config = ScoringConfig::default();
        let unique: Vec<EventInput> = events.iter().enumerate()
            .map(|(i, e)| EventInput { event_id: format!("u{i}"), ..e.clone() }).collect();
        let mut with_duplicates = unique.clone();
        for r in repeats {
            // Same id, even with different content: a retry is ignored.
            let mut again = unique[r % unique.len()].clone();
            again.amount += 1.0;
            with_duplicates.push(again);
        }
        let a = apply_all(&unique, &config);
        let b = apply_all(&with_duplicates, &config);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn encode_decode_is_identity(
        events in proptest::collection::vec(event_strategy(), 0..80),
        as_of_days in 0..400i64,
    ) {
        let config = ScoringConfig::default();
        let mut state = apply_all(&events, &config);
        if state.has_events() {
            let activity = score("c1", &state, state.last_seen_ms + as_of_days * MS_PER_DAY, &config).unwrap();
            let mut activity = activity;
            activity.custom_segments = vec!["vip".into(), "beauty-fans".into()];
            state.memberships.update(&activity, &Cause::Time);
        }
        let bytes = state.encode();
        prop_assert_eq!(CustomerState::decode(&bytes).unwrap(), state);
    }

    #[test]
    fn index_and_components_stay_in_range(
        events in proptest::collection::vec(event_strategy(), 1..80),
        as_of_ms_after in 0..(500 * MS_PER_DAY),
    ) {
        let config = ScoringConfig::default();
        let state = apply_all(&events, &config);
        let a = score("c1", &state, state.last_seen_ms + as_of_ms_after, &config).unwrap();
        let c = a.components;
        for v in [c.recency, c.frequency, c.monetary, c.engagement] {
            prop_assert!((0.0..=1.0).contains(&v), "component {v}");
        }
        prop_assert!((0.0..=100.0).contains(&a.activity_index));
        prop_assert!(a.trend.is_finite() && a.trend >= -1.0);
        for cat in &a.categories {
            prop_assert!((0.0..=100.0).contains(&cat.activity_index));
            prop_assert!((0.0..=1.0).contains(&cat.affinity));
            prop_assert!(cat.trend.is_finite());
        }
        prop_assert!(a.active_days_7 <= 7 && a.active_days_30 <= 30 && a.active_days_90 <= 90);
        prop_assert!(a.active_days_7 <= a.active_days_30 && a.active_days_30 <= a.active_days_90);
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = CustomerState::decode(&bytes);
        let _ = RecentEventIds::decode(&bytes);
    }
}

#[test]
fn five_category_customer_encodes_within_512_bytes() {
    let config = ScoringConfig::default();
    let mut events = Vec::new();
    // Four months of a busy customer: an event most days, purchases every few days.
    for day in 0..120i64 {
        for (i, kind) in [EventKind::Visit, EventKind::Interaction, EventKind::Purchase, EventKind::Payment]
            .into_iter()
            .enumerate()
        {
            if (day + i as i64) % (i as i64 + 1) != 0 {
                continue;
            }
            events.push(EventInput {
                customer_id: "c1".into(),
                event_id: format!("{day}-{i}"),
                timestamp_ms: START_MS + day * MS_PER_DAY + i as i64 * 3_600_000,
                kind: Some(kind),
                category: CATEGORIES[(day as usize + i) % 5].to_owned(),
                amount: 10.0 + day as f64,
                channel: "app".into(),
            });
        }
    }
    let mut state = apply_all(&events, &config);
    let mut activity = score("c1", &state, state.last_seen_ms, &config).unwrap();
    activity.custom_segments = vec!["premium-card-offer".into()];
    state.memberships.update(&activity, &Cause::Time);
    assert_eq!(state.categories.len(), 5);
    let size = state.encode().len();
    assert!(size <= 512, "state of a 5-category customer is {size} bytes");
}

#[test]
fn decoding_skips_sections_of_newer_writers() {
    let config = ScoringConfig::default();
    let events: Vec<EventInput> = (0..5)
        .map(|i| EventInput {
            customer_id: "c1".into(),
            event_id: format!("e{i}"),
            timestamp_ms: START_MS + i * MS_PER_DAY,
            kind: Some(EventKind::Purchase),
            category: "books".into(),
            amount: 20.0,
            ..EventInput::default()
        })
        .collect();
    let state = apply_all(&events, &config);
    let mut bytes = state.encode();
    // Section tag 99 with a 3-byte payload, as a future version might write.
    bytes.extend_from_slice(&[99, 3, 1, 2, 3]);
    assert_eq!(CustomerState::decode(&bytes).unwrap(), state);
    // A newer format version is refused, not misread.
    bytes[0] = 2;
    assert!(CustomerState::decode(&bytes).is_err());
}

#[test]
fn as_of_before_last_event_is_an_error() {
    let config = ScoringConfig::default();
    let state = apply_all(
        &[EventInput {
            customer_id: "c1".into(),
            event_id: "e".into(),
            timestamp_ms: START_MS,
            kind: Some(EventKind::Visit),
            ..EventInput::default()
        }],
        &config,
    );
    let err = score("c1", &state, START_MS - 1, &config).unwrap_err();
    assert!(err.to_string().contains("earlier than the customer's last event"), "{err}");
}

#[test]
fn decayed_counters_follow_the_formula() {
    let config = ScoringConfig::default();
    let purchase = |day: i64, amount: f64, id: &str| EventInput {
        customer_id: "c1".into(),
        event_id: id.into(),
        timestamp_ms: START_MS + day * MS_PER_DAY,
        kind: Some(EventKind::Purchase),
        amount,
        ..EventInput::default()
    };
    let state = apply_all(&[purchase(0, 100.0, "a"), purchase(30, 50.0, "b")], &config);
    // At day 30: long counts = 1 + 2^(−30/30) = 1.5; short = 1 + 2^(−30/7).
    assert!((state.long_counts[0] - 1.5).abs() < 1e-12);
    assert!((state.short_counts[0] - (1.0 + (-30.0f64 / 7.0).exp2())).abs() < 1e-12);
    assert!((state.long_spend - 100.0).abs() < 1e-9, "50 + 100·½");
    // Scored 14 days after the last event: R = ½.
    let activity = score("c1", &state, START_MS + 44 * MS_PER_DAY, &config).unwrap();
    assert!((activity.components.recency - 0.5).abs() < 1e-12);
    let long = 1.5 * (-14.0f64 / 30.0).exp2();
    assert!((activity.components.frequency - (1.0 - (-long / 10.0).exp())).abs() < 1e-12);
    let spend = 100.0 * (-14.0f64 / 30.0).exp2();
    assert!((activity.components.monetary - (1.0 - (-spend / 100.0).exp())).abs() < 1e-12);
    assert_eq!(activity.components.engagement, 0.0);
    let expected =
        100.0 * (0.35 * 0.5 + 0.30 * activity.components.frequency + 0.20 * activity.components.monetary);
    assert!((activity.activity_index - expected).abs() < 1e-9);
    assert_eq!(activity.purchase_count, 2);
    assert_eq!(activity.average_order_value, 75.0);
}

#[test]
fn category_eviction_drops_the_weakest() {
    let config = ScoringConfig { max_categories: 3, ..ScoringConfig::default() };
    let event = |id: &str, category: &str, kind: EventKind, day: i64| EventInput {
        customer_id: "c1".into(),
        event_id: id.into(),
        timestamp_ms: START_MS + day * MS_PER_DAY,
        kind: Some(kind),
        category: category.into(),
        ..EventInput::default()
    };
    let state = apply_all(
        &[
            event("1", "books", EventKind::Purchase, 0),
            event("2", "food", EventKind::Visit, 0),
            event("3", "toys", EventKind::Purchase, 0),
            event("4", "garden", EventKind::Visit, 1),
        ],
        &config,
    );
    let names: Vec<&str> = state.categories.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["books", "garden", "toys"], "food had the smallest A_l");
}

#[test]
fn memberships_record_transitions_with_cause() {
    let config = ScoringConfig::default();
    let visit = |day: i64, id: &str| EventInput {
        customer_id: "c1".into(),
        event_id: id.into(),
        timestamp_ms: START_MS + day * MS_PER_DAY,
        kind: Some(EventKind::Visit),
        ..EventInput::default()
    };
    let state = apply_all(&[visit(0, "a")], &config);
    let mut memberships = Memberships::default();
    let first = score("c1", &state, START_MS, &config).unwrap();
    let entered = memberships.update(&first, &Cause::Event("a".into()));
    let moves: Vec<(String, String)> = entered.iter().map(|t| (t.from.clone(), t.to.clone())).collect();
    assert_eq!(
        moves,
        [("".into(), "MONTHLY".into()), ("".into(), "NEW".into()), ("".into(), "LOW".into())],
        "first classification enters from nothing"
    );
    assert!(memberships.update(&first, &Cause::Time).is_empty(), "no change, no transition");
    let later = score("c1", &state, START_MS + 40 * MS_PER_DAY, &config).unwrap();
    let moved = memberships.update(&later, &Cause::Time);
    let moves: Vec<(String, String, String)> =
        moved.iter().map(|t| (t.from.clone(), t.to.clone(), t.cause.to_string())).collect();
    assert_eq!(
        moves,
        [
            ("MONTHLY".into(), "DORMANT".into(), "TIME".into()),
            ("NEW".into(), "DORMANT".into(), "TIME".into()),
            ("LOW".into(), "INACTIVE".into(), "TIME".into()),
        ]
    );
    assert_eq!(memberships.activity_segment.as_ref().unwrap().since_ms, START_MS + 40 * MS_PER_DAY);
}
