//! # pulse-coordinator — metadata, placement and the gateway
//!
//! Today this crate holds the gateway (the public gRPC API served by every `pulsed` process)
//! and the standalone server (one node hosting every shard, replication factor 1). Cluster
//! metadata and placement arrive with issue 5.
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
//! - [`describe_metrics`]: the metrics the server records (Prometheus names).
//! - [`ServerError`]: what can fail.

mod clock;
mod config;
mod error;
mod gateway;
mod local_shards;
mod metrics;
mod scoring_admin;
mod standalone;

pub use clock::Clock;
pub use config::{ClockKind, ServerConfig};
pub use error::{Result, ServerError};
pub use gateway::{ActivityGateway, AdminGateway, ClusterGateway};
pub use local_shards::LocalShards;
pub use metrics::describe_metrics;
pub use scoring_admin::{RefreshedEdges, ScoringAdmin};
pub use standalone::{Standalone, run};
