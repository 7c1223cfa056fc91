//! One runtime, single-voter shards on the in-memory engine: leadership at once, ordered
//! exactly-once apply, group commit, request errors, read index, log compaction.

mod common;

use std::time::Instant;

use common::{FailingEngine, RecordingStateMachine, far_deadline, stored_commands, test_config, within};
use pulse_raft::{NullTransport, ProposeError, RaftConfig, RaftError, RaftRuntime, RuntimeHandle, ShardRole};
use pulse_storage::MemoryEngine;

const NODE: u64 = 1;

fn start(config: RaftConfig, engine: &MemoryEngine) -> (RuntimeHandle<u64>, RecordingStateMachineApplies) {
    let state_machine = RecordingStateMachine::new(engine.clone());
    let applies = state_machine.applies();
    let handle = RaftRuntime::start(NODE, config, engine.clone(), state_machine, NullTransport).unwrap();
    (handle, applies)
}

type RecordingStateMachineApplies = std::sync::Arc<std::sync::Mutex<Vec<common::ApplyRecord>>>;

#[tokio::test]
async fn a_single_voter_leads_at_once_and_applies_proposals_in_order_exactly_once() {
    // Election timeout of 60 s: anything that waited for one would hit the 10 s test limit.
    let config = RaftConfig { tick_interval_ms: 1_000, election_ticks: 60, ..test_config() };
    let engine = MemoryEngine::new();
    let (handle, applies) = start(config, &engine);
    within("add shard", handle.add_shard(7, vec![NODE])).await.unwrap();
    let status = within("status", handle.shard_status(7)).await.unwrap();
    assert_eq!(status.role, ShardRole::Leader, "leader as soon as it is added");
    assert_eq!(status.leader_id, Some(NODE));

    // Sequential proposals, then a concurrent burst: outputs (apply indexes) follow call order.
    let mut indexes = Vec::new();
    for i in 0..5u8 {
        indexes.push(within("propose", handle.propose(7, vec![b'a', i], far_deadline())).await.unwrap());
    }
    let burst: Vec<_> = (0..20u8).map(|i| handle.propose(7, vec![b'b', i], far_deadline())).collect();
    for proposal in burst {
        indexes.push(within("propose", proposal).await.unwrap());
    }
    assert!(indexes.windows(2).all(|pair| pair[1] == pair[0] + 1), "{indexes:?}");

    let expected: Vec<Vec<u8>> =
        (0..5u8).map(|i| vec![b'a', i]).chain((0..20u8).map(|i| vec![b'b', i])).collect();
    let stored: Vec<Vec<u8>> = stored_commands(&engine, 7).into_iter().map(|(_, data)| data).collect();
    assert_eq!(stored, expected);
    let applied: Vec<u64> = applies.lock().unwrap().iter().map(|(_, index, _)| *index).collect();
    assert_eq!(
        applied,
        (1..=26).collect::<Vec<u64>>(),
        "the leader's empty entry, then 25 commands, once each"
    );

    let stats = handle.stats().snapshot();
    assert_eq!((stats.proposals_ok, stats.proposals_failed), (25, 0));
    assert_eq!(stats.entries_applied, 26);
    handle.shutdown().unwrap();
}

#[tokio::test]
async fn applied_written_follows_the_write_of_each_round() {
    let engine = MemoryEngine::new();
    let state_machine = RecordingStateMachine::new(engine.clone());
    let written = state_machine.written();
    let handle =
        RaftRuntime::start(NODE, test_config(), engine.clone(), state_machine, NullTransport).unwrap();
    within("add shard", handle.add_shard(3, vec![NODE])).await.unwrap();
    let mut last = 0;
    for i in 0..5u8 {
        last = within("propose", handle.propose(3, vec![i], far_deadline())).await.unwrap();
    }
    handle.shutdown().unwrap();
    let calls = written.lock().unwrap().clone();
    assert!(!calls.is_empty());
    for (shard_id, index, readable) in &calls {
        assert_eq!(*shard_id, 3);
        assert_eq!(readable, index, "called after the batch of its entries was written");
    }
    assert!(calls.windows(2).all(|pair| pair[0].1 < pair[1].1), "once per round, in order: {calls:?}");
    assert_eq!(calls.last().unwrap().1, last, "the last applied entry was signalled");
}

