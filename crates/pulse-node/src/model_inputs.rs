//! The inputs of the cluster-wide model fits, gathered per shard: BG/NBD purchase histories
//! ([`HistoryCounts`]) and RFM sketches ([`RfmSketch`]). Each is a full scan of the shard's
//! customers (blocking: call it off the async runtime); the coordinator merges the shards'
//! answers and fits.

use std::ops::ControlFlow;

use pulse_scoring::{HistoryCounts, MS_PER_DAY, RfmSketch, RfmValues, purchase_history};
use pulse_storage::StorageEngine;

use crate::error::Result;
use crate::reader::ShardReader;

impl<E: StorageEngine> ShardReader<E> {
    /// The BG/NBD purchase histories `(x, t_x, T)` of every customer of the shard with a
    /// purchase, measured to the day of `as_of_ms` (days cut with the config in force).
    pub fn history_counts(&self, as_of_ms: i64) -> Result<HistoryCounts> {
        let day = self.config().day(as_of_ms);
        let mut counts = HistoryCounts::new();
        self.for_each_customer(|_, stored| {
            if let Some(history) = purchase_history(&stored.state, day) {
                counts.add(history, 1);
            }
            ControlFlow::Continue(())
        })?;
        Ok(counts)
    }

    /// An RFM sketch of every customer of the shard with a purchase, with recency measured at
    /// `as_of_ms` (as scoring measures it: real days since the last purchase, never negative).
    pub fn rfm_sketch(&self, as_of_ms: i64) -> Result<RfmSketch> {
        let mut sketch = RfmSketch::new();
        self.for_each_customer(|_, stored| {
            let state = &stored.state;
            if let Some(last_purchase_ms) = state.last_purchase_ms
                && state.purchase_count > 0
            {
                sketch.add(&RfmValues {
                    recency_days: (as_of_ms - last_purchase_ms).max(0) as f64 / MS_PER_DAY as f64,
                    frequency: state.purchase_count,
                    monetary: state.total_amount,
                });
            }
            ControlFlow::Continue(())
        })?;
        Ok(sketch)
    }
}
