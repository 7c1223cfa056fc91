//! [`RaftLogStore`] against both engines, with raft-rs's `MemStorage` as the reference semantics.

use protobuf::Message as _;
use raft::Storage as _;
use raft::eraftpb::{ConfState, Entry, HardState, SnapshotMetadata};
use raft::{GetEntriesContext, NO_LIMIT};

use super::*;
use crate::engine::WriteOptions;
use crate::test_harness::{EngineHarness, engine_test_suite};

engine_test_suite!(
    empty_log_reads_like_raft_expects,
    append_then_read_entries_and_terms,
    conflicting_append_truncates_the_suffix,
    append_rejects_gaps_and_compacted_indexes,
    entries_honour_max_size_like_mem_storage,
    entries_out_of_range_are_compacted_or_unavailable,
    compaction_keeps_the_truncated_term,
    compaction_only_discards_committed_persisted_entries,
    hard_and_conf_state_round_trip,
    staged_changes_are_invisible_until_persisted,
    restart_recovers_everything,
    shards_do_not_interfere,
    apply_snapshot_replaces_the_log,
    snapshot_is_unavailable_until_prepared,
    destroy_removes_only_this_shard,
    corrupt_records_are_errors_not_panics,
);

const SHARD: u64 = 7;

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: format!("payload of {index} at term {term}").into_bytes().into(),
        ..Entry::default()
    }
}

fn entries(indexes: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    indexes.map(|index| entry(index, term)).collect()
}

fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
    HardState { term, vote, commit, ..HardState::default() }
}

/// Stages what `stage` adds, writes it with fsync and reports it persisted: one Ready round.
fn persist<E, F>(store: &mut RaftLogStore<E>, stage: F)
where
    E: StorageEngine,
    F: FnOnce(&mut RaftLogStore<E>, &mut WriteBatch) -> Result<()>,
{
    let mut batch = WriteBatch::new();
    stage(store, &mut batch).unwrap();
    store.engine().write(&batch, WriteOptions::SYNC).unwrap();
    store.on_persisted();
}

fn read<E: StorageEngine>(
    store: &RaftLogStore<E>,
    low: u64,
    high: u64,
    max_size: u64,
) -> raft::Result<Vec<Entry>> {
    store.entries(low, high, max_size, GetEntriesContext::empty(false))
}

/// A store of `SHARD` with entries `1..=last` at term 1 and everything committed.
fn store_with_entries<E: StorageEngine>(engine: &E, last: u64) -> RaftLogStore<E> {
    let mut store = RaftLogStore::open(engine.clone(), SHARD).unwrap();
    persist(&mut store, |store, batch| {
        store.append(batch, &entries(1..=last, 1))?;
        store.set_hard_state(batch, &hard_state(1, 1, last))
    });
    store
}

fn empty_log_reads_like_raft_expects<H: EngineHarness>(harness: H) {
    let store = RaftLogStore::open(harness.engine().clone(), SHARD).unwrap();
    assert_eq!(store.first_index().unwrap(), 1);
    assert_eq!(store.last_index().unwrap(), 0);
    assert_eq!(store.term(0).unwrap(), 0);
    assert_eq!(store.term(1), Err(raft::Error::Store(raft::StorageError::Unavailable)));
    assert_eq!(read(&store, 1, 1, NO_LIMIT).unwrap(), vec![]);
    assert_eq!(read(&store, 1, 2, NO_LIMIT), Err(raft::Error::Store(raft::StorageError::Unavailable)));
    let state = store.initial_state().unwrap();
    assert_eq!(state.hard_state, HardState::default());
    assert!(!state.initialized());
    assert_eq!(store.truncated(), (0, 0));
}

fn append_then_read_entries_and_terms<H: EngineHarness>(harness: H) {
    let mut store = RaftLogStore::open(harness.engine().clone(), SHARD).unwrap();
    persist(&mut store, |store, batch| store.append(batch, &entries(1..=3, 1)));
    persist(&mut store, |store, batch| store.append(batch, &entries(4..=6, 2)));
    assert_eq!(store.first_index().unwrap(), 1);
    assert_eq!(store.last_index().unwrap(), 6);
    for (index, term) in [(0, 0), (1, 1), (3, 1), (4, 2), (6, 2)] {
        assert_eq!(store.term(index).unwrap(), term, "term({index})");
    }
    assert_eq!(read(&store, 1, 7, NO_LIMIT).unwrap(), [entries(1..=3, 1), entries(4..=6, 2)].concat());
    assert_eq!(read(&store, 3, 5, NO_LIMIT).unwrap(), vec![entry(3, 1), entry(4, 2)]);
    // An empty append changes nothing.
    let mut batch = WriteBatch::new();
    store.append(&mut batch, &[]).unwrap();
    assert!(batch.is_empty());
}

