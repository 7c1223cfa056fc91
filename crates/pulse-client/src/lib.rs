//! # pulse-client — a Pulse cluster client that routes requests itself
//!
//! Any process of a Pulse cluster answers any request, forwarding a point request to its
//! shard's leader: one extra hop. [`Client`] saves that hop by keeping the cluster's route table
//! and sending each request straight to the leader.
//!
//! ## Routing protocol (as the servers speak it)
//! 1. **The table** is `pulse.v1.ClusterState` from `ClusterService.GetClusterState`, served
//!    by every process: nodes (`node_id` → `HOST:PORT`) and shards (a `[start_hash, end_hash]`
//!    range, voting replicas, the leader's node id or 0, the epoch `conf_ver`/`version`).
//! 2. **Customer → shard**: [`customer_hash`] (xxh3_64 of the id's bytes, seed 0) falls in
//!    exactly one shard's range.
//! 3. **The call** goes to the leader's gateway with request metadata [`SHARDS_HEADER`]
//!    (`x-pulse-shards: <shard id>`): that gateway serves it from its own replica only (and
//!    validates it), never forwarding it.
//! 4. **Not the leader**: a replica that does not lead answers UNAVAILABLE, naming the leader it
//!    knows in response metadata [`LEADER_HINT_HEADER`] (`x-pulse-leader: <node id>`). A node
//!    without a replica of the shard, a shard without a leader (election) and an unreachable
//!    node also answer UNAVAILABLE, without a hint.
//!
//! The client applies a usable hint to its cached entry and retries there; on a routing miss
//! (no usable hint, unknown node, connection failure, customer outside every range) it
//! refreshes the whole table and tries the next replica. Entries are keyed by epoch: a lagging
//! table never rolls an entry back, and a hint earned on an older epoch is dropped. Retries are
//! spaced by a capped backoff and bounded by a per-call deadline
//! ([`ClientConfig::request_timeout`], 10 s by default); any other status (INVALID_ARGUMENT,
//! NOT_FOUND, RESOURCE_EXHAUSTED…) is returned as it is ([`Error::Rejected`]).
//!
//! Collective queries (segment listings, stats, top-K…) need every shard and a merge: the
//! gateways do that, reached through [`Client::gateway`].
//!
//! ## Layout
//! - `client.rs`: [`Client`] — connect, ingest (split by shard, parts in parallel), reads,
//!   erasure, the gateway escape hatch.
//! - `routing.rs`: the shared state of a client (route table, one channel per node address,
//!   seeds) and the retry loop that finds a shard's leader before the deadline.
//! - `route_cache.rs`: the route table — shard lookup, epochs, leader hints — and
//!   [`customer_hash`].
//! - `config.rs`: [`ClientConfig`], deadlines and backoff.
//! - `error.rs`: [`Error`], one variant per cause, and [`Result`].
//!
//! ## Example
//! ```no_run
//! # async fn example() -> pulse_client::Result<()> {
//! use pulse_client::{Client, v1};
//!
//! let client = Client::connect(&["127.0.0.1:50061".to_owned()]).await?;
//! let event = v1::Event { customer_id: "alice".into(), kind: v1::EventKind::Purchase as i32, ..Default::default() };
//! client.ingest(vec![event]).await?;
//! let alice = client.get_activity("alice", 0, v1::Consistency::Linearizable).await?;
//! # let _ = alice;
//! # Ok(())
//! # }
//! ```

mod client;
mod config;
mod error;
mod route_cache;
mod routing;

pub use client::{Client, MAX_BATCH_GET};
pub use config::ClientConfig;
pub use error::{Error, Result};
/// The wire types of the public API (package `pulse.v1`), re-exported for callers.
pub use pulse_proto::v1;
pub use route_cache::customer_hash;
pub use routing::{LEADER_HINT_HEADER, SHARDS_HEADER};
