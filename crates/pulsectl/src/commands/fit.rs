//! `pulsectl fit`: fits the BG/NBD lifetime model over every customer with a purchase and
//! installs it as a new scoring config version (`FitLifetimeModel`).

use anyhow::Result;
use clap::Args;
use pulse_proto::v1;

use crate::gateway::Gateway;
use crate::output::{self, Output};
use crate::rpc_error::RpcResultExt;

/// Arguments of `pulsectl fit`.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// The instant T is measured to, Unix ms [default: now, the server's clock].
    #[arg(long, value_name = "MS")]
    pub as_of_ms: Option<i64>,

    /// Fit the modified BG/NBD (one-time buyers can be dead).
    #[arg(long)]
    pub modified: bool,
}

/// Runs `pulsectl fit`.
pub async fn run(address: &str, output: Output, args: &FitArgs) -> Result<()> {
    let gateway = Gateway::connect(address).await?;
    let request =
        v1::FitLifetimeModelRequest { as_of_ms: args.as_of_ms.unwrap_or(0), modified: args.modified };
    let model = gateway.admin().fit_lifetime_model(request).await.rpc("FitLifetimeModel")?.into_inner();
    if output.is_json() {
        return output::print_json(&model);
    }
    output::print_table(&output::key_values([
        ("model", if model.modified { "modified BG/NBD" } else { "BG/NBD" }.to_owned()),
        ("r", format!("{:.6}", model.r)),
        ("alpha (days)", format!("{:.6}", model.alpha)),
        ("a", format!("{:.6}", model.a)),
        ("b", format!("{:.6}", model.b)),
        ("customers", model.customers.to_string()),
        ("log-likelihood", format!("{:.3}", model.log_likelihood)),
        ("config version", model.version.to_string()),
    ]))
}
