//! Collective queries over one shard: the per-shard partials that the gateway merges across
//! shards (segment stats, migration counts, top-K, category affinity), and the watch cursors.
//!
//! Every partial is a plain scan of the shard's own data (`for_each_customer`, the changelog)
//! and blocks on storage: callers in async code run them in `spawn_blocking`. Partials are
//! mergeable by summing (counts, sums) or by a k-way selection (top-K).
//!
//! "Stored activity index": the state keeps no index, only the counters as of the customer's
//! last update, so the index of a customer is computed from them at the query's `now_ms` (or
//! at its latest event when that is later) with [`activity_index_at`].

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::ops::ControlFlow;

use pulse_proto::ProtoEnum;
use pulse_scoring::{CustomerState, Dimension, MS_PER_DAY, activity_index_at, score};
use pulse_storage::{ColumnFamily, StorageEngine};

use crate::error::{NodeError, Result};
use crate::keys::{apply_index_key, pruned_changelog_key};
use crate::reader::ShardReader;

/// Changelog entries read per scan while reconstructing a migration matrix.
const CHANGELOG_CHUNK: usize = 4_096;

/// Members and index sum of one segment in one shard.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SegmentTally {
    /// Members.
    pub customers: u64,
    /// Sum of the members' activity indexes.
    pub index_sum: f64,
}

/// One shard's part of `GetSegmentStats`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SegmentStatsPartial {
    /// Per segment name of the dimension: its members in this shard.
    pub segments: BTreeMap<String, SegmentTally>,
    /// Customers whose latest event is in `[now - 1 day, now]`.
    pub active_1d: u64,
    /// Customers whose latest event is in `[now - 7 days, now]`.
    pub active_7d: u64,
    /// Customers whose latest event is in `[now - 30 days, now]`.
    pub active_30d: u64,
}

impl SegmentStatsPartial {
    /// Adds another shard's partial to this one.
    pub fn merge(&mut self, other: SegmentStatsPartial) {
        for (segment, tally) in other.segments {
            let mine = self.segments.entry(segment).or_default();
            mine.customers += tally.customers;
            mine.index_sum += tally.index_sum;
        }
        self.active_1d += other.active_1d;
        self.active_7d += other.active_7d;
        self.active_30d += other.active_30d;
    }
}

/// One shard's part of `GetCategoryAffinity`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AffinityPartial {
    /// Every customer of the shard.
    pub customers: u64,
    /// Per requested category (request order): customers attached to it.
    pub per_category: Vec<u64>,
    /// Per pair `(i, j)`, `i < j`, in the order `(0,1), (0,2) .. (1,2) ..`: customers attached
    /// to both.
    pub per_pair: Vec<u64>,
}

impl AffinityPartial {
    /// Adds another shard's partial to this one (both over the same categories).
    pub fn merge(&mut self, other: AffinityPartial) {
        self.customers += other.customers;
        add_counts(&mut self.per_category, &other.per_category);
        add_counts(&mut self.per_pair, &other.per_pair);
    }
}

fn add_counts(mine: &mut Vec<u64>, other: &[u64]) {
    if mine.len() < other.len() {
        mine.resize(other.len(), 0);
    }
    for (a, b) in mine.iter_mut().zip(other) {
        *a += b;
    }
}

/// A customer's reconstructed past along one segment key: `(customer_id, key)` → (segment at
/// `from_ms`, segment at `to_ms`), each known once a later transition was found.
type Past = HashMap<(String, String), (Option<String>, Option<String>)>;

/// Cells `(from, to) → customers` of a migration matrix, in `(from, to)` order.
pub type MigrationCounts = BTreeMap<(String, String), u64>;

/// A customer in a ranking: greater is better (higher index, then smaller customer id).
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// The activity index ranked by.
    pub activity_index: f64,
    /// The customer.
    pub customer_id: String,
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    /// Higher index is greater; at equal index the smaller customer id is greater.
    fn cmp(&self, other: &Self) -> Ordering {
        self.activity_index
            .total_cmp(&other.activity_index)
            .then_with(|| other.customer_id.cmp(&self.customer_id))
    }
}

