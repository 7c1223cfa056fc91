//! [`RoutingGateway`]: `pulse.v1.ActivityService` of a cluster process — any process answers any
//! request.
//!
//! A client's call is validated here, then split by shard: point requests (ingest, reads,
//! erasure) go to each shard's leader, collective queries (segment listings, stats, migrations,
//! top-K, affinity, watches) to the leader of every shard, and the answers are merged. A call
//! for a shard this process leads is served in-process by the [`ActivityGateway`] over its
//! replicas; any other goes to the leader's process as the same RPC carrying the shard ids in
//! [`SHARDS_HEADER`](super::router::SHARDS_HEADER), which that process serves from its own
//! replicas only. Not-leader answers, elections and unreachable nodes are retried by the
//! [`Router`] until the request's deadline.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use pulse_ingest::validate_batch;
use pulse_proto::v1;
use pulse_proto::v1::activity_service_client::ActivityServiceClient;
use pulse_proto::v1::activity_service_server::ActivityService;
use pulse_scoring::{EventInput, ScoringConfig};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::instrument;

use super::cluster_watch::{WatchSources, merged_watch};
use super::router::{Router, Target, forwarded_request, forwarded_shards};
use crate::clock::Clock;
use crate::error::ServerError;
use crate::gateway::ActivityGateway;
use crate::local_shards::LocalShards;

/// Most customer ids of one `BatchGetActivity` request (as on a single node).
const MAX_BATCH_GET: usize = 1_000;
/// Messages buffered per server stream before the producer waits.
const STREAM_BUFFER: usize = 16;

/// The shard replicas of this process, as they change (a storage node gains replicas while it
/// runs), with what its in-process gateway needs.
#[derive(Clone, Debug)]
pub struct LocalReplicas {
    shards: Arc<RwLock<LocalShards>>,
    clock: Clock,
    transition_retention_ms: i64,
    shutdown: watch::Receiver<bool>,
}

impl LocalReplicas {
    /// Wraps the node's replicas.
    pub fn new(shards: Arc<RwLock<LocalShards>>, clock: Clock, transition_retention_ms: i64) -> Self {
        Self { shards, clock, transition_retention_ms, shutdown: watch::channel(false).1 }
    }

    /// The same, ending open watches once `shutdown` becomes true.
    pub fn with_shutdown(mut self, shutdown: watch::Receiver<bool>) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Every replica hosted now.
    pub fn all(&self) -> LocalShards {
        self.shards.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The in-process gateway over the replicas of `shard_ids`; `UNAVAILABLE` (so the caller
    /// retries elsewhere) if one is not hosted here.
    pub(crate) fn gateway(&self, shard_ids: &[u64]) -> Result<ActivityGateway, Status> {
        let shards = self.all().restricted_to(shard_ids).map_err(|shard_id| {
            Status::unavailable(format!("shard {shard_id} has no replica on this node (yet)"))
        })?;
        Ok(ActivityGateway::new(shards, self.clock.clone())
            .with_transition_retention_ms(self.transition_retention_ms)
            .with_shutdown(self.shutdown.clone()))
    }
}

/// `pulse.v1.ActivityService` of a cluster process. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RoutingGateway {
    router: Arc<Router>,
    local: Option<LocalReplicas>,
    clock: Clock,
    request_timeout: Duration,
    /// Becomes `true` when the process shuts down: open watches end then.
    shutdown: watch::Receiver<bool>,
}

/// Calls RPC `$method` with `$message` on the leader of shard `$shard_id` (in-process or
/// forwarded), retried by the router until `$deadline`; evaluates to the response message.
macro_rules! on_leader {
    ($gateway:expr, $shard_id:expr, $deadline:expr, $message:expr, $method:ident) => {{
        let gateway = $gateway;
        let shard_id: u64 = $shard_id;
        let deadline: Instant = $deadline;
        let message = $message;
        gateway
            .router
            .call_leader(shard_id, deadline, |target| {
                let message = message.clone();
                let local = gateway.local.clone();
                async move {
                    match target {
                        Target::Local => {
                            let local =
                                local.ok_or_else(|| Status::unavailable("this process hosts no replica"))?;
                            let scoped = local.gateway(&[shard_id])?;
                            scoped.$method(Request::new(message)).await.map(Response::into_inner)
                        }
                        Target::Remote(channel) => ActivityServiceClient::new(channel)
                            .$method(forwarded_request(message, &[shard_id], deadline))
                            .await
                            .map(Response::into_inner),
                    }
                }
            })
            .await
    }};
}

/// Runs `on_leader!` for every shard concurrently; evaluates to the answers in shard order, or
/// the first failure.
macro_rules! on_every_leader {
    ($gateway:expr, $message:expr, $method:ident) => {{
        let gateway: &RoutingGateway = $gateway;
        let shard_ids = gateway.shard_ids().await?;
        let deadline = gateway.deadline();
        let message = $message;
        let mut calls = JoinSet::new();
        for (position, shard_id) in shard_ids.into_iter().enumerate() {
            let gateway = gateway.clone();
            let message = message.clone();
            calls
                .spawn(async move { (position, on_leader!(&gateway, shard_id, deadline, message, $method)) });
        }
        let mut answers = Vec::with_capacity(calls.len());
        while let Some(joined) = calls.join_next().await {
            let (position, answer) = joined.map_err(|e| Status::internal(e.to_string()))?;
            answers.push((position, answer?));
        }
        answers.sort_by_key(|(position, _)| *position);
        answers.into_iter().map(|(_, answer)| answer).collect::<Vec<_>>()
    }};
}

impl RoutingGateway {
    /// A gateway routing with `router`, serving in-process what `local` hosts, giving every
    /// client call `request_timeout` (retries included).
    pub fn new(
        router: Arc<Router>,
        local: Option<LocalReplicas>,
        clock: Clock,
        request_timeout: Duration,
    ) -> Self {
        Self { router, local, clock, request_timeout, shutdown: watch::channel(false).1 }
    }

