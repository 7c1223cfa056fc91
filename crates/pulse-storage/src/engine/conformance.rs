//! The conformance suite: every case runs against [`MemoryEngine`](super::MemoryEngine) and
//! [`RocksEngine`](super::RocksEngine) (`memory_engine::*` and `rocks_engine::*` tests), so the
//! two cannot drift apart.

use std::ops::ControlFlow;

use crate::column_family::ColumnFamily;
use crate::engine::{StorageEngine, WriteBatch, WriteOptions};
use crate::error::StorageError;
use crate::test_harness::{EngineHarness, engine_test_suite};

engine_test_suite!(
    put_get_delete,
    get_with_decodes_in_place_and_propagates_errors,
    delete_range_is_half_open,
    later_ops_in_a_batch_override_earlier_ones,
    batches_are_atomic_for_concurrent_readers,
    empty_batch_is_a_no_op,
    scan_is_ordered_and_bounded,
    scan_stops_early_and_propagates_errors,
    scan_collect_honours_limit,
    scan_reverse_and_seek_last,
    column_families_are_isolated,
    empty_keys_and_values,
    big_values_and_many_keys,
    data_survives_reopen,
    approximate_size_grows_with_data,
);

const CF: ColumnFamily = ColumnFamily::State;

fn put<E: StorageEngine>(engine: &E, cf: ColumnFamily, key: &[u8], value: &[u8]) {
    let mut batch = WriteBatch::new();
    batch.put(cf, key, value);
    engine.write(&batch, WriteOptions::NO_SYNC).unwrap();
}

fn keys<E: StorageEngine>(engine: &E, cf: ColumnFamily, start: &[u8], end: Option<&[u8]>) -> Vec<Vec<u8>> {
    engine.scan_collect(cf, start, end, usize::MAX).unwrap().into_iter().map(|(key, _)| key).collect()
}

fn keys_reverse<E: StorageEngine>(
    engine: &E,
    cf: ColumnFamily,
    start: &[u8],
    end: Option<&[u8]>,
) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    engine
        .scan_reverse(cf, start, end, |key, _| {
            found.push(key.to_vec());
            Ok(ControlFlow::Continue(()))
        })
        .unwrap();
    found
}

fn owned(keys: &[&[u8]]) -> Vec<Vec<u8>> {
    keys.iter().map(|key| key.to_vec()).collect()
}

