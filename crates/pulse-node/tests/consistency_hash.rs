//! The consistency hash of a shard replica (`ComputeHash` entries): replicas that applied the
//! same entries store the same `(index, hash)` on any engine, a divergence in any of the shard's
//! data changes it, other shards on the same node do not, it survives a restart, and computing
//! it changes no customer data.

use pulse_node::{ApplyOutput, ShardCommand, ShardConfig, ShardRange, ShardStateMachine};
use pulse_scoring::{Event, EventKind, MS_PER_DAY, ScoringConfig};
use pulse_storage::{
    ColumnFamily, MemoryEngine, RocksEngine, StorageEngine, WriteBatch, WriteOptions, customer_hash,
    state_key,
};

/// 2026-01-05T00:00:00Z, a Monday.
const DAY0: i64 = 1_767_571_200_000;
/// Tags of the shard's `meta` keys this test looks at (see the key table in `lib.rs`).
const META_APPLY_INDEX: u8 = 0x01;
const META_CONFIG: u8 = 0x02;
const META_CONSISTENCY_HASH: u8 = 0x05;

fn at(day: i64, hour: i64) -> i64 {
    DAY0 + day * MS_PER_DAY + hour * 3_600_000
}

/// Two shards splitting the hash space in halves, as a node hosting both would have them.
fn shards() -> [ShardConfig; 2] {
    let ranges = ShardRange::split_evenly(2);
    [ShardConfig { shard_id: 1, range: ranges[0] }, ShardConfig { shard_id: 2, range: ranges[1] }]
}

/// The first `count` customer ids (`c0`, `c1`, …) that belong to `shard`.
fn customers_of(shard: ShardConfig, count: usize) -> Vec<String> {
    (0..).map(|i| format!("c{i}")).filter(|id| shard.range.contains(customer_hash(id))).take(count).collect()
}

fn event(customer: &str, id: &str, kind: EventKind, category: &str, amount: f64, t: i64) -> Event {
    Event {
        customer_id: customer.into(),
        event_id: id.into(),
        timestamp_ms: t,
        kind,
        category: Some(category.into()),
        amount,
        channel: None,
    }
}

fn meta_key(shard_id: u64, tag: u8) -> Vec<u8> {
    let mut key = shard_id.to_be_bytes().to_vec();
    key.push(tag);
    key
}

fn write(engine: &impl StorageEngine, cf: ColumnFamily, key: &[u8], value: &[u8]) {
    let mut batch = WriteBatch::new();
    batch.put(cf, key, value);
    engine.write(&batch, WriteOptions { sync: false }).unwrap();
}

/// Every key-value of `cf`.
fn dump(engine: &impl StorageEngine, cf: ColumnFamily) -> Vec<(Vec<u8>, Vec<u8>)> {
    engine.scan_collect(cf, b"", None, usize::MAX).unwrap()
}

/// One shard replica: applies commands at consecutive raft indexes.
struct Replica<E: StorageEngine> {
    machine: ShardStateMachine<E>,
    engine: E,
    next_index: u64,
}

impl<E: StorageEngine> Replica<E> {
    fn new(engine: E, shard: ShardConfig) -> Self {
        let machine = ShardStateMachine::open(engine.clone(), shard).unwrap();
        let next_index = machine.applied_index() + 1;
        Self { machine, engine, next_index }
    }

    fn apply(&mut self, command: &ShardCommand) -> ApplyOutput {
        let index = self.next_index;
        self.next_index += 1;
        self.machine.apply(index, &command.encode()).unwrap()
    }

    /// Applies a `ComputeHash` entry; checks that what it answers is what the reader sees.
    fn compute_hash(&mut self) -> (u64, u64) {
        let index = self.next_index;
        let ApplyOutput::ConsistencyHash { index: hashed_at, hash } = self.apply(&ShardCommand::ComputeHash)
        else {
            panic!("not a consistency hash output");
        };
        assert_eq!(hashed_at, index, "the hash is stamped with its entry's raft index");
        assert_eq!(self.machine.reader().consistency_hash().unwrap(), Some((index, hash)));
        (index, hash)
    }
}

