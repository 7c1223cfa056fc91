//! `pulsectl top`: the customers with the highest activity index, overall or within one
//! category (`TopCustomers`).

use anyhow::Result;
use clap::Args;
use pulse_proto::v1;

use crate::gateway::Gateway;
use crate::output::{self, Output, number};
use crate::rpc_error::RpcResultExt;

/// Arguments of `pulsectl top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// Rank by the activity index within this category [default: the overall index].
    #[arg(long)]
    pub category: Option<String>,

    /// Number of customers, 1-10000 [default: 10].
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
}

/// Runs `pulsectl top`.
pub async fn run(address: &str, output: Output, args: &TopArgs) -> Result<()> {
    let gateway = Gateway::connect(address).await?;
    let request = v1::TopCustomersRequest {
        category: args.category.clone().unwrap_or_default(),
        limit: args.limit.unwrap_or(0),
    };
    let top = gateway.activity().top_customers(request).await.rpc("TopCustomers")?.into_inner();
    if output.is_json() {
        return output::print_json(&top);
    }
    let mut table = output::table(&["RANK", "CUSTOMER", "INDEX"], &["RANK", "INDEX"]);
    for (rank, customer) in top.customers.iter().enumerate() {
        table.add_row([
            (rank + 1).to_string(),
            customer.customer_id.clone(),
            number(customer.activity_index),
        ]);
    }
    output::print_table(&table)
}
