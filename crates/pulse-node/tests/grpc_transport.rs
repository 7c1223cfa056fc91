//! Real raft runtimes talking over loopback gRPC: `GrpcTransport` out, `RaftTransportService`
//! in. Replication of two shards on three nodes, a new election after a node stops, re-routing
//! after a peer's address changes, the receiver dropping misaddressed batches, a new learner
//! catching up by a snapshot streamed over `SendSnapshot`, and corrupt snapshot streams refused.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use protobuf::Message as _;
use pulse_node::{GrpcTransport, GrpcTransportConfig, RaftTransportService};
use pulse_proto::internal::v1::raft_transport_client::RaftTransportClient;
use pulse_proto::internal::v1::snapshot_chunk::Chunk;
use pulse_proto::internal::v1::{
    RaftEnvelope, RaftMessageBatch, SnapshotChunk, SnapshotHeader, SnapshotTrailer,
};
use pulse_raft::{
    CommittedEntry, Membership, MembershipChange, RaftConfig, RaftRuntime, RuntimeHandle, ShardRole,
    SnapshotData, StateMachine, StateMachineError,
};
use pulse_storage::{ColumnFamily, MemoryEngine, StorageEngine, WriteBatch};
use raft::eraftpb::{Message, MessageType};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

const NODES: [u64; 3] = [1, 2, 3];
const SHARDS: [u64; 2] = [1, 2];

/// Stores each command under `shard · index` in `state` and the apply index under `shard` in
/// `meta`, in the runtime's batch; answers the index it applied at.
struct KeyValueMachine {
    engine: MemoryEngine,
}

impl StateMachine for KeyValueMachine {
    type Output = u64;

    fn applied_index(&mut self, shard_id: u64) -> Result<u64, StateMachineError> {
        let stored = self.engine.get(ColumnFamily::Meta, &shard_id.to_be_bytes())?;
        Ok(stored.map_or(0, |bytes| u64::from_be_bytes(bytes.try_into().unwrap())))
    }

    fn apply(
        &mut self,
        shard_id: u64,
        entry: CommittedEntry<'_>,
        batch: &mut WriteBatch,
    ) -> Result<u64, StateMachineError> {
        batch.put(ColumnFamily::State, &data_key(shard_id, entry.index), entry.data);
        self.record_applied(shard_id, entry.index, entry.term, batch)?;
        Ok(entry.index)
    }

    fn record_applied(
        &mut self,
        shard_id: u64,
        index: u64,
        _term: u64,
        batch: &mut WriteBatch,
    ) -> Result<(), StateMachineError> {
        batch.put(ColumnFamily::Meta, &shard_id.to_be_bytes(), &index.to_be_bytes());
        Ok(())
    }

    fn produces_snapshots(&self) -> bool {
        true
    }

    fn remove_shard(&mut self, shard_id: u64, batch: &mut WriteBatch) -> Result<(), StateMachineError> {
        batch.delete_range(ColumnFamily::State, &data_key(shard_id, 0), &data_key(shard_id + 1, 0));
        batch.delete(ColumnFamily::Meta, &shard_id.to_be_bytes());
        Ok(())
    }

    /// The shard's commands as `index (8) · len (4) · data` records, in index order.
    fn snapshot_data(&mut self, shard_id: u64) -> Result<SnapshotData, StateMachineError> {
        let (start, end) = (data_key(shard_id, 0), data_key(shard_id + 1, 0));
        let mut data = Vec::new();
        for (key, value) in self.engine.scan_collect(ColumnFamily::State, &start, Some(&end), usize::MAX)? {
            data.extend_from_slice(&key[8..16]);
            data.extend_from_slice(&(value.len() as u32).to_be_bytes());
            data.extend_from_slice(&value);
        }
        Ok(SnapshotData { applied_index: self.applied_index(shard_id)?, data })
    }