/// The entries of the common history of a shard: a config, purchases, visits and interactions
/// of several customers across categories on two days, then a tick late enough for timers to
/// fire (customers fall asleep), so every hashed column family has data.
fn history(shard: ShardConfig) -> Vec<ShardCommand> {
    let customers = customers_of(shard, 6);
    let categories = ["books", "garden", "music"];
    let mut day0 = Vec::new();
    let mut day2 = Vec::new();
    for (i, customer) in customers.iter().enumerate() {
        let category = categories[i % categories.len()];
        let other = categories[(i + 1) % categories.len()];
        day0.push(event(
            customer,
            &format!("{customer}-p0"),
            EventKind::Purchase,
            category,
            10.0 + i as f64,
            at(0, 9),
        ));
        day0.push(event(customer, &format!("{customer}-v0"), EventKind::Visit, other, 0.0, at(0, 10)));
        if i % 2 == 0 {
            day2.push(event(
                customer,
                &format!("{customer}-i2"),
                EventKind::Interaction,
                other,
                0.0,
                at(2, 8),
            ));
            day2.push(event(
                customer,
                &format!("{customer}-p2"),
                EventKind::Purchase,
                category,
                25.5,
                at(2, 9),
            ));
        }
    }
    vec![
        ShardCommand::SetConfig {
            config: Box::new(ScoringConfig { version: 2, ..ScoringConfig::default() }),
            segments: vec![],
        },
        ShardCommand::Ingest { arrival_ms: at(0, 12), events: day0 },
        ShardCommand::Ingest { arrival_ms: at(2, 12), events: day2 },
        ShardCommand::Tick { now_ms: at(60, 0), max_customers: 1_000 },
    ]
}

/// A replica of `shard` on `engine` that applied [`history`].
fn replica_with_history<E: StorageEngine>(engine: E, shard: ShardConfig) -> Replica<E> {
    let mut replica = Replica::new(engine, shard);
    for command in history(shard) {
        replica.apply(&command);
    }
    replica
}

#[test]
fn replicas_applying_the_same_entries_store_the_same_hash() {
    let [shard, _] = shards();
    let mut first = replica_with_history(MemoryEngine::new(), shard);
    let mut second = replica_with_history(MemoryEngine::new(), shard);
    let dir = tempfile::tempdir().unwrap();
    let mut on_rocks = replica_with_history(RocksEngine::open(dir.path()).unwrap(), shard);

    // The history is not trivial: every hashed column family holds data of the shard.
    for cf in [ColumnFamily::State, ColumnFamily::Index, ColumnFamily::Timers, ColumnFamily::Changelog] {
        assert!(!dump(&first.engine, cf).is_empty(), "{cf:?} is empty");
    }
    let changelog = first.machine.changelog_after(None, 1_000).unwrap();
    assert!(changelog.iter().any(|entry| entry.raft_index == 4), "the tick (entry 4) moved customers");

    let expected = first.compute_hash();
    assert_eq!(expected.0, 5, "four history entries, then the hash");
    assert_eq!(second.compute_hash(), expected, "two in-memory replicas");
    assert_eq!(on_rocks.compute_hash(), expected, "the engine does not matter, only the data");

    // The hash covers data, not bookkeeping: hashing again right away (new apply index, a stored
    // hash present) gives the same hash at the new index.
    assert_eq!(first.compute_hash(), (6, expected.1));
}