/// The best `limit` customers, kept in a bounded min-heap.
#[derive(Debug)]
pub struct TopK {
    limit: usize,
    heap: BinaryHeap<Reverse<Ranked>>,
}

impl TopK {
    /// An empty selection of at most `limit`.
    pub fn new(limit: usize) -> Self {
        Self { limit, heap: BinaryHeap::with_capacity(limit.min(1 << 16) + 1) }
    }

    /// Offers a candidate; kept if it is among the best `limit` so far.
    pub fn offer(&mut self, candidate: Ranked) {
        if self.limit == 0 {
            return;
        }
        if self.heap.len() < self.limit {
            self.heap.push(Reverse(candidate));
        } else if self.heap.peek().is_some_and(|Reverse(worst)| candidate > *worst) {
            self.heap.pop();
            self.heap.push(Reverse(candidate));
        }
    }

    /// The selection, best first.
    pub fn into_sorted(self) -> Vec<Ranked> {
        let mut out: Vec<Ranked> = self.heap.into_iter().map(|Reverse(r)| r).collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        out
    }
}

/// The index of `state` as of the customer's last update, read at `now_ms` (see the module
/// documentation).
fn stored_index(state: &CustomerState, now_ms: i64, config: &pulse_scoring::ScoringConfig) -> f64 {
    activity_index_at(state, now_ms.max(state.last_seen_ms), config)
}

impl<E: StorageEngine> ShardReader<E> {
    /// Ids of the custom segments defined on this replica, sorted.
    pub fn custom_segment_ids(&self) -> Vec<String> {
        self.config().rules.iter().map(|segment| segment.id().to_owned()).collect()
    }

    /// Index of the last entry applied on this replica, as written to storage together with
    /// the entry's effects (0 before the first).
    pub fn applied_index(&self) -> Result<u64> {
        let raw = self.engine().get(ColumnFamily::Meta, &apply_index_key(self.shard().shard_id))?;
        decode_u64(raw.as_deref(), "apply index")
    }

    /// The cursor `(raft_index, seq)` of the newest changelog entry removed by retention
    /// pruning (`None` when nothing was pruned): a watch cursor below it has lost entries.
    pub fn pruned_changelog(&self) -> Result<Option<(u64, u32)>> {
        let raw = self.engine().get(ColumnFamily::Meta, &pruned_changelog_key(self.shard().shard_id))?;
        match raw.as_deref() {
            None => Ok(None),
            Some(bytes) => decode_cursor(bytes).map(Some),
        }
    }

    /// Segment sizes of `dimension` from the stored memberships, with each member's index at
    /// `now_ms`, and the customers active in the last 1 / 7 / 30 days.
    pub fn segment_stats(&self, dimension: Dimension, now_ms: i64) -> Result<SegmentStatsPartial> {
        let config = self.config();
        let mut partial = SegmentStatsPartial::default();
        self.for_each_customer(|_, stored| {
            let state = &stored.state;
            let members = state.memberships.segments(dimension);
            if !members.is_empty() {
                let index = stored_index(state, now_ms, &config);
                for membership in members {
                    let tally = partial.segments.entry(membership.segment.clone()).or_default();
                    tally.customers += 1;
                    tally.index_sum += index;
                }
            }
            let active_within = |days: i64| {
                state.has_events()
                    && state.last_seen_ms <= now_ms
                    && state.last_seen_ms >= now_ms - days * MS_PER_DAY
            };
            partial.active_1d += u64::from(active_within(1));
            partial.active_7d += u64::from(active_within(7));
            partial.active_30d += u64::from(active_within(30));
            ControlFlow::Continue(())
        })?;
        Ok(partial)
    }

