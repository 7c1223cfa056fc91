//! Starting, serving and stopping the cluster roles: [`run_coordinator`] and [`run_node`].
//!
//! Both serve the whole public API (any process answers any request, through the
//! [`RoutingGateway`]), health and reflection, and the raft transport; a coordinator also serves
//! `NodeRegistry`. Shutdown: stop accepting and drain in-flight calls (open watches are told to
//! end first), stop the background loops, then shut the raft runtime down so every
//! acknowledged write is on disk.

use std::future::Future;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use pulse_proto::PUBLIC_FILE_DESCRIPTOR_SET;
use pulse_proto::internal::v1::node_registry_server::NodeRegistryServer;
use pulse_proto::internal::v1::shard_admin_server::ShardAdminServer;
use pulse_proto::v1::activity_service_server::ActivityServiceServer;
use pulse_proto::v1::admin_service_server::AdminServiceServer;
use pulse_proto::v1::cluster_service_client::ClusterServiceClient;
use pulse_proto::v1::cluster_service_server::ClusterServiceServer;
use pulse_raft::{RaftConfig, RaftRuntime};
use pulse_storage::RocksEngine;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tracing::{debug, info};

use super::cluster_gateway::ClusterServiceGateway;
use super::coordinator::{Coordinator, CoordinatorSettings};
use super::metadata::{METADATA_GROUP_ID, MetadataStateMachine};
use super::node::StorageNode;
use super::router::Router;
use super::routing_gateway::{LocalReplicas, RoutingGateway};
use super::scheduler::Scheduler;
use super::shard_admin::{ClusterShards, ShardAdminService};
use super::{new_transport, raft_transport_server, set_peer_address};
use crate::clock::Clock;
use crate::config::ClockKind;
use crate::config::ServerConfig;
use crate::error::{Result, ServerError};
use crate::gateway::AdminGateway;
use crate::scoring_admin::ScoringAdmin;
use crate::standalone::{prune_loop, rfm_refresh_loop, tick_loop};

/// How often a coordinator refreshes its gateway's route table.
const ROUTE_REFRESH: Duration = Duration::from_millis(200);

