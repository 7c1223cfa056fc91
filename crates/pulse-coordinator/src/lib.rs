//! # pulse-coordinator
//!
//! Cluster metadata, placement, scheduling and the gateway fan-out. Arrives with issues 3 and 5.
//!
//! This crate is part of the workspace layout of DESIGN.md section 5 and holds no code yet.
