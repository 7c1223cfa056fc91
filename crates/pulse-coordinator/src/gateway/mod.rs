//! The gateway: the public gRPC services of `pulse.v1`, served by every `pulsed` process.
//!
//! Handlers are thin adapters (STYLE rule 6): take the request, convert and validate it, call
//! [`LocalShards`](crate::LocalShards), convert the answer. Every error becomes a
//! `tonic::Status` in [`status`] and nowhere else.
//!
//! - [`ActivityGateway`]: `pulse.v1.ActivityService` (ingest, point reads, erasure, segment
//!   listings; `segment_listing` merges the shards' member lists; `collective` merges the
//!   per-shard partials of stats, migration, top-K and affinity; `watch` streams transitions).
//! - [`AdminGateway`]: `pulse.v1.AdminService` (scoring config, custom segment definitions,
//!   lifetime fit, RFM edges, the manual clock).
//! - [`ClusterGateway`]: `pulse.v1.ClusterService` (UNIMPLEMENTED until the cluster of issue 5).

mod activity;
mod admin;
mod cluster;
mod collective;
mod segment_listing;
mod status;
mod watch;

pub use activity::ActivityGateway;
pub use admin::AdminGateway;
pub use cluster::ClusterGateway;
pub(crate) use collective::DEFAULT_TOP_LIMIT;
pub(crate) use segment_listing::segment_page_token;
pub(crate) use watch::{
    WATCH_START_HEADER, decode_token as decode_watch_token, encode_token as encode_watch_token,
};
