//! The node's shard state machines driven by the real raft runtime on RocksDB: proposals are
//! applied once, routed by hash, and survive a restart without being applied twice.

use std::time::{Duration, Instant};

use pulse_node::{ApplyOutput, NodeStateMachine, ShardCommand, ShardConfig, ShardRange};
use pulse_raft::{NullTransport, RaftConfig, RaftRuntime, RuntimeHandle};
use pulse_scoring::{Event, EventKind};
use pulse_storage::{RocksEngine, customer_hash};

const NODE_ID: u64 = 1;
/// 2026-01-05T00:00:00Z.
const DAY0: i64 = 1_767_571_200_000;

fn shards() -> Vec<ShardConfig> {
    ShardRange::split_evenly(4)
        .into_iter()
        .enumerate()
        .map(|(i, range)| ShardConfig { shard_id: i as u64 + 1, range })
        .collect()
}

fn shard_of(customer_id: &str) -> u64 {
    let hash = customer_hash(customer_id);
    shards().into_iter().find(|s| s.range.contains(hash)).map(|s| s.shard_id).unwrap()
}

async fn start(engine: &RocksEngine) -> RuntimeHandle<ApplyOutput> {
    let mut machine = NodeStateMachine::new(engine.clone());
    for shard in shards() {
        machine.add_shard(shard).unwrap();
    }
    let runtime =
        RaftRuntime::start(NODE_ID, RaftConfig::default(), engine.clone(), machine, NullTransport).unwrap();
    for shard in shards() {
        runtime.add_shard(shard.shard_id, vec![NODE_ID]).await.unwrap();
    }
    runtime
}

async fn ingest(runtime: &RuntimeHandle<ApplyOutput>, customer: &str, ids: &[&str]) -> Vec<bool> {
    let events = ids
        .iter()
        .map(|id| Event {
            customer_id: customer.into(),
            event_id: (*id).into(),
            timestamp_ms: DAY0,
            kind: EventKind::Purchase,
            category: None,
            amount: 10.0,
            channel: None,
        })
        .collect();
    let command = ShardCommand::Ingest { arrival_ms: DAY0 + 1000, events };
    let deadline = Instant::now() + Duration::from_secs(10);
    let output = tokio::time::timeout(
        Duration::from_secs(10),
        runtime.propose(shard_of(customer), command.encode(), deadline),
    )
    .await
    .expect("proposal answered in time")
    .expect("proposal applied");
    match output {
        ApplyOutput::Ingest { applied } => applied,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn proposals_apply_once_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let engine = RocksEngine::open(dir.path()).unwrap();
    let customers = ["alice", "bob", "carol", "dave", "erin", "frank"];
    {
        let runtime = start(&engine).await;
        for customer in customers {
            assert_eq!(ingest(&runtime, customer, &["e1", "e2"]).await, [true, true]);
        }
        assert_eq!(ingest(&runtime, "alice", &["e2", "e3"]).await, [false, true]);
        runtime.shutdown().unwrap();
    }
    drop(engine);
    let engine = RocksEngine::open(dir.path()).unwrap();
    let runtime = start(&engine).await;
    // Every event id is remembered across the restart, and nothing was applied twice.
    for customer in customers {
        assert_eq!(ingest(&runtime, customer, &["e1", "e2"]).await, [false, false], "{customer}");
    }
    let mut machine = NodeStateMachine::new(engine.clone());
    for shard in shards() {
        machine.add_shard(shard).unwrap();
    }
    let alice = machine.shard(shard_of("alice")).unwrap().customer("alice").unwrap().unwrap();
    assert_eq!(alice.state.events, 3);
    assert_eq!(alice.state.purchase_count, 3);
    runtime.shutdown().unwrap();
}