    /// The same gateway ending its open watches once `shutdown` becomes `true`.
    pub fn with_shutdown(mut self, shutdown: watch::Receiver<bool>) -> Self {
        self.shutdown = shutdown;
        self
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.request_timeout
    }

    /// Every shard id, in hash order; `UNAVAILABLE` while the cluster has none (after waiting
    /// for the route table until the request deadline).
    async fn shard_ids(&self) -> Result<Vec<u64>, Status> {
        if !self.router.wait_for_shards(self.deadline()).await {
            return Err(no_shards());
        }
        Ok(self.router.shards().iter().map(|s| s.shard_id).collect())
    }

    /// The shard of `customer_id` (after waiting for the route table like [`Self::shard_ids`]).
    async fn shard_of(&self, customer_id: &str) -> Result<u64, Status> {
        if !self.router.wait_for_shards(self.deadline()).await {
            return Err(no_shards());
        }
        self.router.shard_of(customer_id).map(|s| s.shard_id).ok_or_else(no_shards)
    }

    /// The in-process gateway for a call another gateway forwarded here, if this is one.
    fn forwarded<T>(&self, request: &Request<T>) -> Result<Option<ActivityGateway>, Status> {
        let Some(shard_ids) = forwarded_shards(request.metadata()) else {
            return Ok(None);
        };
        let shard_ids = shard_ids?;
        let local =
            self.local.as_ref().ok_or_else(|| Status::unavailable("this process hosts no replica"))?;
        local.gateway(&shard_ids).map(Some)
    }

    /// The scoring config events are validated against: a local replica's, else the default
    /// (the leaders validate again against theirs).
    fn validation_config(&self) -> ScoringConfig {
        let local = self.local.as_ref().map(LocalReplicas::all);
        match local {
            Some(shards) if !shards.is_empty() => shards.reader(0).config().config().clone(),
            _ => ScoringConfig::default(),
        }
    }

