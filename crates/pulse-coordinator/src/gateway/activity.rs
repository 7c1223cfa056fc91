//! [`ActivityGateway`]: `pulse.v1.ActivityService` over the shards of this process.

use std::collections::HashSet;

use pulse_ingest::validate_batch;
use pulse_node::{ApplyOutput, ShardCommand};
use pulse_proto::v1;
use pulse_proto::v1::activity_service_server::ActivityService;
use pulse_scoring::{Event, EventInput};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::instrument;

use super::collective::Collective;
use super::segment_listing::Listing;
use super::watch::{WATCH_START_HEADER, Watch};
use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::error::{Result, ServerError};
use crate::local_shards::LocalShards;
use crate::metrics;

/// Most customer ids of one `BatchGetActivity` request.
const MAX_BATCH_GET: usize = 1_000;
/// Responses of one `IngestStream` buffered before the server stops reading requests.
const STREAM_BUFFER: usize = 16;

/// `pulse.v1.ActivityService`: validates, routes by customer hash, and answers from the local
/// shards. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ActivityGateway {
    shards: LocalShards,
    clock: Clock,
    collective: Collective,
    /// Becomes `true` when the server shuts down: open watches end then.
    shutdown: watch::Receiver<bool>,
}

impl ActivityGateway {
    /// A gateway over `shards`, with `clock` as "now" and the default transition retention.
    pub fn new(shards: LocalShards, clock: Clock) -> Self {
        let collective =
            Collective::new(shards.clone(), clock.clone(), ServerConfig::default().transition_retention_ms);
        Self { shards, clock, collective, shutdown: watch::channel(false).1 }
    }

    /// The same gateway ending its open `WatchTransitions` streams (UNAVAILABLE) once
    /// `shutdown` becomes `true`, so a graceful shutdown does not wait for watching clients.
    pub fn with_shutdown(mut self, shutdown: watch::Receiver<bool>) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// The same gateway with `transition_retention_ms` as the reach of migration windows.
    pub fn with_transition_retention_ms(mut self, transition_retention_ms: i64) -> Self {
        self.collective = Collective::new(self.shards.clone(), self.clock.clone(), transition_retention_ms);
        self
    }

    /// Validates the whole batch (one bad event rejects it all, nothing applied), then submits
    /// each shard's part to its batcher concurrently and sums the counts.
    async fn ingest_events(&self, events: Vec<v1::Event>) -> Result<v1::IngestResponse> {
        let inputs: Vec<EventInput> = events.into_iter().map(EventInput::from).collect();
        let config = self.shards.reader(0).config();
        let events = validate_batch(inputs, self.clock.now_ms(), &config)?;
        let mut by_shard: Vec<Vec<Event>> = vec![Vec::new(); self.shards.len()];
        for event in events {
            by_shard[self.shards.position_of(&event.customer_id)].push(event);
        }
        let mut submissions = JoinSet::new();
        for (position, events) in by_shard.into_iter().enumerate() {
            if events.is_empty() {
                continue;
            }
            let batcher = self.shards.batcher(position).clone();
            submissions.spawn(async move { batcher.submit(events).await });
        }
        let mut response = v1::IngestResponse::default();
        while let Some(joined) = submissions.join_next().await {
            let outcome = joined.map_err(|e| ServerError::Task(e.to_string()))??;
            response.accepted += u32::try_from(outcome.accepted).unwrap_or(u32::MAX);
            response.duplicates += u32::try_from(outcome.duplicates).unwrap_or(u32::MAX);
        }
        metrics::ingest_events(response.accepted, response.duplicates);
        Ok(response)
    }

    /// `as_of_ms` of a read request: 0 means now.
    fn as_of(&self, as_of_ms: i64) -> Result<i64> {
        match as_of_ms {
            0 => Ok(self.clock.now_ms()),
            negative if negative < 0 => Err(ServerError::InvalidArgument {
                field: "as_of_ms".into(),
                description: "must not be negative".into(),
            }),
            as_of_ms => Ok(as_of_ms),
        }
    }

