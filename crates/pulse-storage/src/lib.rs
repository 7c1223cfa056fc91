//! pulse-storage