fn conflicting_append_truncates_the_suffix<H: EngineHarness>(mut harness: H) {
    {
        let mut store = RaftLogStore::open(harness.engine().clone(), SHARD).unwrap();
        persist(&mut store, |store, batch| store.append(batch, &entries(1..=5, 1)));
        // A new leader at term 2 overwrites from index 3 with a shorter log.
        persist(&mut store, |store, batch| store.append(batch, &entries(3..=4, 2)));
        assert_eq!(store.last_index().unwrap(), 4);
        assert_eq!(store.term(3).unwrap(), 2);
        assert_eq!(store.term(2).unwrap(), 1);
        assert_eq!(store.term(5), Err(raft::Error::Store(raft::StorageError::Unavailable)));
        assert_eq!(read(&store, 1, 5, NO_LIMIT).unwrap(), [entries(1..=2, 1), entries(3..=4, 2)].concat());
        // The discarded entry is gone from the engine, not just hidden.
        assert_eq!(harness.engine().get(ColumnFamily::Raft, &entry_key(SHARD, 5)).unwrap(), None);
        // Overwriting the last entry only, then extending.
        persist(&mut store, |store, batch| store.append(batch, &[entry(4, 3), entry(5, 3)]));
        assert_eq!(read(&store, 4, 6, NO_LIMIT).unwrap(), vec![entry(4, 3), entry(5, 3)]);
    }
    harness.reopen();
    let store = RaftLogStore::open(harness.engine().clone(), SHARD).unwrap();
    assert_eq!(store.last_index().unwrap(), 5);
    assert_eq!(store.term(5).unwrap(), 3);
    assert_eq!(store.term(3).unwrap(), 2);
}

fn append_rejects_gaps_and_compacted_indexes<H: EngineHarness>(harness: H) {
    let mut store = store_with_entries(harness.engine(), 5);
    persist(&mut store, |store, batch| store.compact(batch, 2));
    let mut batch = WriteBatch::new();
    let gap = store.append(&mut batch, &entries(7..=8, 1)).unwrap_err();
    assert!(matches!(gap, StorageError::LogGap { index: 7, previous: 5, .. }), "{gap}");
    let compacted = store.append(&mut batch, &entries(2..=6, 1)).unwrap_err();
    assert!(
        matches!(compacted, StorageError::AppendCompacted { index: 2, truncated_index: 2, .. }),
        "{compacted}"
    );
    let holes = store.append(&mut batch, &[entry(6, 1), entry(8, 1)]).unwrap_err();
    assert!(matches!(holes, StorageError::LogGap { index: 8, previous: 6, .. }), "{holes}");
    assert!(batch.is_empty(), "a failed helper must leave the batch untouched");
    assert_eq!(store.last_index().unwrap(), 5);
}

fn entries_honour_max_size_like_mem_storage<H: EngineHarness>(harness: H) {
    let mut store = RaftLogStore::open(harness.engine().clone(), SHARD).unwrap();
    let log: Vec<Entry> = (1..=10)
        .map(|index| {
            let mut entry = entry(index, 1);
            entry.data = vec![b'x'; (index * 10) as usize].into();
            entry
        })
        .collect();
    persist(&mut store, |store, batch| store.append(batch, &log));
    let sizes: Vec<u64> = log.iter().map(|entry| u64::from(entry.compute_size())).collect();
    let mut max_sizes = vec![0, 1, NO_LIMIT, sizes[2], sizes[2] + sizes[3], sizes[2] + sizes[3] - 1];
    max_sizes.extend((0..=sizes.iter().sum::<u64>()).step_by(37));
    for max_size in max_sizes {
        let mut expected = log[2..9].to_vec();
        raft::util::limit_size(&mut expected, Some(max_size));
        assert_eq!(read(&store, 3, 10, max_size).unwrap(), expected, "max_size {max_size}");
        assert!(!expected.is_empty());
    }
    // `None` means no limit.
    assert_eq!(store.entries(1, 11, None, GetEntriesContext::empty(false)).unwrap(), log);
}