    /// Validates the whole batch here (one bad event rejects it all, nothing sent), then sends
    /// each shard's part to its leader concurrently and sums the counts. Derived event ids are
    /// filled in here, so a retried part is deduplicated by the leader.
    async fn ingest_events(&self, events: Vec<v1::Event>) -> Result<v1::IngestResponse, Status> {
        let inputs: Vec<EventInput> = events.into_iter().map(EventInput::from).collect();
        let events = validate_batch(inputs, self.clock.now_ms(), &self.validation_config())
            .map_err(|e| Status::from(ServerError::Ingest(e)))?;
        let mut by_shard: BTreeMap<u64, Vec<v1::Event>> = BTreeMap::new();
        for event in events {
            by_shard
                .entry(self.shard_of(&event.customer_id).await?)
                .or_default()
                .push(v1::Event::from(event));
        }
        let deadline = self.deadline();
        let mut parts = JoinSet::new();
        for (shard_id, events) in by_shard {
            let gateway = self.clone();
            parts.spawn(async move {
                on_leader!(&gateway, shard_id, deadline, v1::IngestRequest { events }, ingest)
            });
        }
        let mut response = v1::IngestResponse::default();
        while let Some(joined) = parts.join_next().await {
            let part = joined.map_err(|e| Status::internal(e.to_string()))??;
            response.accepted += part.accepted;
            response.duplicates += part.duplicates;
        }
        Ok(response)
    }

    /// `as_of_ms` fixed here (0 = this process's now), so every shard answers for one instant.
    fn as_of(&self, as_of_ms: i64) -> i64 {
        if as_of_ms == 0 { self.clock.now_ms() } else { as_of_ms }
    }

