//! [`RaftLogStore`]: raft-rs's `Storage` for one shard, over any [`StorageEngine`].

use std::cell::Cell;
use std::fmt;
use std::ops::ControlFlow;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState};

use crate::column_family::ColumnFamily;
use crate::engine::{StorageEngine, WriteBatch};
use crate::error::{Result, StorageError};
use crate::raft_log::keys::{
    conf_state_key, decode_truncated_state, encode_truncated_state, entries_end, entry_index, entry_key,
    hard_state_key, truncated_state_key,
};

/// The raft log, hard state, conf state and compaction point of ONE shard replica, stored in the
/// `raft` column family of a shared engine; implements [`raft::Storage`].
///
/// # Writing: stage into the caller's batch, then `on_persisted`
/// The write helpers ([`append`](Self::append), [`set_hard_state`](Self::set_hard_state),
/// [`set_commit_index`](Self::set_commit_index), [`set_conf_state`](Self::set_conf_state),
/// [`compact`](Self::compact), [`apply_snapshot`](Self::apply_snapshot),
/// [`destroy`](Self::destroy)) never write: they add operations to a [`WriteBatch`] the caller
/// owns, so that the Ready loop persists the entries and hard states of every shard of a round
/// in one batch with one fsync (DESIGN.md, group commit). They validate before adding anything,
/// so an error leaves the batch as it was, and they record the resulting log state as *staged*.
///
/// After the batch is written (with [`WriteOptions::SYNC`](crate::WriteOptions::SYNC)), the
/// caller calls [`on_persisted`](Self::on_persisted), which makes the staged state the one raft
/// sees. Invariants:
/// - The `raft::Storage` methods answer from the *persisted* state only, which always matches
///   what the engine holds: raft-rs calls them between Ready rounds (and from `advance`), and
///   must never be told about entries that could still be lost.
/// - Between writing a batch and `on_persisted`, do not step this shard's `RawNode`; call
///   `on_persisted` before `advance` (the Ready order in DESIGN.md does this naturally).
/// - If the write fails, the replica is dead (a storage error is fatal): drop this store and
///   recover a new one with [`open`](Self::open).
/// - One store per shard per engine: two stores of the same shard would cache different states.
///
/// Helpers called in the same round see each other's staged effects (an `append` after an
/// `apply_snapshot` appends after the snapshot).
///
/// # Reading
/// `first_index`, `last_index`, the hard state, the conf state, the truncated index and term and
/// the last term are cached, so `term()` for the last index or the compaction point costs no
/// read. Everything else reads the engine; corrupt or missing records are errors, never panics.
///
/// # Snapshots
/// The store cannot build a snapshot itself: the data belongs to the state machine, which the
/// caller (the Ready loop) owns. So snapshots are *prepared* by the caller:
/// 1. raft calls [`raft::Storage::snapshot`] when a follower needs compacted entries. Without a
///    usable prepared snapshot the store records the request and answers
///    `SnapshotTemporarilyUnavailable` (raft retries at the follower's next heartbeat response).
/// 2. The caller sees the request with [`take_snapshot_request`](Self::take_snapshot_request),
///    builds a point-in-time snapshot (state machine data at its apply index, the term of that
///    index, the conf state) and hands it over with
///    [`set_prepared_snapshot`](Self::set_prepared_snapshot).
/// 3. The next `snapshot()` answers a clone of it, as long as it is not older than the
///    compaction point (a follower installing it must find the following entries) nor than
///    raft's `request_index`. [`clear_prepared_snapshot`](Self::clear_prepared_snapshot)
///    releases its memory once sent.
///
/// Installing a received snapshot's metadata is [`apply_snapshot`](Self::apply_snapshot).
pub struct RaftLogStore<E: StorageEngine> {
    engine: E,
    shard_id: u64,
    /// What the engine holds, and what raft sees.
    persisted: LogState,
    /// `persisted` plus the helpers' changes added to a batch not yet reported written.
    staged: Option<LogState>,
    /// Encoding buffer reused across calls: the records of one helper call, back to back.
    scratch: Vec<u8>,
    /// End offsets in `scratch` of each encoded record.
    scratch_ends: Vec<usize>,
    /// The snapshot the caller prepared for raft to send (see "Snapshots").
    prepared_snapshot: Option<Snapshot>,
    /// Set by `snapshot()` when raft asked for a snapshot this store could not answer.
    snapshot_requested: Cell<bool>,
}