fn entries_out_of_range_are_compacted_or_unavailable<H: EngineHarness>(harness: H) {
    let mut store = store_with_entries(harness.engine(), 6);
    persist(&mut store, |store, batch| store.compact(batch, 3));
    assert_eq!(read(&store, 3, 5, NO_LIMIT), Err(compacted()));
    assert_eq!(read(&store, 2, 2, NO_LIMIT), Err(compacted()));
    assert_eq!(read(&store, 4, 8, NO_LIMIT), Err(unavailable()));
    assert_eq!(read(&store, 4, 7, NO_LIMIT).unwrap(), entries(4..=6, 1));
    assert_eq!(read(&store, 7, 7, NO_LIMIT).unwrap(), vec![]);
    let inverted = store.read_entries(6, 5, None).unwrap_err();
    assert!(matches!(inverted, StorageError::InvalidLogRange { low: 6, high: 5, .. }), "{inverted}");
    assert_eq!(store.term(2), Err(compacted()));
    assert_eq!(store.term(7), Err(unavailable()));
}

fn compacted() -> raft::Error {
    raft::Error::Store(raft::StorageError::Compacted)
}

fn unavailable() -> raft::Error {
    raft::Error::Store(raft::StorageError::Unavailable)
}

fn compaction_keeps_the_truncated_term<H: EngineHarness>(harness: H) {
    let mut store = RaftLogStore::open(harness.engine().clone(), SHARD).unwrap();
    persist(&mut store, |store, batch| {
        store.append(batch, &[entries(1..=3, 1), entries(4..=6, 2)].concat())?;
        store.set_hard_state(batch, &hard_state(2, 1, 6))
    });
    persist(&mut store, |store, batch| store.compact(batch, 4));
    assert_eq!(store.first_index().unwrap(), 5);
    assert_eq!(store.term(4).unwrap(), 2, "term(first_index - 1) answers from the truncated state");
    assert_eq!(store.truncated(), (4, 2));
    assert_eq!(read(&store, 5, 7, NO_LIMIT).unwrap(), entries(5..=6, 2));
    let raft_records = harness.engine().scan_collect(
        ColumnFamily::Raft,
        &entry_key(SHARD, 0),
        Some(&entries_end(SHARD)),
        100,
    );
    assert_eq!(raft_records.unwrap().len(), 2, "compacted entries are deleted");
    // Compacting everything leaves an empty log that still knows its last term.
    persist(&mut store, |store, batch| store.compact(batch, 6));
    assert_eq!(store.first_index().unwrap(), 7);
    assert_eq!(store.last_index().unwrap(), 6);
    assert_eq!(store.term(6).unwrap(), 2);
    persist(&mut store, |store, batch| store.append(batch, &entries(7..=7, 3)));
    assert_eq!(read(&store, 7, 8, NO_LIMIT).unwrap(), entries(7..=7, 3));
}

fn compaction_only_discards_committed_persisted_entries<H: EngineHarness>(harness: H) {
    let mut store = RaftLogStore::open(harness.engine().clone(), SHARD).unwrap();
    persist(&mut store, |store, batch| {
        store.append(batch, &entries(1..=5, 1))?;
        store.set_hard_state(batch, &hard_state(1, 1, 3))
    });
    let mut batch = WriteBatch::new();
    let uncommitted = store.compact(&mut batch, 4).unwrap_err();
    assert!(matches!(uncommitted, StorageError::InvalidCompaction { index: 4, .. }), "{uncommitted}");
    // Staged but unwritten entries cannot be compacted either.
    store.append(&mut batch, &entries(6..=6, 1)).unwrap();
    store.set_commit_index(&mut batch, 6).unwrap();
    let operations = batch.len();
    let unpersisted = store.compact(&mut batch, 6).unwrap_err();
    assert!(unpersisted.to_string().contains("not persisted"), "{unpersisted}");
    assert_eq!(batch.len(), operations);
    store.compact(&mut batch, 3).unwrap();
    store.engine().write(&batch, WriteOptions::SYNC).unwrap();
    store.on_persisted();
    assert_eq!(store.first_index().unwrap(), 4);
    assert_eq!(store.last_index().unwrap(), 6);
    // Compacting below the truncated index is a no-op.
    let mut batch = WriteBatch::new();
    store.compact(&mut batch, 2).unwrap();
    store.compact(&mut batch, 3).unwrap();
    assert!(batch.is_empty());
}

