//! Hot paths of the activity model: apply one event, score a customer, encode + decode a state.
//!
//! Goals on the 2-core reference machine (issue 2): apply ≤ 1 µs, score ≤ 3 µs,
//! encode + decode ≤ 1 µs. Run with `make bench` or
//! `cargo bench -p pulse-benches --bench scoring`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use pulse_scoring::{CustomerState, Event, EventInput, EventKind, MS_PER_DAY, ScoringConfig, score};

/// 2026-01-01T00:00:00Z.
const START_MS: i64 = 1_767_225_600_000;
const CATEGORIES: [&str; 8] =
    ["beauty", "books", "electronics", "food", "garden", "sports", "toys", "travel"];

fn event(i: i64, config: &ScoringConfig) -> Event {
    let input = EventInput {
        customer_id: "customer-000042".into(),
        event_id: format!("evt-{i}"),
        timestamp_ms: START_MS + i * (MS_PER_DAY / 3),
        kind: Some(EventKind::ALL[(i % 5) as usize]),
        category: CATEGORIES[(i % 8) as usize].into(),
        amount: 5.0 + (i % 17) as f64,
        channel: "app".into(),
    };
    Event::validate(input, START_MS + 365 * MS_PER_DAY, config).unwrap()
}

/// A customer with 8 categories and four months of history.
fn busy_customer(config: &ScoringConfig) -> CustomerState {
    let mut state = CustomerState::new();
    for i in 0..360 {
        state.apply(&event(i, config), config);
    }
    state
}

fn bench_scoring(c: &mut Criterion) {
    let config = ScoringConfig::default();
    let state = busy_customer(&config);
    let bytes = state.encode();
    let next = event(361, &config);
    let late = event(100, &config);

    let mut group = c.benchmark_group("customer_state");
    group.throughput(Throughput::Elements(1));
    group.bench_function("apply_event", |b| {
        b.iter_batched_ref(|| state.clone(), |s| s.apply(black_box(&next), &config), BatchSize::SmallInput)
    });
    group.bench_function("apply_late_event", |b| {
        b.iter_batched_ref(|| state.clone(), |s| s.apply(black_box(&late), &config), BatchSize::SmallInput)
    });
    group.bench_function("score_8_categories", |b| {
        let as_of = state.last_seen_ms + 3 * MS_PER_DAY;
        b.iter(|| score(black_box("customer-000042"), black_box(&state), as_of, &config).unwrap())
    });
    group.bench_function("encode_decode", |b| {
        b.iter(|| CustomerState::decode(&black_box(&state).encode()).unwrap())
    });
    group.bench_function("encode", |b| b.iter(|| black_box(&state).encode()));
    group.bench_function("decode", |b| b.iter(|| CustomerState::decode(black_box(&bytes)).unwrap()));
    group.bench_function("decode_apply_encode", |b| {
        b.iter(|| {
            let mut s = CustomerState::decode(black_box(&bytes)).unwrap();
            s.apply(&next, &config);
            s.encode()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_scoring);
criterion_main!(benches);