/// The cached summary of a shard's raft records.
///
/// Invariants: `truncated_index <= last_index`; when they are equal the log holds no entry and
/// `last_term == truncated_term`; entries `truncated_index + 1 ..= last_index` are all stored.
#[derive(Clone, Debug, Default, PartialEq)]
struct LogState {
    hard_state: HardState,
    conf_state: ConfState,
    /// Index of the last discarded entry (0: nothing discarded).
    truncated_index: u64,
    /// Term of the entry at `truncated_index`, kept so that `term(first_index - 1)` answers.
    truncated_term: u64,
    /// Index of the last entry, `truncated_index` when the log is empty.
    last_index: u64,
    /// Term of the entry at `last_index`.
    last_term: u64,
}

impl<E: StorageEngine> RaftLogStore<E> {
    /// Loads shard `shard_id`'s raft records from `engine` (a shard never seen before has an
    /// empty log: first index 1, last index 0, default hard and conf state).
    ///
    /// Checks that the stored records agree: the first entry follows the truncated index, the
    /// commit index is within the log. The rest is checked as entries are read.
    pub fn open(engine: E, shard_id: u64) -> Result<RaftLogStore<E>> {
        let hard_state = engine
            .get_with(ColumnFamily::Raft, &hard_state_key(shard_id), |value| {
                decode::<HardState>(shard_id, "hard state", value)
            })?
            .unwrap_or_default();
        let conf_state = engine
            .get_with(ColumnFamily::Raft, &conf_state_key(shard_id), |value| {
                decode::<ConfState>(shard_id, "conf state", value)
            })?
            .unwrap_or_default();
        let (truncated_index, truncated_term) = engine
            .get_with(ColumnFamily::Raft, &truncated_state_key(shard_id), |value| {
                decode_truncated_state(shard_id, value)
            })?
            .unwrap_or((0, 0));

        let entries_start = entry_key(shard_id, 0);
        let entries_end = entries_end(shard_id);
        let mut state = LogState {
            hard_state,
            conf_state,
            truncated_index,
            truncated_term,
            last_index: truncated_index,
            last_term: truncated_term,
        };
        if let Some((key, _)) = engine.seek_first(ColumnFamily::Raft, &entries_start, Some(&entries_end))? {
            let first_index = entry_index(shard_id, &key)?;
            if Some(first_index) != truncated_index.checked_add(1) {
                return Err(StorageError::RaftLogCorrupt {
                    shard_id,
                    reason: format!("first entry is {first_index}, truncated index is {truncated_index}"),
                });
            }
            let (key, value) =
                engine.seek_last(ColumnFamily::Raft, &entries_start, Some(&entries_end))?.ok_or_else(
                    || StorageError::RaftLogCorrupt { shard_id, reason: "last entry vanished".into() },
                )?;
            let last_index = entry_index(shard_id, &key)?;
            state.last_term = decode_entry(shard_id, last_index, &value)?.term;
            state.last_index = last_index;
        }
        if state.hard_state.commit > state.last_index {
            return Err(StorageError::RaftLogCorrupt {
                shard_id,
                reason: format!(
                    "commit index {} is past the last index {}",
                    state.hard_state.commit, state.last_index
                ),
            });
        }
        Ok(RaftLogStore {
            engine,
            shard_id,
            persisted: state,
            staged: None,
            scratch: Vec::new(),
            scratch_ends: Vec::new(),
            prepared_snapshot: None,
            snapshot_requested: Cell::new(false),
        })
    }

    /// The shard this log belongs to.
    pub fn shard_id(&self) -> u64 {
        self.shard_id
    }

    /// The engine the log lives in (to write the batches the helpers fill).
    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// The persisted hard state (term, vote, commit).
    pub fn hard_state(&self) -> &HardState {
        &self.persisted.hard_state
    }

