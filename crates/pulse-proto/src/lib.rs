//! pulse-proto
