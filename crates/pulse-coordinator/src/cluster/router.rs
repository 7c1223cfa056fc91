//! [`Router`]: the gateway's route table (which node leads which shard, where nodes are) and the
//! retry loop that finds a shard's leader inside a request's deadline.
//!
//! The table is the coordinator's [`v1::ClusterState`], refreshed by every heartbeat answer (on
//! storage nodes) or from the metadata (on coordinators), and corrected by what failed calls
//! say: a replica that is not the leader names the leader it knows in the
//! [`LEADER_HINT_HEADER`] trailer. Until the deadline, a failed attempt moves on to the hinted
//! leader, else to the next replica, with a short capped backoff: NotLeader, epoch changes and
//! elections never reach the client, only the deadline does (`UNAVAILABLE`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use pulse_proto::v1;
use pulse_storage::customer_hash;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tracing::debug;

/// Request metadata of a call one gateway forwards to another: the comma-separated shard ids
/// the receiver must serve from its own replicas (it never forwards such a call again).
pub const SHARDS_HEADER: &str = "x-pulse-shards";
/// Response metadata naming the node id of the leader a non-leader replica knows.
pub const LEADER_HINT_HEADER: &str = "x-pulse-leader";

/// First backoff after a failed attempt; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(200);
/// Longest one attempt may take before the next replica is tried: a leader cut off from its
/// majority neither answers nor fails (its proposals never commit, its connection looks alive),
/// and a new leader is elected within one to two election timeouts (1–2 s by default).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where an attempt goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// This process hosts a replica of the shard: serve it in-process.
    Local,
    /// Another process: call it on this channel.
    Remote(Channel),
}

/// The route table and the channels to other processes.
#[derive(Debug)]
pub struct Router {
    /// This process's node id if it is a storage node.
    self_node: Option<u64>,
    routes: RwLock<Arc<v1::ClusterState>>,
    channels: Mutex<HashMap<String, Channel>>,
    /// Bumped by every table update (see [`Router::wait_for_shards`]).
    updates: tokio::sync::watch::Sender<u64>,
}

impl Router {
    /// A router with an empty table; `self_node` is this process's node id, if a storage node.
    pub fn new(self_node: Option<u64>) -> Self {
        Self {
            self_node,
            routes: RwLock::default(),
            channels: Mutex::default(),
            updates: tokio::sync::watch::channel(0).0,
        }
    }

    /// Replaces the table (shards must be ordered by `start_hash`).
    pub fn update(&self, mut state: v1::ClusterState) {
        state.shards.sort_by_key(|shard| shard.start_hash);
        *self.routes.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(state);
        self.updates.send_modify(|version| *version += 1);
    }

    /// Waits until the table has shards (a process that just started has not heard from the
    /// coordinator yet) or `deadline` passes; whether it has.
    pub async fn wait_for_shards(&self, deadline: Instant) -> bool {
        let mut updates = self.updates.subscribe();
        loop {
            if !self.state().shards.is_empty() {
                return true;
            }
            match tokio::time::timeout_at(deadline, updates.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return !self.state().shards.is_empty(),
            }
        }
    }