/// Deterministic incompressible bytes (xorshift), so RocksDB sizes reflect the data.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    // Spread the seed over all bits (consecutive seeds must not give related sequences).
    let mut state = (seed + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

/// Keys that sort in tricky ways: prefixes, zero bytes, 0xff bytes.
const TRICKY_KEYS: [&[u8]; 8] = [b"a", b"a\x00", b"a\x00\x00", b"ab", b"b", b"\x00", b"\xff", b"\xff\xff"];

fn put_get_delete<H: EngineHarness>(harness: H) {
    let engine = harness.engine();
    assert_eq!(engine.get(CF, b"k").unwrap(), None);
    put(engine, CF, b"k", b"v1");
    assert_eq!(engine.get(CF, b"k").unwrap().as_deref(), Some(&b"v1"[..]));
    put(engine, CF, b"k", b"v2");
    assert_eq!(engine.get(CF, b"k").unwrap().as_deref(), Some(&b"v2"[..]));
    let mut batch = WriteBatch::new();
    batch.delete(CF, b"k");
    batch.delete(CF, b"never-written");
    engine.write(&batch, WriteOptions::SYNC).unwrap();
    assert_eq!(engine.get(CF, b"k").unwrap(), None);
}

fn get_with_decodes_in_place_and_propagates_errors<H: EngineHarness>(harness: H) {
    let engine = harness.engine();
    put(engine, CF, b"n", &42u64.to_be_bytes());
    let decoded =
        engine.get_with(CF, b"n", |value| Ok(u64::from_be_bytes(value.try_into().unwrap()))).unwrap();
    assert_eq!(decoded, Some(42));
    let missing =
        engine.get_with(CF, b"absent", |_| -> crate::Result<()> { panic!("no value to read") }).unwrap();
    assert_eq!(missing, None);
    let err = engine
        .get_with(CF, b"n", |_| -> crate::Result<()> {
            Err(StorageError::MalformedKey { what: "test", reason: "rejected".into() })
        })
        .unwrap_err();
    assert!(matches!(err, StorageError::MalformedKey { what: "test", .. }), "{err}");
}

fn delete_range_is_half_open<H: EngineHarness>(harness: H) {
    let engine = harness.engine();
    for key in TRICKY_KEYS {
        put(engine, CF, key, b"x");
    }
    let mut batch = WriteBatch::new();
    batch.delete_range(CF, b"a\x00", b"b");
    engine.write(&batch, WriteOptions::NO_SYNC).unwrap();
    assert_eq!(keys(engine, CF, b"", None), owned(&[b"\x00", b"a", b"b", b"\xff", b"\xff\xff"]));

    // Empty and inverted ranges delete nothing.
    let mut batch = WriteBatch::new();
    batch.delete_range(CF, b"b", b"b");
    batch.delete_range(CF, b"\xff", b"a");
    engine.write(&batch, WriteOptions::NO_SYNC).unwrap();
    assert_eq!(keys(engine, CF, b"", None).len(), 5);

    // From the smallest key to past the largest one.
    let mut batch = WriteBatch::new();
    batch.delete_range(CF, b"", b"\xff\xff\xff");
    engine.write(&batch, WriteOptions::NO_SYNC).unwrap();
    assert!(keys(engine, CF, b"", None).is_empty());
}

fn later_ops_in_a_batch_override_earlier_ones<H: EngineHarness>(harness: H) {
    let engine = harness.engine();
    put(engine, CF, b"existing", b"old");
    let mut batch = WriteBatch::new();
    batch.put(CF, b"put-put", b"first");
    batch.put(CF, b"put-put", b"second");
    batch.put(CF, b"put-delete", b"x");
    batch.delete(CF, b"put-delete");
    batch.delete(CF, b"delete-put");
    batch.put(CF, b"delete-put", b"back");
    batch.put(CF, b"range-1", b"x");
    batch.delete_range(CF, b"range-", b"range-~");
    batch.put(CF, b"range-2", b"after the range delete");
    batch.delete(CF, b"existing");
    batch.put(CF, b"existing", b"new");
    engine.write(&batch, WriteOptions::SYNC).unwrap();
    let all = engine.scan_collect(CF, b"", None, usize::MAX).unwrap();
    let expected: Vec<(Vec<u8>, Vec<u8>)> = [
        (&b"delete-put"[..], &b"back"[..]),
        (b"existing", b"new"),
        (b"put-put", b"second"),
        (b"range-2", b"after the range delete"),
    ]
    .iter()
    .map(|(k, v)| (k.to_vec(), v.to_vec()))
    .collect();
    assert_eq!(all, expected);
}

fn batches_are_atomic_for_concurrent_readers<H: EngineHarness>(harness: H) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    const KEYS: u32 = 50;
    const ROUNDS: u32 = 200;
    let engine = harness.engine();
    let done = AtomicBool::new(false);
    let scans = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Acquire) {
                let pairs = engine.scan_collect(CF, b"atom/", Some(b"atom0"), usize::MAX).unwrap();
                assert!(pairs.is_empty() || pairs.len() == KEYS as usize, "saw {} keys", pairs.len());
                let first = pairs.first().map(|(_, value)| value.clone());
                assert!(
                    pairs.iter().all(|(_, value)| Some(value) == first.as_ref()),
                    "a scan saw two batches"
                );
                scans.fetch_add(1, Ordering::AcqRel);
            }
        });
        let mut batch = WriteBatch::new();
        for round in 0..ROUNDS {
            // Every tenth round, let the reader finish a scan, so that scans and writes interleave
            // however the threads are scheduled.
            if round % 10 == 0 {
                let seen = scans.load(Ordering::Acquire);
                while scans.load(Ordering::Acquire) == seen {
                    std::thread::yield_now();
                }
            }
            batch.clear();
            for key in 0..KEYS {
                batch.put(CF, format!("atom/{key:03}").as_bytes(), &round.to_be_bytes());
            }
            engine.write(&batch, WriteOptions::NO_SYNC).unwrap();
        }
        done.store(true, Ordering::Release);
    });
    assert!(scans.load(Ordering::Acquire) >= (ROUNDS / 10) as usize);
    let last = engine.get(CF, b"atom/049").unwrap().unwrap();
    assert_eq!(last, (ROUNDS - 1).to_be_bytes());
}

