//! [`AdminGateway`]: `pulse.v1.AdminService` — the scoring config, custom segment definitions,
//! model fits (through [`ScoringAdmin`]) and the manual clock.

use pulse_proto::v1;
use pulse_proto::v1::admin_service_server::AdminService;
use tonic::{Request, Response, Status};
use tracing::{info, instrument};

use crate::clock::Clock;
use crate::local_shards::LocalShards;
use crate::scoring_admin::{ConfigShards, ScoringAdmin};

/// Most `Tick` rounds one `AdvanceClock` proposes before answering (each round re-evaluates up
/// to `tick_max_customers` customers per shard).
const MAX_SETTLE_ROUNDS: usize = 1_000;

/// `pulse.v1.AdminService` of this process, over the shards `S` administers (its own in
/// standalone, the cluster's otherwise).
#[derive(Debug, Clone)]
pub struct AdminGateway<S = LocalShards> {
    clock: Clock,
    admin: ScoringAdmin<S>,
    tick_max_customers: u32,
}

impl<S: ConfigShards> AdminGateway<S> {
    /// An admin service changing the config through `admin` and moving `clock` (when manual);
    /// `AdvanceClock` ticks with at most `tick_max_customers` per entry.
    pub fn new(clock: Clock, admin: ScoringAdmin<S>, tick_max_customers: u32) -> Self {
        Self { clock, admin, tick_max_customers }
    }
}

#[tonic::async_trait]
impl<S: ConfigShards> AdminService for AdminGateway<S> {
    #[instrument(skip_all)]
    async fn get_scoring_config(
        &self,
        _request: Request<v1::GetScoringConfigRequest>,
    ) -> Result<Response<v1::ScoringConfig>, Status> {
        let scoring = self.admin.current().await?;
        Ok(Response::new(v1::ScoringConfig::from(&scoring.config)))
    }

    #[instrument(skip_all)]
    async fn update_scoring_config(
        &self,
        request: Request<v1::UpdateScoringConfigRequest>,
    ) -> Result<Response<v1::ScoringConfig>, Status> {
        let config = self.admin.update_config(request.into_inner().config).await?;
        Ok(Response::new(v1::ScoringConfig::from(config)))
    }

    #[instrument(skip_all)]
    async fn put_segment_definition(
        &self,
        request: Request<v1::PutSegmentDefinitionRequest>,
    ) -> Result<Response<v1::SegmentDefinition>, Status> {
        let definition = self.admin.put_segment(request.into_inner().definition).await?;
        Ok(Response::new(v1::SegmentDefinition::from(definition)))
    }

    #[instrument(skip_all, fields(id = %request.get_ref().id))]
    async fn delete_segment_definition(
        &self,
        request: Request<v1::DeleteSegmentDefinitionRequest>,
    ) -> Result<Response<v1::DeleteSegmentDefinitionResponse>, Status> {
        self.admin.delete_segment(&request.into_inner().id).await?;
        Ok(Response::new(v1::DeleteSegmentDefinitionResponse {}))
    }

    #[instrument(skip_all)]
    async fn list_segment_definitions(
        &self,
        _request: Request<v1::ListSegmentDefinitionsRequest>,
    ) -> Result<Response<v1::ListSegmentDefinitionsResponse>, Status> {
        let scoring = self.admin.current().await?;
        let definitions = scoring.segments.into_iter().map(v1::SegmentDefinition::from).collect();
        Ok(Response::new(v1::ListSegmentDefinitionsResponse { definitions }))
    }

    #[instrument(skip_all, fields(as_of_ms = request.get_ref().as_of_ms))]
    async fn fit_lifetime_model(
        &self,
        request: Request<v1::FitLifetimeModelRequest>,
    ) -> Result<Response<v1::LifetimeModel>, Status> {
        let request = request.into_inner();
        let model = self.admin.fit_lifetime_model(request.as_of_ms, request.modified).await?;
        Ok(Response::new(model))
    }

    #[instrument(skip_all)]
    async fn refresh_rfm_edges(
        &self,
        _request: Request<v1::RefreshRfmEdgesRequest>,
    ) -> Result<Response<v1::RfmEdges>, Status> {
        let refreshed = self.admin.refresh_rfm_edges().await?;
        Ok(Response::new(v1::RfmEdges {
            customers: refreshed.customers,
            ..v1::RfmEdges::from(&refreshed.edges)
        }))
    }

    #[instrument(skip_all, fields(now_ms = request.get_ref().now_ms))]
    async fn advance_clock(
        &self,
        request: Request<v1::AdvanceClockRequest>,
    ) -> Result<Response<v1::AdvanceClockResponse>, Status> {
        let now_ms = self.clock.advance(request.into_inner().now_ms)?;
        self.admin.shards().settle(now_ms, self.tick_max_customers, MAX_SETTLE_ROUNDS).await?;
        info!(now_ms, "manual clock advanced");
        Ok(Response::new(v1::AdvanceClockResponse { now_ms }))
    }
}