    /// The current table.
    pub fn state(&self) -> Arc<v1::ClusterState> {
        self.routes.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Every shard, ordered by hash range; empty until the cluster has created them.
    pub fn shards(&self) -> Vec<v1::ShardInfo> {
        self.state().shards.clone()
    }

    /// The shard owning `customer_id`, if shards exist.
    pub fn shard_of(&self, customer_id: &str) -> Option<v1::ShardInfo> {
        let hash = customer_hash(customer_id);
        let state = self.state();
        let position = state.shards.partition_point(|shard| shard.start_hash <= hash);
        position.checked_sub(1).map(|p| state.shards[p].clone()).filter(|s| hash <= s.end_hash)
    }

    /// Records that `node_id` leads `shard_id` (from a hint), until the next table update.
    pub fn note_leader(&self, shard_id: u64, node_id: u64) {
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        if routes.shards.iter().any(|s| s.shard_id == shard_id && s.leader != node_id) {
            let table = Arc::make_mut(&mut routes);
            if let Some(shard) = table.shards.iter_mut().find(|s| s.shard_id == shard_id) {
                shard.leader = node_id;
            }
        }
    }

    /// Where node `node_id` is reached: in-process for this node, else a (lazily connecting)
    /// channel to its address; `None` if the node is unknown.
    pub fn target(&self, node_id: u64) -> Option<Target> {
        if self.self_node == Some(node_id) {
            return Some(Target::Local);
        }
        let state = self.state();
        let address = state.nodes.iter().find(|node| node.node_id == node_id)?.address.clone();
        Some(Target::Remote(self.channel(&address)))
    }

    /// A channel to `address` (`HOST:PORT`), shared by every call to it.
    pub fn channel(&self, address: &str) -> Channel {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        channels
            .entry(address.to_owned())
            .or_insert_with(|| {
                Endpoint::from_shared(format!("http://{address}"))
                    .expect("HOST:PORT makes a valid URI")
                    .tcp_nodelay(true)
                    .connect_timeout(Duration::from_secs(1))
                    // Notice a dead or cut-off peer within seconds, not after a request deadline.
                    .http2_keep_alive_interval(Duration::from_secs(2))
                    .keep_alive_timeout(Duration::from_secs(1))
                    .keep_alive_while_idle(true)
                    .connect_lazy()
            })
            .clone()
    }

    /// Runs `attempt` against the leader of `shard_id` until it succeeds, fails for good, or
    /// `deadline` passes. An attempt that fails with `UNAVAILABLE` (not leader, no leader yet,
    /// node unreachable) is retried on the hinted leader, else on the next replica.
    /// Each attempt gets at most [`ATTEMPT_TIMEOUT`].
    pub async fn call_leader<T, F, Fut>(
        &self,
        shard_id: u64,
        deadline: Instant,
        attempt: F,
    ) -> Result<T, Status>
    where
        F: FnMut(Target) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        self.call_leader_within(shard_id, deadline, ATTEMPT_TIMEOUT, attempt).await
    }

    /// [`Self::call_leader`] with each attempt bounded by `attempt_timeout` instead (for calls
    /// that may legitimately take long, like a scan of a whole shard).
    pub async fn call_leader_within<T, F, Fut>(
        &self,
        shard_id: u64,
        deadline: Instant,
        attempt_timeout: Duration,
        mut attempt: F,
    ) -> Result<T, Status>
    where
        F: FnMut(Target) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut backoff = FIRST_BACKOFF;
        let mut turn = 0usize;
        let mut last = Status::unavailable(format!("shard {shard_id}: no replica is known yet"));
        loop {
            if let Some((node_id, target)) = self.pick(shard_id, turn) {
                let attempt_deadline = deadline.min(Instant::now() + attempt_timeout);
                let outcome = tokio::time::timeout_at(attempt_deadline, attempt(target)).await;
                match outcome {
                    Ok(Ok(value)) => return Ok(value),
                    Ok(Err(status)) if retryable(&status) => {
                        debug!(shard_id, node_id, code = ?status.code(), message = status.message(), "retrying on another replica");
                        match leader_hint(&status) {
                            // The hinted leader goes first in the order: try it next.
                            Some(leader) if leader != node_id => {
                                self.note_leader(shard_id, leader);
                                turn = 0;
                            }
                            _ => turn += 1,
                        }
                        last = status;
                    }
                    Ok(Err(status)) => return Err(status),
                    Err(_) if Instant::now() >= deadline => break,
                    Err(_) => {
                        debug!(
                            shard_id,
                            node_id, "no answer within the attempt timeout; trying another replica"
                        );
                        last = Status::unavailable(format!(
                            "node {node_id} did not answer within {ATTEMPT_TIMEOUT:?}"
                        ));
                        turn += 1;
                    }
                }
            }
            if Instant::now() + backoff >= deadline {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        Err(Status::unavailable(format!(
            "shard {shard_id}: no leader answered before the deadline (last error: {})",
            last.message()
        )))
    }

    /// The replica to try at `turn`: the known leader at turn 0, then the replicas in turn.
    fn pick(&self, shard_id: u64, turn: usize) -> Option<(u64, Target)> {
        let state = self.state();
        let shard = state.shards.iter().find(|s| s.shard_id == shard_id)?;
        let mut order: Vec<u64> = Vec::with_capacity(shard.replicas.len() + 1);
        if shard.leader != 0 {
            order.push(shard.leader);
        }
        order.extend(shard.replicas.iter().copied().filter(|&r| r != shard.leader));
        if order.is_empty() {
            return None;
        }
        let node_id = order[turn % order.len()];
        self.target(node_id).map(|target| (node_id, target))
    }
}

/// Whether another replica (or a later attempt) may answer what `status` refused.
pub(crate) fn retryable(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::Unknown | Code::Cancelled)
}

