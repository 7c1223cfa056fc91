//! # pulse-ingest — from a client's batch of events to shard proposals
//!
//! ```text
//!  IngestRequest ──validate_batch──► Vec<Event> ──split by shard──► ShardBatcher (one per shard)
//!   any bad event: the whole request        │                         │ bounded queue: full →
//!   is rejected, naming index and field     │                         │ Overloaded (RESOURCE_EXHAUSTED)
//!                                           ▼                         ▼
//!                                  many requests share one proposal (max events / max delay)
//!                                  = one raft entry = one fsync; each request gets its counts back
//! ```
//!
//! ## Layout
//! - [`validate_batch`]: validation and normalisation of a whole request through pulse-scoring.
//! - [`ShardBatcher`]: per-shard group commit with a bounded queue, over any [`Proposer`].
//! - [`BatchConfig`]: the knobs, with defaults in one place.

mod batcher;
mod config;
mod error;
mod validate;

pub use batcher::{BatchOutcome, Proposer, ShardBatcher};
pub use config::BatchConfig;
pub use error::{IngestError, Result};
pub use validate::{EventViolation, validate_batch};
