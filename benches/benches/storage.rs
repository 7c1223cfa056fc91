//! Storage engine hot paths: the Ready loop's group commit (a batch of 500 × 200-byte puts, with
//! and without fsync), point gets and scans, on `RocksEngine` and `MemoryEngine`.
//!
//! `write_batch/rocksdb_native` writes the same puts through a `rocksdb::WriteBatch` built
//! directly: the difference with `write_batch/rocks_no_sync` is the cost of building our
//! engine-neutral `WriteBatch` and converting it at write time.
//!
//! Databases live under `CARGO_TARGET_TMPDIR`, on the same disk as the build, so `rocks_sync`
//! measures a real fsync. Run with `make bench` or `cargo bench -p pulse-benches --bench storage`.

use std::hint::black_box;
use std::ops::ControlFlow;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pulse_storage::{
    ColumnFamily, MemoryEngine, RocksEngine, StorageEngine, WriteBatch, WriteOptions, state_key,
};

/// Puts per batch: a busy Ready round across shards.
const BATCH_PUTS: usize = 500;
/// Bytes per value: a typical encoded raft entry or customer state.
const VALUE_BYTES: usize = 200;
/// Keys preloaded for the read benches.
const READ_KEYS: usize = 100_000;
/// Keys visited by one scan.
const SCAN_KEYS: usize = 10_000;

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temporary directory")
}

/// `count` customer keys (`h | customer_id`, as in the `state` family) with 200-byte values.
fn pairs(count: usize, seed: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..count)
        .map(|i| {
            let key = state_key(&format!("customer-{seed}-{i:07}"));
            let value = (0..VALUE_BYTES).map(|j| (i * 31 + j * 7 + seed) as u8).collect();
            (key, value)
        })
        .collect()
}

fn fill(batch: &mut WriteBatch, pairs: &[(Vec<u8>, Vec<u8>)]) {
    batch.clear();
    for (key, value) in pairs {
        batch.put(ColumnFamily::State, key, value);
    }
}

fn preload<E: StorageEngine>(engine: &E, pairs: &[(Vec<u8>, Vec<u8>)]) {
    let mut batch = WriteBatch::new();
    for chunk in pairs.chunks(10_000) {
        fill(&mut batch, chunk);
        engine.write(&batch, WriteOptions::NO_SYNC).unwrap();
    }
    // Most reads of a long-running node hit SST files and the block cache, not the memtable.
    engine.flush().unwrap();
}

fn native_db(path: &Path) -> rocksdb::DB {
    let mut options = rocksdb::Options::default();
    options.create_if_missing(true);
    rocksdb::DB::open(&options, path).unwrap()
}

fn bench_write_batch(c: &mut Criterion) {
    let puts = pairs(BATCH_PUTS, 0);
    let rocks_dir = temp_dir();
    let rocks = RocksEngine::open(rocks_dir.path()).unwrap();
    let memory = MemoryEngine::new();
    let native_dir = temp_dir();
    let native = native_db(native_dir.path());

    let mut group = c.benchmark_group("write_batch_500x200B");
    group.throughput(Throughput::Elements(BATCH_PUTS as u64));
    let mut batch = WriteBatch::with_capacity(BATCH_PUTS, BATCH_PUTS * (VALUE_BYTES + 32));
    group.bench_function("build_only", |b| {
        b.iter(|| {
            fill(&mut batch, black_box(&puts));
            batch.size_bytes()
        })
    });
    for (name, options) in [("rocks_no_sync", WriteOptions::NO_SYNC), ("rocks_sync", WriteOptions::SYNC)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                fill(&mut batch, black_box(&puts));
                rocks.write(&batch, options).unwrap();
            })
        });
    }
    group.bench_function("rocksdb_native_no_sync", |b| {
        let mut write_options = rocksdb::WriteOptions::default();
        write_options.set_sync(false);
        b.iter(|| {
            let mut native_batch = rocksdb::WriteBatch::default();
            for (key, value) in black_box(&puts) {
                native_batch.put(key, value);
            }
            native.write_opt(native_batch, &write_options).unwrap();
        })
    });
    group.bench_function("memory", |b| {
        b.iter(|| {
            fill(&mut batch, black_box(&puts));
            memory.write(&batch, WriteOptions::NO_SYNC).unwrap();
        })
    });
    group.finish();
}

fn bench_reads(c: &mut Criterion) {
    let data = pairs(READ_KEYS, 1);
    let rocks_dir = temp_dir();
    let rocks = RocksEngine::open(rocks_dir.path()).unwrap();
    preload(&rocks, &data);
    let memory = MemoryEngine::new();
    preload(&memory, &data);
    let missing = pairs(1024, 2);

    let mut group = c.benchmark_group("point_get");
    group.throughput(Throughput::Elements(1));
    let mut next = 0usize;
    group.bench_function("rocks_hit", |b| {
        b.iter(|| {
            next = (next + 7919) % READ_KEYS;
            rocks.get_with(ColumnFamily::State, black_box(&data[next].0), |value| Ok(value.len())).unwrap()
        })
    });
    group.bench_function("rocks_hit_copied", |b| {
        b.iter(|| {
            next = (next + 7919) % READ_KEYS;
            rocks.get(ColumnFamily::State, black_box(&data[next].0)).unwrap()
        })
    });
    group.bench_function("rocks_miss", |b| {
        b.iter(|| {
            next = (next + 1) % missing.len();
            rocks.get(ColumnFamily::State, black_box(&missing[next].0)).unwrap()
        })
    });
    group.bench_function("memory_hit", |b| {
        b.iter(|| {
            next = (next + 7919) % READ_KEYS;
            memory.get_with(ColumnFamily::State, black_box(&data[next].0), |value| Ok(value.len())).unwrap()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("scan_10k");
    group.throughput(Throughput::Elements(SCAN_KEYS as u64));
    let start = &data[READ_KEYS / 3].0;
    for (name, engine) in [("rocks", &rocks as &dyn ScanBench), ("memory", &memory as &dyn ScanBench)] {
        group.bench_function(name, |b| b.iter(|| engine.scan_bytes(black_box(start))));
    }
    group.finish();
}

/// Lets the scan bench loop over both engines (the trait itself is generic, not object-safe).
trait ScanBench {
    /// Sums the value bytes of `SCAN_KEYS` keys from `start`.
    fn scan_bytes(&self, start: &[u8]) -> usize;
}

impl<E: StorageEngine> ScanBench for E {
    fn scan_bytes(&self, start: &[u8]) -> usize {
        let mut visited = 0;
        let mut bytes = 0;
        self.scan(ColumnFamily::State, start, None, |_, value| {
            visited += 1;
            bytes += value.len();
            Ok(if visited == SCAN_KEYS { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
        })
        .unwrap();
        bytes
    }
}

criterion_group!(benches, bench_write_batch, bench_reads);
criterion_main!(benches);
