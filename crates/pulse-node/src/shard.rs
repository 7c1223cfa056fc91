//! [`ShardStateMachine`]: applies a shard's committed entries and serves its reads.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::sync::Arc;

use prost::Message;
use pulse_proto::v1;
use pulse_scoring::{
    Cause, CustomerActivity, Dimension, Event, RuleSet, ScoringConfig, SegmentDefinition, Transition,
    next_reevaluation_ms,
};
use pulse_storage::{
    ColumnFamily, StorageEngine, WriteBatch, WriteOptions, customer_hash, prefix_upper_bound, state_key,
    state_key_customer,
};
use tracing::{debug, info, warn};

use crate::aggregate::encode_cursor;
use crate::command::{ApplyOutput, ShardCommand};
use crate::consistency;
use crate::dedup;
use crate::error::{NodeError, Result};
use crate::keys::{
    EVENT_IDS_SUFFIX, ShardRange, apply_index_key, changelog_key, changelog_prefix, config_key,
    consistency_hash_key, index_key, parse_changelog_key, parse_timer_key, pruned_changelog_key,
    reevaluation_cursor_key, timer_key, timers_prefix,
};
use crate::reader::{Scoring, ShardReader, SharedScoring, activity_of, current, install, load_customer};
use crate::stored_customer::StoredCustomer;

/// Identity of a shard replica's state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardConfig {
    /// The shard (raft group) id.
    pub shard_id: u64,
    /// The hash range it owns.
    pub range: ShardRange,
}

/// The state machine of one shard replica over a node's storage engine.
///
/// `apply` is deterministic: the same entries in the same order give byte-identical storage on
/// every replica. Every entry is written as one batch including the apply index.
pub struct ShardStateMachine<E> {
    shard: ShardConfig,
    engine: E,
    /// The scoring config and compiled rules in force, shared with the shard's readers.
    scoring: SharedScoring,
    /// A snapshot of `scoring`, for applying without taking the lock.
    current: Arc<Scoring>,
    segments: Vec<SegmentDefinition>,
    applied_index: u64,
}

/// A transition as recorded in the changelog, with its cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangelogEntry {
    /// Raft index of the entry that caused it.
    pub raft_index: u64,
    /// Position among the transitions of that entry.
    pub seq: u32,
    /// The transition.
    pub transition: v1::Transition,
}

impl<E: StorageEngine> ShardStateMachine<E> {
    /// Opens the state machine of `shard`, recovering its apply index and config from `meta`.
    pub fn open(engine: E, shard: ShardConfig) -> Result<Self> {
        let applied_index = match engine.get(ColumnFamily::Meta, &apply_index_key(shard.shard_id))? {
            Some(raw) => u64::from_be_bytes(raw.as_slice().try_into().map_err(|_| NodeError::Corrupt {
                what: "apply index",
                reason: format!("{} bytes", raw.len()),
            })?),
            None => 0,
        };
        let mut machine = Self {
            shard,
            engine,
            scoring: SharedScoring::default(),
            current: Arc::default(),
            segments: Vec::new(),
            applied_index,
        };
        if let Some(raw) = machine.engine.get(ColumnFamily::Meta, &config_key(shard.shard_id))?
            && let ShardCommand::SetConfig { config, segments } = ShardCommand::decode(&raw)?
        {
            machine.install_config(*config, segments)?;
        }
        Ok(machine)
    }

    /// Index of the last applied entry (0 before the first).
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// The scoring config in force.
    pub fn config(&self) -> &ScoringConfig {
        &self.current.config
    }

    /// A read view of this shard that follows the config installed here; usable from any
    /// thread while this state machine applies entries.
    pub fn reader(&self) -> ShardReader<E> {
        ShardReader::new(self.engine.clone(), self.shard, self.scoring.clone())
    }

    /// The custom segment definitions in force.
    pub fn segments(&self) -> &[SegmentDefinition] {
        &self.segments
    }

    /// The shard's identity.
    pub fn shard(&self) -> ShardConfig {
        self.shard
    }

    /// Applies the entry at `index` and writes its batch (without fsync: the raft log is the
    /// durable record, and a lost apply batch is re-applied from it). For callers that own the
    /// engine's writes; the raft runtime uses [`Self::apply_to`].
    pub fn apply(&mut self, index: u64, data: &[u8]) -> Result<ApplyOutput> {
        let mut batch = WriteBatch::new();
        let output = self.apply_to(index, data, &mut batch)?;
        self.engine.write(&batch, WriteOptions { sync: false })?;
        Ok(output)
    }