#[tokio::test]
async fn proposals_to_many_shards_share_fsyncs() {
    let engine = MemoryEngine::new();
    let (handle, _) = start(test_config(), &engine);
    let shards: Vec<u64> = (1..=8).collect();
    for &shard in &shards {
        within("add shard", handle.add_shard(shard, vec![NODE])).await.unwrap();
    }
    let before = handle.stats().snapshot();

    // Every request is queued when `propose` returns, before any is awaited.
    let per_shard = 10u8;
    let mut proposals = Vec::new();
    for i in 0..per_shard {
        for &shard in &shards {
            proposals.push(handle.propose(shard, vec![i], far_deadline()));
        }
    }
    let count = proposals.len() as u64;
    for proposal in proposals {
        within("propose", proposal).await.unwrap();
    }

    let after = handle.stats().snapshot();
    let fsyncs = after.log_fsyncs - before.log_fsyncs;
    assert!(fsyncs < count, "{fsyncs} fsyncs for {count} proposals: no group commit");
    assert!(after.entries_appended - before.entries_appended >= count);
    for &shard in &shards {
        assert_eq!(stored_commands(&engine, shard).len(), usize::from(per_shard));
    }
    handle.shutdown().unwrap();
}

#[tokio::test]
async fn bad_requests_get_errors_never_silence() {
    let engine = MemoryEngine::new();
    let (handle, applies) = start(test_config(), &engine);
    within("add shard", handle.add_shard(1, vec![NODE])).await.unwrap();

    let past = Instant::now();
    let timed_out = within("propose", handle.propose(1, b"late".to_vec(), past)).await;
    assert_eq!(timed_out, Err(ProposeError::Timeout { shard_id: 1 }));
    let read = within("read", handle.read_index(1, past)).await;
    assert_eq!(read, Err(ProposeError::Timeout { shard_id: 1 }));

    let unknown = within("propose", handle.propose(99, b"x".to_vec(), far_deadline())).await;
    assert_eq!(unknown, Err(ProposeError::UnknownShard { shard_id: 99 }));
    let empty = within("propose", handle.propose(1, Vec::new(), far_deadline())).await;
    assert_eq!(empty, Err(ProposeError::EmptyCommand { shard_id: 1 }));
    assert!(matches!(
        within("status", handle.shard_status(99)).await,
        Err(RaftError::UnknownShard { shard_id: 99 })
    ));
    assert!(matches!(
        within("add shard", handle.add_shard(1, vec![NODE])).await,
        Err(RaftError::ShardExists { shard_id: 1 })
    ));
    assert!(matches!(
        within("add shard", handle.add_shard(2, vec![])).await,
        Err(RaftError::NoVoters { shard_id: 2 })
    ));

    // A proposal still goes through afterwards, and the late one never applied.
    let index = within("propose", handle.propose(1, b"ok".to_vec(), far_deadline())).await.unwrap();
    assert_eq!(index, 2);
    assert!(applies.lock().unwrap().iter().all(|(_, _, data)| data != b"late"));

    handle.shutdown().unwrap();
    handle.shutdown().unwrap();
    let after = within("propose", handle.propose(1, b"after".to_vec(), far_deadline())).await;
    assert_eq!(after, Err(ProposeError::Stopped));
    assert_eq!(within("read", handle.read_index(1, far_deadline())).await, Err(ProposeError::Stopped));
    assert!(matches!(within("status", handle.shard_status(1)).await, Err(RaftError::Stopped)));
}