    fn install_snapshot(
        &mut self,
        shard_id: u64,
        index: u64,
        _term: u64,
        mut data: &[u8],
        batch: &mut WriteBatch,
    ) -> Result<(), StateMachineError> {
        batch.delete_range(ColumnFamily::State, &data_key(shard_id, 0), &data_key(shard_id + 1, 0));
        while data.len() >= 12 {
            let command_index = u64::from_be_bytes(data[..8].try_into().unwrap());
            let len = u32::from_be_bytes(data[8..12].try_into().unwrap()) as usize;
            batch.put(ColumnFamily::State, &data_key(shard_id, command_index), &data[12..12 + len]);
            data = &data[12 + len..];
        }
        batch.put(ColumnFamily::Meta, &shard_id.to_be_bytes(), &index.to_be_bytes());
        Ok(())
    }
}

fn data_key(shard_id: u64, index: u64) -> Vec<u8> {
    [shard_id.to_be_bytes(), index.to_be_bytes()].concat()
}

/// Every command stored for `shard_id`, in index order.
fn stored_commands(engine: &MemoryEngine, shard_id: u64) -> Vec<Vec<u8>> {
    let (start, end) = (data_key(shard_id, 0), data_key(shard_id + 1, 0));
    let stored = engine.scan_collect(ColumnFamily::State, &start, Some(&end), usize::MAX).unwrap();
    stored.into_iter().map(|(_, value)| value).collect()
}

/// Fast ticks; an election timeout of 1–2 s, so that elections happen when a test campaigns or
/// a leader is gone, not by accident on a slow machine.
fn test_config() -> RaftConfig {
    RaftConfig { tick_interval_ms: 10, election_ticks: 100, heartbeat_ticks: 3, ..RaftConfig::default() }
}

/// Quick reconnections, so that a test does not wait out a long backoff.
fn transport_config() -> GrpcTransportConfig {
    GrpcTransportConfig {
        reconnect_backoff_initial_ms: 20,
        reconnect_backoff_max_ms: 200,
        ..GrpcTransportConfig::default()
    }
}

fn far_deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// Awaits `future`, failing the test after 10 s instead of hanging.
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer in 10 s"))
}

/// Polls `probe` every 20 ms until it returns `Some`, for at most 15 s.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    for _ in 0..750 {
        if let Some(value) = probe().await {
            return value;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: not reached in 15 s");
}

/// A running `RaftTransportService` on a loopback port.
struct RunningServer {
    address: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl RunningServer {
    async fn start(node_id: u64, runtime: &RuntimeHandle<u64>) -> RunningServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        let service = RaftTransportService::new(node_id, runtime.clone()).with_shutdown(stopped.clone());
        let mut signal = stopped;
        let task =
            tokio::spawn(Server::builder().add_service(service.into_server()).serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                async move {
                    let _ = signal.wait_for(|stopped| *stopped).await;
                },
            ));
        RunningServer { address, stop, task }
    }

    /// Graceful stop: the service ends its streams, so the server's shutdown completes.
    async fn stop(self) {
        self.stop.send_replace(true);
        within("server stops", self.task).await.unwrap().unwrap();
    }
}

/// One node: runtime, engine, transport (a clone of the runtime's), server.
struct TestNode {
    node_id: u64,
    runtime: RuntimeHandle<u64>,
    engine: MemoryEngine,
    transport: GrpcTransport,
    server: Option<RunningServer>,
}

impl TestNode {
    async fn start(node_id: u64) -> TestNode {
        let engine = MemoryEngine::new();
        let transport =
            GrpcTransport::new(node_id, tokio::runtime::Handle::current(), transport_config()).unwrap();
        let machine = KeyValueMachine { engine: engine.clone() };
        let runtime =
            RaftRuntime::start(node_id, test_config(), engine.clone(), machine, transport.clone()).unwrap();
        transport.report_snapshots_to(&runtime);
        let server = RunningServer::start(node_id, &runtime).await;
        TestNode { node_id, runtime, engine, transport, server: Some(server) }
    }

    fn address(&self) -> String {
        self.server.as_ref().expect("server running").address.to_string()
    }

    async fn status(&self, shard_id: u64) -> pulse_raft::ShardStatus {
        within("shard status", self.runtime.shard_status(shard_id)).await.unwrap()
    }

    /// Stops everything of the node: server, transport tasks, runtime.
    async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        self.transport.shutdown();
        let runtime = self.runtime.clone();
        within("runtime stops", tokio::task::spawn_blocking(move || runtime.shutdown()))
            .await
            .unwrap()
            .unwrap();
    }
}

