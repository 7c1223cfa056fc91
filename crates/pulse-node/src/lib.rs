//! # pulse-node
//!
//! The shard state machine and the storage-node services. Arrives with issue 3.
//!
//! This crate is part of the workspace layout of DESIGN.md section 5 and holds no code yet.
