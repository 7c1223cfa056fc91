//! Deduplication of event ids, one key per id in the `dedup` family.
//!
//! ```text
//!  dedup   h | customer_id | 0xFF | xxh3_64(event_id)  →  arrival_ms (8 bytes BE)
//! ```
//!
//! An event is a duplicate when its id's key holds an arrival within the window
//! (`dedup_window_ms`) before this entry's arrival (the leader's clock, recorded in the entry,
//! so replicas agree). Checking a batch costs one point read per new id and writing it one put,
//! whatever the window holds: a hot customer with thousands of ids in its window costs no more
//! than a quiet one. (The first layout kept a customer's whole window in one value, decoded and
//! re-encoded on every touch; the profile of a long run showed it growing into the top of the
//! apply path.)
//!
//! Expired keys are swept per customer, when it is touched (an ingest or a timer) at least one
//! window after its last sweep: a scan of its own prefix, so the cost is amortised over the
//! window's events. A customer written by the first layout (`ids_swept_ms` unset) has its
//! legacy window moved here on its next ingest.

use std::collections::HashMap;
use std::ops::ControlFlow;

use pulse_scoring::{RecentEventIds, event_id_hash};
use pulse_storage::{ColumnFamily, StorageEngine, WriteBatch, prefix_upper_bound};

use crate::error::{NodeError, Result};
use crate::keys::{dedup_key, dedup_prefix, event_ids_key};
use crate::stored_customer::StoredCustomer;

/// Shortest time between two sweeps of one customer, whatever the window (a zero window would
/// otherwise sweep on every touch).
const MIN_SWEEP_INTERVAL_MS: i64 = 60_000;

/// Answers, per id of `event_ids` (one customer's events of one entry, arriving at
/// `arrival_ms`), whether it is new: not seen within `window_ms` before, nor earlier in
/// `event_ids`. Records the new ids in `batch`, moves a legacy window to the `dedup` family,
/// and sweeps the customer's expired ids when due (updating `stored.ids_swept_ms`).
/// `new_customer`: the customer has no state yet, so no id of it is stored (ids are only
/// written with the state, and erased with it) and nothing is read.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_and_record<'a, E: StorageEngine>(
    engine: &E,
    batch: &mut WriteBatch,
    customer_id: &str,
    stored: &mut StoredCustomer,
    new_customer: bool,
    event_ids: impl IntoIterator<Item = &'a str>,
    arrival_ms: i64,
    window_ms: i64,
) -> Result<Vec<bool>> {
    let horizon = arrival_ms.saturating_sub(window_ms);
    // Ids of this entry and of a legacy window being moved, which `engine` does not hold yet.
    let mut pending: HashMap<u64, i64> = HashMap::new();
    if stored.ids_swept_ms.is_none() {
        migrate_legacy_window(engine, batch, customer_id, horizon, &mut pending)?;
        stored.ids_swept_ms = Some(arrival_ms);
    } else {
        sweep_if_due(engine, batch, customer_id, stored, arrival_ms, window_ms)?;
    }
    let mut answers = Vec::new();
    for event_id in event_ids {
        let hash = event_id_hash(event_id);
        let key = dedup_key(customer_id, hash);
        let seen = match pending.get(&hash) {
            Some(&arrival) => Some(arrival),
            None if new_customer => None,
            None => read_arrival(engine, &key)?,
        };
        let fresh = seen.is_none_or(|arrival| arrival < horizon);
        if fresh {
            pending.insert(hash, arrival_ms);
            if window_ms > 0 {
                batch.put(ColumnFamily::Dedup, &key, &arrival_ms.to_be_bytes());
            }
        }
        answers.push(fresh);
    }
    Ok(answers)
}

/// Sweeps the customer's expired ids if its last sweep is at least a window old at `now_ms`
/// (for the timer path, which touches customers that send nothing).
pub(crate) fn sweep_if_due<E: StorageEngine>(
    engine: &E,
    batch: &mut WriteBatch,
    customer_id: &str,
    stored: &mut StoredCustomer,
    now_ms: i64,
    window_ms: i64,
) -> Result<()> {
    let Some(swept) = stored.ids_swept_ms else { return Ok(()) };
    if now_ms.saturating_sub(swept) < window_ms.max(MIN_SWEEP_INTERVAL_MS) {
        return Ok(());
    }
    let horizon = now_ms.saturating_sub(window_ms);
    let prefix = dedup_prefix(customer_id);
    let end = prefix_upper_bound(&prefix);
    let mut failure = None;
    engine.scan(ColumnFamily::Dedup, &prefix, end.as_deref(), |key, value| {
        match decode_arrival(value) {
            Ok(arrival) if arrival < horizon => batch.delete(ColumnFamily::Dedup, key),
            Ok(_) => {}
            Err(error) => {
                failure = Some(error);
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    })?;
    if let Some(error) = failure {
        return Err(error);
    }
    stored.ids_swept_ms = Some(now_ms);
    Ok(())
}

/// Adds to `batch` the deletion of every event id of the customer (both layouts).
pub(crate) fn delete_all(batch: &mut WriteBatch, customer_id: &str) {
    batch.delete(ColumnFamily::State, &event_ids_key(customer_id));
    let prefix = dedup_prefix(customer_id);
    if let Some(end) = prefix_upper_bound(&prefix) {
        batch.delete_range(ColumnFamily::Dedup, &prefix, &end);
    }
}

/// Moves the customer's legacy window (one value in `state`) to `dedup` keys in `batch`, its
/// unexpired ids into `pending`, and deletes it.
fn migrate_legacy_window<E: StorageEngine>(
    engine: &E,
    batch: &mut WriteBatch,
    customer_id: &str,
    horizon: i64,
    pending: &mut HashMap<u64, i64>,
) -> Result<()> {
    let legacy_key = event_ids_key(customer_id);
    let Some(raw) = engine.get(ColumnFamily::State, &legacy_key)? else { return Ok(()) };
    for &(hash, arrival) in RecentEventIds::decode(&raw)?.entries() {
        if arrival >= horizon {
            batch.put(ColumnFamily::Dedup, &dedup_key(customer_id, hash), &arrival.to_be_bytes());
            pending.insert(hash, arrival);
        }
    }
    batch.delete(ColumnFamily::State, &legacy_key);
    Ok(())
}

/// The arrival stored under `key`, read in place (no copy of the value on this hot path).
fn read_arrival<E: StorageEngine>(engine: &E, key: &[u8]) -> Result<Option<i64>> {
    let raw = engine.get_with(ColumnFamily::Dedup, key, |value| {
        Ok(<[u8; 8]>::try_from(value).map_err(|_| value.len()))
    })?;
    raw.map(|raw| raw.map(i64::from_be_bytes).map_err(corrupt_arrival)).transpose()
}

fn decode_arrival(value: &[u8]) -> Result<i64> {
    let raw: [u8; 8] = value.try_into().map_err(|_| corrupt_arrival(value.len()))?;
    Ok(i64::from_be_bytes(raw))
}

fn corrupt_arrival(len: usize) -> NodeError {
    NodeError::Corrupt { what: "event id arrival", reason: format!("{len} bytes, expected 8") }
}