    async fn activity(&self, request: v1::GetActivityRequest) -> Result<v1::CustomerActivity> {
        if request.customer_id.is_empty() {
            return Err(ServerError::InvalidArgument {
                field: "customer_id".into(),
                description: "must not be empty".into(),
            });
        }
        let position = self.shards.position_of(&request.customer_id);
        if !is_stale(request.consistency) {
            self.shards.read_barrier(position).await?;
        }
        let as_of_ms = self.as_of(request.as_of_ms)?;
        match self.shards.reader(position).activity(&request.customer_id, as_of_ms)? {
            Some(activity) => Ok(v1::CustomerActivity::from(activity)),
            None => Err(ServerError::CustomerNotFound { customer_id: request.customer_id }),
        }
    }

    /// Erases the customer everywhere through a raft entry of its shard, so every replica
    /// forgets it; `NOT_FOUND` when there was nothing to erase.
    async fn delete(&self, request: v1::DeleteCustomerRequest) -> Result<v1::DeleteCustomerResponse> {
        if request.customer_id.is_empty() {
            return Err(ServerError::InvalidArgument {
                field: "customer_id".into(),
                description: "must not be empty".into(),
            });
        }
        let position = self.shards.position_of(&request.customer_id);
        let command = ShardCommand::DeleteCustomer { customer_id: request.customer_id.clone() };
        match self.shards.propose(position, command).await? {
            ApplyOutput::Deleted { existed: true } => Ok(v1::DeleteCustomerResponse {}),
            ApplyOutput::Deleted { existed: false } => {
                Err(ServerError::CustomerNotFound { customer_id: request.customer_id })
            }
            other => Err(ServerError::Task(format!("unexpected apply output {other:?}"))),
        }
    }