    /// The persisted conf state (voters, learners).
    pub fn conf_state(&self) -> &ConfState {
        &self.persisted.conf_state
    }

    /// Index and term of the last discarded entry (`(0, 0)` before any compaction).
    pub fn truncated(&self) -> (u64, u64) {
        (self.persisted.truncated_index, self.persisted.truncated_term)
    }

    /// Whether raft asked for a snapshot that was not prepared (or too old) since the last call;
    /// resets the request. The caller answers with [`set_prepared_snapshot`](Self::set_prepared_snapshot).
    pub fn take_snapshot_request(&mut self) -> bool {
        self.snapshot_requested.replace(false)
    }

    /// Hands raft a snapshot to send to followers that need compacted entries: the state
    /// machine's data at its apply index `metadata.index`, that entry's term and the conf state
    /// in force there. Replaces any earlier one.
    pub fn set_prepared_snapshot(&mut self, snapshot: Snapshot) {
        self.prepared_snapshot = Some(snapshot);
    }

    /// Drops the prepared snapshot (it was sent, or is outdated): a later request rebuilds one.
    pub fn clear_prepared_snapshot(&mut self) {
        self.prepared_snapshot = None;
    }

    /// The index of the prepared snapshot, if any.
    pub fn prepared_snapshot_index(&self) -> Option<u64> {
        self.prepared_snapshot.as_ref().map(|snapshot| snapshot.get_metadata().index)
    }

