//! The shard state machine on the in-memory engine: ingest, deduplication, the segment index,
//! the changelog, time-driven transitions through ticks, custom segments, erasure, restart.

use pulse_node::{ApplyOutput, ShardCommand, ShardConfig, ShardRange, ShardStateMachine};
use pulse_proto::v1;
use pulse_scoring::{
    CustomerState, Dimension, Event, EventKind, MS_PER_DAY, RecentEventIds, ScoringConfig, SegmentDefinition,
    score,
};
use pulse_storage::{ColumnFamily, MemoryEngine, StorageEngine, WriteBatch, WriteOptions, state_key};

/// 2026-01-05T00:00:00Z, a Monday.
const DAY0: i64 = 1_767_571_200_000;
const SHARD: ShardConfig = ShardConfig { shard_id: 1, range: ShardRange::FULL };

fn at(day: i64, hour: i64) -> i64 {
    DAY0 + day * MS_PER_DAY + hour * 3_600_000
}

fn visit(customer: &str, id: &str, t: i64) -> Event {
    Event {
        customer_id: customer.into(),
        event_id: id.into(),
        timestamp_ms: t,
        kind: EventKind::Visit,
        category: Some("books".into()),
        amount: 0.0,
        channel: None,
    }
}

/// Applies commands at consecutive raft indexes.
struct Harness {
    machine: ShardStateMachine<MemoryEngine>,
    engine: MemoryEngine,
    next_index: u64,
}

impl Harness {
    fn new() -> Self {
        let engine = MemoryEngine::new();
        let machine = ShardStateMachine::open(engine.clone(), SHARD).unwrap();
        Self { machine, engine, next_index: 1 }
    }

    fn apply(&mut self, command: ShardCommand) -> ApplyOutput {
        let index = self.next_index;
        self.next_index += 1;
        self.machine.apply(index, &command.encode()).unwrap()
    }

