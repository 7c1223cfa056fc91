//! [`Client`]: Pulse's public API with the routing done client-side — point requests go
//! straight to their shard's leader, scoped with [`SHARDS_HEADER`](crate::SHARDS_HEADER), instead
//! of through a gateway that forwards them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use pulse_proto::v1;
use pulse_proto::v1::activity_service_client::ActivityServiceClient;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::transport::Channel;
use tracing::instrument;

use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::routing::{Routing, scoped_request};

/// Most customer ids of one `batch_get_activity` call (the servers' limit).
pub const MAX_BATCH_GET: usize = 1_000;

/// A Pulse cluster client. Cheap to clone: clones share the route table and the channels (one
/// per node address).
#[derive(Debug, Clone)]
pub struct Client {
    routing: Arc<Routing>,
}

impl Client {
    /// Connects with the default [`ClientConfig`]; see [`Client::connect_with`].
    pub async fn connect(seeds: &[String]) -> Result<Self> {
        Self::connect_with(seeds, ClientConfig::default()).await
    }

    /// Connects to a cluster through `seeds` (any of its gateways, `HOST:PORT`): fetches the
    /// route table from the first seed that answers within `config.request_timeout`. The
    /// table may still be empty (a cluster that is forming); calls then wait for shards.
    pub async fn connect_with(seeds: &[String], config: ClientConfig) -> Result<Self> {
        config.validate()?;
        if seeds.is_empty() {
            return Err(Error::NoSeeds);
        }
        let deadline = Instant::now() + config.request_timeout;
        let routing = Routing::new(seeds.to_vec(), config)?;
        routing.refresh(0, deadline).await?;
        Ok(Self { routing: Arc::new(routing) })
    }

    /// The configuration the client runs with.
    pub fn config(&self) -> &ClientConfig {
        &self.routing.config
    }

    /// A plain `ActivityServiceClient` on the first seed, for what the client does not route
    /// itself: collective queries (segment members, stats, migrations, top-K, affinity), which
    /// the gateway fans out to every shard and merges, and streaming ingest.
    pub fn gateway(&self) -> ActivityServiceClient<Channel> {
        let channel =
            self.routing.channel(&self.routing.seeds[0]).expect("seed addresses are checked at connect");
        ActivityServiceClient::new(channel)
    }

    /// Ingests `events`: split by shard, each part sent to its shard's leader concurrently, the
    /// counts summed. Each leader validates its part; a rejected part fails the call
    /// ([`Error::Rejected`]) while other parts may have been applied — re-sending the batch is
    /// safe, as events are deduplicated by `(customer_id, event_id)`. An empty batch does
    /// nothing.
    #[instrument(skip_all, fields(events = events.len()))]
    pub async fn ingest(&self, events: Vec<v1::Event>) -> Result<v1::IngestResponse> {
        if events.is_empty() {
            return Ok(v1::IngestResponse::default());
        }
        let deadline = self.deadline();
        let mut parts: BTreeMap<u64, Vec<v1::Event>> = BTreeMap::new();
        for (shard_id, event) in self.by_shard(events, |e| &e.customer_id, deadline).await? {
            parts.entry(shard_id).or_default().push(event);
        }
        let answers = self
            .on_leaders(parts, |client, shard_id, events| async move {
                let message = v1::IngestRequest { events };
                client
                    .routing
                    .call_leader(shard_id, deadline, |channel| {
                        let request = scoped_request(message.clone(), shard_id, deadline);
                        async move { Ok(ActivityServiceClient::new(channel).ingest(request).await?.into_inner()) }
                    })
                    .await
            })
            .await?;
        let mut response = v1::IngestResponse::default();
        for part in answers {
            response.accepted += part.accepted;
            response.duplicates += part.duplicates;
        }
        Ok(response)
    }

    /// The activity of `customer_id` at `as_of_ms` (Unix ms; 0 = the shard leader's now), read
    /// from its shard's leader. NOT_FOUND ([`Error::Rejected`]) for an unknown customer.
    #[instrument(skip(self))]
    pub async fn get_activity(
        &self,
        customer_id: &str,
        as_of_ms: i64,
        consistency: v1::Consistency,
    ) -> Result<v1::CustomerActivity> {
        if customer_id.is_empty() {
            return Err(invalid("customer_id", "must not be empty"));
        }
        let deadline = self.deadline();
        let shard_id = self.shard_of(customer_id, deadline).await?;
        let message = v1::GetActivityRequest {
            customer_id: customer_id.to_owned(),
            as_of_ms,
            consistency: consistency as i32,
        };
        self.routing
            .call_leader(shard_id, deadline, |channel| {
                let request = scoped_request(message.clone(), shard_id, deadline);
                async move { Ok(ActivityServiceClient::new(channel).get_activity(request).await?.into_inner()) }
            })
            .await
    }

