//! `pulsectl define-segment`: creates or replaces a custom CEL segment
//! (`PutSegmentDefinition`).

use anyhow::Result;
use clap::Args;
use pulse_proto::v1;

use crate::gateway::Gateway;
use crate::output::{self, Output};
use crate::rpc_error::RpcResultExt;

/// Arguments of `pulsectl define-segment`.
#[derive(Debug, Args)]
pub struct DefineSegmentArgs {
    /// The segment id: 1-64 of [A-Za-z0-9_.-].
    pub id: String,

    /// CEL expression (bool) a non-member enters on, e.g. `activity_index > 60 && l30 >= 10`.
    #[arg(long, value_name = "EXPR")]
    pub enter: String,

    /// CEL expression (bool) a member leaves on [default: `!(enter)`].
    #[arg(long, value_name = "EXPR")]
    pub exit: Option<String>,

    /// Human-readable name.
    #[arg(long)]
    pub name: Option<String>,
}

/// Runs `pulsectl define-segment`.
pub async fn run(address: &str, output: Output, args: &DefineSegmentArgs) -> Result<()> {
    let gateway = Gateway::connect(address).await?;
    let definition = v1::SegmentDefinition {
        id: args.id.clone(),
        name: args.name.clone().unwrap_or_default(),
        enter: args.enter.clone(),
        exit: args.exit.clone().unwrap_or_default(),
    };
    let request = v1::PutSegmentDefinitionRequest { definition: Some(definition) };
    let stored =
        gateway.admin().put_segment_definition(request).await.rpc("PutSegmentDefinition")?.into_inner();
    if output.is_json() {
        return output::print_json(&stored);
    }
    output::print_table(&super::segment_definitions::table(std::slice::from_ref(&stored)))
}
