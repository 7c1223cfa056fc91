//! The connection to a gateway (any pulsed process) and the clients of its services.

use std::time::Duration;

use anyhow::{Context, Result};
use pulse_proto::v1::activity_service_client::ActivityServiceClient;
use pulse_proto::v1::admin_service_client::AdminServiceClient;
use pulse_proto::v1::cluster_service_client::ClusterServiceClient;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_client::HealthClient;

/// How long connecting may take before the command fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connected channel to one gateway.
#[derive(Debug, Clone)]
pub struct Gateway {
    channel: Channel,
}

impl Gateway {
    /// Connects to `address`: `HOST:PORT`, or a URL with its scheme (`http://HOST:PORT`).
    pub async fn connect(address: &str) -> Result<Self> {
        let uri = if address.contains("://") { address.to_owned() } else { format!("http://{address}") };
        let endpoint = Endpoint::from_shared(uri.clone())
            .with_context(|| format!("--addr {address:?} is not HOST:PORT or a URL"))?
            .connect_timeout(CONNECT_TIMEOUT);
        let channel = endpoint.connect().await.with_context(|| {
            format!("cannot connect to {uri} (is pulsed running? see --addr / PULSE_ADDR)")
        })?;
        Ok(Self { channel })
    }

    /// A client of `pulse.v1.ActivityService`.
    pub fn activity(&self) -> ActivityServiceClient<Channel> {
        ActivityServiceClient::new(self.channel.clone())
    }

    /// A client of `pulse.v1.AdminService`.
    pub fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone())
    }

    /// A client of `pulse.v1.ClusterService`.
    pub fn cluster(&self) -> ClusterServiceClient<Channel> {
        ClusterServiceClient::new(self.channel.clone())
    }

    /// A client of `grpc.health.v1.Health`.
    pub fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel.clone())
    }
}
