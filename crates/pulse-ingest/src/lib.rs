//! # pulse-ingest
//!
//! Ingest pipeline: validation through pulse-scoring, idempotency, per-shard group commit and bounded queues. Arrives with issue 3.
//!
//! This crate is part of the workspace layout of DESIGN.md section 5 and holds no code yet.
