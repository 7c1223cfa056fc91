//! pulse-node
