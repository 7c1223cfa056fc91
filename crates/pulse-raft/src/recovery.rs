//! Restart checks of a replica's raft records against its state machine.

use pulse_storage::{RaftLogStore, StorageEngine, WriteBatch, WriteOptions};
use tracing::info;

use crate::error::{RaftError, Result};

/// Writes `batch` with fsync and makes the store's staged state the one raft sees.
pub(crate) fn write_and_persist<E: StorageEngine>(
    store: &mut RaftLogStore<E>,
    batch: &WriteBatch,
) -> Result<()> {
    let shard_id = store.shard_id();
    store.engine().write(batch, WriteOptions::SYNC).map_err(RaftError::storage(shard_id))?;
    store.on_persisted();
    Ok(())
}

/// Checks the state machine's apply index against the log, and forwards the stored commit
/// index to it when a crash lost the latest commit index but not the applies (see
/// [`Peer::open`](crate::peer::Peer::open)).
pub(crate) fn recover_commit_index<E: StorageEngine>(
    store: &mut RaftLogStore<E>,
    applied_index: u64,
) -> Result<()> {
    let shard_id = store.shard_id();
    let (truncated_index, _) = store.truncated();
    let last_index = raft::Storage::last_index(store).unwrap_or(truncated_index);
    if applied_index < truncated_index {
        return Err(RaftError::Recovery {
            shard_id,
            reason: format!(
                "the state machine applied up to {applied_index} but the log is compacted up to {truncated_index}"
            ),
        });
    }
    if applied_index > last_index {
        return Err(RaftError::Recovery {
            shard_id,
            reason: format!(
                "the state machine applied up to {applied_index} but the log ends at {last_index}"
            ),
        });
    }
    let commit_index = store.hard_state().commit;
    if applied_index > commit_index {
        info!(shard_id, commit_index, applied_index, "forwarding the stored commit index to the apply index");
        let mut batch = WriteBatch::new();
        store.set_commit_index(&mut batch, applied_index).map_err(RaftError::storage(shard_id))?;
        write_and_persist(store, &batch)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use pulse_storage::MemoryEngine;
    use raft::eraftpb::{ConfState, Entry, HardState};

    use super::*;

    /// A store of shard 1 holding entries `1..=last_index` of term 1, commit index `commit`.
    fn store_with_log(last_index: u64, commit: u64) -> RaftLogStore<MemoryEngine> {
        let mut store = RaftLogStore::open(MemoryEngine::new(), 1).unwrap();
        let entries: Vec<Entry> =
            (1..=last_index).map(|index| Entry { index, term: 1, ..Entry::default() }).collect();
        let hard_state = HardState { term: 1, commit, ..HardState::default() };
        let mut batch = WriteBatch::new();
        store.set_conf_state(&mut batch, &ConfState::from((vec![1], vec![]))).unwrap();
        store.append(&mut batch, &entries).unwrap();
        store.set_hard_state(&mut batch, &hard_state).unwrap();
        write_and_persist(&mut store, &batch).unwrap();
        store
    }

    #[test]
    fn a_commit_index_behind_the_apply_index_is_forwarded_durably() {
        let mut store = store_with_log(5, 2);
        recover_commit_index(&mut store, 4).unwrap();
        assert_eq!(store.hard_state().commit, 4);
        let reopened = RaftLogStore::open(store.engine().clone(), 1).unwrap();
        assert_eq!(reopened.hard_state().commit, 4, "written, not only cached");
        assert_eq!(reopened.hard_state().term, 1);

        recover_commit_index(&mut store, 3).unwrap();
        assert_eq!(store.hard_state().commit, 4, "never moved backwards");
    }

    #[test]
    fn an_apply_index_outside_the_log_is_refused() {
        let mut store = store_with_log(5, 5);
        let error = recover_commit_index(&mut store, 6).unwrap_err();
        assert!(matches!(error, RaftError::Recovery { shard_id: 1, .. }), "{error}");

        let mut batch = WriteBatch::new();
        store.compact(&mut batch, 3).unwrap();
        write_and_persist(&mut store, &batch).unwrap();
        let error = recover_commit_index(&mut store, 2).unwrap_err();
        assert!(error.to_string().contains("compacted up to 3"), "{error}");
        recover_commit_index(&mut store, 3).unwrap();
    }
}
