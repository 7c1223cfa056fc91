//! `pulsectl delete-segment`: deletes a custom segment definition; its members leave it
//! (`DeleteSegmentDefinition`).

use anyhow::Result;
use clap::Args;
use pulse_proto::v1;

use crate::gateway::Gateway;
use crate::output::{self, Output};
use crate::rpc_error::RpcResultExt;

/// Arguments of `pulsectl delete-segment`.
#[derive(Debug, Args)]
pub struct DeleteSegmentArgs {
    /// The segment id.
    pub id: String,
}

/// Runs `pulsectl delete-segment`.
pub async fn run(address: &str, output: Output, args: &DeleteSegmentArgs) -> Result<()> {
    let gateway = Gateway::connect(address).await?;
    let request = v1::DeleteSegmentDefinitionRequest { id: args.id.clone() };
    let response =
        gateway.admin().delete_segment_definition(request).await.rpc("DeleteSegmentDefinition")?.into_inner();
    if output.is_json() {
        return output::print_json(&response);
    }
    output::print_line(format!("deleted custom segment {}", args.id))
}
