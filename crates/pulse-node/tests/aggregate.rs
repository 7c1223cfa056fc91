//! The per-shard partials of the collective queries (segment stats, top-K, category affinity,
//! migration counts) against the model, and changelog retention pruning.

use std::collections::BTreeMap;

use pulse_node::{ApplyOutput, ShardCommand, ShardConfig, ShardRange, ShardReader, ShardStateMachine};
use pulse_scoring::{Dimension, Event, EventKind, MS_PER_DAY};
use pulse_storage::MemoryEngine;

/// 2026-01-05T00:00:00Z, a Monday.
const DAY0: i64 = 1_767_571_200_000;
const SHARD: ShardConfig = ShardConfig { shard_id: 1, range: ShardRange::FULL };

fn at(day: i64, hour: i64) -> i64 {
    DAY0 + day * MS_PER_DAY + hour * 3_600_000
}

fn event(customer: &str, id: &str, t: i64, kind: EventKind, category: &str, amount: f64) -> Event {
    Event {
        customer_id: customer.into(),
        event_id: id.into(),
        timestamp_ms: t,
        kind,
        category: Some(category.into()).filter(|c: &String| !c.is_empty()),
        amount,
        channel: None,
    }
}

/// Applies commands at consecutive raft indexes.
struct Harness {
    machine: ShardStateMachine<MemoryEngine>,
    reader: ShardReader<MemoryEngine>,
    next_index: u64,
}

impl Harness {
    fn new() -> Self {
        let machine = ShardStateMachine::open(MemoryEngine::new(), SHARD).unwrap();
        let reader = machine.reader();
        Self { machine, reader, next_index: 1 }
    }

    fn apply(&mut self, command: ShardCommand) -> ApplyOutput {
        let index = self.next_index;
        self.next_index += 1;
        self.machine.apply(index, &command.encode()).unwrap()
    }

    fn ingest(&mut self, arrival_ms: i64, events: Vec<Event>) {
        self.apply(ShardCommand::Ingest { arrival_ms, events });
    }

    fn tick(&mut self, now_ms: i64) {
        self.apply(ShardCommand::Tick { now_ms, max_customers: 1000 });
    }

