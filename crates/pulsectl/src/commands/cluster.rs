//! `pulsectl cluster`: the cluster's nodes and shards (`GetClusterState`), waiting until a new
//! cluster serves, leader transfer (`TransferLeader`), consistency checks, and scale-in:
//! `drain` (`DrainNode`, then a progress bar until the node holds nothing) and `remove`
//! (`RemoveNode`).

use std::io::{IsTerminal, Write};
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
/// How often `cluster drain` checks the node's progress.
const DRAIN_POLL: Duration = Duration::from_secs(1);

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
    /// Moves every replica and leadership off a node (DrainNode) and waits, with a progress
    /// bar, until it holds none (DRAINED): then it can be stopped and removed.
    Drain(DrainArgs),
    /// Forgets a node for good (RemoveNode): a drained node, or a down one whose replicas are
    /// then re-created elsewhere.
    Remove(RemoveArgs),
}

/// Arguments of `pulsectl cluster drain`.
#[derive(Debug, Args)]
pub struct DrainArgs {
    /// The node: its id, or its address HOST:PORT as `cluster status` shows it.
    pub node: String,
    /// How long to wait for the drain to finish (`90s`, `10m`).
    #[arg(long, default_value = "10m", value_parser = values::duration_ms)]
    pub timeout: i64,
    /// Start the drain and return without waiting.
    #[arg(long)]
    pub no_wait: bool,
}

/// Arguments of `pulsectl cluster remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The node: its id, or its address HOST:PORT as `cluster status` shows it.
    pub node: String,
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
        ClusterCommand::Status => print_state(output, &cluster_state(&gateway).await?),
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
        ClusterCommand::Drain(args) => drain(&gateway, output, args).await,
        ClusterCommand::Remove(args) => {
            let node_id = resolve_node(&gateway, &args.node).await?;
            gateway.cluster().remove_node(v1::RemoveNodeRequest { node_id }).await.rpc("RemoveNode")?;
            if output.is_json() {
                output::print_json(&v1::RemoveNodeResponse {})
            } else {
                output::print_line(format!("node {node_id} removed"))
            }
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

/// The cluster as the gateway sees it.
async fn cluster_state(gateway: &Gateway) -> Result<v1::ClusterState> {
    Ok(gateway
        .cluster()
        .get_cluster_state(v1::GetClusterStateRequest {})
        .await
        .rpc("GetClusterState")?
        .into_inner())
}

/// The node id named by `node`: a number, or the address of a node of the cluster.
async fn resolve_node(gateway: &Gateway, node: &str) -> Result<u64> {
    if let Ok(node_id) = node.parse::<u64>() {
        return Ok(node_id);
    }
    let state = cluster_state(gateway).await?;
    match state.nodes.iter().find(|n| n.address == node) {
        Some(found) => Ok(found.node_id),
        None => {
            let known: Vec<&str> = state.nodes.iter().map(|n| n.address.as_str()).collect();
            bail!(
                "node: {node:?} is neither a node id nor the address of a node (nodes: {})",
                known.join(", ")
            )
        }
    }
}

/// Starts draining the node, then polls its replica count until it is DRAINED, drawing a
/// progress bar (one line per change when stderr is not a terminal).
async fn drain(gateway: &Gateway, output: Output, args: &DrainArgs) -> Result<()> {
    let node_id = resolve_node(gateway, &args.node).await?;
    let started =
        gateway.cluster().drain_node(v1::DrainNodeRequest { node_id }).await.rpc("DrainNode")?.into_inner();
    let total = started.replica_count.max(1);
    let deadline = Instant::now() + Duration::from_millis(u64::try_from(args.timeout).unwrap_or(0));
    let terminal = std::io::stderr().is_terminal();
    let mut last_drawn = None;
    let mut node = started;
    while !args.no_wait && node.state != v1::NodeState::Drained as i32 {
        let moved = total.saturating_sub(node.replica_count);
        if last_drawn != Some((moved, node.leader_count)) {
            draw_progress(node_id, moved, total, node.leader_count, terminal);
            last_drawn = Some((moved, node.leader_count));
        }
        if Instant::now() >= deadline {
            if terminal {
                eprintln!();
            }
            bail!(
                "node {node_id} still holds {} replicas after {} ms (is there a node to move them to?); the drain goes on",
                node.replica_count,
                args.timeout
            );
        }
        tokio::time::sleep(DRAIN_POLL).await;
        let state = cluster_state(gateway).await?;
        node = state
            .nodes
            .into_iter()
            .find(|n| n.node_id == node_id)
            .ok_or_else(|| anyhow::anyhow!("node {node_id} was removed while draining"))?;
    }
    if !args.no_wait {
        draw_progress(node_id, total, total, 0, terminal);
        if terminal {
            eprintln!();
        }
    }
    if output.is_json() {
        return output::print_json(&node);
    }
    let state = v1::NodeState::try_from(node.state)
        .map_or_else(|_| node.state.to_string(), |s| short_name(s.as_str_name(), "NODE_STATE_"));
    output::print_line(format!(
        "node {node_id} {} ({state}): {} replicas left",
        node.address, node.replica_count
    ))
}

fn draw_progress(node_id: u64, moved: u32, total: u32, leaders: u32, terminal: bool) {
    const WIDTH: u32 = 30;
    let filled = (moved * WIDTH / total) as usize;
    let bar = format!("{}{}", "#".repeat(filled), "-".repeat(WIDTH as usize - filled));
    let line =
        format!("draining node {node_id} [{bar}] {moved}/{total} replicas moved, {leaders} leaders left");
    let mut stderr = std::io::stderr();
    let _ = if terminal { write!(stderr, "\r{line}") } else { writeln!(stderr, "{line}") };
    let _ = stderr.flush();
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
        // Learners (a move in progress) follow the voters, marked with +.
        let replicas: Vec<String> = shard
            .replicas
            .iter()
            .map(u64::to_string)
            .chain(shard.learners.iter().map(|learner| format!("+{learner}")))
            .collect();
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