    /// The activity of every known customer of `customer_ids` (1 to [`MAX_BATCH_GET`] ids) at
    /// `as_of_ms`: split by shard, read from the leaders concurrently, reassembled in the order
    /// of first appearance, unknown ids listed in `missing_customer_ids` (in request order).
    /// `as_of_ms` 0 means each shard leader's now; pass an explicit instant for one instant
    /// across shards.
    #[instrument(skip_all, fields(customers = customer_ids.len()))]
    pub async fn batch_get_activity(
        &self,
        customer_ids: Vec<String>,
        as_of_ms: i64,
        consistency: v1::Consistency,
    ) -> Result<v1::BatchGetActivityResponse> {
        if customer_ids.is_empty() || customer_ids.len() > MAX_BATCH_GET {
            return Err(invalid("customer_ids", &format!("must hold 1 to {MAX_BATCH_GET} ids")));
        }
        if let Some(index) = customer_ids.iter().position(String::is_empty) {
            return Err(invalid(&format!("customer_ids[{index}]"), "must not be empty"));
        }
        let deadline = self.deadline();
        let mut seen = HashSet::new();
        let unique: Vec<String> =
            customer_ids.iter().filter(|id| seen.insert(id.as_str())).cloned().collect();
        let mut parts: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for (shard_id, customer_id) in self.by_shard(unique, |id| id, deadline).await? {
            parts.entry(shard_id).or_default().push(customer_id);
        }
        let consistency = consistency as i32;
        let answers = self
            .on_leaders(parts, |client, shard_id, customer_ids| async move {
                let message = v1::BatchGetActivityRequest { customer_ids, as_of_ms, consistency };
                client
                    .routing
                    .call_leader(shard_id, deadline, |channel| {
                        let request = scoped_request(message.clone(), shard_id, deadline);
                        async move {
                            Ok(ActivityServiceClient::new(channel)
                                .batch_get_activity(request)
                                .await?
                                .into_inner())
                        }
                    })
                    .await
            })
            .await?;
        let mut found: HashMap<String, v1::CustomerActivity> = HashMap::new();
        for part in answers {
            found
                .extend(part.activities.into_iter().map(|activity| (activity.customer_id.clone(), activity)));
        }
        let mut response = v1::BatchGetActivityResponse::default();
        let mut emitted = HashSet::new();
        for customer_id in customer_ids {
            if !emitted.insert(customer_id.clone()) {
                continue;
            }
            match found.remove(&customer_id) {
                Some(activity) => response.activities.push(activity),
                None => response.missing_customer_ids.push(customer_id),
            }
        }
        Ok(response)
    }

    /// Erases `customer_id` (state and events) on its shard's leader; idempotent.
    #[instrument(skip(self))]
    pub async fn delete_customer(&self, customer_id: &str) -> Result<v1::DeleteCustomerResponse> {
        if customer_id.is_empty() {
            return Err(invalid("customer_id", "must not be empty"));
        }
        let deadline = self.deadline();
        let shard_id = self.shard_of(customer_id, deadline).await?;
        let message = v1::DeleteCustomerRequest { customer_id: customer_id.to_owned() };
        self.routing
            .call_leader(shard_id, deadline, |channel| {
                let request = scoped_request(message.clone(), shard_id, deadline);
                async move { Ok(ActivityServiceClient::new(channel).delete_customer(request).await?.into_inner()) }
            })
            .await
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.routing.config.request_timeout
    }

    /// The shard of `customer_id`, waiting for the cluster's shards if there are none yet.
    async fn shard_of(&self, customer_id: &str, deadline: Instant) -> Result<u64> {
        Ok(self.by_shard(vec![customer_id], |id| id, deadline).await?[0].0)
    }

    /// Pairs each item with the shard of its customer, waiting for the cluster's shards if
    /// there are none yet. A customer outside every range (a table caught mid-split) is a
    /// routing miss: the table is refreshed until the deadline.
    async fn by_shard<T, K>(&self, items: Vec<T>, customer: K, deadline: Instant) -> Result<Vec<(u64, T)>>
    where
        K: Fn(&T) -> &str,
    {
        loop {
            self.routing.wait_for_shards(deadline).await?;
            let (generation, shard_ids) = self.routing.with_routes(|routes| {
                let ids: Option<Vec<u64>> =
                    items.iter().map(|item| routes.shard_of(customer(item)).map(|s| s.shard_id)).collect();
                (routes.generation(), ids)
            });
            if let Some(shard_ids) = shard_ids {
                return Ok(shard_ids.into_iter().zip(items).collect());
            }
            if Instant::now() >= deadline {
                return Err(Error::NoShards { timeout: self.routing.config.request_timeout });
            }
            if let Err(error) = self.routing.refresh(generation, deadline).await {
                tracing::debug!(%error, "route refresh failed");
            }
            tokio::time::sleep(self.routing.config.max_backoff).await;
        }
    }

    /// Runs `call` for every shard's part concurrently; the answers in shard order, or the
    /// first failure (the other parts are then cancelled). Each part is bounded by the call's
    /// deadline itself.
    async fn on_leaders<P, T, F, Fut>(&self, parts: BTreeMap<u64, P>, call: F) -> Result<Vec<T>>
    where
        F: Fn(Client, u64, P) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let mut calls = JoinSet::new();
        for (position, (shard_id, part)) in parts.into_iter().enumerate() {
            let answer = call(self.clone(), shard_id, part);
            calls.spawn(async move { (position, answer.await) });
        }
        let mut answers = Vec::with_capacity(calls.len());
        while let Some(joined) = calls.join_next().await {
            let (position, answer) = joined?;
            answers.push((position, answer?));
        }
        answers.sort_by_key(|(position, _)| *position);
        Ok(answers.into_iter().map(|(_, answer)| answer).collect())
    }
}

fn invalid(field: &str, description: &str) -> Error {
    Error::InvalidArgument { field: field.to_owned(), description: description.to_owned() }
}