    /// The best `limit` customers of the shard by activity index at `now_ms`, overall
    /// (`category` = `None`) or within the normalised `category` (customers without it are
    /// not ranked), best first; ties by customer id ascending.
    pub fn top_customers(&self, category: Option<&str>, limit: usize, now_ms: i64) -> Result<Vec<Ranked>> {
        let config = self.config();
        let mut top = TopK::new(limit);
        let mut failure = None;
        self.for_each_customer(|customer_id, stored| {
            let state = &stored.state;
            let activity_index = match category {
                None => stored_index(state, now_ms, &config),
                Some(name) => {
                    if !state.categories.iter().any(|c| c.name == name) {
                        return ControlFlow::Continue(());
                    }
                    match score(customer_id, state, now_ms.max(state.last_seen_ms), &config) {
                        Ok(activity) => match activity.categories.iter().find(|c| c.category == name) {
                            Some(c) => c.activity_index,
                            None => return ControlFlow::Continue(()),
                        },
                        Err(error) => {
                            failure = Some(NodeError::from(error));
                            return ControlFlow::Break(());
                        }
                    }
                }
            };
            top.offer(Ranked { activity_index, customer_id: customer_id.to_owned() });
            ControlFlow::Continue(())
        })?;
        failure.map_or(Ok(top.into_sorted()), Err)
    }

    /// Category attachment counts over every customer of the shard: a customer is attached to
    /// a category when its affinity at `now_ms` is `> 0` and `>= threshold`.
    pub fn category_affinity(
        &self,
        categories: &[String],
        threshold: f64,
        now_ms: i64,
    ) -> Result<AffinityPartial> {
        let config = self.config();
        let n = categories.len();
        let mut partial = AffinityPartial {
            customers: 0,
            per_category: vec![0; n],
            per_pair: vec![0; n * n.saturating_sub(1) / 2],
        };
        let mut failure = None;
        let mut attached = vec![false; n];
        self.for_each_customer(|customer_id, stored| {
            partial.customers += 1;
            let state = &stored.state;
            if !state.categories.iter().any(|c| categories.iter().any(|wanted| c.name == wanted.as_str())) {
                return ControlFlow::Continue(());
            }
            let activity = match score(customer_id, state, now_ms.max(state.last_seen_ms), &config) {
                Ok(activity) => activity,
                Err(error) => {
                    failure = Some(NodeError::from(error));
                    return ControlFlow::Break(());
                }
            };
            for (i, wanted) in categories.iter().enumerate() {
                attached[i] = activity
                    .categories
                    .iter()
                    .any(|c| c.category == *wanted && c.affinity > 0.0 && c.affinity >= threshold);
            }
            let mut pair = 0;
            for i in 0..n {
                partial.per_category[i] += u64::from(attached[i]);
                for j in i + 1..n {
                    partial.per_pair[pair] += u64::from(attached[i] && attached[j]);
                    pair += 1;
                }
            }
            ControlFlow::Continue(())
        })?;
        failure.map_or(Ok(partial), Err)
    }

    /// The migration cells of the shard's customers between `from_ms` and `to_ms`.
    ///
    /// A customer's segment at `t` is the `from` of its first recorded transition of the
    /// dimension with `at_ms > t` (log order), or its current segment when there is none; a
    /// customer unknown at `t` thus has `""`. Every customer known now is counted once.
    ///
    /// The custom dimension is multi-valued, so it is counted per custom segment `S` in
    /// `custom_ids`: a customer adds one to `(S, S)`, `(S, "")` or `("", S)` for every `S` it
    /// was a member of at either end, and one to `("", "")` when it was in no custom segment
    /// at both ends. Every row then sums to the customers that started in it.
    pub fn migration_counts(
        &self,
        dimension: Dimension,
        from_ms: i64,
        to_ms: i64,
        custom_ids: &[String],
    ) -> Result<MigrationCounts> {
        // Per (customer, segment key): segment at from_ms, segment at to_ms, if a transition
        // after them was recorded. The key is "" except for the custom dimension.
        let mut past = Past::new();
        let wanted_dimension = dimension.to_proto_i32();
        let mut cursor = None;
        loop {
            let entries = self.changelog_after(cursor, CHANGELOG_CHUNK)?;
            let Some(last) = entries.last() else { break };
            cursor = Some((last.raft_index, last.seq));
            for entry in entries {
                let t = entry.transition;
                if t.dimension != wanted_dimension || t.at_ms <= from_ms {
                    continue;
                }
                let key = if dimension == Dimension::Custom {
                    let segment = if t.from.is_empty() { t.to.clone() } else { t.from.clone() };
                    if !custom_ids.contains(&segment) {
                        continue;
                    }
                    segment
                } else {
                    String::new()
                };
                let slot = past.entry((t.customer_id, key.clone())).or_default();
                let segment_before = |from: &str| {
                    if dimension == Dimension::Custom {
                        if from.is_empty() { String::new() } else { key.clone() }
                    } else {
                        from.to_owned()
                    }
                };
                if slot.0.is_none() {
                    slot.0 = Some(segment_before(&t.from));
                }
                if slot.1.is_none() && t.at_ms > to_ms {
                    slot.1 = Some(segment_before(&t.from));
                }
            }
        }
        let mut counts = MigrationCounts::new();
        self.for_each_customer(|customer_id, stored| {
            let memberships = &stored.state.memberships;
            if dimension == Dimension::Custom {
                let mut counted = false;
                for id in custom_ids {
                    let now = memberships.custom.iter().any(|m| &m.segment == id);
                    let now = if now { id.clone() } else { String::new() };
                    let (at_from, at_to) = resolve(&past, customer_id, id, &now);
                    if at_from.is_empty() && at_to.is_empty() {
                        continue;
                    }
                    counted = true;
                    *counts.entry((at_from, at_to)).or_default() += 1;
                }
                if !counted {
                    *counts.entry((String::new(), String::new())).or_default() += 1;
                }
            } else {
                let now =
                    memberships.segments(dimension).first().map(|m| m.segment.clone()).unwrap_or_default();
                let cell = resolve(&past, customer_id, "", &now);
                *counts.entry(cell).or_default() += 1;
            }
            ControlFlow::Continue(())
        })?;
        Ok(counts)
    }
}