    /// Adds `entries` (consecutive indexes, from raft's `Ready::entries`) to `batch`, replacing
    /// the entries at the same indexes and discarding every entry after the new last one (a new
    /// leader overwrote a conflicting suffix).
    ///
    /// Errors, with `batch` untouched: the first index is already compacted, or it leaves a gap
    /// after the last index, or the entries are not consecutive.
    pub fn append(&mut self, batch: &mut WriteBatch, entries: &[Entry]) -> Result<()> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(());
        };
        let view = self.view();
        if first.index <= view.truncated_index {
            return Err(StorageError::AppendCompacted {
                shard_id: self.shard_id,
                index: first.index,
                truncated_index: view.truncated_index,
            });
        }
        if first.index > view.last_index.saturating_add(1) {
            return Err(StorageError::LogGap {
                shard_id: self.shard_id,
                index: first.index,
                previous: view.last_index,
            });
        }
        for pair in entries.windows(2) {
            if pair[0].index.checked_add(1) != Some(pair[1].index) {
                return Err(StorageError::LogGap {
                    shard_id: self.shard_id,
                    index: pair[1].index,
                    previous: pair[0].index,
                });
            }
        }
        let previous_last = view.last_index;

        self.begin_encoding();
        for entry in entries {
            self.encode(entry, || format!("entry {}", entry.index))?;
        }
        for (entry, value) in entries.iter().zip(self.encoded()) {
            batch.put(ColumnFamily::Raft, &entry_key(self.shard_id, entry.index), value);
        }
        if last.index < previous_last {
            // `last.index < previous_last <= u64::MAX`, so `last.index + 1` cannot overflow.
            batch.delete_range(
                ColumnFamily::Raft,
                &entry_key(self.shard_id, last.index + 1),
                &entries_end(self.shard_id),
            );
        }
        let staged = self.staged_mut();
        staged.last_index = last.index;
        staged.last_term = last.term;
        Ok(())
    }

    /// Adds the hard state (from raft's `Ready::hs`) to `batch`.
    pub fn set_hard_state(&mut self, batch: &mut WriteBatch, hard_state: &HardState) -> Result<()> {
        self.begin_encoding();
        self.encode(hard_state, || "hard state".to_owned())?;
        batch.put(
            ColumnFamily::Raft,
            &hard_state_key(self.shard_id),
            self.encoded().next().unwrap_or_default(),
        );
        self.staged_mut().hard_state = hard_state.clone();
        Ok(())
    }

    /// Adds the hard state with its commit index replaced to `batch`: for `LightReady`'s commit
    /// index, which raft reports without a new hard state.
    pub fn set_commit_index(&mut self, batch: &mut WriteBatch, commit: u64) -> Result<()> {
        let mut hard_state = self.view().hard_state.clone();
        hard_state.commit = commit;
        self.set_hard_state(batch, &hard_state)
    }

    /// Adds the conf state (voters and learners, as returned by `RawNode::apply_conf_change`,
    /// or the initial members of a new shard) to `batch`. `initial_state` returns it on restart.
    pub fn set_conf_state(&mut self, batch: &mut WriteBatch, conf_state: &ConfState) -> Result<()> {
        self.begin_encoding();
        self.encode(conf_state, || "conf state".to_owned())?;
        batch.put(
            ColumnFamily::Raft,
            &conf_state_key(self.shard_id),
            self.encoded().next().unwrap_or_default(),
        );
        self.staged_mut().conf_state = conf_state.clone();
        Ok(())
    }

    /// Adds to `batch` the discarding of every entry up to and including `index`, which becomes
    /// the truncated index; its term is read from the log and kept, so that `term(index)` still
    /// answers. A no-op if the log is already compacted that far.
    ///
    /// The term is looked up rather than passed in so that it cannot disagree with the log.
    /// Errors, with `batch` untouched: `index` is not committed, or not in the persisted log.
    /// The caller also keeps it at or below the applied index, and below what slow followers
    /// still need (they would need a snapshot otherwise).
    pub fn compact(&mut self, batch: &mut WriteBatch, index: u64) -> Result<()> {
        let view = self.view();
        if index <= view.truncated_index {
            return Ok(());
        }
        let invalid =
            |reason: String| StorageError::InvalidCompaction { shard_id: self.shard_id, index, reason };
        if index > view.hard_state.commit {
            return Err(invalid(format!("not committed (commit index {})", view.hard_state.commit)));
        }
        if index > view.last_index || index > self.persisted.last_index {
            return Err(invalid(format!(
                "not persisted (last index {})",
                self.persisted.last_index.min(view.last_index)
            )));
        }
        // `persisted.truncated_index <= view.truncated_index < index <= persisted.last_index`:
        // the entry is in the engine, and committed entries are never overwritten.
        let term = self.read_term(index)?;
        let end = index
            .checked_add(1)
            .map_or(entries_end(self.shard_id).to_vec(), |next| entry_key(self.shard_id, next).to_vec());
        batch.delete_range(ColumnFamily::Raft, &entry_key(self.shard_id, 0), &end);
        batch.put(
            ColumnFamily::Raft,
            &truncated_state_key(self.shard_id),
            &encode_truncated_state(index, term),
        );
        let staged = self.staged_mut();
        staged.truncated_index = index;
        staged.truncated_term = term;
        Ok(())
    }

    /// Adds to `batch` the metadata of a received snapshot (raft's `Ready::snapshot`): the whole
    /// log is discarded, the snapshot's index and term become the truncated state, its conf state
    /// is stored and the hard state's term and commit move up to it. The state machine installs
    /// the snapshot's data in the same batch.
    ///
    /// Errors, with `batch` untouched: the snapshot is not newer than the compaction point
    /// (raft's `SnapshotOutOfDate`).
    pub fn apply_snapshot(&mut self, batch: &mut WriteBatch, metadata: &SnapshotMetadata) -> Result<()> {
        let view = self.view();
        if metadata.index <= view.truncated_index {
            return Err(StorageError::SnapshotOutOfDate {
                shard_id: self.shard_id,
                snapshot_index: metadata.index,
                first_index: view.truncated_index.saturating_add(1),
            });
        }
        let mut hard_state = view.hard_state.clone();
        hard_state.term = hard_state.term.max(metadata.term);
        hard_state.commit = hard_state.commit.max(metadata.index);
        let conf_state = metadata.get_conf_state();

        self.begin_encoding();
        self.encode(&hard_state, || "hard state".to_owned())?;
        self.encode(conf_state, || "conf state".to_owned())?;
        batch.delete_range(ColumnFamily::Raft, &entry_key(self.shard_id, 0), &entries_end(self.shard_id));
        {
            let mut encoded = self.encoded();
            batch.put(ColumnFamily::Raft, &hard_state_key(self.shard_id), encoded.next().unwrap_or_default());
            batch.put(ColumnFamily::Raft, &conf_state_key(self.shard_id), encoded.next().unwrap_or_default());
        }
        batch.put(
            ColumnFamily::Raft,
            &truncated_state_key(self.shard_id),
            &encode_truncated_state(metadata.index, metadata.term),
        );
        let conf_state = conf_state.clone();
        let staged = self.staged_mut();
        staged.hard_state = hard_state;
        staged.conf_state = conf_state;
        staged.truncated_index = metadata.index;
        staged.truncated_term = metadata.term;
        staged.last_index = metadata.index;
        staged.last_term = metadata.term;
        Ok(())
    }

    /// Adds to `batch` the removal of every raft record of this shard (the replica leaves the
    /// node). After `on_persisted`, the store reads as a new, empty log.
    pub fn destroy(&mut self, batch: &mut WriteBatch) {
        batch.delete_range(ColumnFamily::Raft, &entry_key(self.shard_id, 0), &entries_end(self.shard_id));
        for key in
            [hard_state_key(self.shard_id), truncated_state_key(self.shard_id), conf_state_key(self.shard_id)]
        {
            batch.delete(ColumnFamily::Raft, &key);
        }
        self.staged = Some(LogState::default());
    }

    /// Tells the store that the batch holding its staged changes is durably written: raft now
    /// sees them. Call after the write and before `RawNode::advance`. A no-op if nothing was
    /// staged.
    pub fn on_persisted(&mut self) {
        if let Some(staged) = self.staged.take() {
            self.persisted = staged;
        }
    }

    /// The state the next helper builds on: staged if this round staged anything.
    fn view(&self) -> &LogState {
        self.staged.as_ref().unwrap_or(&self.persisted)
    }

    fn staged_mut(&mut self) -> &mut LogState {
        self.staged.get_or_insert_with(|| self.persisted.clone())
    }

    fn begin_encoding(&mut self) {
        self.scratch.clear();
        self.scratch_ends.clear();
    }

    /// Appends `message`'s encoding to the scratch buffer; encoding everything before touching
    /// the batch keeps a failed helper from leaving half its operations in it.
    fn encode(&mut self, message: &impl protobuf::Message, what: impl FnOnce() -> String) -> Result<()> {
        message.write_to_vec(&mut self.scratch).map_err(|source| StorageError::RaftEncode {
            shard_id: self.shard_id,
            what: what(),
            source,
        })?;
        self.scratch_ends.push(self.scratch.len());
        Ok(())
    }

    /// The records encoded since `begin_encoding`, in order.
    fn encoded(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = std::iter::once(0).chain(self.scratch_ends.iter().copied());
        starts.zip(self.scratch_ends.iter().copied()).map(|(start, end)| &self.scratch[start..end])
    }

    /// Entries `[low, high)`, stopping before the total encoded size exceeds `max_size` but
    /// always returning at least one entry (raft-rs's `limit_size`, which `MemStorage` applies).
    fn read_entries(&self, low: u64, high: u64, max_size: Option<u64>) -> Result<Vec<Entry>> {
        let state = &self.persisted;
        let shard_id = self.shard_id;
        if low <= state.truncated_index {
            return Err(StorageError::LogCompacted {
                shard_id,
                index: low,
                first_index: state.truncated_index.saturating_add(1),
            });
        }
        if high > state.last_index.saturating_add(1) {
            return Err(StorageError::LogUnavailable {
                shard_id,
                index: high - 1,
                last_index: state.last_index,
            });
        }
        if low > high {
            return Err(StorageError::InvalidLogRange { shard_id, low, high });
        }
        let wanted = high - low;
        let max_size = max_size.unwrap_or(raft::NO_LIMIT);
        let mut entries = Vec::with_capacity(wanted.min(64) as usize);
        if wanted == 0 {
            return Ok(entries);
        }
        let mut total_size = 0u64;
        let mut size_limited = false;
        self.engine.scan(
            ColumnFamily::Raft,
            &entry_key(shard_id, low),
            Some(&entry_key(shard_id, high)),
            |key, value| {
                // The stored bytes are the entry's encoding, so their length is `compute_size()`.
                total_size = total_size.saturating_add(value.len() as u64);
                if !entries.is_empty() && total_size > max_size {
                    size_limited = true;
                    return Ok(ControlFlow::Break(()));
                }
                let expected = low + entries.len() as u64;
                let index = entry_index(shard_id, key)?;
                if index != expected {
                    return Err(missing_entry(shard_id, expected));
                }
                entries.push(decode_entry(shard_id, index, value)?);
                Ok(ControlFlow::Continue(()))
            },
        )?;
        if !size_limited && (entries.len() as u64) < wanted {
            return Err(missing_entry(shard_id, low + entries.len() as u64));
        }
        Ok(entries)
    }

    /// Term of the entry at `index`, answering for `first_index - 1` from the truncated state.
    fn read_term(&self, index: u64) -> Result<u64> {
        let state = &self.persisted;
        if index == state.truncated_index {
            return Ok(state.truncated_term);
        }
        if index < state.truncated_index {
            return Err(StorageError::LogCompacted {
                shard_id: self.shard_id,
                index,
                first_index: state.truncated_index.saturating_add(1),
            });
        }
        if index > state.last_index {
            return Err(StorageError::LogUnavailable {
                shard_id: self.shard_id,
                index,
                last_index: state.last_index,
            });
        }
        if index == state.last_index {
            return Ok(state.last_term);
        }
        self.engine
            .get_with(ColumnFamily::Raft, &entry_key(self.shard_id, index), |value| {
                Ok(decode_entry(self.shard_id, index, value)?.term)
            })?
            .ok_or_else(|| missing_entry(self.shard_id, index))
    }
}

