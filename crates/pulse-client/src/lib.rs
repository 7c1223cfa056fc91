//! # pulse-client
//!
//! Rust client with a route cache and retries. Arrives with issue 5.
//!
//! This crate is part of the workspace layout of DESIGN.md section 5 and holds no code yet.