    /// Adds the effects of the entry at `index` (payload `data`; empty for raft's own no-op
    /// entries) and the new apply index to `batch`, which the caller must write before the next
    /// entry is applied. Entries at or below the apply index are skipped, so a replay after a
    /// crash is harmless.
    pub fn apply_to(&mut self, index: u64, data: &[u8], batch: &mut WriteBatch) -> Result<ApplyOutput> {
        if index <= self.applied_index {
            debug!(
                shard_id = self.shard.shard_id,
                index,
                applied = self.applied_index,
                "entry already applied"
            );
            return Ok(ApplyOutput::Nothing);
        }
        let output = if data.is_empty() {
            ApplyOutput::Nothing
        } else {
            match ShardCommand::decode(data)? {
                ShardCommand::Ingest { arrival_ms, events } => {
                    ApplyOutput::Ingest { applied: self.apply_ingest(batch, index, arrival_ms, &events)? }
                }
                ShardCommand::Tick { now_ms, max_customers } => {
                    self.apply_tick(batch, index, now_ms, max_customers)?
                }
                ShardCommand::DeleteCustomer { customer_id } => {
                    ApplyOutput::Deleted { existed: self.apply_delete(batch, &customer_id)? }
                }
                ShardCommand::SetConfig { config, segments } => {
                    batch.put(ColumnFamily::Meta, &config_key(self.shard.shard_id), data);
                    self.install_config(*config, segments)?;
                    // Every customer is re-evaluated under the new config, a bounded number per
                    // following `Tick` entry, from the start of the shard's range (a pending
                    // pass for an older config restarts: the new one supersedes it).
                    batch.put(
                        ColumnFamily::Meta,
                        &reevaluation_cursor_key(self.shard.shard_id),
                        &self.shard.range.state_start(),
                    );
                    ApplyOutput::ConfigSet
                }
                ShardCommand::PruneChangelog { before_ms, max_entries } => {
                    ApplyOutput::Pruned { entries: self.apply_prune(batch, before_ms, max_entries)? }
                }
                ShardCommand::ComputeHash => {
                    // The engine holds every entry before this one (each batch is written
                    // before the next entry applies), so every replica hashes the same data.
                    let hash = consistency::compute(&self.engine, self.shard)?;
                    batch.put(
                        ColumnFamily::Meta,
                        &consistency_hash_key(self.shard.shard_id),
                        &consistency::encode(index, hash),
                    );
                    info!(shard_id = self.shard.shard_id, index, hash, "consistency hash computed");
                    ApplyOutput::ConsistencyHash { index, hash }
                }
            }
        };
        self.record_applied(index, batch);
        Ok(output)
    }

    /// A point-in-time snapshot of this shard's data at its apply index (format in
    /// `shard_snapshot`), for a follower that needs entries the leader's log no longer holds.
    /// Call when every apply batch is written (the raft loop does, between rounds).
    pub fn snapshot_data(&self) -> Result<Vec<u8>> {
        crate::shard_snapshot::encode(&self.engine, self.shard)
    }

    /// Adds to `batch` the replacement of this shard's data by the snapshot `data` taken at raft
    /// index `index`, and the apply index `index`; reloads the scoring config from it. The
    /// caller writes `batch` next (a failed write stops the replica, so the in-memory state
    /// moving first is harmless).
    pub fn install_snapshot(&mut self, index: u64, data: &[u8], batch: &mut WriteBatch) -> Result<()> {
        let meta = crate::shard_snapshot::install(&self.engine, self.shard, index, data, batch)?;
        let config = config_key(self.shard.shard_id);
        match meta.iter().find(|(key, _)| *key == config) {
            Some((_, raw)) => {
                if let ShardCommand::SetConfig { config, segments } = ShardCommand::decode(raw)? {
                    self.install_config(*config, segments)?;
                }
            }
            None => {
                install(&self.scoring, Scoring::default());
                self.current = current(&self.scoring);
                self.segments = Vec::new();
            }
        }
        self.applied_index = index;
        Ok(())
    }

    /// Adds to `batch` the deletion of every key of this shard on the node — its customers'
    /// state, their index entries, its timers, changelog and `meta` keys (apply index and
    /// config included) — for a replica leaving the node. Other shards' keys are untouched. The
    /// caller writes `batch` next and drops this state machine; a shard hosted again later
    /// starts empty.
    pub fn remove_data(&self, batch: &mut WriteBatch) -> Result<()> {
        crate::shard_snapshot::clear(&self.engine, self.shard, batch)
    }

    /// Adds the apply index `index` to `batch` for an entry without a command (raft's empty
    /// entry of a new term, a membership change).
    pub fn record_applied(&mut self, index: u64, batch: &mut WriteBatch) {
        batch.put(ColumnFamily::Meta, &apply_index_key(self.shard.shard_id), &index.to_be_bytes());
        self.applied_index = self.applied_index.max(index);
    }

