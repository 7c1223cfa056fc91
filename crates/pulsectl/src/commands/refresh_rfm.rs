//! `pulsectl refresh-rfm`: recomputes the RFM quintile edges from every shard now and installs
//! them (`RefreshRfmEdges`).

use anyhow::Result;
use pulse_proto::v1;

use crate::gateway::Gateway;
use crate::output::{self, Output};
use crate::rpc_error::RpcResultExt;

/// Runs `pulsectl refresh-rfm`.
pub async fn run(address: &str, output: Output) -> Result<()> {
    let gateway = Gateway::connect(address).await?;
    let request = v1::RefreshRfmEdgesRequest {};
    let edges = gateway.admin().refresh_rfm_edges(request).await.rpc("RefreshRfmEdges")?.into_inner();
    if output.is_json() {
        return output::print_json(&edges);
    }
    let cuts = |values: &[f64]| values.iter().map(|v| format!("{v:.2}")).collect::<Vec<_>>().join(", ");
    output::print_table(&output::key_values([
        ("edges version", edges.version.to_string()),
        ("customers", edges.customers.to_string()),
        ("recency days", cuts(&edges.recency_days)),
        ("frequency", cuts(&edges.frequency)),
        ("monetary", cuts(&edges.monetary)),
    ]))
}