fn empty_batch_is_a_no_op<H: EngineHarness>(harness: H) {
    let engine = harness.engine();
    engine.write(&WriteBatch::new(), WriteOptions::SYNC).unwrap();
    engine.write(&WriteBatch::new(), WriteOptions::NO_SYNC).unwrap();
    assert!(keys(engine, CF, b"", None).is_empty());
}

fn scan_is_ordered_and_bounded<H: EngineHarness>(harness: H) {
    let engine = harness.engine();
    let mut batch = WriteBatch::new();
    for key in TRICKY_KEYS.iter().rev() {
        batch.put(CF, key, key);
    }
    engine.write(&batch, WriteOptions::NO_SYNC).unwrap();
    let mut sorted = owned(&TRICKY_KEYS);
    sorted.sort();
    assert_eq!(keys(engine, CF, b"", None), sorted);
    // Start inclusive, end exclusive.
    assert_eq!(keys(engine, CF, b"a", Some(b"ab")), owned(&[b"a", b"a\x00", b"a\x00\x00"]));
    assert_eq!(keys(engine, CF, b"a\x00", Some(b"b")), owned(&[b"a\x00", b"a\x00\x00", b"ab"]));
    // Bounds that are not keys.
    assert_eq!(keys(engine, CF, b"aa", Some(b"az")), owned(&[b"ab"]));
    assert_eq!(keys(engine, CF, b"c", None), owned(&[b"\xff", b"\xff\xff"]));
    // Empty and inverted ranges.
    assert!(keys(engine, CF, b"b", Some(b"b")).is_empty());
    assert!(keys(engine, CF, b"b", Some(b"a")).is_empty());
    assert!(keys(engine, CF, b"\xff\xff\x00", None).is_empty());
    // Values come with their keys.
    let pairs = engine.scan_collect(CF, b"ab", Some(b"b\x00"), usize::MAX).unwrap();
    assert_eq!(pairs, vec![(b"ab".to_vec(), b"ab".to_vec()), (b"b".to_vec(), b"b".to_vec())]);
}