    fn ingest(&mut self, arrival_ms: i64, events: Vec<Event>) -> Vec<bool> {
        match self.apply(ShardCommand::Ingest { arrival_ms, events }) {
            ApplyOutput::Ingest { applied } => applied,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn tick(&mut self, now_ms: i64) -> ApplyOutput {
        self.apply(ShardCommand::Tick { now_ms, max_customers: 1000 })
    }

    fn transitions(&self, dimension: Dimension) -> Vec<(String, String, String, String)> {
        let dimension = v1::Dimension::from(dimension) as i32;
        self.machine
            .changelog_after(None, 10_000)
            .unwrap()
            .into_iter()
            .map(|entry| entry.transition)
            .filter(|t| t.dimension == dimension)
            .map(|t| (t.customer_id, t.from, t.to, t.cause))
            .collect()
    }

    fn members(&self, dimension: Dimension, segment: &str) -> Vec<String> {
        self.machine
            .segment_members(dimension, segment, None, 1000)
            .unwrap()
            .into_iter()
            .map(|m| m.0)
            .collect()
    }
}

#[test]
fn ingest_matches_the_model_and_indexes_segments() {
    let mut shard = Harness::new();
    let events: Vec<Event> = (0..5).map(|d| visit("alice", &format!("a{d}"), at(d, 10))).collect();
    assert_eq!(shard.ingest(at(4, 12), events.clone()), [true; 5]);

    let config = ScoringConfig::default();
    let mut expected_state = CustomerState::new();
    events.iter().for_each(|e| expected_state.apply(e, &config));
    let expected = score("alice", &expected_state, at(5, 0), &config).unwrap();
    let got = shard.machine.activity("alice", at(5, 0)).unwrap().unwrap();
    assert_eq!(got, expected);

    assert_eq!(shard.members(Dimension::ActivitySegment, "DAILY"), ["alice"]);
    assert_eq!(shard.members(Dimension::Lifecycle, "NEW"), ["alice"]);
    assert_eq!(
        shard.transitions(Dimension::ActivitySegment),
        [("alice".into(), "".into(), "DAILY".into(), "a4".into())],
        "first classification, caused by the last event of the batch"
    );
    assert!(shard.machine.activity("nobody", at(5, 0)).unwrap().is_none());
}

#[test]
fn duplicates_across_entries_are_counted_not_applied() {
    let mut shard = Harness::new();
    assert_eq!(shard.ingest(at(0, 12), vec![visit("bob", "b1", at(0, 10))]), [true]);
    let before = shard.machine.customer("bob").unwrap().unwrap();
    let applied = shard.ingest(at(0, 13), vec![visit("bob", "b1", at(0, 11)), visit("bob", "b2", at(0, 11))]);
    assert_eq!(applied, [false, true]);
    let applied = shard.ingest(at(0, 14), vec![visit("bob", "b1", at(0, 11)), visit("bob", "b2", at(0, 11))]);
    assert_eq!(applied, [false, false]);
    let after = shard.machine.customer("bob").unwrap().unwrap();
    assert_eq!(after.state.events, before.state.events + 1);
}

/// The `dedup` keys of `customer` (its remembered event ids).
fn dedup_keys(engine: &MemoryEngine, customer: &str) -> usize {
    let mut prefix = state_key(customer);
    prefix.push(0xFF);
    let mut end = prefix.clone();
    end.push(0xFF);
    engine.scan_collect(ColumnFamily::Dedup, &prefix, Some(&end), 1000).unwrap().len()
}

#[test]
fn an_id_is_a_duplicate_within_the_window_only_and_expired_ids_are_swept() {
    let mut shard = Harness::new(); // the default window: one day
    let twice = vec![visit("gina", "g1", at(0, 10)), visit("gina", "g1", at(0, 10))];
    assert_eq!(shard.ingest(at(0, 12), twice), [true, false], "a repeat within one entry");
    assert_eq!(dedup_keys(&shard.engine, "gina"), 1);
    assert_eq!(shard.ingest(at(1, 11), vec![visit("gina", "g1", at(1, 10))]), [false], "23 h later");

    // 25 h after g1 arrived: touching gina sweeps its expired id, and g1 is new again.
    assert_eq!(shard.ingest(at(1, 13), vec![visit("gina", "g2", at(1, 12))]), [true]);
    assert_eq!(dedup_keys(&shard.engine, "gina"), 1, "g1 swept, g2 kept");
    assert_eq!(shard.machine.customer("gina").unwrap().unwrap().ids_swept_ms, Some(at(1, 13)));
    assert_eq!(shard.ingest(at(1, 14), vec![visit("gina", "g1", at(1, 13))]), [true]);
    assert_eq!(dedup_keys(&shard.engine, "gina"), 2);
    assert_eq!(shard.machine.customer("gina").unwrap().unwrap().state.events, 3);

    // A customer who sends nothing more is swept when its timer re-evaluates it.
    shard.tick(at(3, 0));
    assert_eq!(dedup_keys(&shard.engine, "gina"), 0, "swept by the time-driven re-evaluation");
}

#[test]
fn a_window_of_the_first_layout_moves_to_the_dedup_family_on_the_next_ingest() {
    let mut shard = Harness::new();
    assert_eq!(shard.ingest(at(0, 12), vec![visit("hank", "h1", at(0, 10))]), [true]);
    // Rewrite hank as the first layout wrote him: no swept time, the window in one value.
    let mut stored = shard.machine.customer("hank").unwrap().unwrap();
    stored.ids_swept_ms = None;
    let mut legacy_key = state_key("hank");
    legacy_key.push(0xFF);
    let mut window = RecentEventIds::default();
    window.insert("h1", at(0, 12), MS_PER_DAY);
    let mut batch = WriteBatch::new();
    batch.put(ColumnFamily::State, &state_key("hank"), &stored.encode());
    batch.put(ColumnFamily::State, &legacy_key, &window.encode());
    let mut dedup_end = legacy_key.clone();
    dedup_end.push(0xFF);
    batch.delete_range(ColumnFamily::Dedup, &legacy_key, &dedup_end);
    shard.engine.write(&batch, WriteOptions::NO_SYNC).unwrap();
    assert_eq!(dedup_keys(&shard.engine, "hank"), 0);

    // A retry of h1 is still a duplicate; the window now lives in the dedup family.
    assert_eq!(shard.ingest(at(0, 13), vec![visit("hank", "h1", at(0, 10))]), [false]);
    assert_eq!(shard.engine.get(ColumnFamily::State, &legacy_key).unwrap(), None, "legacy value deleted");
    assert_eq!(dedup_keys(&shard.engine, "hank"), 1);
    assert_eq!(shard.machine.customer("hank").unwrap().unwrap().ids_swept_ms, Some(at(0, 13)));
    assert_eq!(
        shard.ingest(at(0, 14), vec![visit("hank", "h1", at(0, 10)), visit("hank", "h2", at(0, 11))]),
        [false, true]
    );
    assert_eq!(shard.machine.customer("hank").unwrap().unwrap().state.events, 2);
}

#[test]
fn ticks_move_a_customer_through_every_activity_segment() {
    let mut shard = Harness::new();
    let days = [0, 7, 14, 21, 22, 23, 24, 25];
    let events: Vec<Event> = days.iter().map(|d| visit("carol", &format!("c{d}"), at(*d, 10))).collect();
    shard.ingest(at(25, 12), events);
    assert_eq!(shard.members(Dimension::ActivitySegment, "DAILY"), ["carol"]);
    for (day, segment) in [(28, "WEEKLY"), (40, "MONTHLY"), (60, "DORMANT"), (120, "CHURNED")] {
        let ApplyOutput::Tick { evaluated, .. } = shard.tick(at(day, 12)) else {
            panic!("not a tick output")
        };
        assert_eq!(evaluated, 1, "the customer's timer is due by day {day}");
        assert_eq!(shard.members(Dimension::ActivitySegment, segment), ["carol"], "day {day}");
    }
    let moves: Vec<(String, String, String)> =
        shard.transitions(Dimension::ActivitySegment).into_iter().map(|t| (t.1, t.2, t.3)).collect();
    assert_eq!(
        moves,
        [
            ("".into(), "DAILY".into(), "c25".into()),
            ("DAILY".into(), "WEEKLY".into(), "TIME".into()),
            ("WEEKLY".into(), "MONTHLY".into(), "TIME".into()),
            ("MONTHLY".into(), "DORMANT".into(), "TIME".into()),
            ("DORMANT".into(), "CHURNED".into(), "TIME".into()),
        ]
    );
    assert!(shard.members(Dimension::ActivitySegment, "DAILY").is_empty(), "old memberships leave the index");
    // Nothing is due once the customer has churned and is inactive, and the tick loop knows it
    // without proposing a tick (so the shard's raft group can hibernate).
    assert!(!shard.machine.reader().has_tick_work(at(400, 0)).unwrap());
    let ApplyOutput::Tick { evaluated, .. } = shard.tick(at(400, 0)) else { panic!("not a tick output") };
    assert_eq!(evaluated, 0);
}

#[test]
fn tick_work_is_due_timers_or_a_config_pass_in_progress() {
    let mut shard = Harness::new();
    assert!(!shard.machine.reader().has_tick_work(at(0, 0)).unwrap(), "an empty shard has nothing to do");
    shard.ingest(at(0, 12), vec![visit("dave", "d1", at(0, 10))]);
    assert!(!shard.machine.reader().has_tick_work(at(0, 13)).unwrap(), "DAILY until day 7 or so");
    assert!(shard.machine.reader().has_tick_work(at(30, 0)).unwrap(), "the DAILY timer is due");
    shard.tick(at(30, 0));
    assert!(!shard.machine.reader().has_tick_work(at(30, 0)).unwrap(), "the due timer was handled");

    shard.apply(ShardCommand::SetConfig {
        config: Box::new(ScoringConfig { version: 1, ..ScoringConfig::default() }),
        segments: vec![engaged_segment()],
    });
    assert!(shard.machine.reader().has_tick_work(at(30, 0)).unwrap(), "a config pass is in progress");
    shard.tick(at(30, 0));
    assert!(!shard.machine.reader().has_tick_work(at(30, 0)).unwrap(), "the pass finished");
}

#[test]
fn custom_segment_with_hysteresis_through_config_and_time() {
    let mut shard = Harness::new();
    shard.apply(ShardCommand::SetConfig {
        config: Box::new(ScoringConfig { version: 1, ..ScoringConfig::default() }),
        segments: vec![SegmentDefinition {
            id: "engaged".into(),
            name: "Engaged".into(),
            enter: "activity_index >= 40.0".into(),
            exit: "activity_index < 30.0".into(),
        }],
    });
    let events: Vec<Event> = (0..6).map(|d| visit("dave", &format!("d{d}"), at(d, 10))).collect();
    shard.ingest(at(5, 12), events);
    let index = shard.machine.activity("dave", at(5, 12)).unwrap().unwrap().activity_index;
    assert!(index >= 40.0, "index {index}");
    assert_eq!(shard.members(Dimension::Custom, "engaged"), ["dave"]);
    // Decay: the customer stays between 30 and 40 for a while (hysteresis), then leaves.
    let mut left_on = None;
    for day in 6..120 {
        shard.tick(at(day, 12));
        let index = shard.machine.activity("dave", at(day, 12)).unwrap().unwrap().activity_index;
        let member = !shard.members(Dimension::Custom, "engaged").is_empty();
        if index >= 30.0 {
            assert!(member, "day {day}: index {index} ≥ 30 keeps the member in");
        } else if left_on.is_none() {
            assert!(!member, "day {day}: index {index} < 30 takes the member out");
            left_on = Some(day);
        }
    }
    assert!(left_on.is_some());
    let custom = shard.transitions(Dimension::Custom);
    let moves: Vec<(&str, &str)> = custom.iter().map(|t| (t.1.as_str(), t.2.as_str())).collect();
    assert_eq!(moves, [("", "engaged"), ("engaged", "")]);
}

#[test]
fn delete_erases_the_customer_everywhere() {
    let mut shard = Harness::new();
    shard.ingest(at(0, 12), vec![visit("erin", "e1", at(0, 10)), visit("frank", "f1", at(0, 10))]);
    let stored = shard.machine.customer("erin").unwrap().unwrap();
    let mut memberships = Vec::new();
    for dimension in Dimension::ALL {
        for membership in stored.state.memberships.segments(*dimension) {
            assert!(shard.members(*dimension, &membership.segment).contains(&"erin".to_string()));
            memberships.push((*dimension, membership.segment.clone()));
        }
    }
    assert_eq!(memberships.len(), 3, "activity segment, lifecycle and level");
    let deleted = shard.apply(ShardCommand::DeleteCustomer { customer_id: "erin".into() });
    assert_eq!(deleted, ApplyOutput::Deleted { existed: true });
    assert!(shard.machine.customer("erin").unwrap().is_none());
    for (dimension, segment) in &memberships {
        assert!(
            !shard.members(*dimension, segment).contains(&"erin".to_string()),
            "{segment} index entry erased"
        );
    }
    assert!(shard.transitions(Dimension::ActivitySegment).iter().all(|t| t.0 != "erin"), "changelog erased");
    assert!(shard.transitions(Dimension::ActivitySegment).iter().any(|t| t.0 == "frank"), "others kept");
    // The event id is forgotten too: the same id is a new event now.
    assert_eq!(dedup_keys(&shard.engine, "erin"), 0);
    assert_eq!(dedup_keys(&shard.engine, "frank"), 1);
    assert_eq!(shard.ingest(at(0, 13), vec![visit("erin", "e1", at(0, 10))]), [true]);
    let missing = shard.apply(ShardCommand::DeleteCustomer { customer_id: "nobody".into() });
    assert_eq!(missing, ApplyOutput::Deleted { existed: false });
}

#[test]
fn reopening_recovers_the_apply_index_and_skips_applied_entries() {
    let mut shard = Harness::new();
    let command =
        ShardCommand::Ingest { arrival_ms: at(0, 12), events: vec![visit("grace", "g1", at(0, 10))] };
    shard.apply(command.clone());
    shard.apply(ShardCommand::SetConfig {
        config: Box::new(ScoringConfig { version: 7, ..ScoringConfig::default() }),
        segments: vec![],
    });
    let mut reopened = ShardStateMachine::open(shard.engine.clone(), SHARD).unwrap();
    assert_eq!(reopened.applied_index(), 2);
    assert_eq!(reopened.config().version, 7);
    // Replaying entry 1 (as raft may after a crash before the apply index was saved) is a no-op.
    assert_eq!(reopened.apply(1, &command.encode()).unwrap(), ApplyOutput::Nothing);
    assert_eq!(reopened.customer("grace").unwrap().unwrap().state.events, 1);
}

#[test]
fn reader_sees_applied_state_and_follows_config_from_another_thread() {
    let mut shard = Harness::new();
    let reader = shard.machine.reader();
    assert!(reader.activity("gina", at(0, 12)).unwrap().is_none(), "unknown before ingest");
    shard.ingest(at(0, 12), vec![visit("gina", "g1", at(0, 10))]);
    let from_reader =
        std::thread::spawn(move || reader.activity("gina", at(1, 0)).unwrap().unwrap()).join().unwrap();
    assert_eq!(from_reader, shard.machine.activity("gina", at(1, 0)).unwrap().unwrap());

    let reader = shard.machine.reader();
    shard.apply(ShardCommand::SetConfig {
        config: Box::new(ScoringConfig { version: 7, ..ScoringConfig::default() }),
        segments: vec![SegmentDefinition {
            id: "seen".into(),
            name: "Seen".into(),
            enter: "activity_index >= 0.0".into(),
            exit: "activity_index < 0.0".into(),
        }],
    });
    assert_eq!(reader.config().version, 7, "the reader follows the installed config");
    let activity = reader.activity("gina", at(1, 0)).unwrap().unwrap();
    assert_eq!(activity.custom_segments, ["seen"]);
}

#[test]
fn reader_refuses_customers_of_other_shards() {
    let engine = MemoryEngine::new();
    let ranges = ShardRange::split_evenly(2);
    let shard = ShardConfig { shard_id: 1, range: ranges[0] };
    let machine = ShardStateMachine::open(engine, shard).unwrap();
    let reader = machine.reader();
    let outside = (0..100)
        .map(|i| format!("customer-{i}"))
        .find(|id| !ranges[0].contains(pulse_storage::customer_hash(id)))
        .unwrap();
    assert!(matches!(reader.activity(&outside, DAY0), Err(pulse_node::NodeError::WrongShard { .. })));
}

#[test]
fn for_each_customer_visits_each_customer_of_the_shard_once() {
    let engine = MemoryEngine::new();
    let ranges = ShardRange::split_evenly(2);
    let shards: Vec<_> = ranges
        .iter()
        .zip(1u64..)
        .map(|(range, shard_id)| {
            ShardStateMachine::open(engine.clone(), ShardConfig { shard_id, range: *range }).unwrap()
        })
        .collect();
    let mut shards = shards;
    let customers: Vec<String> = (0..40).map(|i| format!("customer-{i}")).collect();
    for (index, customer) in customers.iter().enumerate() {
        let owner = ranges.iter().position(|r| r.contains(pulse_storage::customer_hash(customer))).unwrap();
        let event = visit(customer, &format!("{customer}-e"), at(0, 10));
        shards[owner]
            .apply(
                index as u64 + 1,
                &ShardCommand::Ingest { arrival_ms: at(0, 12), events: vec![event] }.encode(),
            )
            .unwrap();
    }
    let mut seen = Vec::new();
    for shard in &shards {
        let range = shard.shard().range;
        shard
            .reader()
            .for_each_customer(|id, stored| {
                assert!(range.contains(pulse_storage::customer_hash(id)), "{id} belongs to the shard");
                assert_eq!(stored.state.last_seen_ms, at(0, 10));
                seen.push(id.to_owned());
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
    }
    seen.sort();
    let mut expected = customers.clone();
    expected.sort();
    assert_eq!(seen, expected, "every customer once, dedup windows skipped");

    let mut first_only = 0;
    shards[0]
        .reader()
        .for_each_customer(|_, _| {
            first_only += 1;
            std::ops::ControlFlow::Break(())
        })
        .unwrap();
    assert_eq!(first_only, 1, "the visitor can stop the scan");
}

fn engaged_segment() -> SegmentDefinition {
    SegmentDefinition {
        id: "engaged".into(),
        name: "Engaged".into(),
        enter: "activity_index >= 1.0".into(),
        exit: String::new(),
    }
}

#[test]
fn a_new_config_reevaluates_every_customer_in_bounded_ticks_that_survive_restart() {
    let mut shard = Harness::new();
    let customers = ["c1", "c2", "c3", "c4", "c5"];
    let events: Vec<Event> = customers.iter().map(|c| visit(c, &format!("{c}-e"), at(0, 10))).collect();
    shard.ingest(at(0, 12), events);
    assert!(shard.members(Dimension::Custom, "engaged").is_empty());

    shard.apply(ShardCommand::SetConfig {
        config: Box::new(ScoringConfig { version: 1, ..ScoringConfig::default() }),
        segments: vec![engaged_segment()],
    });
    assert!(shard.members(Dimension::Custom, "engaged").is_empty(), "nothing moves until a tick");
    let tick = |shard: &mut Harness| shard.apply(ShardCommand::Tick { now_ms: at(0, 13), max_customers: 2 });
    assert_eq!(tick(&mut shard), ApplyOutput::Tick { evaluated: 2, transitions: 2 });
    assert_eq!(shard.members(Dimension::Custom, "engaged").len(), 2);

    // The cursor is in storage: a restarted replica continues where the pass stopped.
    shard.machine = ShardStateMachine::open(shard.engine.clone(), SHARD).unwrap();
    assert_eq!(tick(&mut shard), ApplyOutput::Tick { evaluated: 2, transitions: 2 });
    assert_eq!(tick(&mut shard), ApplyOutput::Tick { evaluated: 1, transitions: 1 });
    assert_eq!(tick(&mut shard), ApplyOutput::Tick { evaluated: 0, transitions: 0 }, "pass finished");

    let mut members = shard.members(Dimension::Custom, "engaged");
    members.sort();
    assert_eq!(members, customers);
    let custom = shard.transitions(Dimension::Custom);
    assert_eq!(custom.len(), 5, "each customer entered once: {custom:?}");
    assert!(custom.iter().all(|t| t.1.is_empty() && t.2 == "engaged" && t.3 == "CONFIG"), "{custom:?}");
    let activity = shard.machine.activity("c3", at(0, 13)).unwrap().unwrap();
    assert_eq!(activity.custom_segments, ["engaged"]);
}

#[test]
fn config_reevaluation_is_deterministic_and_a_newer_config_restarts_the_pass() {
    let run = || {
        let mut shard = Harness::new();
        let events: Vec<Event> =
            (0..7).map(|i| visit(&format!("k{i}"), &format!("e{i}"), at(0, 10))).collect();
        shard.ingest(at(0, 12), events);
        shard.apply(ShardCommand::SetConfig {
            config: Box::new(ScoringConfig { version: 1, ..ScoringConfig::default() }),
            segments: vec![engaged_segment()],
        });
        shard.apply(ShardCommand::Tick { now_ms: at(0, 13), max_customers: 3 });
        // Removing the segment while the first pass is half done: the members leave, and the
        // customers not yet visited never enter.
        shard.apply(ShardCommand::SetConfig {
            config: Box::new(ScoringConfig { version: 2, ..ScoringConfig::default() }),
            segments: vec![],
        });
        let mut total = 0;
        for _ in 0..10 {
            match shard.apply(ShardCommand::Tick { now_ms: at(0, 14), max_customers: 3 }) {
                ApplyOutput::Tick { evaluated, .. } => total += evaluated,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(total, 7, "the second pass visits every customer once");
        assert!(shard.members(Dimension::Custom, "engaged").is_empty());
        shard.machine.changelog_after(None, 10_000).unwrap()
    };
    let first = run();
    let custom: Vec<_> =
        first.iter().filter(|e| e.transition.dimension == v1::Dimension::Custom as i32).collect();
    assert_eq!(custom.len(), 6, "three entered, then left");
    assert!(custom.iter().all(|e| e.transition.cause == "CONFIG"));
    assert_eq!(first, run(), "replicas applying the same entries record the same transitions");
}

#[test]
fn readers_gather_purchase_histories_and_rfm_sketches_of_buyers_only() {
    let mut shard = Harness::new();
    let buy = |customer: &str, id: &str, t: i64, amount: f64| Event {
        kind: EventKind::Purchase,
        amount,
        ..visit(customer, id, t)
    };
    shard.ingest(
        at(10, 12),
        vec![
            buy("ann", "a1", at(0, 10), 20.0),
            buy("ann", "a2", at(4, 10), 30.0),
            buy("ann", "a3", at(4, 11), 5.0),
            buy("ben", "b1", at(2, 10), 100.0),
            visit("cat", "c1", at(3, 10)),
        ],
    );
    let reader = shard.machine.reader();
    let counts = reader.history_counts(at(10, 0)).unwrap();
    assert_eq!(counts.customers(), 2, "cat never bought");
    // ann: purchases on days 0 and 4 (two on day 4 count once): x = 1, t_x = 4, T = 10.
    assert_eq!(counts.get(&pulse_scoring::PurchaseHistory { x: 1, t_x: 4, t: 10 }), 1);
    assert_eq!(counts.get(&pulse_scoring::PurchaseHistory { x: 0, t_x: 0, t: 8 }), 1);
    let sketch = reader.rfm_sketch(at(10, 0)).unwrap();
    assert_eq!(sketch.count(), 2);
    let edges = sketch.edges(1).unwrap();
    // With two buyers every quintile is the lower value: ann's recency (5.54 days) and spend
    // (55), ben's single purchase; sketch edges are at most one bin (~2 %) above the value.
    let recency_days = (at(10, 0) - at(4, 11)) as f64 / MS_PER_DAY as f64;
    assert!((recency_days..recency_days * 1.03).contains(&edges.recency_days[0]), "{edges:?}");
    assert!((55.0..57.0).contains(&edges.monetary[0]), "{edges:?}");
    assert_eq!(edges.frequency[0], 1.0, "{edges:?}");
}
