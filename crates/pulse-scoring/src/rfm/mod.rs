//! RFM: recency, frequency and monetary value scored 1–5 against cluster-wide quintile edges.
//!
//! ```text
//!   shard 1: RfmSketch ──┐
//!   shard 2: RfmSketch ──┼─ merge (coordinator) ─► RfmSketch::edges(version) ─► RfmEdges
//!   shard n: RfmSketch ──┘                                                        │
//!                                                    ScoringConfig.rfm_edges ◄────┘
//!   RfmValues ─► RfmEdges::score ─► RfmScore { r, f, m, segment: RfmSegment::from_scores(r, f) }
//! ```
//!
//! - [`RfmValues`]: a customer's raw R (real days since the last purchase), F (purchases) and M
//!   (total spend). Customers without purchases have no RFM values and no RFM score.
//! - [`RfmEdges`]: four quintile cut points (20/40/60/80 %) per dimension, versioned, validated
//!   once when the scoring config is accepted.
//! - [`RfmEdges::score`]: F and M score `1 + #{edges e : value > e}`; R scores
//!   `5 − #{edges e : recency_days > e}` (5 = most recent). A value *equal* to an edge counts as
//!   below it, so heavy ties (most customers have F = 1, which makes several edges equal 1) keep
//!   the tied customers in the lowest band instead of pushing them to the top.
//! - [`RfmSegment`]: the ten named segments of the (R, F) grid.
//! - [`RfmSketch`]: three mergeable DDSketches (one per dimension) that shards fill and the
//!   coordinator merges to compute the edges; it has a compact, versioned binary encoding.

mod edges;
mod segment_map;
mod sketch;
mod sketch_codec;

pub use edges::RfmEdges;
pub use segment_map::RfmSegment;
pub use sketch::{MAX_SKETCH_VALUE, RfmSketch};

/// A customer's raw RFM values at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RfmValues {
    /// R: days (real, not whole) since the latest purchase; ≥ 0.
    pub recency_days: f64,
    /// F: number of purchase events; ≥ 1 for a customer that has RFM values.
    pub frequency: u64,
    /// M: total purchase spend, in the currency unit of event amounts; ≥ 0.
    pub monetary: f64,
}

/// A customer's RFM scores against one version of [`RfmEdges`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RfmScore {
    /// Recency score 1–5; 5 = most recent purchase.
    pub r: u8,
    /// Frequency score 1–5; 5 = most purchases.
    pub f: u8,
    /// Monetary score 1–5; 5 = highest spend.
    pub m: u8,
    /// The segment of `(r, f)`, see [`RfmSegment::from_scores`].
    pub segment: RfmSegment,
}