    /// Current activity segment of every customer, from the stored memberships.
    fn stored_segments(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        self.reader
            .for_each_customer(|id, stored| {
                let segment = stored.state.memberships.activity_segment.as_ref().unwrap().segment.clone();
                out.insert(id.to_owned(), segment);
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
        out
    }
}

/// Five customers with different habits, ingested up to day 20.
fn populated() -> Harness {
    let mut shard = Harness::new();
    let mut events = Vec::new();
    for day in 14..=20 {
        events.push(event("daily", &format!("d{day}"), at(day, 9), EventKind::Purchase, "books", 20.0));
    }
    for day in [0, 7, 14] {
        events.push(event("weekly", &format!("w{day}"), at(day, 9), EventKind::Visit, "garden", 0.0));
        events.push(event("weekly", &format!("wb{day}"), at(day, 10), EventKind::Visit, "books", 0.0));
    }
    events.push(event("monthly", "m1", at(2, 9), EventKind::Purchase, "garden", 300.0));
    events.push(event("rare", "r1", at(0, 9), EventKind::Visit, "toys", 0.0));
    events.push(event("fresh", "f1", at(20, 9), EventKind::Visit, "", 0.0));
    shard.ingest(at(20, 12), events);
    shard
}

#[test]
fn segment_stats_group_the_stored_memberships() {
    let shard = populated();
    let now = at(20, 12);
    let stats = shard.reader.segment_stats(Dimension::ActivitySegment, now).unwrap();
    let mut expected: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for (customer, segment) in shard.stored_segments() {
        let activity = shard.reader.activity(&customer, now).unwrap().unwrap();
        assert_eq!(activity.segment.name(), segment, "{customer}");
        let slot = expected.entry(segment).or_default();
        slot.0 += 1;
        slot.1 += activity.activity_index;
    }
    assert_eq!(stats.segments.len(), expected.len());
    for (segment, (customers, sum)) in expected {
        let tally = stats.segments[&segment];
        assert_eq!(tally.customers, customers, "{segment}");
        assert!((tally.index_sum - sum).abs() < 1e-9, "{segment}");
    }
    // Latest events: daily and fresh on day 20, weekly day 14, monthly day 2, rare day 0.
    assert_eq!((stats.active_1d, stats.active_7d, stats.active_30d), (2, 3, 5));
}

#[test]
fn top_customers_rank_by_index_then_id() {
    let shard = populated();
    let now = at(21, 0);
    let mut all: Vec<(f64, String)> = ["daily", "weekly", "monthly", "rare", "fresh"]
        .iter()
        .map(|c| (shard.reader.activity(c, now).unwrap().unwrap().activity_index, c.to_string()))
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let top = shard.reader.top_customers(None, 3, now).unwrap();
    let got: Vec<(f64, String)> = top.into_iter().map(|r| (r.activity_index, r.customer_id)).collect();
    assert_eq!(got, all[..3]);

    let in_books = shard.reader.top_customers(Some("books"), 10, now).unwrap();
    let ids: Vec<&str> = in_books.iter().map(|r| r.customer_id.as_str()).collect();
    assert_eq!(ids, ["daily", "weekly"], "only customers with the category, the buyer first");
    let expected = shard.reader.activity("daily", now).unwrap().unwrap();
    let books = expected.categories.iter().find(|c| c.category == "books").unwrap();
    assert_eq!(in_books[0].activity_index, books.activity_index);
}

#[test]
fn category_affinity_counts_attachment_and_pairs() {
    let shard = populated();
    let now = at(21, 0);
    let categories = vec!["books".to_owned(), "garden".to_owned(), "toys".to_owned()];
    let partial = shard.reader.category_affinity(&categories, 0.0, now).unwrap();
    assert_eq!(partial.customers, 5);
    assert_eq!(partial.per_category, [2, 2, 1]);
    assert_eq!(partial.per_pair, [1, 0, 0], "only weekly has both books and garden");
    // weekly's garden and books affinities are 0.5 each: a threshold above that detaches it.
    let strict = shard.reader.category_affinity(&categories, 0.6, now).unwrap();
    assert_eq!(strict.per_category, [1, 1, 1]);
    assert_eq!(strict.per_pair, [0, 0, 0]);
}

#[test]
fn migration_counts_reconstruct_both_ends_from_the_changelog() {
    let mut shard = populated();
    let from_ms = at(20, 12);
    let at_from = shard.stored_segments();
    shard.ingest(at(25, 12), vec![event("late", "l1", at(25, 9), EventKind::Visit, "", 0.0)]);
    shard.tick(at(45, 12));
    let to_ms = at(45, 12);
    let at_to = shard.stored_segments();
    shard.ingest(at(46, 12), vec![event("rare", "r2", at(46, 9), EventKind::Visit, "", 0.0)]);
    shard.tick(at(60, 0));

    let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (customer, to) in &at_to {
        let from = at_from.get(customer).cloned().unwrap_or_default();
        *expected.entry((from, to.clone())).or_default() += 1;
    }
    assert!(expected.contains_key(&(String::new(), "MONTHLY".to_owned())), "late was unknown at from_ms");
    let counts = shard.reader.migration_counts(Dimension::ActivitySegment, from_ms, to_ms, &[]).unwrap();
    assert_eq!(counts, expected);
}

#[test]
fn pruning_deletes_the_oldest_entries_and_records_the_position() {
    let mut shard = Harness::new();
    for day in 0..6 {
        let customer = format!("c{day}");
        shard.ingest(at(day, 12), vec![event(&customer, "e", at(day, 9), EventKind::Visit, "", 0.0)]);
    }
    let all = shard.reader.changelog_after(None, 1000).unwrap();
    assert!(shard.reader.pruned_changelog().unwrap().is_none());
    let old: Vec<_> = all.iter().filter(|e| e.transition.at_ms < at(3, 0)).collect();
    assert!(old.len() > 2);

    // Bounded by max_entries first.
    assert_eq!(
        shard.apply(ShardCommand::PruneChangelog { before_ms: at(3, 0), max_entries: 2 }),
        ApplyOutput::Pruned { entries: 2 }
    );
    assert_eq!(shard.reader.pruned_changelog().unwrap(), Some((all[1].raft_index, all[1].seq)));
    assert_eq!(shard.reader.changelog_after(None, 1000).unwrap(), all[2..]);

    // Then everything before the cut, and nothing younger.
    let ApplyOutput::Pruned { entries } =
        shard.apply(ShardCommand::PruneChangelog { before_ms: at(3, 0), max_entries: 1000 })
    else {
        panic!("not a prune output")
    };
    assert_eq!(entries as usize, old.len() - 2);
    let last_old = old.last().unwrap();
    assert_eq!(shard.reader.pruned_changelog().unwrap(), Some((last_old.raft_index, last_old.seq)));
    let left = shard.reader.changelog_after(None, 1000).unwrap();
    assert_eq!(left, all[old.len()..]);
    assert!(left.iter().all(|e| e.transition.at_ms >= at(3, 0)));
    assert_eq!(
        shard.apply(ShardCommand::PruneChangelog { before_ms: at(3, 0), max_entries: 1000 }),
        ApplyOutput::Pruned { entries: 0 }
    );
    assert_eq!(shard.reader.applied_index().unwrap(), shard.next_index - 1);
}

#[test]
fn custom_migration_counts_each_segment_a_customer_was_in() {
    let mut shard = Harness::new();
    let segment = |id: &str, enter: &str, exit: &str| pulse_scoring::SegmentDefinition {
        id: id.into(),
        name: id.into(),
        enter: enter.into(),
        exit: exit.into(),
    };
    shard.apply(ShardCommand::SetConfig {
        config: Box::default(),
        segments: vec![
            segment("any", "activity_index >= 0.0", "activity_index < 0.0"),
            segment("hot", "activity_index >= 40.0", "activity_index < 30.0"),
        ],
    });
    let busy: Vec<Event> = (0..6)
        .map(|d| event("x", &format!("x{d}"), at(d, 10), EventKind::Purchase, "books", 200.0))
        .collect();
    shard.ingest(at(5, 12), busy);
    shard.ingest(at(5, 13), vec![event("y", "y1", at(5, 9), EventKind::Visit, "", 0.0)]);
    let from_ms = at(5, 14);
    let custom = |shard: &Harness| {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        shard
            .reader
            .for_each_customer(|id, stored| {
                out.insert(id.to_owned(), stored.state.memberships.custom_ids());
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
        out
    };
    let at_from = custom(&shard);
    assert_eq!(at_from["x"], ["any", "hot"]);
    shard.ingest(at(6, 12), vec![event("z", "z1", at(6, 9), EventKind::Visit, "", 0.0)]);
    shard.tick(at(60, 0));
    let to_ms = at(60, 0);
    let at_to = custom(&shard);
    assert_eq!(at_to["x"], ["any"], "x cooled down and left hot");
    shard.ingest(at(61, 0), vec![event("y", "y2", at(61, 0), EventKind::Visit, "", 0.0)]);

    let ids = ["any".to_owned(), "hot".to_owned()];
    let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (customer, now) in &at_to {
        let before = at_from.get(customer).cloned().unwrap_or_default();
        let mut counted = false;
        for id in &ids {
            let was = if before.contains(id) { id.clone() } else { String::new() };
            let is = if now.contains(id) { id.clone() } else { String::new() };
            if !was.is_empty() || !is.is_empty() {
                counted = true;
                *expected.entry((was, is)).or_default() += 1;
            }
        }
        if !counted {
            *expected.entry((String::new(), String::new())).or_default() += 1;
        }
    }
    let key = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(expected.get(&key("hot", "")), Some(&1));
    assert_eq!(expected.get(&key("", "any")), Some(&1), "z entered any in the window");
    let counts = shard.reader.migration_counts(Dimension::Custom, from_ms, to_ms, &ids).unwrap();
    assert_eq!(counts, expected);
}
