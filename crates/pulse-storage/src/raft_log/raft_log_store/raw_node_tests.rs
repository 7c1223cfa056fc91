//! A real `raft::RawNode` over [`RaftLogStore`], driven through Ready rounds in DESIGN.md's
//! order, on both engines: the proof that the storage works with raft-rs, not just with our
//! reading of its documentation.

use raft::eraftpb::{ConfState, Entry};
use raft::{Config, RawNode, StateRole, Storage as _};

use super::*;
use crate::engine::WriteOptions;
use crate::test_harness::{EngineHarness, engine_test_suite};

engine_test_suite!(single_voter_elects_commits_compacts_and_restarts);

const SHARD: u64 = 3;
const NODE_ID: u64 = 1;

/// The production-minded settings of DESIGN.md ("raft 0.7 defaults are not production").
fn config(applied: u64) -> Config {
    let config = Config {
        id: NODE_ID,
        election_tick: 10,
        heartbeat_tick: 3,
        pre_vote: true,
        check_quorum: true,
        max_size_per_msg: 1 << 20,
        max_inflight_msgs: 256,
        max_uncommitted_size: 16 << 20,
        applied,
        ..Config::default()
    };
    config.validate().unwrap();
    config
}

fn write_and_persist<E: StorageEngine>(node: &mut RawNode<RaftLogStore<E>>, batch: &WriteBatch) {
    node.store().engine().write(batch, WriteOptions::SYNC).unwrap();
    node.mut_store().on_persisted();
}

/// Handles every pending Ready in DESIGN.md's order and returns the entries applied.
fn run_ready_rounds<E: StorageEngine>(node: &mut RawNode<RaftLogStore<E>>) -> Vec<Entry> {
    let mut applied = Vec::new();
    while node.has_ready() {
        let mut ready = node.ready();
        // 1. Send messages: a single voter has no peer to send to.
        assert!(ready.messages().is_empty());
        // 2. Install a snapshot's metadata, in the round's batch.
        let mut batch = WriteBatch::new();
        if !ready.snapshot().is_empty() {
            node.mut_store().apply_snapshot(&mut batch, ready.snapshot().get_metadata()).unwrap();
        }
        // 3. Apply committed entries.
        applied.extend(ready.take_committed_entries());
        // 4. Entries and hard state in one atomic write, fsynced; raft sees them afterwards.
        node.mut_store().append(&mut batch, ready.entries()).unwrap();
        if let Some(hard_state) = ready.hs() {
            node.mut_store().set_hard_state(&mut batch, hard_state).unwrap();
        }
        write_and_persist(node, &batch);
        // 5. Persisted messages (votes, append responses) only now: none for a single voter.
        assert!(ready.take_persisted_messages().is_empty());
        // 6. Advance, then the LightReady: commit index, messages, committed entries.
        let mut light = node.advance(ready);
        if let Some(commit) = light.commit_index() {
            let mut batch = WriteBatch::new();
            node.mut_store().set_commit_index(&mut batch, commit).unwrap();
            write_and_persist(node, &batch);
        }
        assert!(light.messages().is_empty());
        applied.extend(light.take_committed_entries());
        node.advance_apply();
    }
    applied
}

fn single_voter_elects_commits_compacts_and_restarts<H: EngineHarness>(mut harness: H) {
    let logger = raft::default_logger();
    let applied_index = {
        let mut store = RaftLogStore::open(harness.engine().clone(), SHARD).unwrap();
        let mut batch = WriteBatch::new();
        store.set_conf_state(&mut batch, &ConfState::from((vec![NODE_ID], vec![]))).unwrap();
        store.engine().write(&batch, WriteOptions::SYNC).unwrap();
        store.on_persisted();

        let mut node = RawNode::new(&config(0), store, &logger).unwrap();
        node.campaign().unwrap();
        assert_eq!(node.raft.state, StateRole::Leader, "a single voter wins its pre-vote and vote at once");
        let applied = run_ready_rounds(&mut node);
        assert_eq!(
            applied.iter().map(|entry| entry.index).collect::<Vec<_>>(),
            vec![1],
            "the leader's empty entry"
        );

        node.propose(vec![], b"first proposal".to_vec()).unwrap();
        let applied = run_ready_rounds(&mut node);
        assert_eq!(applied.len(), 1);
        assert_eq!((applied[0].index, &applied[0].data[..]), (2, &b"first proposal"[..]));

        let store = node.store();
        assert_eq!(store.last_index().unwrap(), 2);
        assert_eq!(store.hard_state().commit, 2);
        assert_eq!((store.hard_state().term, store.hard_state().vote), (1, NODE_ID));
        assert_eq!(
            &store.entries(2, 3, None, GetEntriesContext::empty(false)).unwrap()[0].data[..],
            b"first proposal"
        );

        // Log GC up to the applied index; raft keeps working over the compacted log.
        let mut batch = WriteBatch::new();
        node.mut_store().compact(&mut batch, 2).unwrap();
        write_and_persist(&mut node, &batch);
        node.propose(vec![], b"after compaction".to_vec()).unwrap();
        let applied = run_ready_rounds(&mut node);
        assert_eq!(&applied[0].data[..], b"after compaction");
        applied[0].index
    };

    // Restart: a new store over the reopened engine, `applied` from the (here: remembered)
    // persisted apply index.
    harness.reopen();
    let store = RaftLogStore::open(harness.engine().clone(), SHARD).unwrap();
    assert_eq!((store.first_index().unwrap(), store.last_index().unwrap()), (3, 3));
    assert_eq!(store.term(2).unwrap(), 1);
    let mut node = RawNode::new(&config(applied_index), store, &logger).unwrap();
    assert_eq!(node.raft.term, 1);
    assert_eq!(node.raft.raft_log.committed, 3);
    assert_eq!(node.raft.state, StateRole::Follower);
    node.campaign().unwrap();
    assert_eq!(node.raft.state, StateRole::Leader);
    assert_eq!(node.raft.term, 2);
    node.propose(vec![], b"after restart".to_vec()).unwrap();
    let applied = run_ready_rounds(&mut node);
    let applied: Vec<(u64, &[u8])> = applied.iter().map(|entry| (entry.index, &entry.data[..])).collect();
    assert_eq!(applied, vec![(4, &b""[..]), (5, &b"after restart"[..])]);
    assert_eq!(node.store().hard_state().commit, 5);
}
