//! `pulsectl cluster`: the cluster's nodes and shards (`GetClusterState`), waiting until a new
//! cluster serves, and leader transfer (`TransferLeader`).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use pulse_proto::v1;

use crate::gateway::Gateway;
use crate::output::{self, Output, short_name};
use crate::rpc_error::RpcResultExt;
use crate::values;

/// How often `cluster wait` asks again.
const WAIT_POLL: Duration = Duration::from_millis(200);

/// `pulsectl cluster …`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Nodes (address, state, replicas, leaders) and shards (range, replicas, leader, applied
    /// index).
    Status,
    /// Waits until the cluster serves: at least `--nodes` nodes up, shards created, every shard
    /// with a leader. Fails after `--timeout`.
    Wait(WaitArgs),
    /// Moves the leadership of a shard to another of its voters.
    TransferLeader(TransferLeaderArgs),
    /// Hashes every replica of the shards at the same raft index and compares
    /// (CheckConsistency); exits non-zero if any replica differs.
    Check(CheckArgs),
}

/// Arguments of `pulsectl cluster check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Shards to check; none = every shard.
    pub shard_ids: Vec<u64>,
}

/// Arguments of `pulsectl cluster wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Nodes that must be up.
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
    /// How long to wait (`30s`, `2m`, `500ms`).
    #[arg(long, default_value = "60s", value_parser = values::duration_ms)]
    pub timeout: i64,
}

/// Arguments of `pulsectl cluster transfer-leader`.
#[derive(Debug, Args)]
pub struct TransferLeaderArgs {
    /// The shard.
    pub shard_id: u64,
    /// The node to lead it; none = the voter leading the fewest shards.
    #[arg(long, default_value_t = 0)]
    pub to: u64,
}

/// Runs `pulsectl cluster …`.
pub async fn run(address: &str, output: Output, command: &ClusterCommand) -> Result<()> {
    if let ClusterCommand::Wait(args) = command {
        return wait(address, output, args).await;
    }
    let gateway = Gateway::connect(address).await?;
    match command {
        ClusterCommand::Status => {
            let state = gateway
                .cluster()
                .get_cluster_state(v1::GetClusterStateRequest {})
                .await
                .rpc("GetClusterState")?;
            print_state(output, &state.into_inner())
        }
        ClusterCommand::Wait(_) => unreachable!("handled above"),
        ClusterCommand::Check(args) => {
            let request = v1::CheckConsistencyRequest { shard_ids: args.shard_ids.clone() };
            let response =
                gateway.cluster().check_consistency(request).await.rpc("CheckConsistency")?.into_inner();
            if output.is_json() {
                output::print_json(&response)?;
            } else {
                let mut table =
                    output::table(&["SHARD", "INDEX", "REPLICA HASHES", "EQUAL"], &["SHARD", "INDEX"]);
                for shard in &response.shards {
                    let hashes: Vec<String> =
                        shard.hashes.iter().map(|h| format!("{}:{:016x}", h.node_id, h.hash)).collect();
                    let index = shard.hashes.first().map_or(0, |h| h.applied_index);
                    table.add_row([
                        shard.shard_id.to_string(),
                        index.to_string(),
                        hashes.join(" "),
                        if shard.consistent { "yes" } else { "NO" }.to_owned(),
                    ]);
                }
                output::print_table(&table)?;
            }
            if !response.consistent {
                bail!("replicas differ");
            }
            Ok(())
        }
        ClusterCommand::TransferLeader(args) => {
            let request = v1::TransferLeaderRequest { shard_id: args.shard_id, to_node_id: args.to };
            let response =
                gateway.cluster().transfer_leader(request).await.rpc("TransferLeader")?.into_inner();
            if output.is_json() {
                return output::print_json(&response);
            }
            output::print_line(format!("shard {} is led by node {}", args.shard_id, response.leader))
        }
    }
}

/// Why a cluster does not serve yet; `None` once it does.
fn not_ready(state: &v1::ClusterState, nodes: usize) -> Option<String> {
    let up = state.nodes.iter().filter(|n| n.state == v1::NodeState::Up as i32).count();
    if up < nodes {
        return Some(format!("{up} of {nodes} nodes up"));
    }
    if state.shards.is_empty() {
        return Some("no shards yet".into());
    }
    let leaderless = state.shards.iter().filter(|s| s.leader == 0).count();
    (leaderless > 0).then(|| format!("{leaderless} of {} shards without a leader", state.shards.len()))
}

/// Polls `GetClusterState` at `address` (which may not even listen yet) until the cluster is
/// ready or the timeout passes.
async fn wait(address: &str, output: Output, args: &WaitArgs) -> Result<()> {
    let deadline = Instant::now() + Duration::from_millis(u64::try_from(args.timeout).unwrap_or(0));
    let mut gateway = None;
    loop {
        if gateway.is_none() {
            gateway = Gateway::connect(address).await.ok();
        }
        let answer = match &gateway {
            Some(gateway) => gateway.cluster().get_cluster_state(v1::GetClusterStateRequest {}).await,
            None => Err(tonic::Status::unavailable(format!("{address} does not accept connections yet"))),
        };
        let why = match answer {
            Ok(state) => {
                let state = state.into_inner();
                match not_ready(&state, args.nodes) {
                    None => return print_state(output, &state),
                    Some(reason) => reason,
                }
            }
            Err(status) => status.message().to_owned(),
        };
        if Instant::now() >= deadline {
            bail!("the cluster is not ready after {} ms: {why}", args.timeout);
        }
        tokio::time::sleep(WAIT_POLL).await;
    }
}

fn print_state(output: Output, state: &v1::ClusterState) -> Result<()> {
    if output.is_json() {
        return output::print_json(state);
    }
    let mut nodes =
        output::table(&["NODE", "ADDRESS", "STATE", "REPLICAS", "LEADERS"], &["NODE", "REPLICAS", "LEADERS"]);
    for node in &state.nodes {
        let node_state = v1::NodeState::try_from(node.state)
            .map_or_else(|_| node.state.to_string(), |s| short_name(s.as_str_name(), "NODE_STATE_"));
        nodes.add_row([
            node.node_id.to_string(),
            node.address.clone(),
            node_state,
            node.replica_count.to_string(),
            node.leader_count.to_string(),
        ]);
    }
    output::print_table(&nodes)?;
    output::print_line("")?;
    let mut shards = output::table(
        &["SHARD", "START HASH", "END HASH", "REPLICAS", "LEADER", "APPLIED"],
        &["SHARD", "LEADER", "APPLIED"],
    );
    for shard in &state.shards {
        let replicas: Vec<String> = shard.replicas.iter().map(u64::to_string).collect();
        shards.add_row([
            shard.shard_id.to_string(),
            format!("{:016x}", shard.start_hash),
            format!("{:016x}", shard.end_hash),
            replicas.join(","),
            if shard.leader == 0 { "-".to_owned() } else { shard.leader.to_string() },
            shard.applied_index.to_string(),
        ]);
    }
    output::print_table(&shards)
}
