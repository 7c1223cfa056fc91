//! [`Routing`]: the state a [`Client`](crate::Client) shares between its clones — the
//! [`RouteCache`], one channel per node address, the seeds — and the retry loop that finds a
//! shard's leader inside a call's deadline.
//!
//! An attempt that fails with a retryable status (UNAVAILABLE, UNKNOWN, CANCELLED: not the
//! leader, no leader yet, replica not hosted there, node unreachable) moves on:
//! - to the leader named in [`LEADER_HINT_HEADER`] if the hint is usable (applies to the
//!   entry's epoch, names another node with a known address);
//! - otherwise to the next replica, after refreshing the whole table from the seeds (a routing
//!   miss: concurrent calls missing on the same table refresh it once).
//!
//! Attempts are spaced by a capped exponential backoff; the loop ends at the call's deadline.
//! Any other status is final and returned as it is.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;

use pulse_proto::v1;
use pulse_proto::v1::cluster_service_client::ClusterServiceClient;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tracing::debug;

use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::route_cache::RouteCache;

/// Request metadata scoping a call to shards (comma-separated ids): the receiving gateway serves
/// it from its own replicas, never forwarding it.
pub const SHARDS_HEADER: &str = "x-pulse-shards";
/// Response metadata of a non-leader replica's UNAVAILABLE answer: the node id of the leader it
/// knows.
pub const LEADER_HINT_HEADER: &str = "x-pulse-leader";

/// Longest single `GetClusterState` attempt during a refresh.
const REFRESH_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// Route table, channels and seeds of a client.
#[derive(Debug)]
pub(crate) struct Routing {
    pub config: ClientConfig,
    /// Gateways asked for the table first, `HOST:PORT`.
    pub seeds: Vec<String>,
    routes: RwLock<RouteCache>,
    channels: Mutex<HashMap<String, Channel>>,
    /// Held while a refresh runs, so concurrent misses cause one refresh.
    refreshing: tokio::sync::Mutex<()>,
}

impl Routing {
    /// Routing over `seeds` with an empty table; seed addresses are checked here.
    pub fn new(seeds: Vec<String>, config: ClientConfig) -> Result<Self> {
        let routing = Self {
            config,
            seeds,
            routes: RwLock::default(),
            channels: Mutex::default(),
            refreshing: tokio::sync::Mutex::new(()),
        };
        for seed in &routing.seeds {
            routing.channel(seed)?;
        }
        Ok(routing)
    }