fn scan_stops_early_and_propagates_errors<H: EngineHarness>(harness: H) {
    let engine = harness.engine();
    for key in TRICKY_KEYS {
        put(engine, CF, key, b"x");
    }
    let mut visited = 0;
    engine
        .scan(CF, b"", None, |_, _| {
            visited += 1;
            Ok(if visited == 3 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
        })
        .unwrap();
    assert_eq!(visited, 3);

    let mut visited = 0;
    let err = engine
        .scan_reverse(CF, b"", None, |_, _| {
            visited += 1;
            if visited == 2 {
                return Err(StorageError::MalformedKey { what: "test", reason: "stop".into() });
            }
            Ok(ControlFlow::Continue(()))
        })
        .unwrap_err();
    assert_eq!(visited, 2);
    assert!(matches!(err, StorageError::MalformedKey { what: "test", .. }), "{err}");
}

fn scan_collect_honours_limit<H: EngineHarness>(harness: H) {
    let engine = harness.engine();
    for key in TRICKY_KEYS {
        put(engine, CF, key, b"x");
    }
    assert!(engine.scan_collect(CF, b"", None, 0).unwrap().is_empty());
    let two: Vec<Vec<u8>> =
        engine.scan_collect(CF, b"a", None, 2).unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(two, owned(&[b"a", b"a\x00"]));
    assert_eq!(engine.scan_collect(CF, b"", None, 100).unwrap().len(), TRICKY_KEYS.len());
}

fn scan_reverse_and_seek_last<H: EngineHarness>(harness: H) {
    let engine = harness.engine();
    assert_eq!(engine.seek_last(CF, b"", None).unwrap(), None);
    assert_eq!(engine.seek_first(CF, b"", None).unwrap(), None);
    for key in TRICKY_KEYS {
        put(engine, CF, key, key);
    }
    let mut descending = owned(&TRICKY_KEYS);
    descending.sort();
    descending.reverse();
    assert_eq!(keys_reverse(engine, CF, b"", None), descending);
    assert_eq!(keys_reverse(engine, CF, b"a", Some(b"ab")), owned(&[b"a\x00\x00", b"a\x00", b"a"]));
    // An upper bound that is a key excludes it; one that is not lands on the key below.
    assert_eq!(engine.seek_last(CF, b"", Some(b"b")).unwrap(), Some((b"ab".to_vec(), b"ab".to_vec())));
    assert_eq!(engine.seek_last(CF, b"", Some(b"az")).unwrap().unwrap().0, b"ab");
    assert_eq!(engine.seek_last(CF, b"", None).unwrap().unwrap().0, b"\xff\xff");
    // The lower bound is respected too.
    assert_eq!(engine.seek_last(CF, b"b\x00", Some(b"\xff")).unwrap(), None);
    assert_eq!(engine.seek_last(CF, b"b", Some(b"b")).unwrap(), None);
    assert_eq!(engine.seek_first(CF, b"a\x00\x01", None).unwrap().unwrap().0, b"ab");
    // Keys in other families and outside the range do not leak in.
    put(engine, ColumnFamily::Meta, b"zz", b"other family");
    assert_eq!(engine.seek_last(CF, b"", Some(b"\xff")).unwrap().unwrap().0, b"b");
}

fn column_families_are_isolated<H: EngineHarness>(harness: H) {
    let engine = harness.engine();
    let mut batch = WriteBatch::new();
    for cf in ColumnFamily::ALL {
        batch.put(cf, b"shared", cf.name().as_bytes());
        batch.put(cf, cf.name().as_bytes(), b"own");
    }
    engine.write(&batch, WriteOptions::SYNC).unwrap();
    for cf in ColumnFamily::ALL {
        assert_eq!(engine.get(cf, b"shared").unwrap().unwrap(), cf.name().as_bytes());
        assert_eq!(keys(engine, cf, b"", None), {
            let mut expected = owned(&[b"shared", cf.name().as_bytes()]);
            expected.sort();
            expected
        });
    }
    let mut batch = WriteBatch::new();
    batch.delete_range(ColumnFamily::Index, b"", b"\xff");
    batch.delete(ColumnFamily::Timers, b"shared");
    engine.write(&batch, WriteOptions::NO_SYNC).unwrap();
    assert!(keys(engine, ColumnFamily::Index, b"", None).is_empty());
    assert_eq!(engine.get(ColumnFamily::Timers, b"shared").unwrap(), None);
    for cf in [
        ColumnFamily::Raft,
        ColumnFamily::State,
        ColumnFamily::Changelog,
        ColumnFamily::Meta,
        ColumnFamily::Dedup,
    ] {
        assert_eq!(keys(engine, cf, b"", None).len(), 2, "{cf}");
    }
}

fn empty_keys_and_values<H: EngineHarness>(harness: H) {
    let engine = harness.engine();
    put(engine, CF, b"", b"empty key");
    put(engine, CF, b"k", b"");
    assert_eq!(engine.get(CF, b"").unwrap().as_deref(), Some(&b"empty key"[..]));
    assert_eq!(engine.get(CF, b"k").unwrap().as_deref(), Some(&b""[..]));
    assert_eq!(keys(engine, CF, b"", None), owned(&[b"", b"k"]));
    assert_eq!(keys_reverse(engine, CF, b"", None), owned(&[b"k", b""]));
    assert_eq!(keys(engine, CF, b"", Some(b"\x00")), owned(&[b""]));
    let mut batch = WriteBatch::new();
    batch.delete(CF, b"");
    engine.write(&batch, WriteOptions::NO_SYNC).unwrap();
    assert_eq!(engine.get(CF, b"").unwrap(), None);
    assert_eq!(keys(engine, CF, b"", None), owned(&[b"k"]));
}

fn big_values_and_many_keys<H: EngineHarness>(harness: H) {
    let engine = harness.engine();
    let big = noise(8 << 20, 7);
    let big_key = noise(64 << 10, 8);
    let mut batch = WriteBatch::new();
    batch.put(CF, b"big", &big);
    batch.put(CF, &big_key, b"big key");
    engine.write(&batch, WriteOptions::SYNC).unwrap();
    assert_eq!(engine.get(CF, b"big").unwrap().unwrap(), big);
    assert_eq!(engine.get(CF, &big_key).unwrap().unwrap(), b"big key");

    let mut batch = WriteBatch::new();
    for i in (0u32..20_000).rev() {
        batch.put(ColumnFamily::Changelog, &i.to_be_bytes(), &i.to_le_bytes());
    }
    engine.write(&batch, WriteOptions::NO_SYNC).unwrap();
    let mut expected = 0u32;
    engine
        .scan(ColumnFamily::Changelog, b"", None, |key, value| {
            assert_eq!(key, expected.to_be_bytes());
            assert_eq!(value, expected.to_le_bytes());
            expected += 1;
            Ok(ControlFlow::Continue(()))
        })
        .unwrap();
    assert_eq!(expected, 20_000);
    let last = engine.seek_last(ColumnFamily::Changelog, b"", None).unwrap().unwrap();
    assert_eq!(last.0, 19_999u32.to_be_bytes());
}

fn data_survives_reopen<H: EngineHarness>(mut harness: H) {
    {
        let engine = harness.engine();
        put(engine, CF, b"unsynced", b"1");
        let mut batch = WriteBatch::new();
        batch.put(ColumnFamily::Raft, b"synced", b"2");
        batch.put(ColumnFamily::Raft, b"doomed-1", b"x");
        batch.put(ColumnFamily::Raft, b"doomed-2", b"x");
        engine.write(&batch, WriteOptions::SYNC).unwrap();
        let mut batch = WriteBatch::new();
        batch.delete_range(ColumnFamily::Raft, b"doomed-", b"doomed-~");
        engine.write(&batch, WriteOptions::SYNC).unwrap();
        engine.sync_wal().unwrap();
        put(engine, ColumnFamily::Meta, b"flushed", b"3");
        engine.flush().unwrap();
    }
    harness.reopen();
    let engine = harness.engine();
    assert_eq!(engine.get(CF, b"unsynced").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(keys(engine, ColumnFamily::Raft, b"", None), owned(&[b"synced"]));
    assert_eq!(engine.get(ColumnFamily::Meta, b"flushed").unwrap().as_deref(), Some(&b"3"[..]));
    // Still writable after the restart.
    put(engine, CF, b"after", b"4");
    assert_eq!(keys(engine, CF, b"", None), owned(&[b"after", b"unsynced"]));
}

fn approximate_size_grows_with_data<H: EngineHarness>(harness: H) {
    let engine = harness.engine();
    let empty = engine.approximate_size(CF).unwrap();
    let mut batch = WriteBatch::new();
    for i in 0u32..1024 {
        batch.put(CF, &i.to_be_bytes(), &noise(1024, u64::from(i)));
    }
    engine.write(&batch, WriteOptions::NO_SYNC).unwrap();
    let written = engine.approximate_size(CF).unwrap();
    assert!(written >= empty + 1_000_000, "{empty} -> {written}");
    engine.flush().unwrap();
    let flushed = engine.approximate_size(CF).unwrap();
    assert!(flushed >= 1_000_000, "{written} -> flushed {flushed}");
    assert!(engine.approximate_size(ColumnFamily::Meta).unwrap() < 100_000);
}
