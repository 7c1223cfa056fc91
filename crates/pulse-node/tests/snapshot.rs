//! State snapshots of a shard: a snapshot taken on one replica and installed on another engine
//! (holding stale data of the shard and data of another shard) reproduces the shard exactly —
//! same consistency hash, same config — and leaves the other shard alone. Removing a shard
//! from a node deletes every key of it and nothing of the other shard.

use pulse_node::{ApplyOutput, NodeStateMachine, ShardCommand, ShardConfig, ShardRange, ShardStateMachine};
use pulse_raft::StateMachine;
use pulse_scoring::{Event, EventKind, MS_PER_DAY, ScoringConfig};
use pulse_storage::{
    ColumnFamily, MemoryEngine, RocksEngine, StorageEngine, WriteBatch, WriteOptions, customer_hash,
};

/// 2026-01-05T00:00:00Z, a Monday.
const DAY0: i64 = 1_767_571_200_000;

fn at(day: i64, hour: i64) -> i64 {
    DAY0 + day * MS_PER_DAY + hour * 3_600_000
}

fn shards() -> [ShardConfig; 2] {
    let ranges = ShardRange::split_evenly(2);
    [ShardConfig { shard_id: 1, range: ranges[0] }, ShardConfig { shard_id: 2, range: ranges[1] }]
}

fn customers_of(shard: ShardConfig, count: usize, prefix: &str) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .filter(|id| shard.range.contains(customer_hash(id)))
        .take(count)
        .collect()
}

fn purchase(customer: &str, id: &str, category: &str, t: i64) -> Event {
    Event {
        customer_id: customer.into(),
        event_id: id.into(),
        timestamp_ms: t,
        kind: EventKind::Purchase,
        category: Some(category.into()),
        amount: 12.5,
        channel: None,
    }
}

/// A config, purchases of `customers` on two days, and a late tick (timers fire, changelog).
fn history(customers: &[String], version: u64) -> Vec<ShardCommand> {
    let day0 = customers.iter().map(|c| purchase(c, &format!("{c}-0"), "books", at(0, 9))).collect();
    let day2 =
        customers.iter().step_by(2).map(|c| purchase(c, &format!("{c}-2"), "garden", at(2, 9))).collect();
    vec![
        ShardCommand::SetConfig {
            config: Box::new(ScoringConfig { version, ..ScoringConfig::default() }),
            segments: vec![],
        },
        ShardCommand::Ingest { arrival_ms: at(0, 12), events: day0 },
        ShardCommand::Ingest { arrival_ms: at(2, 12), events: day2 },
        ShardCommand::Tick { now_ms: at(60, 0), max_customers: 1_000 },
    ]
}

fn apply_all<E: StorageEngine>(machine: &mut ShardStateMachine<E>, commands: &[ShardCommand]) {
    for command in commands {
        let index = machine.applied_index() + 1;
        machine.apply(index, &command.encode()).unwrap();
    }
}

fn compute_hash<E: StorageEngine>(machine: &mut ShardStateMachine<E>) -> (u64, u64) {
    let index = machine.applied_index() + 1;
    let ApplyOutput::ConsistencyHash { index, hash } =
        machine.apply(index, &ShardCommand::ComputeHash.encode()).unwrap()
    else {
        panic!("not a consistency hash output");
    };
    (index, hash)
}

fn dump(engine: &impl StorageEngine, cf: ColumnFamily) -> Vec<(Vec<u8>, Vec<u8>)> {
    engine.scan_collect(cf, b"", None, usize::MAX).unwrap()
}

fn snapshot_round_trip<E: StorageEngine>(target_engine: E) {
    let [shard, other] = shards();

    // Step 1: the source replica applies the history and takes a snapshot.
    let mut source = ShardStateMachine::open(MemoryEngine::new(), shard).unwrap();
    apply_all(&mut source, &history(&customers_of(shard, 8, "c"), 3));
    let snapshot_index = source.applied_index();
    let data = source.snapshot_data().unwrap();

    // Step 2: the target holds a stale, different history of the shard and another shard.
    let mut target = ShardStateMachine::open(target_engine.clone(), shard).unwrap();
    apply_all(&mut target, &history(&customers_of(shard, 5, "stale"), 1));
    let mut neighbour = ShardStateMachine::open(target_engine.clone(), other).unwrap();
    apply_all(&mut neighbour, &history(&customers_of(other, 6, "n"), 2));
    let neighbour_hash_before = compute_hash(&mut neighbour);
    let neighbour_index = dump(&target_engine, ColumnFamily::Index);

    // Step 3: install, written in one batch.
    let mut batch = WriteBatch::new();
    target.install_snapshot(snapshot_index, &data, &mut batch).unwrap();
    target_engine.write(&batch, WriteOptions { sync: true }).unwrap();
    assert_eq!(target.applied_index(), snapshot_index);
    assert_eq!(target.config().version, 3, "the config comes with the snapshot");
    let reopened = ShardStateMachine::open(target_engine.clone(), shard).unwrap();
    assert_eq!((reopened.applied_index(), reopened.config().version), (snapshot_index, 3));

    // Step 4: both replicas hash the same at the next entry.
    let source_hash = compute_hash(&mut source);
    let target_hash = compute_hash(&mut target);
    assert_eq!(source_hash, target_hash, "the installed replica equals the source");
    let stale = customers_of(shard, 5, "stale");
    for cf in [ColumnFamily::State, ColumnFamily::Index] {
        assert!(
            dump(&target_engine, cf)
                .iter()
                .all(|(key, _)| !stale.iter().any(|c| key.ends_with(c.as_bytes()))),
            "stale {} keys are gone",
            cf.name()
        );
    }

    // The other shard is untouched.
    let neighbour_customers = customers_of(other, 6, "n");
    let theirs = |entries: Vec<(Vec<u8>, Vec<u8>)>| -> Vec<(Vec<u8>, Vec<u8>)> {
        entries
            .into_iter()
            .filter(|(key, _)| neighbour_customers.iter().any(|c| key.ends_with(c.as_bytes())))
            .collect()
    };
    assert_eq!(theirs(dump(&target_engine, ColumnFamily::Index)), theirs(neighbour_index));
    let neighbour_hash_after = compute_hash(&mut neighbour);
    assert_eq!(neighbour_hash_after.1, neighbour_hash_before.1, "the other shard's data is unchanged");
}

