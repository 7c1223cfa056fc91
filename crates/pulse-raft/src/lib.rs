//! # pulse-raft
//!
//! Multi-raft runtime: one RawNode per shard, a batched Ready loop with group commit, transport, snapshots. Arrives with issue 3 (single node) and issue 5 (replication).
//!
//! This crate is part of the workspace layout of DESIGN.md section 5 and holds no code yet.
