//! `pulsectl health`: asks the standard gRPC health service (`grpc.health.v1.Health/Check`)
//! whether the server, or one of its services, is serving. Not serving is a non-zero exit.

use anyhow::{Result, bail};
use clap::Args;
use serde_json::json;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as WireStatus;

use crate::gateway::Gateway;
use crate::output::{self, Output};
use crate::rpc_error::RpcResultExt;

/// Arguments of `pulsectl health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// A service to ask about, e.g. `pulse.v1.ActivityService` [default: the whole server].
    #[arg(long, default_value = "")]
    pub service: String,
}

/// Runs `pulsectl health`.
pub async fn run(address: &str, output: Output, args: &HealthArgs) -> Result<()> {
    let gateway = Gateway::connect(address).await?;
    let request = HealthCheckRequest { service: args.service.clone() };
    let response = gateway.health().check(request).await.rpc("Health.Check")?.into_inner();
    let status = WireStatus::try_from(response.status).unwrap_or(WireStatus::Unknown);
    let name = status.as_str_name();
    if output.is_json() {
        output::print_json(&json!({ "status": name }))?;
    } else {
        output::print_line(name)?;
    }
    if status != WireStatus::Serving {
        bail!("{} is {name}", if args.service.is_empty() { "the server" } else { &args.service });
    }
    Ok(())
}