fn hard_and_conf_state_round_trip<H: EngineHarness>(mut harness: H) {
    let conf_state = ConfState::from((vec![1, 2, 3], vec![4]));
    {
        let mut store = RaftLogStore::open(harness.engine().clone(), SHARD).unwrap();
        persist(&mut store, |store, batch| {
            store.set_conf_state(batch, &conf_state)?;
            store.append(batch, &entries(1..=4, 3))?;
            store.set_hard_state(batch, &hard_state(3, 2, 2))
        });
        persist(&mut store, |store, batch| store.set_commit_index(batch, 4));
        let state = store.initial_state().unwrap();
        assert_eq!(state.hard_state, hard_state(3, 2, 4));
        assert_eq!(state.conf_state, conf_state);
        assert!(state.initialized());
    }
    harness.reopen();
    let store = RaftLogStore::open(harness.engine().clone(), SHARD).unwrap();
    assert_eq!(store.hard_state(), &hard_state(3, 2, 4));
    assert_eq!(store.conf_state(), &conf_state);
}

fn staged_changes_are_invisible_until_persisted<H: EngineHarness>(harness: H) {
    let mut store = store_with_entries(harness.engine(), 3);
    let mut batch = WriteBatch::new();
    store.append(&mut batch, &entries(4..=5, 2)).unwrap();
    store.set_hard_state(&mut batch, &hard_state(2, 1, 5)).unwrap();
    // Raft still sees the persisted log.
    assert_eq!(store.last_index().unwrap(), 3);
    assert_eq!(store.initial_state().unwrap().hard_state, hard_state(1, 1, 3));
    // A second helper of the same round builds on the first one's staged state.
    store.append(&mut batch, &entries(6..=6, 2)).unwrap();
    store.engine().write(&batch, WriteOptions::SYNC).unwrap();
    assert_eq!(store.last_index().unwrap(), 3, "visible only after on_persisted");
    store.on_persisted();
    assert_eq!(store.last_index().unwrap(), 6);
    assert_eq!(store.term(6).unwrap(), 2);
    assert_eq!(store.hard_state(), &hard_state(2, 1, 5));
    // on_persisted without staged changes changes nothing.
    store.on_persisted();
    assert_eq!(store.last_index().unwrap(), 6);
}

fn restart_recovers_everything<H: EngineHarness>(mut harness: H) {
    let conf_state = ConfState::from((vec![1, 2, 3], vec![]));
    let before = {
        let mut store = RaftLogStore::open(harness.engine().clone(), SHARD).unwrap();
        persist(&mut store, |store, batch| {
            store.set_conf_state(batch, &conf_state)?;
            store.append(batch, &[entries(1..=4, 1), entries(5..=9, 2)].concat())?;
            store.set_hard_state(batch, &hard_state(2, 3, 8))
        });
        persist(&mut store, |store, batch| store.compact(batch, 5));
        let snapshot = (
            store.first_index().unwrap(),
            store.last_index().unwrap(),
            store.initial_state().unwrap().hard_state,
            read(&store, 6, 10, NO_LIMIT).unwrap(),
        );
        assert_eq!(store.term(5).unwrap(), 2);
        snapshot
    };
    harness.reopen();
    let store = RaftLogStore::open(harness.engine().clone(), SHARD).unwrap();
    let after = (
        store.first_index().unwrap(),
        store.last_index().unwrap(),
        store.initial_state().unwrap().hard_state,
        read(&store, 6, 10, NO_LIMIT).unwrap(),
    );
    assert_eq!(after, before);
    assert_eq!(store.term(5).unwrap(), 2);
    assert_eq!(store.term(9).unwrap(), 2);
    assert_eq!(store.truncated(), (5, 2));
    assert_eq!(store.conf_state(), &conf_state);
}