/// The `(segment at from_ms, segment at to_ms)` of a customer from its reconstructed past and
/// its current segment `now`.
fn resolve(past: &Past, customer_id: &str, key: &str, now: &str) -> (String, String) {
    match past.get(&(customer_id.to_owned(), key.to_owned())) {
        Some((at_from, at_to)) => (
            at_from.clone().unwrap_or_else(|| now.to_owned()),
            at_to.clone().unwrap_or_else(|| now.to_owned()),
        ),
        None => (now.to_owned(), now.to_owned()),
    }
}

/// A `u64` stored big-endian; 0 when absent.
fn decode_u64(raw: Option<&[u8]>, what: &'static str) -> Result<u64> {
    match raw {
        None => Ok(0),
        Some(bytes) => bytes
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| NodeError::Corrupt { what, reason: format!("{} bytes", bytes.len()) }),
    }
}

/// `raft_index (8 bytes BE) | seq (4 bytes BE)`.
pub(crate) fn encode_cursor(raft_index: u64, seq: u32) -> Vec<u8> {
    let mut out = raft_index.to_be_bytes().to_vec();
    out.extend_from_slice(&seq.to_be_bytes());
    out
}

/// Decodes [`encode_cursor`]'s output.
pub(crate) fn decode_cursor(bytes: &[u8]) -> Result<(u64, u32)> {
    let corrupt =
        || NodeError::Corrupt { what: "changelog cursor", reason: format!("{} bytes", bytes.len()) };
    if bytes.len() != 12 {
        return Err(corrupt());
    }
    let index = u64::from_be_bytes(bytes[..8].try_into().map_err(|_| corrupt())?);
    let seq = u32::from_be_bytes(bytes[8..].try_into().map_err(|_| corrupt())?);
    Ok((index, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranked(index: f64, id: &str) -> Ranked {
        Ranked { activity_index: index, customer_id: id.into() }
    }

    #[test]
    fn top_k_keeps_the_best_with_ties_by_id() {
        let mut top = TopK::new(3);
        for (index, id) in [(5.0, "e"), (9.0, "a"), (7.0, "c"), (7.0, "b"), (1.0, "z"), (9.0, "d")] {
            top.offer(ranked(index, id));
        }
        let ids: Vec<String> = top.into_sorted().into_iter().map(|r| r.customer_id).collect();
        assert_eq!(ids, ["a", "d", "b"]);
        let mut none = TopK::new(0);
        none.offer(ranked(1.0, "a"));
        assert!(none.into_sorted().is_empty());
    }

    #[test]
    fn cursors_round_trip() {
        assert_eq!(decode_cursor(&encode_cursor(7, 3)).unwrap(), (7, 3));
        assert!(decode_cursor(&[1, 2]).is_err());
    }
}
