//! `pulsectl migrations`: how many customers moved between the segments of one dimension in a
//! window (`GetMigrationMatrix`). The window starts at `--from-ms`, or `--since` before now.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::{ArgGroup, Args};
use pulse_proto::v1;

use crate::gateway::Gateway;
use crate::output::{self, Output, segment_or_none};
use crate::rpc_error::RpcResultExt;
use crate::values;

/// Arguments of `pulsectl migrations`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("start").required(true).args(["from_ms", "since"])))]
pub struct MigrationsArgs {
    /// activity-segment, lifecycle, level, rfm or custom (any case; DIMENSION_* too).
    #[arg(value_parser = values::dimension)]
    pub dimension: v1::Dimension,

    /// Start of the window, Unix ms.
    #[arg(long, value_name = "MS")]
    pub from_ms: Option<i64>,

    /// Start of the window as a duration before now by this machine's clock (7d, 12h, 30m).
    #[arg(long, value_name = "DURATION", value_parser = values::duration_ms)]
    pub since: Option<i64>,

    /// End of the window, Unix ms [default: now, the server's clock].
    #[arg(long, value_name = "MS")]
    pub to_ms: Option<i64>,
}

/// Runs `pulsectl migrations`.
pub async fn run(address: &str, output: Output, args: &MigrationsArgs) -> Result<()> {
    let gateway = Gateway::connect(address).await?;
    let from_ms = match (args.from_ms, args.since) {
        (Some(from_ms), _) => from_ms,
        (None, Some(since_ms)) => now_ms()? - since_ms,
        (None, None) => anyhow::bail!("--from-ms or --since is required"),
    };
    let request = v1::GetMigrationMatrixRequest {
        dimension: args.dimension as i32,
        from_ms,
        to_ms: args.to_ms.unwrap_or(0),
    };
    let matrix =
        gateway.activity().get_migration_matrix(request).await.rpc("GetMigrationMatrix")?.into_inner();
    if output.is_json() {
        return output::print_json(&matrix);
    }
    let mut table = output::table(&["FROM", "TO", "CUSTOMERS", "RATE"], &["CUSTOMERS", "RATE"]);
    for cell in &matrix.cells {
        table.add_row([
            segment_or_none(&cell.from).to_owned(),
            segment_or_none(&cell.to).to_owned(),
            cell.customers.to_string(),
            format!("{:.3}", cell.rate),
        ]);
    }
    output::print_table(&table)
}

/// This machine's clock, Unix ms.
fn now_ms() -> Result<i64> {
    let since_epoch =
        SystemTime::now().duration_since(UNIX_EPOCH).context("the system clock is before 1970")?;
    Ok(since_epoch.as_millis() as i64)
}
