//! The gateway: the public gRPC services of `pulse.v1`, served by every `pulsed` process.
//!
//! Handlers are thin adapters (STYLE rule 6): take the request, convert and validate it, call
//! [`LocalShards`](crate::LocalShards), convert the answer. Every error becomes a
//! `tonic::Status` in [`status`] and nowhere else.
//!
//! - [`ActivityGateway`]: `pulse.v1.ActivityService` (ingest, point reads, erasure, segment
//!   listings; `segment_listing` merges the shards' member lists).
//! - [`AdminGateway`]: `pulse.v1.AdminService` (scoring config, custom segment definitions,
//!   lifetime fit, RFM edges, the manual clock).
//! - [`ClusterGateway`]: `pulse.v1.ClusterService` (arrives with issue 3).

mod activity;
mod admin;
mod cluster;
mod segment_listing;
mod status;

pub use activity::ActivityGateway;
pub use admin::AdminGateway;
pub use cluster::ClusterGateway;
