//! The write path after the network: decoding an `IngestRequest`, encoding and decoding the
//! `ShardCommand` raft entry it becomes, and the shard state machine applying a batch of 500
//! events (customer states read, scored, re-indexed and written in one batch) on RocksDB and
//! in memory.
//!
//! Run with `make bench` or `cargo bench -p pulse-benches --bench apply`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use pulse_node::{ShardCommand, ShardConfig, ShardRange, ShardStateMachine};
use pulse_proto::v1;
use pulse_scoring::{Event, EventInput, ScoringConfig};
use pulse_storage::{MemoryEngine, RocksEngine, StorageEngine};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Events per request: the batch size of the ingest goal.
const BATCH_EVENTS: usize = 500;
/// Distinct customers the events fall on.
const CUSTOMERS: usize = 20_000;
/// 2026-03-01T00:00:00Z.
const NOW_MS: i64 = 1_772_323_200_000;
const SHARD: ShardConfig = ShardConfig { shard_id: 1, range: ShardRange::FULL };

/// A request of `BATCH_EVENTS` events of random customers, ids unique per `round`.
fn request(rng: &mut StdRng, round: u64) -> v1::IngestRequest {
    let kinds = [v1::EventKind::Purchase, v1::EventKind::Visit, v1::EventKind::Interaction];
    let events = (0..BATCH_EVENTS)
        .map(|i| v1::Event {
            customer_id: format!("customer-{:06}", rng.random_range(0..CUSTOMERS)),
            event_id: format!("r{round}-e{i}"),
            timestamp_ms: NOW_MS - rng.random_range(0..30 * 86_400_000),
            kind: kinds[rng.random_range(0..kinds.len())] as i32,
            category: ["books", "food", "travel"][rng.random_range(0..3)].to_owned(),
            amount: rng.random_range(1.0..200.0),
            channel: "web".to_owned(),
        })
        .collect();
    v1::IngestRequest { events }
}

/// The validated events of a request, as the gateway proposes them.
fn validated(request: &v1::IngestRequest) -> Vec<Event> {
    let config = ScoringConfig::default();
    request
        .events
        .iter()
        .map(|e| Event::validate(EventInput::from(e.clone()), NOW_MS, &config).unwrap())
        .collect()
}

fn bench_codecs(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);
    let request = request(&mut rng, 0);
    let request_bytes = request.encode_to_vec();
    let command = ShardCommand::Ingest { arrival_ms: NOW_MS, events: validated(&request) };
    let command_bytes = command.encode();

    let mut group = c.benchmark_group("codec_500_events");
    group.throughput(Throughput::Elements(BATCH_EVENTS as u64));
    group.bench_function("ingest_request_decode", |b| {
        b.iter(|| v1::IngestRequest::decode(black_box(request_bytes.as_slice())).unwrap())
    });
    group.bench_function("ingest_request_encode", |b| b.iter(|| black_box(&request).encode_to_vec()));
    group.bench_function("validate", |b| b.iter(|| validated(black_box(&request))));
    group.bench_function("shard_command_encode", |b| b.iter(|| black_box(&command).encode()));
    group.bench_function("shard_command_decode", |b| {
        b.iter(|| ShardCommand::decode(black_box(command_bytes.as_slice())).unwrap())
    });
    group.finish();
}

/// Applies fresh 500-event entries to a shard that already holds every customer.
fn bench_apply_on<E: StorageEngine>(c: &mut Criterion, name: &str, engine: E) {
    let mut machine = ShardStateMachine::open(engine, SHARD).unwrap();
    let mut rng = StdRng::seed_from_u64(2);
    let mut index = 0u64;
    // Warm state: every customer has some history, as on a long-running node.
    for round in 0..(2 * CUSTOMERS / BATCH_EVENTS) as u64 {
        index += 1;
        let events = validated(&request(&mut rng, round));
        machine.apply(index, &ShardCommand::Ingest { arrival_ms: NOW_MS, events }.encode()).unwrap();
    }
    let mut round = 1_000_000u64;
    let mut group = c.benchmark_group("apply_500_events");
    group.throughput(Throughput::Elements(BATCH_EVENTS as u64));
    group.bench_function(name, |b| {
        b.iter_batched(
            || {
                round += 1;
                let events = validated(&request(&mut rng, round));
                ShardCommand::Ingest { arrival_ms: NOW_MS, events }.encode()
            },
            |entry| {
                index += 1;
                machine.apply(index, &entry).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn bench_apply(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    bench_apply_on(c, "rocks", RocksEngine::open(dir.path()).unwrap());
    bench_apply_on(c, "memory", MemoryEngine::new());
}

criterion_group!(benches, bench_codecs, bench_apply);
criterion_main!(benches);
