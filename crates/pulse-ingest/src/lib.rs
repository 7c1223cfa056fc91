//! pulse-ingest
