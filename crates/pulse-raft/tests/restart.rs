//! Restarts over RocksDB: after a clean shutdown, and after a replica died mid-apply with
//! committed entries not yet applied (a crash), a new runtime over the same database applies
//! every committed entry exactly once and continues at the right index.

mod common;

use std::path::Path;

use common::{RecordingStateMachine, far_deadline, stored_commands, test_config, within};
use pulse_raft::{NullTransport, ProposeError, RaftRuntime, RuntimeHandle};
use pulse_storage::RocksEngine;

const NODE: u64 = 1;
const SHARD: u64 = 4;

type Applies = std::sync::Arc<std::sync::Mutex<Vec<common::ApplyRecord>>>;

/// Starts a runtime over the database at `path` with `state_machine(engine)` and hosts SHARD.
async fn start(
    path: &Path,
    state_machine: impl FnOnce(RocksEngine) -> RecordingStateMachine<RocksEngine>,
) -> (RuntimeHandle<u64>, RocksEngine, Applies) {
    let engine = RocksEngine::open(path).unwrap();
    let state_machine = state_machine(engine.clone());
    let applies = state_machine.applies();
    let handle =
        RaftRuntime::start(NODE, test_config(), engine.clone(), state_machine, NullTransport).unwrap();
    within("add shard", handle.add_shard(SHARD, vec![NODE])).await.unwrap();
    (handle, engine, applies)
}

fn applied_indexes(applies: &Applies) -> Vec<u64> {
    applies.lock().unwrap().iter().map(|(_, index, _)| *index).collect()
}

#[tokio::test]
async fn a_clean_restart_applies_nothing_twice_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, engine, _) = start(dir.path(), RecordingStateMachine::new).await;
    let mut last = 0;
    for i in 0..10u8 {
        last = within("propose", handle.propose(SHARD, vec![i], far_deadline())).await.unwrap();
    }
    assert_eq!(last, 11);
    handle.shutdown().unwrap();
    drop((handle, engine));

    let (handle, engine, applies) = start(dir.path(), RecordingStateMachine::new).await;
    let next = within("propose", handle.propose(SHARD, b"next".to_vec(), far_deadline())).await.unwrap();
    assert_eq!(next, 13, "index 12 is the new term's empty entry");
    let status = within("status", handle.shard_status(SHARD)).await.unwrap();
    assert_eq!((status.applied_index, status.last_index), (13, 13));
    assert_eq!(status.term, 2, "a new term after the restart election");
    assert_eq!(applied_indexes(&applies), vec![12, 13], "entries 1..=11 not applied again");
    let stored = stored_commands(&engine, SHARD);
    assert_eq!(stored.len(), 11);
    assert_eq!(stored.last().unwrap(), &(13, b"next".to_vec()));
    handle.shutdown().unwrap();
}

#[tokio::test]
async fn committed_entries_lost_by_a_crash_are_applied_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    // Entries 1..=5 apply; the state machine dies at 6, after the entry was committed and
    // persisted in the log, before its apply was written.
    let (handle, engine, applies) =
        start(dir.path(), |engine| RecordingStateMachine::failing_from(engine, 6)).await;
    for i in 0..4u8 {
        within("propose", handle.propose(SHARD, vec![i], far_deadline())).await.unwrap();
    }
    let lost = within("propose", handle.propose(SHARD, vec![4], far_deadline())).await;
    assert_eq!(lost, Err(ProposeError::ReplicaFailed { shard_id: SHARD }));
    let again = within("propose", handle.propose(SHARD, vec![5], far_deadline())).await;
    assert_eq!(again, Err(ProposeError::ReplicaFailed { shard_id: SHARD }));
    assert_eq!(applied_indexes(&applies), vec![1, 2, 3, 4, 5]);
    assert_eq!(handle.stats().snapshot().replicas_failed, 1);
    // No clean anything: the loop stops, the database closes without a flush.
    handle.shutdown().unwrap();
    drop((handle, engine));

    let (handle, engine, applies) = start(dir.path(), RecordingStateMachine::new).await;
    let next = within("propose", handle.propose(SHARD, vec![6], far_deadline())).await.unwrap();
    assert_eq!(next, 8, "entry 6 recovered, 7 is the new term's empty entry");
    assert_eq!(applied_indexes(&applies), vec![6, 7, 8], "only what was never applied");
    let stored: Vec<(u64, Vec<u8>)> = stored_commands(&engine, SHARD);
    let expected: Vec<(u64, Vec<u8>)> =
        vec![(2, vec![0]), (3, vec![1]), (4, vec![2]), (5, vec![3]), (6, vec![4]), (8, vec![6])];
    assert_eq!(stored, expected, "each committed command exactly once");
    handle.shutdown().unwrap();
}
