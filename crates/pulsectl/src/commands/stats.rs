//! `pulsectl stats`: segment sizes of one dimension and DAU/WAU/MAU (`GetSegmentStats`).

use anyhow::Result;
use clap::Args;
use pulse_proto::v1;

use crate::gateway::Gateway;
use crate::output::{self, Output, number};
use crate::rpc_error::RpcResultExt;
use crate::values;

/// Arguments of `pulsectl stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// activity-segment, lifecycle, level, rfm or custom (any case; DIMENSION_* too).
    #[arg(value_parser = values::dimension)]
    pub dimension: v1::Dimension,
}

/// Runs `pulsectl stats`.
pub async fn run(address: &str, output: Output, args: &StatsArgs) -> Result<()> {
    let gateway = Gateway::connect(address).await?;
    let request = v1::GetSegmentStatsRequest { dimension: args.dimension as i32 };
    let stats = gateway.activity().get_segment_stats(request).await.rpc("GetSegmentStats")?.into_inner();
    if output.is_json() {
        return output::print_json(&stats);
    }
    let mut table = output::table(&["SEGMENT", "CUSTOMERS", "MEAN INDEX"], &["CUSTOMERS", "MEAN INDEX"]);
    for segment in &stats.segments {
        table.add_row([
            segment.segment.clone(),
            segment.customers.to_string(),
            number(segment.mean_activity_index),
        ]);
    }
    output::print_table(&table)?;
    output::print_line("")?;
    output::print_table(&output::key_values([
        ("active 1d (DAU)", stats.active_1d.to_string()),
        ("active 7d (WAU)", stats.active_7d.to_string()),
        ("active 30d (MAU)", stats.active_30d.to_string()),
        ("stickiness (DAU/MAU)", format!("{:.3}", stats.stickiness)),
    ]))
}