#[test]
fn a_replica_that_applied_an_extra_or_different_event_hashes_differently() {
    let [shard, _] = shards();
    let customer = customers_of(shard, 1).remove(0);
    let extra = event(&customer, "extra", EventKind::Visit, "books", 0.0, at(61, 9));
    let changed = event(&customer, "extra", EventKind::Purchase, "books", 1.0, at(61, 9));
    let retimed = event(&customer, "extra", EventKind::Visit, "books", 0.0, at(61, 10));

    let hash_after = |events: Vec<Event>| {
        let mut replica = replica_with_history(MemoryEngine::new(), shard);
        // Same number of entries on every replica, so the hashes are taken at the same index.
        replica.apply(&ShardCommand::Ingest { arrival_ms: at(61, 12), events });
        replica.compute_hash()
    };
    let baseline = hash_after(vec![]);
    let one_extra = hash_after(vec![extra.clone()]);
    let different = hash_after(vec![changed]);
    let different_time = hash_after(vec![retimed]);
    assert_eq!(baseline.0, one_extra.0, "hashed at the same index");
    assert_ne!(baseline.1, one_extra.1, "one extra event");
    assert_ne!(one_extra.1, different.1, "a different kind and amount");
    assert_ne!(one_extra.1, different_time.1, "a different timestamp");
    assert_eq!(hash_after(vec![extra]), one_extra, "and the same event gives the same hash");
}