/// Runs a coordinator replica from `config` on `listener` until `shutdown` resolves.
pub async fn run_coordinator(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    validate_cluster_config(&config)?;
    let advertised = config.advertised_address().to_owned();
    let peers = if config.peers.is_empty() { vec![advertised.clone()] } else { config.peers.clone() };
    let position = peers.iter().position(|peer| *peer == advertised).ok_or_else(|| ServerError::InvalidConfig {
        field: "peers",
        reason: format!("must list this coordinator's address {advertised} (set --advertise if it differs from --listen)"),
    })?;
    let coordinator_id = position as u64 + 1;
    let engine = RocksEngine::open(&config.data_dir)?;
    let (machine, view) =
        MetadataStateMachine::open(engine.clone()).map_err(|e| ServerError::Metadata(e.to_string()))?;
    let transport = new_transport(coordinator_id)?;
    for (index, peer) in peers.iter().enumerate() {
        if index != position {
            set_peer_address(&transport, index as u64 + 1, peer);
        }
    }
    let runtime =
        RaftRuntime::start(coordinator_id, RaftConfig::default(), engine, machine, transport.clone())?;
    transport.report_snapshots_to(&runtime);
    runtime.add_shard(METADATA_GROUP_ID, (1..=peers.len() as u64).collect()).await?;
    let settings = CoordinatorSettings {
        coordinator_id,
        peers: peers.clone(),
        replication_factor: config.replication_factor,
        initial_shards: config.initial_shards,
        propose_timeout: Duration::from_millis(config.propose_timeout_ms),
        node_down_after: Duration::from_millis(config.node_down_after_ms),
    };
    let coordinator = Coordinator::new(runtime.clone(), view, settings);
    info!(coordinator_id, peers = ?peers, data_dir = %config.data_dir.display(), "coordinator started");

    let router = Arc::new(Router::new(None));
    let (stopping, stopped) = watch::channel(false);
    let refresh =
        tokio::spawn(refresh_routes(coordinator.clone(), router.clone(), peers.clone(), stopped.clone()));
    let raft_metrics = tokio::spawn(crate::metrics::export_raft_stats(runtime.clone()));
    let clock = Clock::Wall;
    let timeout = Duration::from_millis(config.request_timeout_ms);
    let admin =
        ScoringAdmin::new(ClusterShards::new(router.clone(), advertised.clone(), timeout), clock.clone());
    let rfm_refresh = tokio::spawn(leader_only(
        coordinator.clone(),
        rfm_refresh_loop(admin.clone(), Duration::from_millis(config.rfm_refresh_interval_ms)),
    ));
    let activity =
        RoutingGateway::new(router.clone(), None, clock.clone(), timeout).with_shutdown(stopped.clone());
    let cluster = ClusterServiceGateway::new(router.clone(), None, timeout).with_coordinators(peers);
    let scheduler = tokio::spawn(
        Scheduler::new(
            coordinator.clone(),
            router,
            cluster.clone(),
            Duration::from_millis(config.schedule_interval_ms),
            timeout,
            config.max_concurrent_moves,
        )
        .run(stopped.clone()),
    );
    let routes = public_routes(activity, cluster, AdminGateway::new(clock, admin, config.tick_max_customers))
        .add_service(raft_transport_server(runtime.clone(), coordinator_id, stopped))
        .add_service(NodeRegistryServer::new(coordinator));
    let served = serve(listener, shutdown, stopping, routes).await;
    for task in [refresh, rfm_refresh, raft_metrics, scheduler] {
        task.abort();
        let _ = task.await;
    }
    let stopped = tokio::task::spawn_blocking(move || runtime.shutdown())
        .await
        .map_err(|e| ServerError::Task(e.to_string()))?;
    transport.shutdown();
    info!("coordinator stopped");
    served?;
    Ok(stopped?)
}

/// Keeps a coordinator's route table fresh: from its own soft state while it leads, else from
/// the leader's `GetClusterState`.
async fn refresh_routes(
    coordinator: Coordinator,
    router: Arc<Router>,
    peers: Vec<String>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(ROUTE_REFRESH);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.changed() => return,
        }
        let status = coordinator.runtime().shard_status(METADATA_GROUP_ID).await;
        let Ok(status) = status else { continue };
        if status.role == pulse_raft::ShardRole::Leader {
            router.update(coordinator.cluster_state());
            continue;
        }
        let Some(address) = status.leader_id.and_then(|id| peers.get(id as usize - 1)) else { continue };
        let mut client = ClusterServiceClient::new(router.channel(address));
        match client.get_cluster_state(pulse_proto::v1::GetClusterStateRequest {}).await {
            Ok(state) => router.update(state.into_inner()),
            Err(status) => debug!(%address, %status, "route refresh from the coordinator leader failed"),
        }
    }
}

