//! `pulsectl segments`: the members of one segment (`ListSegmentMembers`), ordered by customer
//! id; with `--page-size` the token that continues the listing is printed on stderr.

use anyhow::Result;
use clap::Args;
use pulse_proto::v1;

use crate::gateway::Gateway;
use crate::output::{self, Output, number, time_ms};
use crate::rpc_error::RpcResultExt;
use crate::values;

/// Arguments of `pulsectl segments`.
#[derive(Debug, Args)]
pub struct SegmentsArgs {
    /// activity-segment, lifecycle, level, rfm or custom (any case; DIMENSION_* too).
    #[arg(value_parser = values::dimension)]
    pub dimension: v1::Dimension,

    /// The segment within the dimension: DAILY, NEW, HIGH, "At risk", a custom segment id.
    pub segment: String,

    /// At most this many members [default: the whole segment].
    #[arg(long, value_name = "N")]
    pub page_size: Option<u32>,

    /// Continue after the member that carried this token.
    #[arg(long, value_name = "TOKEN")]
    pub page_token: Option<String>,
}

/// Runs `pulsectl segments`.
pub async fn run(address: &str, output: Output, args: &SegmentsArgs) -> Result<()> {
    let gateway = Gateway::connect(address).await?;
    let request = v1::ListSegmentMembersRequest {
        dimension: args.dimension as i32,
        segment: args.segment.clone(),
        page_size: args.page_size.unwrap_or(0),
        page_token: args.page_token.clone().unwrap_or_default(),
    };
    let mut members =
        gateway.activity().list_segment_members(request).await.rpc("ListSegmentMembers")?.into_inner();
    let mut table = output::table(&["CUSTOMER", "INDEX", "SINCE"], &["INDEX"]);
    let mut last_token = String::new();
    let mut count = 0u64;
    while let Some(member) = members.message().await.rpc("ListSegmentMembers")? {
        count += 1;
        if output.is_json() {
            output::print_json(&member)?;
        } else {
            table.add_row([
                member.customer_id.clone(),
                number(member.activity_index),
                time_ms(member.since_ms),
            ]);
        }
        last_token = member.next_page_token;
    }
    if !output.is_json() {
        output::print_table(&table)?;
        eprintln!("{count} members");
        if !last_token.is_empty() {
            eprintln!("more: --page-token {last_token}");
        }
    }
    Ok(())
}
