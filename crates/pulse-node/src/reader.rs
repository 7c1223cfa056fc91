//! [`ShardReader`]: a concurrent read view of one shard replica.
//!
//! The raft runtime's loop thread owns the [`NodeStateMachine`](crate::NodeStateMachine) and
//! applies entries; gateways read at the same time through readers. A reader shares the storage
//! engine and the scoring config in force (swapped atomically by the state machine when a
//! `SetConfig` entry applies), so reads need no round trip through the loop thread.

use std::ops::ControlFlow;
use std::sync::{Arc, PoisonError, RwLock};

use prost::Message;
use pulse_proto::v1;
use pulse_scoring::{CustomerActivity, Dimension, RuleSet, ScoringConfig, SegmentDefinition, score};
use pulse_storage::{
    ColumnFamily, StorageEngine, customer_hash, prefix_upper_bound, state_key, state_key_customer,
};

use crate::error::{NodeError, Result};
use crate::keys::{
    EVENT_IDS_SUFFIX, ShardRange, changelog_key, changelog_prefix, index_segment_prefix, parse_changelog_key,
    reevaluation_cursor_key, timer_key, timers_prefix,
};
use crate::shard::{ChangelogEntry, ShardConfig};
use crate::stored_customer::StoredCustomer;

/// The scoring config and compiled custom segment rules of a shard, as one immutable value.
#[derive(Debug, Default)]
pub struct Scoring {
    /// The scoring config in force.
    pub(crate) config: ScoringConfig,
    /// The compiled custom segment rules in force.
    pub(crate) rules: RuleSet,
}

impl Scoring {
    /// The scoring config in force.
    pub fn config(&self) -> &ScoringConfig {
        &self.config
    }

    /// The custom segment definitions in force, ordered by id.
    pub fn segments(&self) -> Vec<SegmentDefinition> {
        self.rules.iter().map(|segment| segment.definition().clone()).collect()
    }
}

impl std::ops::Deref for Scoring {
    type Target = ScoringConfig;

    /// A `Scoring` reads as its config.
    fn deref(&self) -> &ScoringConfig {
        &self.config
    }
}

/// The scoring in force, shared between a shard's state machine (writer) and its readers.
/// Readers clone the inner `Arc` and release the lock at once.
pub(crate) type SharedScoring = Arc<RwLock<Arc<Scoring>>>;

/// The current value of `shared` (a poisoned lock still holds a whole value: it is only ever
/// replaced, never mutated in place).
pub(crate) fn current(shared: &SharedScoring) -> Arc<Scoring> {
    shared.read().unwrap_or_else(PoisonError::into_inner).clone()
}

/// Replaces the scoring in force.
pub(crate) fn install(shared: &SharedScoring, scoring: Scoring) {
    *shared.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(scoring);
}

/// Loads a customer's stored state.
pub(crate) fn load_customer<E: StorageEngine>(
    engine: &E,
    customer_id: &str,
) -> Result<Option<StoredCustomer>> {
    match engine.get(ColumnFamily::State, &state_key(customer_id))? {
        Some(raw) => Ok(Some(StoredCustomer::decode(&raw)?)),
        None => Ok(None),
    }
}

/// Scores a stored customer at `as_of_ms` with custom segments re-evaluated there.
pub(crate) fn activity_of(
    customer_id: &str,
    stored: &StoredCustomer,
    as_of_ms: i64,
    scoring: &Scoring,
) -> Result<CustomerActivity> {
    let mut activity = score(customer_id, &stored.state, as_of_ms, &scoring.config)?;
    activity.custom_segments = scoring.rules.evaluate_all(&activity, &stored.state.memberships.custom_ids());
    Ok(activity)
}