    /// Runs `read` on the current table.
    pub fn with_routes<T>(&self, read: impl FnOnce(&RouteCache) -> T) -> T {
        read(&self.routes.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn with_routes_mut<T>(&self, write: impl FnOnce(&mut RouteCache) -> T) -> T {
        write(&mut self.routes.write().unwrap_or_else(PoisonError::into_inner))
    }

    /// The channel to `address` (`HOST:PORT`), created on first use (connecting lazily) and
    /// shared by every later call to it.
    pub fn channel(&self, address: &str) -> Result<Channel> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(channel) = channels.get(address) {
            return Ok(channel.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|source| Error::InvalidAddress { address: address.to_owned(), source })?;
        let channel = endpoint
            .tcp_nodelay(true)
            .connect_timeout(self.config.connect_timeout)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect_lazy();
        channels.insert(address.to_owned(), channel.clone());
        Ok(channel)
    }

    /// Fetches the table from the seeds, then from the nodes it lists, first answer wins; a
    /// no-op if another refresh completed since the caller read table `seen_generation`.
    pub async fn refresh(&self, seen_generation: u64, deadline: Instant) -> Result<()> {
        let _refreshing = self.refreshing.lock().await;
        if self.with_routes(RouteCache::generation) > seen_generation {
            return Ok(());
        }
        let mut sources = self.seeds.clone();
        self.with_routes(|routes| {
            for address in routes.addresses() {
                if !sources.iter().any(|source| source == address) {
                    sources.push(address.to_owned());
                }
            }
        });
        let mut tried = Vec::with_capacity(sources.len());
        let mut last = String::from("no address to ask");
        for address in sources {
            if Instant::now() >= deadline {
                break;
            }
            let attempt_deadline = deadline.min(Instant::now() + REFRESH_ATTEMPT_TIMEOUT);
            let mut request = tonic::Request::new(v1::GetClusterStateRequest {});
            request.set_timeout(attempt_deadline.saturating_duration_since(Instant::now()));
            let mut client = ClusterServiceClient::new(self.channel(&address)?);
            let answer = tokio::time::timeout_at(attempt_deadline, client.get_cluster_state(request)).await;
            match answer {
                Ok(Ok(state)) => {
                    self.with_routes_mut(|routes| routes.apply(state.into_inner()));
                    return Ok(());
                }
                Ok(Err(status)) => last = format!("{address}: {}: {}", status.code(), status.message()),
                Err(_) => last = format!("{address}: timed out"),
            }
            debug!(address, error = last, "cluster state refresh failed");
            tried.push(address);
        }
        Err(Error::ClusterStateUnavailable { tried, last })
    }

    /// Refreshes until the table holds shards or `deadline` passes.
    pub async fn wait_for_shards(&self, deadline: Instant) -> Result<()> {
        let mut backoff = self.config.first_backoff;
        while self.with_routes(RouteCache::is_empty) {
            let seen = self.with_routes(RouteCache::generation);
            if let Err(error) = self.refresh(seen, deadline).await {
                debug!(%error, "waiting for shards");
            }
            if !self.with_routes(RouteCache::is_empty) {
                break;
            }
            if Instant::now() + backoff >= deadline {
                return Err(Error::NoShards { timeout: self.config.request_timeout });
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.config.max_backoff);
        }
        Ok(())
    }

    /// Runs `attempt` on the channel of `shard_id`'s leader until it succeeds, fails for good,
    /// or `deadline` passes (see the module doc for the moves between attempts).
    pub async fn call_leader<T, F, Fut>(&self, shard_id: u64, deadline: Instant, mut attempt: F) -> Result<T>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut backoff = self.config.first_backoff;
        let mut turn = 0usize;
        let mut attempts = 0u32;
        let mut last = format!("shard {shard_id} is not in the route table");
        loop {
            let (generation, pick) =
                self.with_routes(|routes| (routes.generation(), routes.pick(shard_id, turn)));
            let mut miss = true;
            if let Some(pick) = pick {
                let channel = self.channel(&pick.address)?;
                attempts += 1;
                let Ok(outcome) = tokio::time::timeout_at(deadline, attempt(channel)).await else {
                    last = format!("node {} did not answer before the deadline", pick.node_id);
                    break;
                };
                let status = match outcome {
                    Ok(value) => return Ok(value),
                    Err(status) if retryable(&status) => status,
                    Err(status) => return Err(Error::Rejected { shard_id, node_id: pick.node_id, status }),
                };
                debug!(shard_id, node_id = pick.node_id, code = ?status.code(), message = status.message(), "retrying");
                last = format!("node {}: {}: {}", pick.node_id, status.code(), status.message());
                let hint = leader_hint(&status).filter(|&leader| leader != pick.node_id);
                if let Some(leader) = hint
                    && self.with_routes_mut(|routes| routes.note_leader(shard_id, pick.epoch, leader))
                {
                    turn = 0;
                    miss = false;
                } else {
                    turn += 1;
                }
            }
            if miss && let Err(error) = self.refresh(generation, deadline).await {
                debug!(shard_id, %error, "route refresh failed");
            }
            if Instant::now() + backoff >= deadline {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.config.max_backoff);
        }
        Err(Error::DeadlineExceeded { shard_id, attempts, timeout: self.config.request_timeout, last })
    }
}

/// Wraps `message` in a request scoped to `shard_id` ([`SHARDS_HEADER`]) with the time left
/// until `deadline` as its gRPC timeout.
pub(crate) fn scoped_request<T>(message: T, shard_id: u64, deadline: Instant) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let scope = shard_id.to_string().parse().expect("digits are valid metadata");
    request.metadata_mut().insert(SHARDS_HEADER, scope);
    request.set_timeout(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)));
    request
}

/// Whether another replica, or a later attempt, may answer what `status` refused.
fn retryable(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::Unknown | Code::Cancelled)
}

