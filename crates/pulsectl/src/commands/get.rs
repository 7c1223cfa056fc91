//! `pulsectl get`: the activity of one customer (`GetActivity`) or of several
//! (`BatchGetActivity`, unknown customers listed as missing).
//!
//! Tables: one customer prints every field of its CustomerActivity, then its categories;
//! several print one row per customer. `--json` prints the response message.

use anyhow::{Result, bail};
use clap::Args;
use pulse_proto::v1;

use crate::gateway::Gateway;
use crate::output::{self, Output, names, number, time_ms};
use crate::rpc_error::RpcResultExt;

/// Arguments of `pulsectl get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The customer ids (one: GetActivity; several: BatchGetActivity).
    #[arg(required = true, value_name = "CUSTOMER")]
    pub customers: Vec<String>,

    /// The instant to score at, Unix ms [default: now, the server's clock].
    #[arg(long, value_name = "MS")]
    pub as_of_ms: Option<i64>,

    /// Stale read: may miss the latest writes, cheaper (CONSISTENCY_STALE).
    #[arg(long)]
    pub stale: bool,
}

/// Runs `pulsectl get`.
pub async fn run(address: &str, output: Output, args: &GetArgs) -> Result<()> {
    let gateway = Gateway::connect(address).await?;
    let consistency = if args.stale { v1::Consistency::Stale } else { v1::Consistency::Linearizable } as i32;
    let as_of_ms = args.as_of_ms.unwrap_or(0);
    if let [customer_id] = &args.customers[..] {
        let request = v1::GetActivityRequest { customer_id: customer_id.clone(), as_of_ms, consistency };
        let activity = gateway.activity().get_activity(request).await.rpc("GetActivity")?.into_inner();
        if output.is_json() {
            return output::print_json(&activity);
        }
        return print_one(&activity);
    }
    let request = v1::BatchGetActivityRequest { customer_ids: args.customers.clone(), as_of_ms, consistency };
    let response = gateway.activity().batch_get_activity(request).await.rpc("BatchGetActivity")?.into_inner();
    if output.is_json() {
        return output::print_json(&response);
    }
    let mut table = output::table(
        &["CUSTOMER", "INDEX", "LEVEL", "SEGMENT", "LIFECYCLE", "TREND", "PURCHASES", "TOTAL", "LAST SEEN"],
        &["INDEX", "TREND", "PURCHASES", "TOTAL"],
    );
    for activity in &response.activities {
        table.add_row([
            activity.customer_id.clone(),
            number(activity.activity_index),
            names::level(activity.level),
            names::activity_segment(activity.segment),
            names::lifecycle(activity.lifecycle),
            number(activity.trend),
            activity.purchase_count.to_string(),
            number(activity.total_amount),
            time_ms(activity.last_seen_ms),
        ]);
    }
    output::print_table(&table)?;
    if !response.missing_customer_ids.is_empty() {
        eprintln!("not found: {}", response.missing_customer_ids.join(", "));
        if response.activities.is_empty() {
            bail!("none of the {} customers is known", args.customers.len());
        }
    }
    Ok(())
}

/// Every field of one customer's activity, then its categories.
fn print_one(a: &v1::CustomerActivity) -> Result<()> {
    let components = a.components.unwrap_or_default();
    let mut rows = vec![
        ("customer", a.customer_id.clone()),
        ("as of", time_ms(a.as_of_ms)),
        ("activity index", number(a.activity_index)),
        ("level", names::level(a.level)),
        (
            "components",
            format!(
                "recency {} frequency {} monetary {} engagement {}",
                number(components.recency),
                number(components.frequency),
                number(components.monetary),
                number(components.engagement)
            ),
        ),
        ("trend", number(a.trend)),
        ("segment", names::activity_segment(a.segment)),
        ("lifecycle", names::lifecycle(a.lifecycle)),
        ("weekday pattern", names::weekday(a.weekday_pattern)),
        ("active days 7/30/90", format!("{}/{}/{}", a.active_days_7, a.active_days_30, a.active_days_90)),
        ("first seen", time_ms(a.first_seen_ms)),
        ("last seen", time_ms(a.last_seen_ms)),
        ("recency days", number(a.recency_days)),
        ("last purchase", a.last_purchase_ms.map_or_else(|| "never".to_owned(), time_ms)),
        ("purchases", a.purchase_count.to_string()),
        ("total amount", number(a.total_amount)),
        ("average order value", number(a.average_order_value)),
    ];
    rows.push((
        "rfm",
        a.rfm.as_ref().map_or_else(
            || "-".to_owned(),
            |rfm| format!("{} (r {} f {} m {})", rfm.segment, rfm.r, rfm.f, rfm.m),
        ),
    ));
    rows.push((
        "lifetime",
        a.lifetime.as_ref().map_or_else(
            || "-".to_owned(),
            |l| format!("p_alive {:.3}, expected purchases 30d {:.3}", l.p_alive, l.expected_purchases_30d),
        ),
    ));
    let custom = if a.custom_segments.is_empty() { "-".to_owned() } else { a.custom_segments.join(", ") };
    rows.push(("custom segments", custom));
    output::print_table(&output::key_values(rows))?;
    if a.categories.is_empty() {
        return Ok(());
    }
    output::print_line("")?;
    let mut table = output::table(
        &["CATEGORY", "INDEX", "AFFINITY", "TREND", "LAST SEEN"],
        &["INDEX", "AFFINITY", "TREND"],
    );
    for category in &a.categories {
        table.add_row([
            category.category.clone(),
            number(category.activity_index),
            number(category.affinity),
            number(category.trend),
            time_ms(category.last_seen_ms),
        ]);
    }
    output::print_table(&table)
}