fn missing_entry(shard_id: u64, index: u64) -> StorageError {
    StorageError::RaftLogCorrupt { shard_id, reason: format!("entry {index} is missing inside the log") }
}

fn decode<M: protobuf::Message>(shard_id: u64, what: &str, value: &[u8]) -> Result<M> {
    M::parse_from_bytes(value).map_err(|source| StorageError::RaftDecode {
        shard_id,
        what: what.to_owned(),
        source,
    })
}

/// Decodes the entry stored under `index` and checks that it is that entry.
fn decode_entry(shard_id: u64, index: u64, value: &[u8]) -> Result<Entry> {
    let entry: Entry = decode(shard_id, &format!("entry {index}"), value)?;
    if entry.index != index {
        return Err(StorageError::RaftLogCorrupt {
            shard_id,
            reason: format!("entry stored under index {index} has index {}", entry.index),
        });
    }
    Ok(entry)
}

impl<E: StorageEngine> raft::Storage for RaftLogStore<E> {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(self.persisted.hard_state.clone(), self.persisted.conf_state.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        // Reads are synchronous: `LogTemporarilyUnavailable` is never returned.
        Ok(self.read_entries(low, high, max_size.into())?)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        Ok(self.read_term(index)?)
    }

    fn first_index(&self) -> raft::Result<u64> {
        // Indexes come from disk: saturate rather than overflow on a corrupt u64::MAX.
        Ok(self.persisted.truncated_index.saturating_add(1))
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.persisted.last_index)
    }

    /// The prepared snapshot if it is usable (not older than the compaction point nor than
    /// `request_index`); otherwise records the request and answers "temporarily unavailable".
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        if let Some(snapshot) = &self.prepared_snapshot {
            let index = snapshot.get_metadata().index;
            if index >= self.persisted.truncated_index && index >= request_index && index > 0 {
                return Ok(snapshot.clone());
            }
        }
        self.snapshot_requested.set(true);
        Err(StorageError::SnapshotTemporarilyUnavailable { shard_id: self.shard_id }.into())
    }
}

impl<E: StorageEngine> fmt::Debug for RaftLogStore<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaftLogStore")
            .field("shard_id", &self.shard_id)
            .field("persisted", &self.persisted)
            .field("staged", &self.staged.is_some())
            .field("prepared_snapshot_index", &self.prepared_snapshot_index())
            .finish()
    }
}

#[cfg(test)]
mod raw_node_tests;
#[cfg(test)]
mod tests;