/// The leader node id a non-leader replica named in its answer.
fn leader_hint(status: &Status) -> Option<u64> {
    status.metadata().get(LEADER_HINT_HEADER)?.to_str().ok()?.parse().ok().filter(|&id| id != 0)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Routing over one shard with replicas 1, 2, 3 (leader 2), its seed unreachable.
    fn routing() -> Routing {
        let config = ClientConfig { request_timeout: Duration::from_secs(5), ..ClientConfig::default() };
        let routing = Routing::new(vec!["127.0.0.1:1".into()], config).unwrap();
        routing.with_routes_mut(|routes| {
            routes.apply(v1::ClusterState {
                nodes: (1..=3)
                    .map(|node_id| v1::NodeInfo {
                        node_id,
                        address: format!("127.0.0.1:{}", 10 + node_id),
                        ..Default::default()
                    })
                    .collect(),
                shards: vec![v1::ShardInfo {
                    shard_id: 7,
                    start_hash: 0,
                    end_hash: u64::MAX,
                    replicas: vec![1, 2, 3],
                    leader: 2,
                    ..Default::default()
                }],
            })
        });
        routing
    }

    fn not_leader(hint: Option<u64>) -> Status {
        let mut status = Status::unavailable("not leader");
        if let Some(leader) = hint {
            status.metadata_mut().insert(LEADER_HINT_HEADER, leader.to_string().parse().unwrap());
        }
        status
    }

    #[tokio::test]
    async fn a_hint_moves_the_next_attempt_to_the_named_leader() {
        let routing = routing();
        let calls = Arc::new(AtomicUsize::new(0));
        let deadline = Instant::now() + Duration::from_secs(5);
        let answer = routing
            .call_leader(7, deadline, |_channel| {
                let call = calls.fetch_add(1, Ordering::SeqCst);
                async move { if call == 0 { Err(not_leader(Some(3))) } else { Ok(call) } }
            })
            .await
            .unwrap();
        assert_eq!(answer, 1, "second attempt succeeds");
        assert_eq!(routing.with_routes(|r| r.pick(7, 0).unwrap().node_id), 3, "the hint was recorded");
        assert_eq!(routing.with_routes(RouteCache::generation), 1, "a usable hint needs no refresh");
    }

    #[tokio::test]
    async fn an_unusable_hint_is_a_miss_that_tries_the_next_replica() {
        let routing = routing();
        let calls = Arc::new(AtomicUsize::new(0));
        let deadline = Instant::now() + Duration::from_secs(5);
        let answer = routing
            .call_leader(7, deadline, |_channel| {
                let call = calls.fetch_add(1, Ordering::SeqCst);
                // First a hint naming an unknown node, then a hint naming the node itself.
                async move {
                    match call {
                        0 => Err(not_leader(Some(99))),
                        1 => Err(not_leader(Some(1))),
                        _ => Ok(call),
                    }
                }
            })
            .await
            .unwrap();
        assert_eq!(answer, 2);
        let leader = routing.with_routes(|r| r.pick(7, 0).unwrap().node_id);
        assert_eq!(leader, 2, "no hint applied (the unreachable seed refreshed nothing)");
    }

    #[tokio::test]
    async fn final_statuses_are_returned_and_retries_stop_at_the_deadline() {
        let routing = routing();
        let far = Instant::now() + Duration::from_secs(5);
        let refused = routing
            .call_leader(7, far, |_| async { Err::<(), _>(Status::not_found("no such customer")) })
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, Error::Rejected { shard_id: 7, node_id: 2, status } if status.code() == Code::NotFound)
        );

        let exhausted = routing
            .call_leader(7, far, |_| async { Err::<(), _>(Status::resource_exhausted("queue full")) })
            .await
            .unwrap_err();
        assert_eq!(exhausted.code(), Code::ResourceExhausted, "not retried");

        let started = Instant::now();
        let near = started + Duration::from_secs(1);
        let down =
            routing.call_leader(7, near, |_| async { Err::<(), _>(not_leader(None)) }).await.unwrap_err();
        assert!(matches!(down, Error::DeadlineExceeded { shard_id: 7, attempts, .. } if attempts > 1));
        // Generous on a loaded machine; without the deadline it would retry forever.
        assert!(started.elapsed() < Duration::from_secs(6), "bounded by the deadline");

        let unknown = routing.call_leader(8, near + Duration::from_millis(300), |_| async { Ok(()) }).await;
        assert!(matches!(unknown, Err(Error::DeadlineExceeded { shard_id: 8, attempts: 0, .. })));
    }

    #[test]
    fn scoped_requests_carry_the_shard_and_the_time_left() {
        let request = scoped_request((), 12, Instant::now() + Duration::from_secs(3));
        assert_eq!(request.metadata().get(SHARDS_HEADER).unwrap(), "12");
        assert!(request.metadata().get("grpc-timeout").is_some());
    }
}