    async fn batch_activity(
        &self,
        request: v1::BatchGetActivityRequest,
    ) -> Result<v1::BatchGetActivityResponse> {
        if request.customer_ids.is_empty() || request.customer_ids.len() > MAX_BATCH_GET {
            return Err(ServerError::InvalidArgument {
                field: "customer_ids".into(),
                description: format!("must hold 1 to {MAX_BATCH_GET} ids"),
            });
        }
        if let Some(index) = request.customer_ids.iter().position(String::is_empty) {
            return Err(ServerError::InvalidArgument {
                field: format!("customer_ids[{index}]"),
                description: "must not be empty".into(),
            });
        }
        if !is_stale(request.consistency) {
            let positions: HashSet<usize> =
                request.customer_ids.iter().map(|id| self.shards.position_of(id)).collect();
            self.shards.read_barriers(positions).await?;
        }
        let as_of_ms = self.as_of(request.as_of_ms)?;
        let mut seen = HashSet::new();
        let mut response = v1::BatchGetActivityResponse::default();
        for (index, customer_id) in request.customer_ids.into_iter().enumerate() {
            if !seen.insert(customer_id.clone()) {
                continue;
            }
            let reader = self.shards.reader(self.shards.position_of(&customer_id));
            match reader.activity(&customer_id, as_of_ms) {
                Ok(Some(activity)) => response.activities.push(v1::CustomerActivity::from(activity)),
                Ok(None) => response.missing_customer_ids.push(customer_id),
                Err(pulse_node::NodeError::Scoring(
                    error @ pulse_scoring::ScoringError::AsOfBeforeLastEvent { .. },
                )) => {
                    return Err(ServerError::InvalidArgument {
                        field: format!("customer_ids[{index}]"),
                        description: error.to_string(),
                    });
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(response)
    }
}

fn is_stale(consistency: i32) -> bool {
    consistency == v1::Consistency::Stale as i32
}

#[tonic::async_trait]
impl ActivityService for ActivityGateway {
    #[instrument(skip_all, fields(events = request.get_ref().events.len()))]
    async fn ingest(
        &self,
        request: Request<v1::IngestRequest>,
    ) -> Result<Response<v1::IngestResponse>, Status> {
        Ok(Response::new(self.ingest_events(request.into_inner().events).await?))
    }

    type IngestStreamStream = ReceiverStream<Result<v1::IngestResponse, Status>>;

    #[instrument(skip_all)]
    async fn ingest_stream(
        &self,
        request: Request<Streaming<v1::IngestRequest>>,
    ) -> Result<Response<Self::IngestStreamStream>, Status> {
        let gateway = self.clone();
        let stream = super::answer_ingest_stream(request.into_inner(), move |events| {
            let gateway = gateway.clone();
            async move { gateway.ingest_events(events).await.map_err(Status::from) }
        });
        Ok(Response::new(stream))
    }

    #[instrument(skip_all, fields(customer_id = %request.get_ref().customer_id))]
    async fn get_activity(
        &self,
        request: Request<v1::GetActivityRequest>,
    ) -> Result<Response<v1::CustomerActivity>, Status> {
        Ok(Response::new(self.activity(request.into_inner()).await?))
    }

    #[instrument(skip_all, fields(customers = request.get_ref().customer_ids.len()))]
    async fn batch_get_activity(
        &self,
        request: Request<v1::BatchGetActivityRequest>,
    ) -> Result<Response<v1::BatchGetActivityResponse>, Status> {
        Ok(Response::new(self.batch_activity(request.into_inner()).await?))
    }

    type ListSegmentMembersStream = ReceiverStream<Result<v1::SegmentMember, Status>>;

    #[instrument(skip_all, fields(segment = %request.get_ref().segment))]
    async fn list_segment_members(
        &self,
        request: Request<v1::ListSegmentMembersRequest>,
    ) -> Result<Response<Self::ListSegmentMembersStream>, Status> {
        let listing = Listing::parse(request.into_inner(), &self.shards)?;
        self.shards.read_barriers(0..self.shards.len()).await?;
        let (out, members) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(listing.stream(self.shards.clone(), self.clock.clone(), out));
        Ok(Response::new(ReceiverStream::new(members)))
    }

    #[instrument(skip_all, fields(dimension = request.get_ref().dimension))]
    async fn get_segment_stats(
        &self,
        request: Request<v1::GetSegmentStatsRequest>,
    ) -> Result<Response<v1::SegmentStats>, Status> {
        Ok(Response::new(self.collective.segment_stats(request.into_inner()).await?))
    }

    #[instrument(skip_all, fields(dimension = request.get_ref().dimension))]
    async fn get_migration_matrix(
        &self,
        request: Request<v1::GetMigrationMatrixRequest>,
    ) -> Result<Response<v1::MigrationMatrix>, Status> {
        Ok(Response::new(self.collective.migration_matrix(request.into_inner()).await?))
    }

    #[instrument(skip_all, fields(limit = request.get_ref().limit))]
    async fn top_customers(
        &self,
        request: Request<v1::TopCustomersRequest>,
    ) -> Result<Response<v1::TopCustomersResponse>, Status> {
        Ok(Response::new(self.collective.top_customers(request.into_inner()).await?))
    }

    #[instrument(skip_all, fields(categories = request.get_ref().categories.len()))]
    async fn get_category_affinity(
        &self,
        request: Request<v1::GetCategoryAffinityRequest>,
    ) -> Result<Response<v1::CategoryAffinity>, Status> {
        Ok(Response::new(self.collective.category_affinity(request.into_inner()).await?))
    }

    type WatchTransitionsStream = ReceiverStream<Result<v1::Transition, Status>>;

    #[instrument(skip_all)]
    async fn watch_transitions(
        &self,
        request: Request<v1::WatchTransitionsRequest>,
    ) -> Result<Response<Self::WatchTransitionsStream>, Status> {
        self.shards.read_barriers(0..self.shards.len()).await.map_err(Status::from)?;
        let watch = Watch::start(request.into_inner(), &self.shards).await?;
        let start: String = watch.start_token().iter().map(|b| format!("{b:02x}")).collect();
        let (out, transitions) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(watch.stream(self.shards.clone(), self.shutdown.clone(), out));
        let mut response = Response::new(ReceiverStream::new(transitions));
        response
            .metadata_mut()
            .insert(WATCH_START_HEADER, start.parse().expect("hex digits are valid metadata"));
        Ok(response)
    }

    #[instrument(skip_all, fields(customer_id = %request.get_ref().customer_id))]
    async fn delete_customer(
        &self,
        request: Request<v1::DeleteCustomerRequest>,
    ) -> Result<Response<v1::DeleteCustomerResponse>, Status> {
        Ok(Response::new(self.delete(request.into_inner()).await?))
    }
}