/// Members of `segment` among the customers of `range`, in customer-id order, after `after`
/// (exclusive), at most `limit`: `(customer_id, since_ms)`. The index is shared by every shard
/// on the node, so customers of other ranges are skipped.
pub(crate) fn scan_segment_members<E: StorageEngine>(
    engine: &E,
    range: ShardRange,
    dimension: Dimension,
    segment: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, i64)>> {
    let mut members = Vec::new();
    if limit == 0 {
        return Ok(members);
    }
    let prefix = index_segment_prefix(dimension, segment);
    let mut start = prefix.clone();
    if let Some(after) = after {
        start.extend_from_slice(after.as_bytes());
        start.push(0); // the smallest key after `after`
    }
    let end = prefix_upper_bound(&prefix);
    engine.scan(ColumnFamily::Index, &start, end.as_deref(), |key, value| {
        let Ok(customer_id) = std::str::from_utf8(&key[prefix.len()..]) else {
            return Ok(ControlFlow::Continue(()));
        };
        if range.contains(customer_hash(customer_id)) {
            let since = value.try_into().map(i64::from_be_bytes).unwrap_or_default();
            members.push((customer_id.to_owned(), since));
        }
        Ok(if members.len() >= limit { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
    })?;
    Ok(members)
}

/// Changelog entries of `shard_id` after the cursor `(raft_index, seq)` (exclusive; `None` =
/// from the oldest retained), in cursor order, at most `limit`.
pub(crate) fn scan_changelog<E: StorageEngine>(
    engine: &E,
    shard_id: u64,
    after: Option<(u64, u32)>,
    limit: usize,
) -> Result<Vec<ChangelogEntry>> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let prefix = changelog_prefix(shard_id);
    let start = match after {
        Some((index, seq)) => match seq.checked_add(1) {
            Some(next) => changelog_key(shard_id, index, next),
            None => changelog_key(shard_id, index.saturating_add(1), 0),
        },
        None => prefix.clone(),
    };
    let end = prefix_upper_bound(&prefix);
    let mut failure = None;
    engine.scan(ColumnFamily::Changelog, &start, end.as_deref(), |key, value| {
        match (parse_changelog_key(key), v1::Transition::decode(value)) {
            (Some((raft_index, seq)), Ok(transition)) => {
                out.push(ChangelogEntry { raft_index, seq, transition })
            }
            (_, Err(e)) => {
                failure = Some(NodeError::Corrupt { what: "changelog transition", reason: e.to_string() });
                return Ok(ControlFlow::Break(()));
            }
            (None, _) => {}
        }
        Ok(if out.len() >= limit { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
    })?;
    match failure {
        Some(error) => Err(error),
        None => Ok(out),
    }
}

/// A read view of one shard replica: cheap to clone, `Send + Sync`, usable from any thread
/// while the raft loop applies entries.
///
/// Reads see whatever the replica has applied; for a linearizable read, wait for the shard's
/// read index first (`RuntimeHandle::read_index`).
#[derive(Clone)]
pub struct ShardReader<E> {
    engine: E,
    shard: ShardConfig,
    scoring: SharedScoring,
}

impl<E> std::fmt::Debug for ShardReader<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardReader").field("shard", &self.shard).finish()
    }
}

impl<E: StorageEngine> ShardReader<E> {
    pub(crate) fn new(engine: E, shard: ShardConfig, scoring: SharedScoring) -> Self {
        Self { engine, shard, scoring }
    }

    /// The shard's identity.
    pub fn shard(&self) -> ShardConfig {
        self.shard
    }

    /// The storage engine the replica reads from (for the collective queries of `aggregate`).
    pub(crate) fn engine(&self) -> &E {
        &self.engine
    }

    /// The scoring config in force on this replica: a shared handle, so per-request callers
    /// (ingest validation) do not copy the config.
    pub fn config(&self) -> Arc<Scoring> {
        current(&self.scoring)
    }

    /// The customer's activity exactly at `as_of_ms`; `None` for an unknown customer.
    ///
    /// Fails with [`NodeError::WrongShard`] for a customer outside the shard's hash range, and
    /// with a scoring error if `as_of_ms` is before the customer's last event.
    pub fn activity(&self, customer_id: &str, as_of_ms: i64) -> Result<Option<CustomerActivity>> {
        let hash = customer_hash(customer_id);
        if !self.shard.range.contains(hash) {
            return Err(NodeError::WrongShard {
                customer_id: customer_id.to_owned(),
                hash,
                shard_id: self.shard.shard_id,
            });
        }
        let Some(stored) = load_customer(&self.engine, customer_id)? else { return Ok(None) };
        activity_of(customer_id, &stored, as_of_ms, &current(&self.scoring)).map(Some)
    }

    /// Members of `segment` in this shard, in customer-id order, after `after` (exclusive), at
    /// most `limit`: `(customer_id, since_ms)`.
    pub fn segment_members(
        &self,
        dimension: Dimension,
        segment: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, i64)>> {
        scan_segment_members(&self.engine, self.shard.range, dimension, segment, after, limit)
    }

    /// The custom segment definitions in force on this replica, ordered by id.
    pub fn segments(&self) -> Vec<SegmentDefinition> {
        current(&self.scoring).segments()
    }

    /// Whether a custom segment with this id is defined on this replica.
    pub fn has_custom_segment(&self, id: &str) -> bool {
        current(&self.scoring).rules.get(id).is_some()
    }

    /// Changelog entries after the cursor `(raft_index, seq)` (exclusive; `None` = from the
    /// oldest retained), in cursor order, at most `limit`.
    pub fn changelog_after(&self, after: Option<(u64, u32)>, limit: usize) -> Result<Vec<ChangelogEntry>> {
        scan_changelog(&self.engine, self.shard.shard_id, after, limit)
    }

    /// Whether a `Tick` at `now_ms` would do anything here: a config re-evaluation pass is in
    /// progress, or some customer's timer is due. The tick loop proposes ticks only to shards
    /// with work, so an idle shard's raft group can hibernate.
    pub fn has_tick_work(&self, now_ms: i64) -> Result<bool> {
        let shard_id = self.shard.shard_id;
        if self.engine.get(ColumnFamily::Meta, &reevaluation_cursor_key(shard_id))?.is_some() {
            return Ok(true);
        }
        let mut due = false;
        let end = timer_key(shard_id, now_ms.saturating_add(1), "");
        self.engine.scan(ColumnFamily::Timers, &timers_prefix(shard_id), Some(&end), |_, _| {
            due = true;
            Ok(ControlFlow::Break(()))
        })?;
        Ok(due)
    }

    /// The last consistency hash of this replica, `(raft_index, hash)`: stored by the
    /// `ComputeHash` entry at `raft_index`, over the shard's data after the entries before it.
    /// Replicas that stored a hash at the same index must agree on it; `None` before the first
    /// `ComputeHash` entry.
    pub fn consistency_hash(&self) -> Result<Option<(u64, u64)>> {
        crate::consistency::load(&self.engine, self.shard.shard_id)
    }

    /// Visits every customer of the shard in key order (hash, then id) with its stored state,
    /// until `visit` breaks. For collective queries (stats, top-K, affinity, model fits); the
    /// visitor must not block.
    pub fn for_each_customer(
        &self,
        mut visit: impl FnMut(&str, &StoredCustomer) -> ControlFlow<()>,
    ) -> Result<()> {
        let start = self.shard.range.state_start();
        let end = self.shard.range.state_end();
        let mut failure = None;
        self.engine.scan(ColumnFamily::State, &start, end.as_deref(), |key, value| {
            if key.last() == Some(&EVENT_IDS_SUFFIX) {
                return Ok(ControlFlow::Continue(())); // a dedup window, not a customer
            }
            let decoded = state_key_customer(key)
                .map_err(NodeError::from)
                .and_then(|(_, id)| Ok((id, StoredCustomer::decode(value)?)));
            match decoded {
                Ok((customer_id, stored)) => Ok(visit(customer_id, &stored)),
                Err(error) => {
                    failure = Some(error);
                    Ok(ControlFlow::Break(()))
                }
            }
        })?;
        failure.map_or(Ok(()), Err)
    }
}
