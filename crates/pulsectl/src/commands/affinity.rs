//! `pulsectl affinity`: how many customers are attached to each category and how strongly
//! categories co-occur (`GetCategoryAffinity`).

use anyhow::Result;
use clap::Args;
use pulse_proto::v1;

use crate::gateway::Gateway;
use crate::output::{self, Output};
use crate::rpc_error::RpcResultExt;

/// Arguments of `pulsectl affinity`.
#[derive(Debug, Args)]
pub struct AffinityArgs {
    /// The categories, 1-64 distinct names.
    #[arg(required = true, value_name = "CATEGORY")]
    pub categories: Vec<String>,

    /// Attachment threshold in [0, 1]: affinity > 0 and >= this [default: 0, any activity].
    #[arg(long, value_name = "X")]
    pub threshold: Option<f64>,
}

/// Runs `pulsectl affinity`.
pub async fn run(address: &str, output: Output, args: &AffinityArgs) -> Result<()> {
    let gateway = Gateway::connect(address).await?;
    let request = v1::GetCategoryAffinityRequest {
        categories: args.categories.clone(),
        threshold: args.threshold.unwrap_or(0.0),
    };
    let affinity =
        gateway.activity().get_category_affinity(request).await.rpc("GetCategoryAffinity")?.into_inner();
    if output.is_json() {
        return output::print_json(&affinity);
    }
    let mut categories = output::table(&["CATEGORY", "CUSTOMERS"], &["CUSTOMERS"]);
    for category in &affinity.categories {
        categories.add_row([category.category.clone(), category.customers.to_string()]);
    }
    output::print_table(&categories)?;
    output::print_line(format!("\n{} customers considered\n", affinity.customers))?;
    let mut pairs = output::table(&["CATEGORY A", "CATEGORY B", "CUSTOMERS", "LIFT"], &["CUSTOMERS", "LIFT"]);
    for pair in &affinity.pairs {
        pairs.add_row([
            pair.category_a.clone(),
            pair.category_b.clone(),
            pair.customers.to_string(),
            format!("{:.3}", pair.lift),
        ]);
    }
    output::print_table(&pairs)
}
