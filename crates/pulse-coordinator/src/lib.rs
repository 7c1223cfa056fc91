//! pulse-coordinator
