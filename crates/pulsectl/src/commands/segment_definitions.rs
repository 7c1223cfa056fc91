//! `pulsectl segment-definitions`: every custom segment definition, ordered by id
//! (`ListSegmentDefinitions`).

use anyhow::Result;
use comfy_table::Table;
use pulse_proto::v1;

use crate::gateway::Gateway;
use crate::output::{self, Output};
use crate::rpc_error::RpcResultExt;

/// Runs `pulsectl segment-definitions`.
pub async fn run(address: &str, output: Output) -> Result<()> {
    let gateway = Gateway::connect(address).await?;
    let request = v1::ListSegmentDefinitionsRequest {};
    let list =
        gateway.admin().list_segment_definitions(request).await.rpc("ListSegmentDefinitions")?.into_inner();
    if output.is_json() {
        return output::print_json(&list);
    }
    output::print_table(&table(&list.definitions))
}

/// One row per definition: id, name, enter and exit rules.
pub fn table(definitions: &[v1::SegmentDefinition]) -> Table {
    let mut table = output::table(&["ID", "NAME", "ENTER", "EXIT"], &[]);
    for definition in definitions {
        let exit = if definition.exit.is_empty() {
            format!("!({})", definition.enter)
        } else {
            definition.exit.clone()
        };
        table.add_row([definition.id.clone(), definition.name.clone(), definition.enter.clone(), exit]);
    }
    table
}
