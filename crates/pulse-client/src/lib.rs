//! pulse-client