fn shards_do_not_interfere<H: EngineHarness>(mut harness: H) {
    let shards = [0, 1, SHARD, u64::MAX];
    {
        let engine = harness.engine();
        let mut stores: Vec<RaftLogStore<H::Engine>> =
            shards.iter().map(|shard| RaftLogStore::open(engine.clone(), *shard).unwrap()).collect();
        // One batch for every shard of the round, as the Ready loop does.
        let mut batch = WriteBatch::new();
        for (position, store) in stores.iter_mut().enumerate() {
            let last = 5 + position as u64;
            store.append(&mut batch, &entries(1..=last, position as u64 + 1)).unwrap();
            // Shard 1's log is truncated below, so only its first entry is committed.
            let commit = if position == 1 { 1 } else { last };
            store.set_hard_state(&mut batch, &hard_state(position as u64 + 1, 1, commit)).unwrap();
        }
        engine.write(&batch, WriteOptions::SYNC).unwrap();
        stores.iter_mut().for_each(RaftLogStore::on_persisted);
        // Truncate one, compact another, destroy a third.
        let mut batch = WriteBatch::new();
        stores[1].append(&mut batch, &entries(2..=2, 9)).unwrap();
        stores[2].compact(&mut batch, 4).unwrap();
        stores[0].destroy(&mut batch);
        engine.write(&batch, WriteOptions::SYNC).unwrap();
        stores.iter_mut().for_each(RaftLogStore::on_persisted);
    }
    harness.reopen();
    let engine = harness.engine();
    let open = |shard| RaftLogStore::open(engine.clone(), shard).unwrap();
    let destroyed = open(0);
    assert_eq!((destroyed.first_index().unwrap(), destroyed.last_index().unwrap()), (1, 0));
    assert_eq!(destroyed.hard_state(), &HardState::default());
    let truncated = open(1);
    assert_eq!(truncated.last_index().unwrap(), 2);
    assert_eq!(read(&truncated, 1, 3, NO_LIMIT).unwrap(), vec![entry(1, 2), entry(2, 9)]);
    let compacted = open(SHARD);
    assert_eq!((compacted.first_index().unwrap(), compacted.last_index().unwrap()), (5, 7));
    assert_eq!(compacted.term(4).unwrap(), 3);
    let last_shard = open(u64::MAX);
    assert_eq!(read(&last_shard, 1, 9, NO_LIMIT).unwrap(), entries(1..=8, 4));
    assert_eq!(last_shard.hard_state(), &hard_state(4, 1, 8));
}

fn apply_snapshot_replaces_the_log<H: EngineHarness>(mut harness: H) {
    let mut metadata = SnapshotMetadata { index: 20, term: 4, ..SnapshotMetadata::default() };
    metadata.set_conf_state(ConfState::from((vec![1, 2], vec![3])));
    {
        let mut store = store_with_entries(harness.engine(), 5);
        persist(&mut store, |store, batch| {
            store.apply_snapshot(batch, &metadata)?;
            // Entries received in the same round follow the snapshot.
            store.append(batch, &entries(21..=22, 4))
        });
        assert_eq!(store.first_index().unwrap(), 21);
        assert_eq!(store.last_index().unwrap(), 22);
        assert_eq!(store.term(20).unwrap(), 4);
        assert_eq!(store.hard_state(), &hard_state(4, 1, 20));
        assert_eq!(store.conf_state(), metadata.get_conf_state());
        assert_eq!(read(&store, 5, 6, NO_LIMIT), Err(raft::Error::Store(raft::StorageError::Compacted)));

        let mut batch = WriteBatch::new();
        let mut stale = metadata.clone();
        stale.index = 20;
        let err = store.apply_snapshot(&mut batch, &stale).unwrap_err();
        assert!(
            matches!(err, StorageError::SnapshotOutOfDate { snapshot_index: 20, first_index: 21, .. }),
            "{err}"
        );
        assert_eq!(raft::Error::from(err), raft::Error::Store(raft::StorageError::SnapshotOutOfDate));
        assert!(batch.is_empty());
    }
    harness.reopen();
    let store = RaftLogStore::open(harness.engine().clone(), SHARD).unwrap();
    assert_eq!((store.first_index().unwrap(), store.last_index().unwrap()), (21, 22));
    assert_eq!(store.truncated(), (20, 4));
    assert_eq!(store.conf_state(), metadata.get_conf_state());
}

fn snapshot_is_unavailable_until_prepared<H: EngineHarness>(harness: H) {
    let mut store = store_with_entries(harness.engine(), 3);
    assert!(!store.take_snapshot_request());
    assert_eq!(
        store.snapshot(3, 2),
        Err(raft::Error::Store(raft::StorageError::SnapshotTemporarilyUnavailable))
    );
    assert!(store.take_snapshot_request(), "the request is recorded");
    assert!(!store.take_snapshot_request(), "and reset once taken");

    let mut snapshot = raft::eraftpb::Snapshot::default();
    snapshot.mut_metadata().index = 2;
    snapshot.mut_metadata().term = 1;
    snapshot.data = b"state".to_vec().into();
    store.set_prepared_snapshot(snapshot.clone());
    assert_eq!(store.prepared_snapshot_index(), Some(2));
    assert_eq!(store.snapshot(0, 2), Ok(snapshot.clone()));
    assert!(store.snapshot(3, 2).is_err(), "older than the requested index: unavailable");
    assert!(store.take_snapshot_request());

    store.clear_prepared_snapshot();
    assert!(store.snapshot(0, 2).is_err());
}