#[tokio::test]
async fn read_index_of_a_single_voter_covers_every_applied_entry() {
    let engine = MemoryEngine::new();
    let (handle, _) = start(test_config(), &engine);
    within("add shard", handle.add_shard(3, vec![NODE])).await.unwrap();
    // Right after election: the read waits for the leader's first commit, then answers.
    let first = within("read", handle.read_index(3, far_deadline())).await.unwrap();
    assert!(first >= 1);
    let mut last = 0;
    for i in 0..5u8 {
        last = within("propose", handle.propose(3, vec![i], far_deadline())).await.unwrap();
    }
    let read_index = within("read", handle.read_index(3, far_deadline())).await.unwrap();
    let status = within("status", handle.shard_status(3)).await.unwrap();
    assert!(read_index >= last, "read index {read_index} below the last applied proposal {last}");
    assert!(status.applied_index >= read_index);
    assert_eq!(handle.stats().snapshot().reads_ok, 2);
    handle.shutdown().unwrap();
}

#[tokio::test]
async fn the_log_is_compacted_and_the_shard_keeps_working_across_restarts() {
    let config = RaftConfig { compact_threshold_entries: 20, compact_keep_entries: 5, ..test_config() };
    let engine = MemoryEngine::new();
    let (handle, _) = start(config.clone(), &engine);
    within("add shard", handle.add_shard(5, vec![NODE])).await.unwrap();
    let mut last = 0;
    for i in 0..60u8 {
        last = within("propose", handle.propose(5, vec![i], far_deadline())).await.unwrap();
    }
    let status = within("status", handle.shard_status(5)).await.unwrap();
    assert!(status.first_index > 30, "log not compacted: {status:?}");
    assert!(status.applied_index - status.first_index <= 20 + 5, "{status:?}");
    assert_eq!(status.last_index, last);
    handle.shutdown().unwrap();

    // Restart over the same engine: recovers the compacted log and the apply index.
    let (handle, applies) = start(config, &engine);
    within("add shard", handle.add_shard(5, vec![NODE])).await.unwrap();
    let next = within("propose", handle.propose(5, b"after restart".to_vec(), far_deadline())).await.unwrap();
    assert_eq!(next, last + 2, "the new term's empty entry, then the command");
    let status = within("status", handle.shard_status(5)).await.unwrap();
    assert_eq!((status.applied_index, status.last_index), (last + 2, last + 2));
    assert!(status.first_index > 30, "{status:?}");
    let applied: Vec<u64> = applies.lock().unwrap().iter().map(|(_, index, _)| *index).collect();
    assert_eq!(applied, vec![last + 1, last + 2], "nothing applied twice");
    assert_eq!(stored_commands(&engine, 5).len(), 61);
    handle.shutdown().unwrap();
}

#[tokio::test]
async fn an_invalid_config_is_refused_at_start() {
    let config = RaftConfig { election_ticks: 1, heartbeat_ticks: 2, ..test_config() };
    let engine = MemoryEngine::new();
    let error =
        RaftRuntime::start(NODE, config, engine.clone(), RecordingStateMachine::new(engine), NullTransport)
            .unwrap_err();
    assert!(matches!(error, RaftError::InvalidConfig { field: "election_ticks", .. }), "{error}");
}

#[tokio::test]
async fn a_failed_log_write_stops_the_runtime_and_is_reported() {
    let engine = FailingEngine::default();
    let state_machine = RecordingStateMachine::new(engine.clone());
    let handle =
        RaftRuntime::start(NODE, test_config(), engine.clone(), state_machine, NullTransport).unwrap();
    within("add shard", handle.add_shard(1, vec![NODE])).await.unwrap();
    within("propose", handle.propose(1, b"ok".to_vec(), far_deadline())).await.unwrap();

    engine.fail_writes();
    let lost = within("propose", handle.propose(1, b"lost".to_vec(), far_deadline())).await;
    assert_eq!(lost, Err(ProposeError::Stopped), "never left waiting");
    let error = handle.shutdown().unwrap_err();
    assert!(matches!(error, RaftError::Storage { shard_id: None, .. }), "{error}");
    assert!(error.to_string().contains("injected"), "{error}");
    let after = within("propose", handle.propose(1, b"after".to_vec(), far_deadline())).await;
    assert_eq!(after, Err(ProposeError::Stopped));
}
