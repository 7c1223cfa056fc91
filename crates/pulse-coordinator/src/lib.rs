//! # pulse-coordinator — metadata, placement and the gateway
//!
//! The gateway (the public gRPC API served by every `pulsed` process), the standalone server
//! (one node hosting every shard, replication factor 1) and the cluster roles: coordinators
//! (metadata raft group, node registry, placement), storage nodes, and the routing gateway.
//!
//! ```text
//!  gRPC ──► gateway::ActivityGateway ──validate──► ShardBatcher (one per shard) ──► raft propose
//!                    │                                                              │
//!                    └── read_index + ShardReader ◄──── NodeStateMachine (raft loop) ◄┘
//!  tick loop ── Tick{now_ms} every tick_interval_ms ──► raft propose (each shard)
//! ```
//!
//! ## Layout
//! - [`ServerConfig`]: the server's settings, defaults and their one validation.
//! - [`Clock`]: wall or manual time.
//! - [`LocalShards`]: the shards hosted here — raft handle, readers, batchers, routing by hash.
//! - [`ScoringAdmin`]: versioned changes of the replicated scoring config (updates, custom
//!   segments, lifetime fit, RFM edges), one at a time, installed on every shard.
//! - `gateway/`: the gRPC services; errors become statuses in `gateway/status.rs` only.
//! - [`Standalone`]: opens storage, starts raft, serves, shuts down gracefully.
//! - `cluster/`: [`run_coordinator`], [`run_node`] and their parts (metadata state machine,
//!   registry, storage node, router, routing gateway, cluster service).
//! - [`describe_metrics`]: the metrics the server records (Prometheus names).
//! - [`ServerError`]: what can fail.

mod clock;
pub mod cluster;
mod config;
mod error;
mod gateway;
mod local_shards;
mod metrics;
mod scoring_admin;
mod standalone;

pub use clock::Clock;
pub use cluster::{run_coordinator, run_node};
pub use config::{ClockKind, ServerConfig};
pub use error::{Result, ServerError};
pub use gateway::{ActivityGateway, AdminGateway, ClusterGateway};
pub use local_shards::LocalShards;
pub use metrics::describe_metrics;
pub use scoring_admin::{RefreshedEdges, ScoringAdmin};
pub use standalone::{Standalone, run};