struct Cluster {
    nodes: Vec<TestNode>,
}

impl Cluster {
    /// Three nodes that know each other's addresses, hosting SHARDS, node 1 elected for each.
    async fn start() -> Cluster {
        let mut nodes = Vec::new();
        for node_id in NODES {
            nodes.push(TestNode::start(node_id).await);
        }
        for node in &nodes {
            for peer in &nodes {
                if peer.node_id != node.node_id {
                    node.transport.set_peer_address(peer.node_id, &peer.address()).unwrap();
                }
            }
        }
        let cluster = Cluster { nodes };
        for node in &cluster.nodes {
            for shard_id in SHARDS {
                within("add shard", node.runtime.add_shard(shard_id, NODES.to_vec())).await.unwrap();
            }
        }
        for shard_id in SHARDS {
            within("campaign", cluster.node(1).runtime.campaign(shard_id)).await.unwrap();
            cluster.wait_for_leader(shard_id, &[1]).await;
        }
        cluster
    }

    fn node(&self, node_id: u64) -> &TestNode {
        &self.nodes[(node_id - 1) as usize]
    }

    fn node_mut(&mut self, node_id: u64) -> &mut TestNode {
        &mut self.nodes[(node_id - 1) as usize]
    }

    /// Waits until one of `candidates` leads `shard_id` and every other candidate follows it.
    async fn wait_for_leader(&self, shard_id: u64, candidates: &[u64]) -> u64 {
        eventually("a leader is elected", || async {
            let mut leader = None;
            for &node_id in candidates {
                let status = self.node(node_id).status(shard_id).await;
                if status.role == ShardRole::Leader {
                    leader = Some(node_id);
                }
            }
            let leader = leader?;
            for &node_id in candidates {
                let status = self.node(node_id).status(shard_id).await;
                if status.leader_id != Some(leader) {
                    return None;
                }
            }
            Some(leader)
        })
        .await
    }

    /// Waits until every node of `node_ids` applied `shard_id` up to `index`.
    async fn wait_applied(&self, shard_id: u64, index: u64, node_ids: &[u64]) {
        for &node_id in node_ids {
            eventually("replicas apply", || async {
                (self.node(node_id).status(shard_id).await.applied_index >= index).then_some(())
            })
            .await;
        }
    }

    async fn propose(&self, node_id: u64, shard_id: u64, data: &[u8]) -> u64 {
        let proposal = self.node(node_id).runtime.propose(shard_id, data.to_vec(), far_deadline());
        within("propose", proposal).await.unwrap()
    }