#[test]
fn a_snapshot_installed_on_another_memory_engine_reproduces_the_shard() {
    snapshot_round_trip(MemoryEngine::new());
}

#[test]
fn a_snapshot_installed_on_another_rocks_engine_reproduces_the_shard() {
    let dir = tempfile::tempdir().unwrap();
    snapshot_round_trip(RocksEngine::open(dir.path()).unwrap());
}

#[test]
fn a_corrupt_snapshot_is_refused_and_changes_nothing() {
    let [shard, _] = shards();
    let mut source = ShardStateMachine::open(MemoryEngine::new(), shard).unwrap();
    apply_all(&mut source, &history(&customers_of(shard, 3, "c"), 3));
    let data = source.snapshot_data().unwrap();

    let mut target = ShardStateMachine::open(MemoryEngine::new(), shard).unwrap();
    let mut batch = WriteBatch::new();
    assert!(target.install_snapshot(10, &data[..data.len() - 3], &mut batch).is_err());
    assert!(batch.is_empty(), "nothing staged");
    assert_eq!(target.applied_index(), 0);
}

/// Every key of every column family but `raft` (the state machines' data), sorted.
fn dump_all(engine: &impl StorageEngine) -> Vec<(ColumnFamily, Vec<u8>, Vec<u8>)> {
    let mut all = Vec::new();
    for cf in ColumnFamily::ALL.into_iter().filter(|cf| *cf != ColumnFamily::Raft) {
        all.extend(dump(engine, cf).into_iter().map(|(key, value)| (cf, key, value)));
    }
    all
}

fn removal_deletes_only_the_shard<E: StorageEngine>(engine: E) {
    let [shard, other] = shards();

    // Step 1: the neighbour shard's data alone, as the reference.
    let mut neighbour = ShardStateMachine::open(engine.clone(), other).unwrap();
    apply_all(&mut neighbour, &history(&customers_of(other, 6, "n"), 2));
    let neighbour_only = dump_all(&engine);

    // Step 2: the shard gets data of its own in every column family (tick: timers, changelog).
    let mut removed = ShardStateMachine::open(engine.clone(), shard).unwrap();
    apply_all(&mut removed, &history(&customers_of(shard, 8, "c"), 3));
    assert!(dump_all(&engine).len() > neighbour_only.len() + 8, "the shard wrote its keys");

    // Step 3: the node's state machine removes the shard in one batch.
    let mut node = NodeStateMachine::new(engine.clone());
    node.add_shard(shard).unwrap();
    node.add_shard(other).unwrap();
    let mut batch = WriteBatch::new();
    StateMachine::remove_shard(&mut node, shard.shard_id, &mut batch).unwrap();
    engine.write(&batch, WriteOptions { sync: true }).unwrap();
    assert_eq!(dump_all(&engine), neighbour_only, "no key of the shard is left, the neighbour's are intact");
    assert!(node.shard(shard.shard_id).is_none(), "the shard is forgotten");
    assert!(StateMachine::applied_index(&mut node, shard.shard_id).is_err());
    assert_eq!(StateMachine::applied_index(&mut node, other.shard_id).unwrap(), neighbour.applied_index());

    // Step 4: hosted again, the shard starts empty.
    let reopened = ShardStateMachine::open(engine.clone(), shard).unwrap();
    assert_eq!((reopened.applied_index(), reopened.config().version), (0, ScoringConfig::default().version));
}

#[test]
fn removing_a_shard_from_a_memory_engine_deletes_only_its_keys() {
    removal_deletes_only_the_shard(MemoryEngine::new());
}

#[test]
fn removing_a_shard_from_a_rocks_engine_deletes_only_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    removal_deletes_only_the_shard(RocksEngine::open(dir.path()).unwrap());
}
