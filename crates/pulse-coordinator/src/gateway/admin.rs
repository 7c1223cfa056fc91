//! [`AdminGateway`]: `pulse.v1.AdminService`. `AdvanceClock` works; the rest arrives with issue 3.

use pulse_proto::v1;
use pulse_proto::v1::admin_service_server::AdminService;
use tonic::{Request, Response, Status};
use tracing::{info, instrument};

use super::status::not_yet;
use crate::clock::Clock;

/// `pulse.v1.AdminService` of this process.
#[derive(Debug, Clone)]
pub struct AdminGateway {
    clock: Clock,
}

impl AdminGateway {
    /// An admin service moving `clock` (when manual).
    pub fn new(clock: Clock) -> Self {
        Self { clock }
    }
}

#[tonic::async_trait]
impl AdminService for AdminGateway {
    async fn get_scoring_config(
        &self,
        _request: Request<v1::GetScoringConfigRequest>,
    ) -> Result<Response<v1::ScoringConfig>, Status> {
        Err(not_yet("GetScoringConfig"))
    }

    async fn update_scoring_config(
        &self,
        _request: Request<v1::UpdateScoringConfigRequest>,
    ) -> Result<Response<v1::ScoringConfig>, Status> {
        Err(not_yet("UpdateScoringConfig"))
    }

    async fn put_segment_definition(
        &self,
        _request: Request<v1::PutSegmentDefinitionRequest>,
    ) -> Result<Response<v1::SegmentDefinition>, Status> {
        Err(not_yet("PutSegmentDefinition"))
    }

    async fn delete_segment_definition(
        &self,
        _request: Request<v1::DeleteSegmentDefinitionRequest>,
    ) -> Result<Response<v1::DeleteSegmentDefinitionResponse>, Status> {
        Err(not_yet("DeleteSegmentDefinition"))
    }

    async fn list_segment_definitions(
        &self,
        _request: Request<v1::ListSegmentDefinitionsRequest>,
    ) -> Result<Response<v1::ListSegmentDefinitionsResponse>, Status> {
        Err(not_yet("ListSegmentDefinitions"))
    }

    async fn fit_lifetime_model(
        &self,
        _request: Request<v1::FitLifetimeModelRequest>,
    ) -> Result<Response<v1::LifetimeModel>, Status> {
        Err(not_yet("FitLifetimeModel"))
    }

    async fn refresh_rfm_edges(
        &self,
        _request: Request<v1::RefreshRfmEdgesRequest>,
    ) -> Result<Response<v1::RfmEdges>, Status> {
        Err(not_yet("RefreshRfmEdges"))
    }

    #[instrument(skip_all, fields(now_ms = request.get_ref().now_ms))]
    async fn advance_clock(
        &self,
        request: Request<v1::AdvanceClockRequest>,
    ) -> Result<Response<v1::AdvanceClockResponse>, Status> {
        let now_ms = self.clock.advance(request.into_inner().now_ms).map_err(Status::from)?;
        info!(now_ms, "manual clock advanced");
        Ok(Response::new(v1::AdvanceClockResponse { now_ms }))
    }
}