/// A write behind the state machine's back: (what, column family, key, value, whether it must
/// change the hash of shard 1).
type RawWrite = (&'static str, ColumnFamily, Vec<u8>, Vec<u8>, bool);

#[test]
fn a_divergence_in_any_of_the_shards_data_changes_the_hash() {
    let [shard, other] = shards();
    let baseline = replica_with_history(MemoryEngine::new(), shard).compute_hash();
    let mine = customers_of(shard, 7).pop().unwrap(); // not in the history
    let theirs = customers_of(other, 1).remove(0);
    let mut timer = 1u64.to_be_bytes().to_vec();
    timer.extend_from_slice(&(at(90, 0) as u64).to_be_bytes());
    timer.extend_from_slice(&customer_hash(&mine).to_be_bytes());
    timer.extend_from_slice(mine.as_bytes());
    let mut changelog = 1u64.to_be_bytes().to_vec();
    changelog.extend_from_slice(&99u64.to_be_bytes());
    changelog.extend_from_slice(&0u32.to_be_bytes());
    let mut other_changelog = changelog.clone();
    other_changelog[..8].copy_from_slice(&2u64.to_be_bytes());
    let index = |customer: &str| [&[1u8][..], b"DAILY\0", customer.as_bytes()].concat();

    let writes: Vec<RawWrite> = vec![
        ("a state key of the shard", ColumnFamily::State, state_key(&mine), b"x".to_vec(), true),
        ("an index entry of the shard", ColumnFamily::Index, index(&mine), vec![0; 8], true),
        ("a timer of the shard", ColumnFamily::Timers, timer, vec![], true),
        ("a changelog entry of the shard", ColumnFamily::Changelog, changelog, b"t".to_vec(), true),
        ("the shard's config", ColumnFamily::Meta, meta_key(1, META_CONFIG), b"c".to_vec(), true),
        ("a state key of another shard", ColumnFamily::State, state_key(&theirs), b"x".to_vec(), false),
        ("an index entry of another shard", ColumnFamily::Index, index(&theirs), vec![0; 8], false),
        (
            "a changelog entry of another shard",
            ColumnFamily::Changelog,
            other_changelog,
            b"t".to_vec(),
            false,
        ),
        (
            "the apply index",
            ColumnFamily::Meta,
            meta_key(1, META_APPLY_INDEX),
            3u64.to_be_bytes().to_vec(),
            false,
        ),
        ("the raft log", ColumnFamily::Raft, b"anything".to_vec(), b"x".to_vec(), false),
    ];
    for (what, cf, key, value, changes) in writes {
        let engine = MemoryEngine::new();
        let mut replica = replica_with_history(engine.clone(), shard);
        write(&engine, cf, &key, &value);
        let (index, hash) = replica.compute_hash();
        assert_eq!(index, baseline.0, "{what}");
        assert_eq!(hash != baseline.1, changes, "{what}: changes the hash = {changes}");
    }
}

#[test]
fn customers_of_another_shard_on_the_same_engine_do_not_change_the_hash() {
    let [shard, other] = shards();
    let alone = replica_with_history(MemoryEngine::new(), shard).compute_hash();

    // A node hosting both shards, their entries interleaved on the shared engine.
    let engine = MemoryEngine::new();
    let mut mine = Replica::new(engine.clone(), shard);
    let mut theirs = Replica::new(engine.clone(), other);
    for (my_command, their_command) in history(shard).iter().zip(history(other).iter()) {
        theirs.apply(their_command);
        mine.apply(my_command);
    }
    let their_customers = customers_of(other, 6);
    let index_of_theirs = dump(&engine, ColumnFamily::Index)
        .into_iter()
        .filter(|(key, _)| their_customers.iter().any(|c| key.ends_with(c.as_bytes())))
        .count();
    assert!(index_of_theirs > 0, "the other shard has entries in the shared index");

    assert_eq!(mine.compute_hash(), alone, "the other shard's data is not hashed");
    let their_hash = theirs.compute_hash();
    assert_ne!(their_hash.1, alone.1, "the other shard hashes its own data");
    assert_eq!(
        mine.machine.reader().consistency_hash().unwrap(),
        Some(alone),
        "each shard keeps its own stored hash"
    );
}

#[test]
fn the_stored_hash_survives_a_reopen() {
    let [shard, _] = shards();
    let dir = tempfile::tempdir().unwrap();
    let stored = {
        let mut replica = replica_with_history(RocksEngine::open(dir.path()).unwrap(), shard);
        assert_eq!(replica.machine.reader().consistency_hash().unwrap(), None, "none before the first");
        replica.compute_hash()
    };

    let mut reopened = Replica::new(RocksEngine::open(dir.path()).unwrap(), shard);
    assert_eq!(reopened.machine.applied_index(), stored.0);
    assert_eq!(reopened.machine.reader().consistency_hash().unwrap(), Some(stored));
    // Replaying the ComputeHash entry (raft may, after a crash) is a no-op …
    assert_eq!(
        reopened.machine.apply(stored.0, &ShardCommand::ComputeHash.encode()).unwrap(),
        ApplyOutput::Nothing
    );
    // … and the data is unchanged, so the next hash agrees.
    assert_eq!(reopened.compute_hash(), (stored.0 + 1, stored.1));
}

#[test]
fn a_compute_hash_entry_changes_no_customer_state() {
    let [shard, _] = shards();
    let mut replica = replica_with_history(MemoryEngine::new(), shard);
    let data = [ColumnFamily::State, ColumnFamily::Index, ColumnFamily::Timers, ColumnFamily::Changelog];
    let before: Vec<_> = data.iter().map(|cf| dump(&replica.engine, *cf)).collect();
    let meta_before = dump(&replica.engine, ColumnFamily::Meta);
    let customer = customers_of(shard, 1).remove(0);
    let activity_before = replica.machine.activity(&customer, at(61, 0)).unwrap();

    let (index, hash) = replica.compute_hash();

    let after: Vec<_> = data.iter().map(|cf| dump(&replica.engine, *cf)).collect();
    assert_eq!(after, before, "state, index, timers and changelog are untouched");
    assert_eq!(replica.machine.activity(&customer, at(61, 0)).unwrap(), activity_before);
    let mut expected_meta: Vec<_> = meta_before
        .into_iter()
        .filter(|(key, _)| *key != meta_key(1, META_APPLY_INDEX))
        .chain([
            (meta_key(1, META_APPLY_INDEX), index.to_be_bytes().to_vec()),
            (meta_key(1, META_CONSISTENCY_HASH), [index.to_be_bytes(), hash.to_be_bytes()].concat()),
        ])
        .collect();
    expected_meta.sort();
    assert_eq!(
        dump(&replica.engine, ColumnFamily::Meta),
        expected_meta,
        "meta: the apply index and the hash"
    );
}