/// The leader node id a non-leader replica named in its answer.
fn leader_hint(status: &Status) -> Option<u64> {
    status.metadata().get(LEADER_HINT_HEADER)?.to_str().ok()?.parse().ok().filter(|&id| id != 0)
}

/// The shard ids a forwarded call carries in [`SHARDS_HEADER`], if any.
pub fn forwarded_shards(metadata: &tonic::metadata::MetadataMap) -> Option<Result<Vec<u64>, Status>> {
    let value = metadata.get(SHARDS_HEADER)?;
    let parsed = value.to_str().ok().and_then(|text| {
        text.split(',')
            .filter(|s| !s.is_empty())
            .map(|id| id.trim().parse::<u64>().ok())
            .collect::<Option<Vec<_>>>()
    });
    Some(parsed.ok_or_else(|| Status::invalid_argument(format!("malformed {SHARDS_HEADER} header"))))
}

/// Wraps `message` in a request for another gateway, scoped to `shard_ids`, with the time left
/// until `deadline` (at most one [`ATTEMPT_TIMEOUT`]) as its gRPC timeout.
pub fn forwarded_request<T>(message: T, shard_ids: &[u64], deadline: Instant) -> tonic::Request<T> {
    let deadline = deadline.min(Instant::now() + ATTEMPT_TIMEOUT);
    let mut request = tonic::Request::new(message);
    let scope = shard_ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    request.metadata_mut().insert(SHARDS_HEADER, scope.parse().expect("digits and commas are valid ASCII"));
    request.set_timeout(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)));
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> v1::ClusterState {
        v1::ClusterState {
            nodes: vec![
                v1::NodeInfo { node_id: 1, address: "127.0.0.1:1".into(), ..Default::default() },
                v1::NodeInfo { node_id: 2, address: "127.0.0.1:2".into(), ..Default::default() },
            ],
            shards: vec![
                v1::ShardInfo {
                    shard_id: 2,
                    start_hash: 1 << 63,
                    end_hash: u64::MAX,
                    replicas: vec![1, 2],
                    leader: 2,
                    ..Default::default()
                },
                v1::ShardInfo {
                    shard_id: 1,
                    start_hash: 0,
                    end_hash: (1 << 63) - 1,
                    replicas: vec![1, 2],
                    leader: 0,
                    ..Default::default()
                },
            ],
        }
    }

    #[tokio::test]
    async fn customers_map_to_their_range_and_hints_move_the_leader() {
        let router = Router::new(Some(1));
        assert!(router.shard_of("c").is_none(), "no shards yet");
        router.update(table());
        for customer in ["a", "b", "c", "d", "e"] {
            let shard = router.shard_of(customer).unwrap();
            let hash = customer_hash(customer);
            assert!(shard.start_hash <= hash && hash <= shard.end_hash);
        }
        assert!(matches!(router.pick(2, 0), Some((2, Target::Remote(_)))));
        router.note_leader(2, 1);
        assert!(matches!(router.pick(2, 0), Some((1, Target::Local))));
        assert!(matches!(router.pick(2, 1), Some((2, Target::Remote(_)))));
    }

    #[tokio::test]
    async fn retries_follow_hints_and_stop_at_the_deadline() {
        let router = Router::new(Some(1));
        router.update(table());
        let mut seen = Vec::new();
        let answer = router
            .call_leader(2, Instant::now() + Duration::from_secs(5), |target| {
                seen.push(matches!(target, Target::Local));
                let first = seen.len() == 1;
                async move {
                    if first {
                        let mut status = Status::unavailable("not leader");
                        status.metadata_mut().insert(LEADER_HINT_HEADER, "1".parse().unwrap());
                        Err(status)
                    } else {
                        Ok(7)
                    }
                }
            })
            .await
            .unwrap();
        assert_eq!(answer, 7);
        assert_eq!(seen, vec![false, true], "second attempt on the hinted (local) leader");

        let failed = router
            .call_leader(1, Instant::now() + Duration::from_millis(50), |_| async {
                Err::<(), _>(Status::unavailable("down"))
            })
            .await
            .unwrap_err();
        assert_eq!(failed.code(), Code::Unavailable);
        let refused = router
            .call_leader(1, Instant::now() + Duration::from_secs(5), |_| async {
                Err::<(), _>(Status::invalid_argument("bad"))
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "business errors are not retried");
    }
}
