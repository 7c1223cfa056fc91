//! [`Standalone`]: one process hosting every shard with replication factor 1 — the embedded
//! default for trying Pulse on one machine.
//!
//! ## Lifecycle and graceful shutdown
//! [`Standalone::start`] opens RocksDB, registers the shard state machines, starts the raft
//! runtime, hosts every shard (bootstrapped or recovered), brings every shard to the newest
//! scoring config version ([`ScoringAdmin::reconcile`]), spawns one ingest batcher per shard,
//! the tick loop, the changelog retention loop and the periodic RFM edge refresh.
//! [`Standalone::serve`] serves gRPC on a listener until the `shutdown` future resolves, then,
//! in this order: stops accepting and drains in-flight requests (`serve_with_incoming_shutdown`;
//! open transition watches are told to end first, or they would hold the drain forever), stops
//! the tick, retention and RFM refresh loops, drops the batchers, and shuts the raft runtime down
//! (joining its thread), so every acknowledged write is on disk.

use std::future::Future;
use std::time::Duration;

use pulse_node::{NodeStateMachine, ShardConfig, ShardLayout};
use pulse_proto::PUBLIC_FILE_DESCRIPTOR_SET;
use pulse_proto::v1::activity_service_server::ActivityServiceServer;
use pulse_proto::v1::admin_service_server::AdminServiceServer;
use pulse_proto::v1::cluster_service_server::ClusterServiceServer;
use pulse_raft::{NullTransport, RaftConfig, RaftRuntime};
use pulse_storage::RocksEngine;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tracing::{debug, info, warn};

use crate::clock::Clock;
use crate::config::{ClockKind, ServerConfig};
use crate::error::{Result, ServerError};
use crate::gateway::{ActivityGateway, AdminGateway, ClusterGateway};
use crate::local_shards::LocalShards;
use crate::metrics;
use crate::scoring_admin::{ConfigShards, ScoringAdmin};

/// The raft node id of a standalone server (every shard has this one voter).
const NODE_ID: u64 = 1;
/// Interval between two changelog retention rounds.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// Most changelog entries one `PruneChangelog` entry deletes per shard.
const PRUNE_MAX_ENTRIES: u32 = 10_000;

/// A running standalone server (storage, raft, batchers, tick loop, RFM refresh), ready to
/// serve gRPC.
#[derive(Debug)]
pub struct Standalone {
    shards: LocalShards,
    clock: Clock,
    admin: ScoringAdmin,
    tick_max_customers: u32,
    tick_loop: JoinHandle<()>,
    rfm_refresh_loop: JoinHandle<()>,
    prune_loop: JoinHandle<()>,
    raft_metrics: JoinHandle<()>,
    transition_retention_ms: i64,
}

impl Standalone {
    /// Validates `config`, opens storage and starts raft, every shard (reconciling their scoring
    /// config versions), the tick loop and the periodic RFM refresh.
    pub async fn start(config: ServerConfig) -> Result<Self> {
        config.validate()?;
        let engine = RocksEngine::open(&config.data_dir)?;
        let (layout, created) = ShardLayout::load_or_create(&engine, config.initial_shards)?;
        if !created && layout.shards.len() as u64 != config.initial_shards {
            warn!(
                stored = layout.shards.len(),
                initial_shards = config.initial_shards,
                "initial_shards only applies to a new data directory; keeping the stored layout"
            );
        }
        let shard_configs: Vec<ShardConfig> = layout.shards;
        let mut machine = NodeStateMachine::new(engine.clone());
        let (applied, applied_changes) = tokio::sync::watch::channel(0u64);
        machine.on_applied(move |_, _| applied.send_modify(|rounds| *rounds = rounds.wrapping_add(1)));
        let mut readers = Vec::with_capacity(shard_configs.len());
        for shard in &shard_configs {
            machine.add_shard(*shard)?;
            readers.extend(machine.reader(shard.shard_id));
        }
        let runtime = RaftRuntime::start(NODE_ID, RaftConfig::default(), engine, machine, NullTransport)?;
        for shard in &shard_configs {
            runtime.add_shard(shard.shard_id, vec![NODE_ID]).await?;
        }
        let clock = clock_of(&config);
        let shards = LocalShards::new(
            runtime,
            readers,
            clock.clone(),
            Duration::from_millis(config.propose_timeout_ms),
        )
        .with_applied_changes(applied_changes)
        // Every shard has one voter: after catching up, reads need no ReadIndex.
        .into_single_voter()
        .await?;
        let admin = ScoringAdmin::new(shards.clone(), clock.clone());
        admin.reconcile().await?;
        let ticked = shards.clone();
        let tick_loop = tokio::spawn(tick_loop(
            move || ticked.clone(),
            clock.clone(),
            Duration::from_millis(config.tick_interval_ms),
            config.tick_max_customers,
        ));
        let rfm_refresh_loop = tokio::spawn(rfm_refresh_loop(
            admin.clone(),
            Duration::from_millis(config.rfm_refresh_interval_ms),
        ));
        let raft_metrics = tokio::spawn(metrics::export_raft_stats(shards.runtime().clone()));
        let pruned = shards.clone();
        let prune_loop =
            tokio::spawn(prune_loop(move || pruned.clone(), clock.clone(), config.transition_retention_ms));
        info!(
            data_dir = %config.data_dir.display(),
            shards = shard_configs.len(),
            clock = ?config.clock,
            "standalone node started"
        );
        Ok(Self {
            shards,
            clock,
            admin,
            tick_max_customers: config.tick_max_customers,
            tick_loop,
            rfm_refresh_loop,
            prune_loop,
            raft_metrics,
            transition_retention_ms: config.transition_retention_ms,
        })
    }