    async fn stop(&mut self) {
        for node in &mut self.nodes {
            node.stop().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_replicate_to_three_nodes_over_grpc() {
    let mut cluster = Cluster::start().await;

    let mut last = [0; 2];
    for i in 0..20u8 {
        for (slot, shard_id) in SHARDS.into_iter().enumerate() {
            last[slot] = cluster.propose(1, shard_id, &[shard_id as u8, i]).await;
        }
    }
    for (slot, shard_id) in SHARDS.into_iter().enumerate() {
        cluster.wait_applied(shard_id, last[slot], &NODES).await;
        let expected: Vec<Vec<u8>> = (0..20u8).map(|i| vec![shard_id as u8, i]).collect();
        for node_id in NODES {
            assert_eq!(stored_commands(&cluster.node(node_id).engine, shard_id), expected, "node {node_id}");
            let status = cluster.node(node_id).status(shard_id).await;
            assert_eq!(status.leader_id, Some(1), "node {node_id} shard {shard_id}");
        }
    }
    for node_id in NODES {
        assert_eq!(cluster.node(node_id).transport.dropped_messages(), 0, "node {node_id}");
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_takes_over_and_a_moved_peer_is_reached_at_its_new_address() {
    const SHARD: u64 = 1;
    let mut cluster = Cluster::start().await;
    let index = cluster.propose(1, SHARD, b"before").await;
    cluster.wait_applied(SHARD, index, &NODES).await;

    // Node 1 stops: nodes 2 and 3 elect one of them, which commits with the other.
    cluster.node_mut(1).stop().await;
    let leader = cluster.wait_for_leader(SHARD, &[2, 3]).await;
    let index = cluster.propose(leader, SHARD, b"after node 1 stopped").await;
    cluster.wait_applied(SHARD, index, &[2, 3]).await;

    // Node 2's server moves to a new port. With node 1 gone, nothing commits until node 3's
    // messages reach node 2 again, whichever of them leads.
    let old_server = cluster.node_mut(2).server.take().unwrap();
    let old_address = old_server.address;
    old_server.stop().await;
    let moved = RunningServer::start(2, &cluster.node(2).runtime).await;
    assert_ne!(moved.address, old_address);
    let old = RaftTransportClient::connect(format!("http://{old_address}")).await;
    assert!(old.is_err(), "the old address still answers");
    cluster.node(3).transport.set_peer_address(2, &moved.address.to_string()).unwrap();
    cluster.node_mut(2).server = Some(moved);

    let leader = cluster.wait_for_leader(SHARD, &[2, 3]).await;
    let index = cluster.propose(leader, SHARD, b"after node 2 moved").await;
    cluster.wait_applied(SHARD, index, &[2, 3]).await;
    let expected: Vec<Vec<u8>> = [&b"before"[..], b"after node 1 stopped", b"after node 2 moved"]
        .iter()
        .map(|data| data.to_vec())
        .collect();
    for node_id in [2, 3] {
        assert_eq!(stored_commands(&cluster.node(node_id).engine, SHARD), expected, "node {node_id}");
    }
    cluster.stop().await;
}

/// A heartbeat of shard 1 from node 2's leader at `term`, for node 1, on the wire.
fn heartbeat(term: u64) -> RaftEnvelope {
    let mut message = Message::default();
    message.set_msg_type(MessageType::MsgHeartbeat);
    message.set_from(2);
    message.set_to(1);
    message.set_term(term);
    RaftEnvelope { shard_id: 1, message: message.write_to_bytes().unwrap(), conf_ver: 0, version: 0 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_for_another_node_is_dropped_and_the_stream_goes_on() {
    let mut node = TestNode::start(1).await;
    within("add shard", node.runtime.add_shard(1, vec![1, 2])).await.unwrap();
    let mut client = RaftTransportClient::connect(format!("http://{}", node.address())).await.unwrap();

    // On one stream, in order: a heartbeat of term 90 addressed to node 9 (must be dropped),
    // then one for node 1 with a garbage envelope (dropped) before a heartbeat of term 50. Node
    // 1 ends in term 50 only if the first batch never reached raft: term 90 would have made
    // the term-50 heartbeat stale.
    let misaddressed = RaftMessageBatch { from_node_id: 2, to_node_id: 9, messages: vec![heartbeat(90)] };
    let garbage = RaftEnvelope { shard_id: 1, message: vec![0xFF; 8], conf_ver: 0, version: 0 };
    let addressed =
        RaftMessageBatch { from_node_id: 2, to_node_id: 1, messages: vec![garbage, heartbeat(50)] };
    let response = within("send", client.send(tokio_stream::iter(vec![misaddressed, addressed]))).await;
    response.unwrap();

    let status = eventually("node 1 follows node 2", || async {
        let status = node.status(1).await;
        (status.leader_id == Some(2)).then_some(status)
    })
    .await;
    assert_eq!((status.role, status.term), (ShardRole::Follower, 50));

    let snapshot =
        within("send snapshot", client.send_snapshot(tokio_stream::iter(Vec::<SnapshotChunk>::new()))).await;
    assert_eq!(snapshot.unwrap_err().code(), tonic::Code::InvalidArgument, "no header");

    // A snapshot stream whose data does not match its trailer is refused, not stepped.
    let mut message = Message::default();
    message.set_msg_type(MessageType::MsgSnapshot);
    message.set_from(2);
    message.set_to(1);
    message.set_term(60);
    message.mut_snapshot().mut_metadata().index = 10;
    let header = SnapshotHeader {
        from_node_id: 2,
        to_node_id: 1,
        shard_id: 1,
        message: message.write_to_bytes().unwrap(),
        total_bytes: 4,
    };
    let chunk = |chunk| SnapshotChunk { chunk: Some(chunk) };
    let corrupt = vec![
        chunk(Chunk::Header(header.clone())),
        chunk(Chunk::Data(b"data".to_vec())),
        chunk(Chunk::Trailer(SnapshotTrailer { total_bytes: 4, checksum: 12345 })),
    ];
    let refused = within("send snapshot", client.send_snapshot(tokio_stream::iter(corrupt))).await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::DataLoss);
    let misaddressed = vec![chunk(Chunk::Header(SnapshotHeader { to_node_id: 9, ..header }))];
    let refused = within("send snapshot", client.send_snapshot(tokio_stream::iter(misaddressed))).await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::FailedPrecondition);
    let status = node.status(1).await;
    assert_eq!(status.term, 50, "nothing was stepped");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_for_unknown_or_removed_peers_are_dropped_and_counted() {
    let transport = GrpcTransport::new(1, tokio::runtime::Handle::current(), transport_config()).unwrap();
    assert!(transport.set_peer_address(2, "not an address").is_err());
    assert!(transport.set_peer_address(2, "127.0.0.1").is_err(), "no port");

    let mut message = Message::default();
    message.set_msg_type(MessageType::MsgHeartbeat);
    message.set_from(1);
    message.set_to(2);
    let shard_message = pulse_raft::ShardMessage { shard_id: 1, message };
    pulse_raft::Transport::send(&transport, vec![shard_message.clone()]);
    assert_eq!(transport.dropped_messages(), 1);

    let mut snapshot = shard_message.clone();
    snapshot.message.set_msg_type(MessageType::MsgSnapshot);
    transport.set_peer_address(2, "127.0.0.1:1").unwrap();
    // A snapshot goes out of band; nobody listens there, so it fails and is counted.
    pulse_raft::Transport::send(&transport, vec![snapshot]);
    eventually("the snapshot send fails", || async { (transport.dropped_messages() == 2).then_some(()) })
        .await;

    transport.shutdown();
    pulse_raft::Transport::send(&transport, vec![shard_message.clone()]);
    assert_eq!(transport.dropped_messages(), 3);

    // A queue of one for a peer nobody listens to: of ten messages sent at once, at most two
    // are taken (one queued, one by the task trying to connect), the others are dropped.
    let config = GrpcTransportConfig { queue_capacity: 1, ..transport_config() };
    let small = GrpcTransport::new(1, tokio::runtime::Handle::current(), config).unwrap();
    small.set_peer_address(2, "127.0.0.1:1").unwrap();
    pulse_raft::Transport::send(&small, vec![shard_message; 10]);
    assert!(small.dropped_messages() >= 8, "{}", small.dropped_messages());
    drop(small);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_learner_catches_up_by_a_snapshot_streamed_over_grpc() {
    let mut cluster = Cluster::start().await;
    let shard_id = SHARDS[0];
    let mut last = 0;
    for i in 0..30u8 {
        last = cluster.propose(1, shard_id, &[i; 100]).await;
    }

    // Node 4 joins empty; everyone learns its address.
    let newcomer = TestNode::start(4).await;
    for node in &cluster.nodes {
        node.transport.set_peer_address(4, &newcomer.address()).unwrap();
        newcomer.transport.set_peer_address(node.node_id, &node.address()).unwrap();
    }
    within("join", newcomer.runtime.join_shard(shard_id)).await.unwrap();
    cluster.nodes.push(newcomer);

    let change =
        cluster.node(1).runtime.change_membership(shard_id, MembershipChange::AddLearner(4), far_deadline());
    let membership = within("add learner", change).await.unwrap();
    assert_eq!(membership, Membership { voters: NODES.to_vec(), learners: vec![4] });
    cluster.wait_applied(shard_id, last, &[4]).await;
    let leader_status = cluster.node(1).status(shard_id).await;
    assert!(leader_status.first_index > 1, "the leader compacted for the newcomer: {leader_status:?}");
    assert_eq!(
        stored_commands(&cluster.node(4).engine, shard_id),
        stored_commands(&cluster.node(1).engine, shard_id)
    );

    // And it follows the log from there.
    let next = cluster.propose(1, shard_id, b"after the snapshot").await;
    cluster.wait_applied(shard_id, next, &[4]).await;
    assert_eq!(
        stored_commands(&cluster.node(4).engine, shard_id).last().map(Vec::as_slice),
        Some(&b"after the snapshot"[..])
    );
    cluster.stop().await;
}