/// Runs a storage node from `config` on `listener` until `shutdown` resolves.
pub async fn run_node(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    validate_cluster_config(&config)?;
    if config.join.is_empty() {
        return Err(ServerError::InvalidConfig {
            field: "join",
            reason: "a node needs --join COORDINATOR[,COORDINATOR]".into(),
        });
    }
    let clock = Clock::Wall;
    let (stopping, stopped) = watch::channel(false);
    let node = StorageNode::start(&config, clock.clone(), stopped.clone()).await?;
    let node_id = node.node_id();
    info!(node_id, data_dir = %config.data_dir.display(), join = ?config.join, "storage node started");
    let heartbeats: JoinHandle<()> = tokio::spawn(
        node.clone().heartbeat_loop(Duration::from_millis(config.heartbeat_interval_ms), stopped.clone()),
    );
    let raft_metrics = tokio::spawn(crate::metrics::export_raft_stats(node.runtime().clone()));
    let shards = node.shards();
    let ticked = shards.clone();
    let tick = tokio::spawn(tick_loop(
        move || ticked.read().unwrap_or_else(PoisonError::into_inner).clone(),
        clock.clone(),
        Duration::from_millis(config.tick_interval_ms),
        config.tick_max_customers,
    ));
    let pruned = shards.clone();
    let prune = tokio::spawn(prune_loop(
        move || pruned.read().unwrap_or_else(PoisonError::into_inner).clone(),
        clock.clone(),
        config.transition_retention_ms,
    ));
    let timeout = Duration::from_millis(config.request_timeout_ms);
    let local = LocalReplicas::new(shards, clock.clone(), config.transition_retention_ms)
        .with_shutdown(stopped.clone());
    let admin = ScoringAdmin::new(
        ClusterShards::new(node.router(), config.advertised_address().to_owned(), timeout),
        clock.clone(),
    );
    let admin = AdminGateway::new(clock.clone(), admin, config.tick_max_customers);
    let activity =
        RoutingGateway::new(node.router(), Some(local), clock, timeout).with_shutdown(stopped.clone());
    let cluster = ClusterServiceGateway::new(node.router(), Some(node.runtime().clone()), timeout)
        .with_replicas(node.shards())
        .with_coordinators(config.join.clone());
    let routes = public_routes(activity, cluster, admin)
        .add_service(raft_transport_server(node.runtime().clone(), node_id, stopped))
        .add_service(ShardAdminServer::new(ShardAdminService::new(node.shards())));
    let served = serve(listener, shutdown, stopping, routes).await;
    for task in [heartbeats, tick, prune, raft_metrics] {
        task.abort();
        let _ = task.await;
    }
    let runtime = node.runtime().clone();
    let transport = node.transport().clone();
    drop(node);
    let stopped = tokio::task::spawn_blocking(move || runtime.shutdown())
        .await
        .map_err(|e| ServerError::Task(e.to_string()))?;
    transport.shutdown();
    info!(node_id, "storage node stopped");
    served?;
    Ok(stopped?)
}

/// Serves `routes` (the public API, the raft transport, the node registry of coordinators) with
/// health and reflection on `listener` until `shutdown`; raises `stopping` first so open
/// watches end.
async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
    stopping: watch::Sender<bool>,
    routes: Routes,
) -> Result<()> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<ActivityServiceServer<RoutingGateway>>().await;
    health_reporter.set_serving::<ClusterServiceServer<ClusterServiceGateway>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(PUBLIC_FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServerError::Reflection(e.to_string()))?;
    let shutdown = async move {
        shutdown.await;
        let _ = stopping.send(true);
    };
    info!(address = ?listener.local_addr().ok(), "serving grpc");
    Server::builder()
        .add_routes(routes.add_service(health).add_service(reflection))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), shutdown)
        .await?;
    Ok(())
}

/// The public services of a cluster process.
fn public_routes(
    activity: RoutingGateway,
    cluster: ClusterServiceGateway,
    admin: AdminGateway<ClusterShards>,
) -> Routes {
    Routes::new(ActivityServiceServer::new(activity))
        .add_service(ClusterServiceServer::new(cluster))
        .add_service(AdminServiceServer::new(admin))
}

/// The checks of a cluster role on top of [`ServerConfig::validate`].
fn validate_cluster_config(config: &ServerConfig) -> Result<()> {
    config.validate()?;
    if config.clock == ClockKind::Manual {
        return Err(ServerError::InvalidConfig {
            field: "clock",
            reason: "the manual clock is for standalone servers; cluster processes run on the wall clock"
                .into(),
        });
    }
    Ok(())
}

/// Runs `work` while this coordinator leads the metadata group (checked every second), so
/// periodic cluster-wide jobs run once, on the leader.
async fn leader_only(coordinator: Coordinator, work: impl Future<Output = ()> + Send) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticker.tick().await;
        if coordinator.is_leader().await {
            break;
        }
    }
    work.await;
}