    async fn batch_activity(
        &self,
        request: v1::BatchGetActivityRequest,
    ) -> Result<v1::BatchGetActivityResponse, Status> {
        if request.customer_ids.is_empty() || request.customer_ids.len() > MAX_BATCH_GET {
            return Err(invalid("customer_ids", format!("must hold 1 to {MAX_BATCH_GET} ids")));
        }
        if let Some(index) = request.customer_ids.iter().position(String::is_empty) {
            return Err(invalid(&format!("customer_ids[{index}]"), "must not be empty".into()));
        }
        let as_of_ms = self.as_of(request.as_of_ms);
        let mut by_shard: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        let mut seen = HashSet::new();
        for customer_id in &request.customer_ids {
            if seen.insert(customer_id.as_str()) {
                by_shard.entry(self.shard_of(customer_id).await?).or_default().push(customer_id.clone());
            }
        }
        let deadline = self.deadline();
        let mut parts = JoinSet::new();
        for (shard_id, customer_ids) in by_shard {
            let gateway = self.clone();
            let part =
                v1::BatchGetActivityRequest { customer_ids, as_of_ms, consistency: request.consistency };
            parts.spawn(async move {
                if part.consistency == v1::Consistency::Stale as i32 && gateway.hosts(shard_id) {
                    let scoped = gateway.local.as_ref().expect("hosts() checked").gateway(&[shard_id])?;
                    return ActivityService::batch_get_activity(&scoped, Request::new(part))
                        .await
                        .map(Response::into_inner);
                }
                on_leader!(&gateway, shard_id, deadline, part, batch_get_activity)
            });
        }
        let mut found: HashMap<String, v1::CustomerActivity> = HashMap::new();
        while let Some(joined) = parts.join_next().await {
            let part = joined.map_err(|e| Status::internal(e.to_string()))??;
            found.extend(part.activities.into_iter().map(|a| (a.customer_id.clone(), a)));
        }
        let mut response = v1::BatchGetActivityResponse::default();
        let mut emitted = HashSet::new();
        for customer_id in request.customer_ids {
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

    /// Whether this process hosts a replica of `shard_id` (stale reads are served by it).
    fn hosts(&self, shard_id: u64) -> bool {
        self.local.as_ref().is_some_and(|local| local.all().restricted_to(&[shard_id]).is_ok())
    }

    /// Streams the members of a segment: every shard's listing (ordered by customer id) merged
    /// in customer id order, `page_size` at most, with page tokens valid for the next call.
    async fn list_members(
        &self,
        request: v1::ListSegmentMembersRequest,
        out: mpsc::Sender<Result<v1::SegmentMember, Status>>,
    ) {
        let shard_ids = match self.shard_ids().await {
            Ok(ids) => ids,
            Err(status) => {
                let _ = out.send(Err(status)).await;
                return;
            }
        };
        let deadline = self.deadline();
        let mut streams = Vec::with_capacity(shard_ids.len());
        for shard_id in shard_ids {
            let message = request.clone();
            let opened = on_leader!(self, shard_id, deadline, message, list_segment_members_boxed);
            match opened {
                Ok(stream) => streams.push(stream),
                Err(status) => {
                    let _ = out.send(Err(status)).await;
                    return;
                }
            }
        }
        let mut heads: Vec<Option<v1::SegmentMember>> = Vec::with_capacity(streams.len());
        for stream in &mut streams {
            match stream.next().await.transpose() {
                Ok(head) => heads.push(head),
                Err(status) => {
                    let _ = out.send(Err(status)).await;
                    return;
                }
            }
        }
        let limit = if request.page_size == 0 { usize::MAX } else { request.page_size as usize };
        let mut emitted = 0usize;
        while emitted < limit {
            let next = heads
                .iter()
                .enumerate()
                .filter_map(|(i, head)| head.as_ref().map(|m| (i, m.customer_id.clone())))
                .min_by(|a, b| a.1.cmp(&b.1));
            let Some((i, _)) = next else { return };
            let mut member = heads[i].take().expect("picked a present head");
            match streams[i].next().await.transpose() {
                Ok(head) => heads[i] = head,
                Err(status) => {
                    let _ = out.send(Err(status)).await;
                    return;
                }
            }
            emitted += 1;
            // More members follow if any shard has one left, or if this member's shard cut
            // its listing at the page size (only possible for the page's last member).
            let more = heads.iter().any(Option::is_some) || !member.next_page_token.is_empty();
            member.next_page_token = if more {
                crate::gateway::segment_page_token(request.dimension, &request.segment, &member.customer_id)
            } else {
                String::new()
            };
            if out.send(Ok(member)).await.is_err() {
                return;
            }
        }
    }
}

/// Merged stats: counts add up, means are weighted by their counts, stickiness is recomputed.
fn merge_stats(parts: Vec<v1::SegmentStats>) -> v1::SegmentStats {
    let mut order: Vec<String> = Vec::new();
    let mut tallies: HashMap<String, (u64, f64)> = HashMap::new();
    let mut merged = v1::SegmentStats::default();
    for part in parts {
        for segment in part.segments {
            let tally = tallies.entry(segment.segment.clone()).or_insert_with(|| {
                order.push(segment.segment.clone());
                (0, 0.0)
            });
            tally.0 += segment.customers;
            tally.1 += segment.mean_activity_index * segment.customers as f64;
        }
        merged.active_1d += part.active_1d;
        merged.active_7d += part.active_7d;
        merged.active_30d += part.active_30d;
    }
    merged.segments = order
        .into_iter()
        .map(|segment| {
            let (customers, sum) = tallies[&segment];
            let mean_activity_index = if customers == 0 { 0.0 } else { sum / customers as f64 };
            v1::SegmentSummary { segment, customers, mean_activity_index }
        })
        .collect();
    merged.stickiness = if merged.active_30d == 0 {
        0.0
    } else {
        (merged.active_1d as f64 / merged.active_30d as f64).clamp(0.0, 1.0)
    };
    merged
}

/// Merged migration cells: counts add up, rates are recomputed per `from` row.
fn merge_migrations(parts: Vec<v1::MigrationMatrix>) -> v1::MigrationMatrix {
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for cell in parts.into_iter().flat_map(|p| p.cells) {
        *counts.entry((cell.from, cell.to)).or_default() += cell.customers;
    }
    let mut rows: BTreeMap<&str, u64> = BTreeMap::new();
    for ((from, _), customers) in &counts {
        *rows.entry(from.as_str()).or_default() += customers;
    }
    let cells = counts
        .iter()
        .map(|((from, to), &customers)| {
            let total = rows.get(from.as_str()).copied().unwrap_or(0);
            let rate = if total == 0 { 0.0 } else { customers as f64 / total as f64 };
            v1::MigrationCell { from: from.clone(), to: to.clone(), customers, rate }
        })
        .collect();
    v1::MigrationMatrix { cells }
}

/// Merged top-K: the best `limit` of every shard's best `limit` (ties by customer id).
fn merge_top(parts: Vec<v1::TopCustomersResponse>, limit: usize) -> v1::TopCustomersResponse {
    let mut customers: Vec<v1::TopCustomer> = parts.into_iter().flat_map(|p| p.customers).collect();
    customers.sort_by(|a, b| {
        b.activity_index.total_cmp(&a.activity_index).then_with(|| a.customer_id.cmp(&b.customer_id))
    });
    customers.truncate(limit);
    v1::TopCustomersResponse { customers }
}

/// Merged affinity: counts add up, lifts are recomputed from the totals.
fn merge_affinity(parts: Vec<v1::CategoryAffinity>) -> v1::CategoryAffinity {
    let mut merged = v1::CategoryAffinity::default();
    for part in parts {
        merged.customers += part.customers;
        if merged.categories.is_empty() {
            merged.categories = part.categories;
            merged.pairs = part.pairs;
            continue;
        }
        for (total, category) in merged.categories.iter_mut().zip(part.categories) {
            total.customers += category.customers;
        }
        for (total, pair) in merged.pairs.iter_mut().zip(part.pairs) {
            total.customers += pair.customers;
        }
    }
    let per_category: HashMap<String, u64> =
        merged.categories.iter().map(|c| (c.category.clone(), c.customers)).collect();
    for pair in &mut merged.pairs {
        let a = per_category.get(&pair.category_a).copied().unwrap_or(0);
        let b = per_category.get(&pair.category_b).copied().unwrap_or(0);
        pair.lift = if a == 0 || b == 0 {
            0.0
        } else {
            merged.customers as f64 * pair.customers as f64 / (a as f64 * b as f64)
        };
    }
    merged
}

fn no_shards() -> Status {
    Status::unavailable("the cluster has no shards yet: waiting for replication_factor storage nodes to join")
}

fn invalid(field: &str, description: String) -> Status {
    Status::from(ServerError::InvalidArgument { field: field.to_owned(), description })
}

/// What one shard's `ListSegmentMembers` answers: its stream of members.
type MemberStream = Streaming<v1::SegmentMember>;

/// `list_segment_members` with one shape for the in-process and the forwarded call, for
/// `on_leader!`.
trait ListMembers {
    async fn list_segment_members_boxed(
        &self,
        request: Request<v1::ListSegmentMembersRequest>,
    ) -> Result<Response<MemberStreamAny>, Status>;
}

/// A member stream from either side.
pub(crate) type MemberStreamAny =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<v1::SegmentMember, Status>> + Send>>;

impl ListMembers for ActivityGateway {
    async fn list_segment_members_boxed(
        &self,
        request: Request<v1::ListSegmentMembersRequest>,
    ) -> Result<Response<MemberStreamAny>, Status> {
        let stream = ActivityService::list_segment_members(self, request).await?.into_inner();
        Ok(Response::new(Box::pin(stream) as MemberStreamAny))
    }
}

impl ListMembers for ActivityServiceClient<tonic::transport::Channel> {
    async fn list_segment_members_boxed(
        &self,
        request: Request<v1::ListSegmentMembersRequest>,
    ) -> Result<Response<MemberStreamAny>, Status> {
        let stream: MemberStream = self.clone().list_segment_members(request).await?.into_inner();
        Ok(Response::new(Box::pin(stream) as MemberStreamAny))
    }
}

#[tonic::async_trait]
impl ActivityService for RoutingGateway {
    #[instrument(skip_all, fields(events = request.get_ref().events.len()))]
    async fn ingest(
        &self,
        request: Request<v1::IngestRequest>,
    ) -> Result<Response<v1::IngestResponse>, Status> {
        if let Some(local) = self.forwarded(&request)? {
            return local.ingest(request).await;
        }
        Ok(Response::new(self.ingest_events(request.into_inner().events).await?))
    }

    type IngestStreamStream = ReceiverStream<Result<v1::IngestResponse, Status>>;

    #[instrument(skip_all)]
    async fn ingest_stream(
        &self,
        request: Request<Streaming<v1::IngestRequest>>,
    ) -> Result<Response<Self::IngestStreamStream>, Status> {
        let gateway = self.clone();
        let stream = crate::gateway::answer_ingest_stream(request.into_inner(), move |events| {
            let gateway = gateway.clone();
            async move { gateway.ingest_events(events).await }
        });
        Ok(Response::new(stream))
    }

    #[instrument(skip_all, fields(customer_id = %request.get_ref().customer_id))]
    async fn get_activity(
        &self,
        request: Request<v1::GetActivityRequest>,
    ) -> Result<Response<v1::CustomerActivity>, Status> {
        if let Some(local) = self.forwarded(&request)? {
            return local.get_activity(request).await;
        }
        let mut message = request.into_inner();
        if message.customer_id.is_empty() {
            return Err(invalid("customer_id", "must not be empty".into()));
        }
        message.as_of_ms = self.as_of(message.as_of_ms);
        let shard_id = self.shard_of(&message.customer_id).await?;
        if message.consistency == v1::Consistency::Stale as i32 && self.hosts(shard_id) {
            let scoped = self.local.as_ref().expect("hosts() checked").gateway(&[shard_id])?;
            return scoped.get_activity(Request::new(message)).await;
        }
        on_leader!(self, shard_id, self.deadline(), message, get_activity).map(Response::new)
    }

    #[instrument(skip_all, fields(customers = request.get_ref().customer_ids.len()))]
    async fn batch_get_activity(
        &self,
        request: Request<v1::BatchGetActivityRequest>,
    ) -> Result<Response<v1::BatchGetActivityResponse>, Status> {
        if let Some(local) = self.forwarded(&request)? {
            return local.batch_get_activity(request).await;
        }
        Ok(Response::new(self.batch_activity(request.into_inner()).await?))
    }

    type ListSegmentMembersStream = ReceiverStream<Result<v1::SegmentMember, Status>>;

    #[instrument(skip_all, fields(segment = %request.get_ref().segment))]
    async fn list_segment_members(
        &self,
        request: Request<v1::ListSegmentMembersRequest>,
    ) -> Result<Response<Self::ListSegmentMembersStream>, Status> {
        if let Some(local) = self.forwarded(&request)? {
            return local.list_segment_members(request).await;
        }
        let (out, members) = mpsc::channel(STREAM_BUFFER);
        let gateway = self.clone();
        let message = request.into_inner();
        tokio::spawn(async move { gateway.list_members(message, out).await });
        Ok(Response::new(ReceiverStream::new(members)))
    }

    #[instrument(skip_all, fields(dimension = request.get_ref().dimension))]
    async fn get_segment_stats(
        &self,
        request: Request<v1::GetSegmentStatsRequest>,
    ) -> Result<Response<v1::SegmentStats>, Status> {
        if let Some(local) = self.forwarded(&request)? {
            return local.get_segment_stats(request).await;
        }
        let parts = on_every_leader!(self, request.into_inner(), get_segment_stats);
        Ok(Response::new(merge_stats(parts)))
    }

    #[instrument(skip_all, fields(dimension = request.get_ref().dimension))]
    async fn get_migration_matrix(
        &self,
        request: Request<v1::GetMigrationMatrixRequest>,
    ) -> Result<Response<v1::MigrationMatrix>, Status> {
        if let Some(local) = self.forwarded(&request)? {
            return local.get_migration_matrix(request).await;
        }
        let mut message = request.into_inner();
        if message.to_ms == 0 {
            message.to_ms = self.clock.now_ms();
        }
        let parts = on_every_leader!(self, message, get_migration_matrix);
        Ok(Response::new(merge_migrations(parts)))
    }

    #[instrument(skip_all, fields(limit = request.get_ref().limit))]
    async fn top_customers(
        &self,
        request: Request<v1::TopCustomersRequest>,
    ) -> Result<Response<v1::TopCustomersResponse>, Status> {
        if let Some(local) = self.forwarded(&request)? {
            return local.top_customers(request).await;
        }
        let message = request.into_inner();
        // Every shard validated the limit and applied its default.
        let limit = if message.limit == 0 { crate::gateway::DEFAULT_TOP_LIMIT } else { message.limit };
        let parts = on_every_leader!(self, message, top_customers);
        Ok(Response::new(merge_top(parts, limit as usize)))
    }

    #[instrument(skip_all, fields(categories = request.get_ref().categories.len()))]
    async fn get_category_affinity(
        &self,
        request: Request<v1::GetCategoryAffinityRequest>,
    ) -> Result<Response<v1::CategoryAffinity>, Status> {
        if let Some(local) = self.forwarded(&request)? {
            return local.get_category_affinity(request).await;
        }
        let parts = on_every_leader!(self, request.into_inner(), get_category_affinity);
        Ok(Response::new(merge_affinity(parts)))
    }

    type WatchTransitionsStream = ReceiverStream<Result<v1::Transition, Status>>;

    #[instrument(skip_all)]
    async fn watch_transitions(
        &self,
        request: Request<v1::WatchTransitionsRequest>,
    ) -> Result<Response<Self::WatchTransitionsStream>, Status> {
        if let Some(local) = self.forwarded(&request)? {
            return local.watch_transitions(request).await;
        }
        let sources = WatchSources {
            router: self.router.clone(),
            local: self.local.clone(),
            open_timeout: self.request_timeout,
        };
        let (out, transitions) = mpsc::channel(STREAM_BUFFER);
        let (ready, started) = tokio::sync::oneshot::channel();
        tokio::spawn(merged_watch(sources, request.into_inner(), self.shutdown.clone(), out, ready));
        // Answer once every shard's stream is positioned: the watch covers what follows.
        started.await.map_err(|_| Status::unavailable("the watch ended before it started"))??;
        Ok(Response::new(ReceiverStream::new(transitions)))
    }

    #[instrument(skip_all, fields(customer_id = %request.get_ref().customer_id))]
    async fn delete_customer(
        &self,
        request: Request<v1::DeleteCustomerRequest>,
    ) -> Result<Response<v1::DeleteCustomerResponse>, Status> {
        if let Some(local) = self.forwarded(&request)? {
            return local.delete_customer(request).await;
        }
        let message = request.into_inner();
        if message.customer_id.is_empty() {
            return Err(invalid("customer_id", "must not be empty".into()));
        }
        let shard_id = self.shard_of(&message.customer_id).await?;
        on_leader!(self, shard_id, self.deadline(), message, delete_customer).map(Response::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_merge_weights_means_and_recomputes_stickiness() {
        let part = |customers: u64, mean: f64, d1: u64, d30: u64| v1::SegmentStats {
            segments: vec![v1::SegmentSummary {
                segment: "DAILY".into(),
                customers,
                mean_activity_index: mean,
            }],
            active_1d: d1,
            active_7d: d1,
            active_30d: d30,
            stickiness: 0.0,
        };
        let merged = merge_stats(vec![part(1, 10.0, 1, 4), part(3, 50.0, 1, 4)]);
        assert_eq!(merged.segments[0].customers, 4);
        assert!((merged.segments[0].mean_activity_index - 40.0).abs() < 1e-9);
        assert!((merged.stickiness - 0.25).abs() < 1e-9);
    }

    #[test]
    fn migration_rates_are_per_from_row_of_the_sums() {
        let cell = |from: &str, to: &str, customers| v1::MigrationCell {
            from: from.into(),
            to: to.into(),
            customers,
            rate: 1.0,
        };
        let merged = merge_migrations(vec![
            v1::MigrationMatrix { cells: vec![cell("DAILY", "WEEKLY", 1)] },
            v1::MigrationMatrix { cells: vec![cell("DAILY", "DAILY", 3)] },
        ]);
        let rates: Vec<f64> = merged.cells.iter().map(|c| c.rate).collect();
        assert_eq!(rates, vec![0.75, 0.25]);
    }

    #[test]
    fn top_and_affinity_merge() {
        let top = |id: &str, index| v1::TopCustomer { customer_id: id.into(), activity_index: index };
        let merged = merge_top(
            vec![
                v1::TopCustomersResponse { customers: vec![top("a", 10.0), top("b", 5.0)] },
                v1::TopCustomersResponse { customers: vec![top("c", 7.0), top("d", 1.0)] },
            ],
            2,
        );
        let ids: Vec<&str> = merged.customers.iter().map(|c| c.customer_id.as_str()).collect();
        assert_eq!(ids, vec!["a", "c"]);

        let part = |a, b, both, n| v1::CategoryAffinity {
            categories: vec![
                v1::CategoryCustomers { category: "x".into(), customers: a },
                v1::CategoryCustomers { category: "y".into(), customers: b },
            ],
            pairs: vec![v1::CategoryPair {
                category_a: "x".into(),
                category_b: "y".into(),
                customers: both,
                lift: 0.0,
            }],
            customers: n,
        };
        let merged = merge_affinity(vec![part(2, 2, 1, 10), part(2, 2, 1, 10)]);
        assert_eq!(merged.customers, 20);
        assert!((merged.pairs[0].lift - 20.0 * 2.0 / 16.0).abs() < 1e-9);
    }
}