    fn install_config(&mut self, config: ScoringConfig, segments: Vec<SegmentDefinition>) -> Result<()> {
        let rules = RuleSet::compile(&segments)?;
        install(&self.scoring, Scoring { config, rules });
        self.current = current(&self.scoring);
        self.segments = segments;
        Ok(())
    }

    fn apply_ingest(
        &mut self,
        batch: &mut WriteBatch,
        index: u64,
        arrival_ms: i64,
        events: &[Event],
    ) -> Result<Vec<bool>> {
        let mut applied = vec![false; events.len()];
        // BTreeMap: customers in a deterministic order, so changelog sequence numbers agree.
        let mut by_customer: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (position, event) in events.iter().enumerate() {
            by_customer.entry(event.customer_id.as_str()).or_default().push(position);
        }
        let mut seq = 0u32;
        for (customer_id, positions) in by_customer {
            let hash = customer_hash(customer_id);
            if !self.shard.range.contains(hash) {
                // The proposer routes by hash; reaching here is a routing bug. Skipping keeps
                // replicas identical, and the client sees the events as not applied.
                warn!(
                    shard_id = self.shard.shard_id,
                    customer_id, hash, "event outside the shard's range skipped"
                );
                continue;
            }
            // A new customer has no ids anywhere: its ids start in the `dedup` family.
            let loaded = self.load_customer(customer_id)?;
            let new_customer = loaded.is_none();
            let mut stored = loaded.unwrap_or_else(|| StoredCustomer {
                ids_swept_ms: Some(arrival_ms),
                ..StoredCustomer::default()
            });
            let before_swept = stored.ids_swept_ms;
            let fresh = dedup::check_and_record(
                &self.engine,
                batch,
                customer_id,
                &mut stored,
                new_customer,
                positions.iter().map(|&p| events[p].event_id.as_str()),
                arrival_ms,
                self.current.config.dedup_window_ms,
            )?;
            let mut cause = None;
            for (position, fresh) in positions.into_iter().zip(fresh) {
                if fresh {
                    let event = &events[position];
                    stored.state.apply(event, &self.current.config);
                    applied[position] = true;
                    cause = Some(event.event_id.clone());
                }
            }
            match cause {
                Some(cause) => {
                    let as_of_ms = arrival_ms.max(stored.state.last_seen_ms);
                    let cause = Cause::Event(cause);
                    self.reevaluate(batch, index, &mut seq, customer_id, &mut stored, as_of_ms, cause)?;
                }
                // Only duplicates: nothing to score, but a sweep or a migration may have
                // changed the bookkeeping.
                None if stored.ids_swept_ms == before_swept => continue,
                None => {}
            }
            batch.put(ColumnFamily::State, &state_key(customer_id), &stored.encode());
        }
        Ok(applied)
    }

