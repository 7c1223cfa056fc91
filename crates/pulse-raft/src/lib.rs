//! pulse-raft
