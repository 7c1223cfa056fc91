//! [`LocalCluster`]: a real cluster of `pulsed` processes on loopback — one coordinator and N
//! storage nodes with their data directories and logs in a test directory — and the bounded
//! waits the multi-process tests share.

use std::path::Path;
use std::time::{Duration, Instant};

use pulse_proto::v1;
use pulse_proto::v1::cluster_service_client::ClusterServiceClient;
use tonic::transport::Channel;

use crate::process::{PulsedProcess, free_address};

/// Bound of every wait for a cluster (processes starting, elections, catch-up).
pub const CLUSTER_WAIT: Duration = Duration::from_secs(90);
/// Bound of one `GetClusterState` poll.
const POLL_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound of one `CheckConsistency` call.
const CONSISTENCY_TIMEOUT: Duration = Duration::from_secs(15);

/// The processes of a cluster.
pub struct LocalCluster {
    /// The coordinator (replication factor 3).
    pub coordinator: PulsedProcess,
    /// The storage nodes, in start order (not node id order).
    pub nodes: Vec<PulsedProcess>,
}

impl LocalCluster {
    /// Starts a coordinator (replication factor 3, `shards` shards) and `nodes` nodes joining
    /// it, with data and logs under `dir`.
    pub fn start(dir: &Path, nodes: usize, shards: u64) -> Self {
        let address = free_address();
        let coordinator = PulsedProcess::start(
            &address,
            args(&[
                "coordinator",
                "--listen",
                &address,
                "--data-dir",
                dir.join("coordinator").to_str().unwrap(),
                "--replication-factor",
                "3",
                "--initial-shards",
                &shards.to_string(),
            ]),
            dir.join("coordinator.log"),
        );
        let nodes = (1..=nodes).map(|i| start_node(dir, &format!("node-{i}"), &address)).collect();
        Self { coordinator, nodes }
    }

    /// Waits until every process serves, every node is UP and every shard has a leader; the
    /// cluster state then.
    pub async fn wait_ready(&mut self) -> v1::ClusterState {
        let channel = self.coordinator.wait_serving().await;
        for node in &mut self.nodes {
            node.wait_serving().await;
        }
        let nodes = self.nodes.len();
        wait_for_state(&channel, |state| {
            let up = state.nodes.iter().filter(|n| n.state == v1::NodeState::Up as i32).count();
            up == nodes && !state.shards.is_empty() && state.shards.iter().all(|s| s.leader != 0)
        })
        .await
    }

    /// Position in [`Self::nodes`] of node `node_id` of `state`.
    pub fn node_index(&self, state: &v1::ClusterState, node_id: u64) -> usize {
        let address = &state.nodes.iter().find(|n| n.node_id == node_id).unwrap().address;
        self.nodes.iter().position(|n| &n.address == address).unwrap()
    }
}

/// Starts `pulsed node` named `name` (its data directory and log under `dir`) joining
/// `coordinators` (comma-separated).
pub fn start_node(dir: &Path, name: &str, coordinators: &str) -> PulsedProcess {
    let address = free_address();
    PulsedProcess::start(
        &address,
        node_args(&address, &dir.join(name), coordinators),
        dir.join(format!("{name}.log")),
    )
}

/// The command line of `pulsed node` listening on `address`, its data in `data_dir`, joining
/// `coordinators` (comma-separated).
pub fn node_args(address: &str, data_dir: &Path, coordinators: &str) -> Vec<String> {
    args(&["node", "--listen", address, "--data-dir", data_dir.to_str().unwrap(), "--join", coordinators])
}

/// Position in `coordinators` of the current leader of the metadata group: of the "became
/// leader" lines in their logs, the one with the highest term (leadership may have moved during
/// start-up); for tests that kill the coordinator leader once.
pub fn coordinator_leader(coordinators: &[PulsedProcess]) -> usize {
    const MARK: &str = "became leader shard_id=1 term=";
    let highest_term = |log: &str| {
        log.lines()
            .filter_map(|line| line.split_once(MARK))
            .filter_map(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u64>().ok())
            .max()
    };
    coordinators
        .iter()
        .enumerate()
        .filter_map(|(position, c)| {
            highest_term(&std::fs::read_to_string(&c.log).unwrap_or_default()).map(|term| (term, position))
        })
        .max()
        .map(|(_, position)| position)
        .expect("a coordinator leads the metadata group")
}

/// A command line from string slices.
pub fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|part| (*part).to_owned()).collect()
}

/// A connected channel to `address`.
pub async fn connect(address: &str) -> Channel {
    Channel::from_shared(format!("http://{address}")).unwrap().connect().await.unwrap()
}

/// Polls `GetClusterState` on `channel` until `ready` holds, for at most [`CLUSTER_WAIT`] (the
/// cluster is other processes: there is no signal to wait on).
pub async fn wait_for_state(
    channel: &Channel,
    ready: impl Fn(&v1::ClusterState) -> bool,
) -> v1::ClusterState {
    let started = Instant::now();
    let mut client = ClusterServiceClient::new(channel.clone());
    let mut last = None;
    for _attempt in 0..2_000 {
        // One poll may hang on a process cut off by a partition: bound it too.
        let mut request = tonic::Request::new(v1::GetClusterStateRequest {});
        request.set_timeout(POLL_TIMEOUT);
        if let Ok(Ok(state)) = tokio::time::timeout(POLL_TIMEOUT, client.get_cluster_state(request)).await {
            let state = state.into_inner();
            if ready(&state) {
                return state;
            }
            last = Some(state);
        }
        assert!(started.elapsed() < CLUSTER_WAIT, "cluster not ready after {CLUSTER_WAIT:?}: {last:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cluster not ready after 2000 polls: {last:?}");
}

/// Polls `CheckConsistency` on `channel` until every one of `shards` shards has `replicas`
/// replica hashes at one raft index and every shard's hashes are equal, for at most
/// [`CLUSTER_WAIT`]; returns the number of checks it took. A check can fail on its own (a
/// follower still catching up misses the check's deadline, a concurrent check aborts it), so
/// one answer proves nothing either way.
pub async fn wait_consistent(channel: &Channel, shards: usize, replicas: usize) -> usize {
    let started = Instant::now();
    let mut client = ClusterServiceClient::new(channel.clone());
    let mut last = String::from("no answer yet");
    for attempt in 1..=300 {
        let mut request = tonic::Request::new(v1::CheckConsistencyRequest { shard_ids: vec![] });
        request.set_timeout(CONSISTENCY_TIMEOUT);
        let answer = tokio::time::timeout(
            CONSISTENCY_TIMEOUT + Duration::from_secs(1),
            client.check_consistency(request),
        )
        .await;
        match answer {
            Ok(Ok(answer)) => {
                let answer = answer.into_inner();
                let complete = answer.shards.len() == shards
                    && answer.shards.iter().all(|shard| {
                        shard.hashes.len() == replicas
                            && shard.hashes.iter().all(|h| h.applied_index == shard.hashes[0].applied_index)
                    });
                if answer.consistent && complete {
                    return attempt;
                }
                last = format!("{answer:?}");
            }
            Ok(Err(status)) => last = format!("{status:?}"),
            Err(_) => last = "no answer inside the deadline".into(),
        }
        assert!(started.elapsed() < CLUSTER_WAIT, "replicas not consistent after {CLUSTER_WAIT:?}: {last}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("replicas not consistent after 300 checks: {last}");
}