    /// A tick: first continues a pending config re-evaluation pass (at most `max_customers`
    /// customers, cause `CONFIG`), then re-evaluates customers whose timer is due at `now_ms`
    /// with the rest of the budget (cause `TIME`). `evaluated` counts both, so a caller can
    /// tick until a tick evaluates fewer than `max_customers`.
    fn apply_tick(
        &mut self,
        batch: &mut WriteBatch,
        index: u64,
        now_ms: i64,
        max_customers: u32,
    ) -> Result<ApplyOutput> {
        let mut seq = 0u32;
        let reevaluated = self.continue_config_pass(batch, index, &mut seq, now_ms, max_customers)?;
        let mut evaluated = u32::try_from(reevaluated.len()).unwrap_or(u32::MAX);
        let budget = max_customers.saturating_sub(evaluated) as usize;
        let prefix = timers_prefix(self.shard.shard_id);
        let end = timer_key(self.shard.shard_id, now_ms.saturating_add(1), "");
        let mut due = Vec::new();
        if budget > 0 {
            self.engine.scan(ColumnFamily::Timers, &prefix, Some(&end), |key, _| {
                if let Some((_, customer_id)) = parse_timer_key(key)
                    && !reevaluated.contains(customer_id)
                {
                    due.push((key.to_vec(), customer_id.to_owned()));
                }
                Ok(if due.len() >= budget { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
            })?;
        }
        for (key, customer_id) in due {
            let Some(mut stored) = self.load_customer(&customer_id)? else {
                batch.delete(ColumnFamily::Timers, &key);
                continue;
            };
            let as_of_ms = now_ms.max(stored.state.last_seen_ms);
            self.reevaluate(batch, index, &mut seq, &customer_id, &mut stored, as_of_ms, Cause::Time)?;
            let window_ms = self.current.config.dedup_window_ms;
            dedup::sweep_if_due(&self.engine, batch, &customer_id, &mut stored, now_ms, window_ms)?;
            batch.put(ColumnFamily::State, &state_key(&customer_id), &stored.encode());
            evaluated += 1;
        }
        Ok(ApplyOutput::Tick { evaluated, transitions: seq })
    }

    /// Re-evaluates (cause `CONFIG`, at `now_ms`) up to `budget` customers from the config
    /// re-evaluation cursor in `meta`, and moves the cursor past them, deleting it when the
    /// shard's range is exhausted. Returns the customers re-evaluated (none without a cursor).
    fn continue_config_pass(
        &mut self,
        batch: &mut WriteBatch,
        index: u64,
        seq: &mut u32,
        now_ms: i64,
        budget: u32,
    ) -> Result<BTreeSet<String>> {
        let mut reevaluated = BTreeSet::new();
        let cursor_key = reevaluation_cursor_key(self.shard.shard_id);
        let Some(start) = self.engine.get(ColumnFamily::Meta, &cursor_key)? else {
            return Ok(reevaluated);
        };
        if budget == 0 {
            return Ok(reevaluated);
        }
        let end = self.shard.range.state_end();
        let mut customers = Vec::new();
        let mut next_key = None;
        self.engine.scan(ColumnFamily::State, &start, end.as_deref(), |key, value| {
            if key.last() == Some(&EVENT_IDS_SUFFIX) {
                return Ok(ControlFlow::Continue(())); // a dedup window, not a customer
            }
            if customers.len() >= budget as usize {
                next_key = Some(key.to_vec());
                return Ok(ControlFlow::Break(()));
            }
            customers.push((key.to_vec(), value.to_vec()));
            Ok(ControlFlow::Continue(()))
        })?;
        for (key, value) in customers {
            let (_, customer_id) = state_key_customer(&key)?;
            let mut stored = StoredCustomer::decode(&value)?;
            let as_of_ms = now_ms.max(stored.state.last_seen_ms);
            self.reevaluate(batch, index, seq, customer_id, &mut stored, as_of_ms, Cause::Config)?;
            batch.put(ColumnFamily::State, &key, &stored.encode());
            reevaluated.insert(customer_id.to_owned());
        }
        match next_key {
            Some(next) => batch.put(ColumnFamily::Meta, &cursor_key, &next),
            None => batch.delete(ColumnFamily::Meta, &cursor_key),
        }
        Ok(reevaluated)
    }

    fn apply_delete(&mut self, batch: &mut WriteBatch, customer_id: &str) -> Result<bool> {
        dedup::delete_all(batch, customer_id);
        let Some(stored) = self.load_customer(customer_id)? else {
            return Ok(false);
        };
        let memberships = &stored.state.memberships;
        for dimension in Dimension::ALL {
            for membership in memberships.segments(*dimension) {
                batch.delete(ColumnFamily::Index, &index_key(*dimension, &membership.segment, customer_id));
            }
        }
        if let Some(due) = stored.due_ms {
            batch.delete(ColumnFamily::Timers, &timer_key(self.shard.shard_id, due, customer_id));
        }
        batch.delete(ColumnFamily::State, &state_key(customer_id));
        // Erase the customer's transitions from the changelog too.
        let prefix = changelog_prefix(self.shard.shard_id);
        let end = prefix_upper_bound(&prefix);
        let mut failure = None;
        self.engine.scan(ColumnFamily::Changelog, &prefix, end.as_deref(), |key, value| {
            match v1::Transition::decode(value) {
                Ok(transition) if transition.customer_id == customer_id => {
                    batch.delete(ColumnFamily::Changelog, key)
                }
                Ok(_) => {}
                Err(e) => {
                    failure =
                        Some(NodeError::Corrupt { what: "changelog transition", reason: e.to_string() });
                    return Ok(ControlFlow::Break(()));
                }
            }
            Ok(ControlFlow::Continue(()))
        })?;
        match failure {
            Some(error) => Err(error),
            None => Ok(true),
        }
    }

    /// Deletes the oldest changelog entries with `at_ms < before_ms`, in log order, stopping at
    /// the first younger one or after `max_entries`, and records the newest deleted cursor.
    fn apply_prune(&mut self, batch: &mut WriteBatch, before_ms: i64, max_entries: u32) -> Result<u32> {
        let shard_id = self.shard.shard_id;
        let prefix = changelog_prefix(shard_id);
        let end = prefix_upper_bound(&prefix);
        let mut pruned = 0u32;
        let mut newest = None;
        let mut failure = None;
        self.engine.scan(ColumnFamily::Changelog, &prefix, end.as_deref(), |key, value| {
            if pruned >= max_entries {
                return Ok(ControlFlow::Break(()));
            }
            match v1::Transition::decode(value) {
                Ok(transition) if transition.at_ms < before_ms => {
                    batch.delete(ColumnFamily::Changelog, key);
                    newest = parse_changelog_key(key);
                    pruned += 1;
                    Ok(ControlFlow::Continue(()))
                }
                Ok(_) => Ok(ControlFlow::Break(())),
                Err(e) => {
                    failure =
                        Some(NodeError::Corrupt { what: "changelog transition", reason: e.to_string() });
                    Ok(ControlFlow::Break(()))
                }
            }
        })?;
        if let Some(error) = failure {
            return Err(error);
        }
        if let Some((raft_index, seq)) = newest {
            batch.put(ColumnFamily::Meta, &pruned_changelog_key(shard_id), &encode_cursor(raft_index, seq));
        }
        Ok(pruned)
    }

    /// Scores the customer at `as_of_ms`, moves its memberships (index entries and changelog
    /// records in `batch`) and reschedules its timer. The caller writes `stored`.
    #[allow(clippy::too_many_arguments)]
    fn reevaluate(
        &self,
        batch: &mut WriteBatch,
        index: u64,
        seq: &mut u32,
        customer_id: &str,
        stored: &mut StoredCustomer,
        as_of_ms: i64,
        cause: Cause,
    ) -> Result<()> {
        let activity = activity_of(customer_id, stored, as_of_ms, &self.current)?;
        let transitions = stored.state.memberships.update(&activity, &cause);
        for transition in transitions {
            self.record(batch, index, seq, as_of_ms, transition);
        }
        let due = next_reevaluation_ms(&stored.state, as_of_ms, &self.current.config);
        if due != stored.due_ms {
            if let Some(old) = stored.due_ms {
                batch.delete(ColumnFamily::Timers, &timer_key(self.shard.shard_id, old, customer_id));
            }
            if let Some(new) = due {
                batch.put(ColumnFamily::Timers, &timer_key(self.shard.shard_id, new, customer_id), b"");
            }
            stored.due_ms = due;
        }
        Ok(())
    }

    fn record(
        &self,
        batch: &mut WriteBatch,
        index: u64,
        seq: &mut u32,
        since_ms: i64,
        transition: Transition,
    ) {
        let customer_id = transition.customer_id.as_str();
        if !transition.from.is_empty() {
            batch
                .delete(ColumnFamily::Index, &index_key(transition.dimension, &transition.from, customer_id));
        }
        if !transition.to.is_empty() {
            batch.put(
                ColumnFamily::Index,
                &index_key(transition.dimension, &transition.to, customer_id),
                &since_ms.to_be_bytes(),
            );
        }
        let key = changelog_key(self.shard.shard_id, index, *seq);
        batch.put(ColumnFamily::Changelog, &key, &v1::Transition::from(transition).encode_to_vec());
        *seq += 1;
    }

    fn load_customer(&self, customer_id: &str) -> Result<Option<StoredCustomer>> {
        load_customer(&self.engine, customer_id)
    }

    // ---- reads -------------------------------------------------------------------------------

    /// The customer's activity exactly at `as_of_ms` (custom segments re-evaluated there, with
    /// hysteresis from the stored memberships); `None` for an unknown customer.
    pub fn activity(&self, customer_id: &str, as_of_ms: i64) -> Result<Option<CustomerActivity>> {
        let Some(stored) = self.load_customer(customer_id)? else { return Ok(None) };
        activity_of(customer_id, &stored, as_of_ms, &self.current).map(Some)
    }

    /// The stored state of a customer.
    pub fn customer(&self, customer_id: &str) -> Result<Option<StoredCustomer>> {
        self.load_customer(customer_id)
    }

    /// Members of `segment` in this shard, in customer-id order, after `after` (exclusive),
    /// at most `limit`: `(customer_id, since_ms)`.
    pub fn segment_members(
        &self,
        dimension: Dimension,
        segment: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, i64)>> {
        crate::reader::scan_segment_members(&self.engine, self.shard.range, dimension, segment, after, limit)
    }

    /// Changelog entries after the cursor `(raft_index, seq)` (exclusive), at most `limit`.
    pub fn changelog_after(&self, after: Option<(u64, u32)>, limit: usize) -> Result<Vec<ChangelogEntry>> {
        crate::reader::scan_changelog(&self.engine, self.shard.shard_id, after, limit)
    }
}