fn destroy_removes_only_this_shard<H: EngineHarness>(harness: H) {
    let engine = harness.engine();
    let mut neighbour = RaftLogStore::open(engine.clone(), SHARD + 1).unwrap();
    persist(&mut neighbour, |store, batch| {
        store.append(batch, &entries(1..=2, 1))?;
        store.set_hard_state(batch, &hard_state(1, 1, 2))
    });
    let mut store = store_with_entries(engine, 4);
    persist(&mut store, |store, batch| store.compact(batch, 2));
    persist(&mut store, |store, batch| {
        store.destroy(batch);
        Ok(())
    });
    assert_eq!((store.first_index().unwrap(), store.last_index().unwrap()), (1, 0));
    let shard_end = (SHARD + 1).to_be_bytes();
    let left = engine.scan_collect(ColumnFamily::Raft, &SHARD.to_be_bytes(), Some(&shard_end), 10).unwrap();
    assert!(left.is_empty(), "{left:?}");
    let neighbour = RaftLogStore::open(engine.clone(), SHARD + 1).unwrap();
    assert_eq!(read(&neighbour, 1, 3, NO_LIMIT).unwrap(), entries(1..=2, 1));
}

fn corrupt_records_are_errors_not_panics<H: EngineHarness>(harness: H) {
    let engine = harness.engine();
    let store = store_with_entries(engine, 5);
    let overwrite = |key: &[u8], value: &[u8]| {
        let mut batch = WriteBatch::new();
        batch.put(ColumnFamily::Raft, key, value);
        engine.write(&batch, WriteOptions::SYNC).unwrap();
    };
    fn is_other<T>(result: raft::Result<T>) -> bool {
        matches!(result, Err(raft::Error::Store(raft::StorageError::Other(_))))
    }

    // Undecodable entry.
    overwrite(&entry_key(SHARD, 2), b"\xff\xff\xff garbage");
    assert!(is_other(read(&store, 1, 4, NO_LIMIT)));
    assert!(is_other(store.term(2).map(|_| ())));
    // An entry stored under the wrong index.
    overwrite(&entry_key(SHARD, 2), &entry(3, 1).write_to_bytes().unwrap());
    let err = store.read_entries(2, 3, None).unwrap_err();
    assert!(matches!(err, StorageError::RaftLogCorrupt { .. }), "{err}");
    // A hole inside the log.
    let mut batch = WriteBatch::new();
    batch.delete(ColumnFamily::Raft, &entry_key(SHARD, 3));
    engine.write(&batch, WriteOptions::SYNC).unwrap();
    let err = store.read_entries(3, 5, None).unwrap_err();
    assert!(err.to_string().contains("entry 3 is missing"), "{err}");
    let err = store.read_term(3).unwrap_err();
    assert!(err.to_string().contains("entry 3 is missing"), "{err}");

    // Records read at open.
    overwrite(&truncated_state_key(SHARD), b"short");
    let err = RaftLogStore::open(engine.clone(), SHARD).unwrap_err();
    assert!(err.to_string().contains("truncated state is 5 bytes"), "{err}");
    overwrite(&truncated_state_key(SHARD), &encode_truncated_state(3, 1));
    let err = RaftLogStore::open(engine.clone(), SHARD).unwrap_err();
    assert!(err.to_string().contains("first entry is 1, truncated index is 3"), "{err}");
    overwrite(&truncated_state_key(SHARD), &encode_truncated_state(0, 0));
    overwrite(&hard_state_key(SHARD), &hard_state(1, 1, 99).write_to_bytes().unwrap());
    let err = RaftLogStore::open(engine.clone(), SHARD).unwrap_err();
    assert!(err.to_string().contains("commit index 99 is past the last index 5"), "{err}");
    overwrite(&hard_state_key(SHARD), b"\xff\xff\xff");
    let err = RaftLogStore::open(engine.clone(), SHARD).unwrap_err();
    assert!(matches!(err, StorageError::RaftDecode { ref what, .. } if what == "hard state"), "{err}");
    overwrite(&hard_state_key(SHARD), &hard_state(1, 1, 5).write_to_bytes().unwrap());
    overwrite(&entry_key(SHARD, 5), b"\xff\xff\xff");
    let err = RaftLogStore::open(engine.clone(), SHARD).unwrap_err();
    assert!(matches!(err, StorageError::RaftDecode { ref what, .. } if what == "entry 5"), "{err}");
}
