//! `pulsectl advance-clock`: moves the manual clock of a server started with `--clock manual`
//! (`AdvanceClock`); time-driven segment changes up to the new time are applied before it
//! answers.

use anyhow::Result;
use clap::Args;
use pulse_proto::v1;

use crate::gateway::Gateway;
use crate::output::{self, Output, time_ms};
use crate::rpc_error::RpcResultExt;

/// Arguments of `pulsectl advance-clock`.
#[derive(Debug, Args)]
pub struct AdvanceClockArgs {
    /// The new time, Unix ms; not before the current clock.
    #[arg(value_name = "NOW_MS")]
    pub now_ms: i64,
}

/// Runs `pulsectl advance-clock`.
pub async fn run(address: &str, output: Output, args: &AdvanceClockArgs) -> Result<()> {
    let gateway = Gateway::connect(address).await?;
    let request = v1::AdvanceClockRequest { now_ms: args.now_ms };
    let response = gateway.admin().advance_clock(request).await.rpc("AdvanceClock")?.into_inner();
    if output.is_json() {
        return output::print_json(&response);
    }
    output::print_line(format!("clock: {} ({})", response.now_ms, time_ms(response.now_ms)))
}