    /// The server's clock (shared with `AdminService.AdvanceClock`).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Serves the public API, health and reflection on `listener` until `shutdown` resolves,
    /// then shuts everything down (see the module documentation for the order).
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let (health_reporter, health) = tonic_health::server::health_reporter();
        health_reporter.set_serving::<ActivityServiceServer<ActivityGateway>>().await;
        health_reporter.set_serving::<AdminServiceServer<AdminGateway>>().await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(PUBLIC_FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| ServerError::Reflection(e.to_string()))?;
        // Raised when `shutdown` resolves, before the drain: ends the open transition watches.
        let (stopping, stopped) = tokio::sync::watch::channel(false);
        let shutdown = async move {
            shutdown.await;
            let _ = stopping.send(true);
        };
        let address = listener.local_addr().ok();
        info!(address = ?address, "serving grpc");
        let served = Server::builder()
            .add_service(health)
            .add_service(reflection)
            .add_service(ActivityServiceServer::new(
                ActivityGateway::new(self.shards.clone(), self.clock.clone())
                    .with_transition_retention_ms(self.transition_retention_ms)
                    .with_shutdown(stopped),
            ))
            .add_service(AdminServiceServer::new(AdminGateway::new(
                self.clock.clone(),
                self.admin.clone(),
                self.tick_max_customers,
            )))
            .add_service(ClusterServiceServer::new(ClusterGateway))
            // No Nagle: a small response must not wait for the client's delayed ACK (40 ms).
            .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), shutdown)
            .await;
        info!("grpc server stopped; shutting down");
        let stopped = self.stop().await;
        served?;
        stopped
    }

    /// Stops the tick, RFM refresh, retention and metrics loops, the batchers and the raft runtime.
    async fn stop(self) -> Result<()> {
        self.tick_loop.abort();
        let _ = self.tick_loop.await;
        self.rfm_refresh_loop.abort();
        let _ = self.rfm_refresh_loop.await;
        self.prune_loop.abort();
        let _ = self.prune_loop.await;
        self.raft_metrics.abort();
        let _ = self.raft_metrics.await;
        let runtime = self.shards.runtime().clone();
        drop(self.admin);
        drop(self.shards);
        tokio::task::spawn_blocking(move || runtime.shutdown())
            .await
            .map_err(|e| ServerError::Task(e.to_string()))??;
        info!("raft runtime stopped");
        Ok(())
    }
}

/// The clock `config` asks for.
pub(crate) fn clock_of(config: &ServerConfig) -> Clock {
    match config.clock {
        ClockKind::Wall => Clock::Wall,
        ClockKind::Manual if config.manual_clock_start_ms > 0 => Clock::manual(config.manual_clock_start_ms),
        ClockKind::Manual => Clock::manual(Clock::Wall.now_ms()),
    }
}

/// Starts a standalone server from `config` and serves on `listener` until `shutdown`.
pub async fn run(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    Standalone::start(config).await?.serve(listener, shutdown).await
}

/// Proposes a `Tick` at the clock's now to every shard (of `shards()`, the replicas hosted now)
/// this node leads every `interval`, so customers become dormant without events (DESIGN.md
/// "Time"). A failed round is logged and retried next time.
pub(crate) async fn tick_loop(
    shards: impl Fn() -> LocalShards + Send + 'static,
    clock: Clock,
    interval: Duration,
    max_customers: u32,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let now_ms = clock.now_ms();
        let round = shards().tick(now_ms, max_customers).await;
        metrics::tick_round(round.is_ok());
        if let Err(error) = round {
            warn!(now_ms, %error, "tick round failed");
        }
    }
}

/// Recomputes the RFM quintile edges from every shard every `interval` (the first time one
/// interval after start) while any customer has a purchase. A failed refresh is logged and
/// retried next time.
pub(crate) async fn rfm_refresh_loop<S: ConfigShards>(admin: ScoringAdmin<S>, interval: Duration) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match admin.refresh_rfm_edges_if_moved().await {
            Ok(Some(refreshed)) => {
                debug!(
                    version = refreshed.edges.version,
                    customers = refreshed.customers,
                    "rfm edges refreshed"
                )
            }
            Ok(None) => debug!("rfm edges unchanged; not reinstalled"),
            Err(ServerError::NoPurchases { .. }) => debug!("no purchases yet; rfm edges not refreshed"),
            Err(error) => warn!(%error, "periodic rfm edge refresh failed"),
        }
    }
}

/// Proposes `PruneChangelog` (before now minus `retention_ms`) to every shard this node leads
/// every [`PRUNE_INTERVAL`], so the changelog keeps the transition retention and no more. A
/// failed round is logged and retried next time.
pub(crate) async fn prune_loop(
    shards: impl Fn() -> LocalShards + Send + 'static,
    clock: Clock,
    retention_ms: i64,
) {
    let mut ticker = tokio::time::interval(PRUNE_INTERVAL);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let before_ms = clock.now_ms().saturating_sub(retention_ms);
        match shards().prune_changelog(before_ms, PRUNE_MAX_ENTRIES).await {
            Ok(0) => {}
            Ok(pruned) => info!(before_ms, pruned, "changelog pruned"),
            Err(error) => warn!(before_ms, %error, "changelog pruning failed"),
        }
    }
}
