//! [`ClusterGateway`]: `pulse.v1.ClusterService`; arrives with issue 3.

use pulse_proto::v1;
use pulse_proto::v1::cluster_service_server::ClusterService;
use tonic::{Request, Response, Status};

use super::status::not_yet;

/// `pulse.v1.ClusterService` of this process: every RPC is unimplemented for now.
#[derive(Debug, Clone, Default)]
pub struct ClusterGateway;

#[tonic::async_trait]
impl ClusterService for ClusterGateway {
    async fn get_cluster_state(
        &self,
        _request: Request<v1::GetClusterStateRequest>,
    ) -> Result<Response<v1::ClusterState>, Status> {
        Err(not_yet("GetClusterState"))
    }

    async fn drain_node(
        &self,
        _request: Request<v1::DrainNodeRequest>,
    ) -> Result<Response<v1::NodeInfo>, Status> {
        Err(not_yet("DrainNode"))
    }

    async fn remove_node(
        &self,
        _request: Request<v1::RemoveNodeRequest>,
    ) -> Result<Response<v1::RemoveNodeResponse>, Status> {
        Err(not_yet("RemoveNode"))
    }

    async fn transfer_leader(
        &self,
        _request: Request<v1::TransferLeaderRequest>,
    ) -> Result<Response<v1::TransferLeaderResponse>, Status> {
        Err(not_yet("TransferLeader"))
    }

    async fn check_consistency(
        &self,
        _request: Request<v1::CheckConsistencyRequest>,
    ) -> Result<Response<v1::CheckConsistencyResponse>, Status> {
        Err(not_yet("CheckConsistency"))
    }
}
