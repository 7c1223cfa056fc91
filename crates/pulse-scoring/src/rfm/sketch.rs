//! [`RfmSketch`]: mergeable quantile sketches of R, F and M from which the quintile edges are
//! computed.
//!
//! Each dimension is a [DDSketch](https://arxiv.org/abs/1908.10693) (crate `sketches-ddsketch`,
//! relative accuracy α = 1 %, logarithmic bins `[γ^k, γ^(k+1))` with `γ = (1+α)/(1−α)`):
//!
//! - **Positive values only.** DDSketch is relative-accuracy, so values at or near 0 (R = 0 days
//!   for a purchase right now, M = 0 for free orders) would either fall into its zero bucket or
//!   spread over thousands of bins. R and M are therefore sketched as `value + 1` (so the error
//!   bound is relative to `value + 1`: at most 0.02 days for a purchase today); F is sketched as
//!   is since a customer with RFM values has F ≥ 1. Values are clamped to at most
//!   [`MAX_SKETCH_VALUE`]; then every bin key lies in `0..=1726`, well inside the 2 048-bin store,
//!   so the store never collapses and merging is plain addition of bin counts: exact,
//!   associative and commutative.
//! - **Edges are bin upper bounds.** The edge of quantile `p` is the upper boundary of the bin
//!   holding the `p`-quantile (minus the offset; for F, the largest whole number of purchases
//!   below it). Every value in that bin — in particular every value *equal* to the true
//!   quantile — is then `≤` the edge and, with the tie rule of [`crate::RfmEdges::score`], lands
//!   in the lower band. With a representative value instead, a heavy tie (thousands of customers
//!   who spent exactly 9.99) could sit just above its own edge and jump a band. The price: an
//!   edge exceeds the exact quantile by less than one bin (`< γ − 1 ≈ 2 %` of `value + 1`).
//! - **Encoding.** [`RfmSketch::encode`] writes a format version byte, then for R, F, M a
//!   little-endian `u32` length and the sketch in DataDog's portable DDSketch binary format
//!   (`DDSketch::to_java_bytes`, cross-language). [`RfmSketch::decode`] validates every byte
//!   before handing a blob to `DDSketch::from_java_bytes`, whose store arithmetic trusts its
//!   input: corrupt or hostile bytes are a [`ScoringError::Decode`], never a panic.

use std::fmt;

use sketches_ddsketch::{Config, DDSketch};

use super::sketch_codec::{self, BlobLimits};
use super::{RfmEdges, RfmValues};
use crate::error::{Result, ScoringError};

/// Largest R (days), F or M value a sketch records; larger values are clamped to it.
pub const MAX_SKETCH_VALUE: f64 = 1e15;

/// The quantiles the edges cut at.
const QUINTILES: [f64; 4] = [0.2, 0.4, 0.6, 0.8];

/// Version byte of [`RfmSketch::encode`]'s format.
const FORMAT_VERSION: u8 = 1;

/// What is decoded, for [`ScoringError::Decode`].
const WHAT: &str = "rfm sketch";

/// How one RFM dimension is mapped into its sketch and back.
#[derive(Debug, Clone, Copy)]
struct Axis {
    /// Added to a value before sketching, subtracted from an edge.
    offset: f64,
    /// Values are whole numbers: edges are rounded down to one.
    whole: bool,
}

const RECENCY: Axis = Axis { offset: 1.0, whole: false };
const FREQUENCY: Axis = Axis { offset: 0.0, whole: true };
const MONETARY: Axis = Axis { offset: 1.0, whole: false };

impl Axis {
    /// The sketched form of `value` (finite, any sign).
    fn to_sketch(self, value: f64) -> f64 {
        value.clamp(0.0, MAX_SKETCH_VALUE) + self.offset
    }

    /// The edge for the quantile whose bin ends (exclusive) at `upper`, in sketched units.
    fn edge(self, upper: f64) -> f64 {
        let edge = upper - self.offset;
        // The largest whole number strictly below the bin's end: every whole value in the bin
        // is ≤ it, every whole value above the bin is > it.
        let edge = if self.whole { (edge - 1.0).ceil() } else { edge };
        edge.max(0.0)
    }
}

/// Quantile sketches of R, F and M over a population of customers with purchases.
///
/// Every [`Self::add`] records into all three sketches, so they always hold the same count.
/// Shards each keep one; the coordinator [`Self::merge`]s them (in any order or grouping: the
/// result is the same) and calls [`Self::edges`].
#[derive(Clone)]
pub struct RfmSketch {
    /// `recency_days + 1`.
    recency: DDSketch,
    /// `frequency`.
    frequency: DDSketch,
    /// `monetary + 1`.
    monetary: DDSketch,
}

impl Default for RfmSketch {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RfmSketch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RfmSketch").field("count", &self.count()).finish_non_exhaustive()
    }
}

impl RfmSketch {
    /// An empty sketch.
    pub fn new() -> Self {
        // The crate's defaults (α = 1 %, 2 048 bins, min value 1e-9) are also what
        // `DDSketch::from_java_bytes` rebuilds, so decoded sketches merge with fresh ones.
        let config = Config::defaults();
        Self {
            recency: DDSketch::new(config),
            frequency: DDSketch::new(config),
            monetary: DDSketch::new(config),
        }
    }

    /// Records one customer's values.
    ///
    /// Ignored (not counted): customers without purchases (`frequency == 0`, they have no RFM
    /// score) and values with a non-finite R or M. Negative R or M count as 0; values above
    /// [`MAX_SKETCH_VALUE`] count as that maximum.
    pub fn add(&mut self, values: &RfmValues) {
        if values.frequency == 0 || !values.recency_days.is_finite() || !values.monetary.is_finite() {
            return;
        }
        self.recency.add(RECENCY.to_sketch(values.recency_days));
        self.frequency.add(FREQUENCY.to_sketch(values.frequency as f64));
        self.monetary.add(MONETARY.to_sketch(values.monetary));
    }

    /// Adds everything `other` recorded. Merging is exact: any grouping or order of merges of
    /// the same shards yields the same edges.
    pub fn merge(&mut self, other: &RfmSketch) {
        for (mine, theirs) in [
            (&mut self.recency, &other.recency),
            (&mut self.frequency, &other.frequency),
            (&mut self.monetary, &other.monetary),
        ] {
            // Cannot fail: every sketch, fresh or decoded, has the default config (decode checks
            // the encoded γ).
            let merged = mine.merge(theirs);
            debug_assert!(merged.is_ok(), "rfm sketches always share one config");
        }
    }

    /// Number of customers recorded.
    pub fn count(&self) -> u64 {
        u64::try_from(self.recency.count()).unwrap_or(u64::MAX)
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// The quintile edges of everything recorded, tagged `version`; `None` when empty.
    ///
    /// Each edge is the upper end of the sketch bin holding the exact quantile, so it is at least
    /// that quantile and less than one bin (≈ 2 % of `value + 1`) above it; ties and values equal
    /// to the quantile score at or below the edge. Frequency edges are whole numbers of
    /// purchases.
    pub fn edges(&self, version: u64) -> Option<RfmEdges> {
        Some(RfmEdges {
            version,
            recency_days: quintile_edges(&self.recency, RECENCY)?,
            frequency: quintile_edges(&self.frequency, FREQUENCY)?,
            monetary: quintile_edges(&self.monetary, MONETARY)?,
        })
    }

    /// The compact binary form: a version byte, then per dimension (R, F, M) a `u32`
    /// little-endian length and the DDSketch in its portable binary format.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_VERSION];
        for sketch in [&self.recency, &self.frequency, &self.monetary] {
            let blob = sketch.to_java_bytes();
            // A blob holds at most 2 048 bins of ≤ 19 bytes each: far below 4 GiB.
            let len = u32::try_from(blob.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&blob);
        }
        out
    }

    /// Parses the output of [`Self::encode`]; every inconsistency is a
    /// [`ScoringError::Decode`] naming `rfm sketch`.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let Some((&version, mut rest)) = bytes.split_first() else {
            return Err(corrupt("empty input"));
        };
        if version != FORMAT_VERSION {
            return Err(corrupt(format!("unknown format version {version}, expected {FORMAT_VERSION}")));
        }
        let limits = sketch_limits();
        let mut sketches = Vec::with_capacity(3);
        for dimension in ["recency", "frequency", "monetary"] {
            let Some((len, after_len)) = rest.split_first_chunk::<4>() else {
                return Err(corrupt(format!("{dimension}: truncated length")));
            };
            let len = usize::try_from(u32::from_le_bytes(*len)).unwrap_or(usize::MAX);
            if after_len.len() < len {
                return Err(corrupt(format!(
                    "{dimension}: length {len} exceeds the {} bytes left",
                    after_len.len()
                )));
            }
            let (blob, after_blob) = after_len.split_at(len);
            rest = after_blob;
            let count = sketch_codec::check_blob(blob, &limits)
                .map_err(|reason| corrupt(format!("{dimension}: {reason}")))?;
            let sketch = DDSketch::from_java_bytes(blob).map_err(|e| corrupt(format!("{dimension}: {e}")))?;
            if u64::try_from(sketch.count()).ok() != Some(count) {
                return Err(corrupt(format!("{dimension}: decoded count differs from the encoded {count}")));
            }
            sketches.push((dimension, count, sketch));
        }
        if !rest.is_empty() {
            return Err(corrupt(format!("{} trailing bytes", rest.len())));
        }
        let [(_, r_count, recency), (_, f_count, frequency), (_, m_count, monetary)]: [_; 3] =
            sketches.try_into().map_err(|_| corrupt("expected three sketches"))?;
        if r_count != f_count || r_count != m_count {
            return Err(corrupt(format!(
                "dimension counts differ: recency {r_count}, frequency {f_count}, monetary {m_count}"
            )));
        }
        Ok(Self { recency, frequency, monetary })
    }

    /// The `q`-quantile of each dimension in sketched units (`value + offset`), for tests.
    #[cfg(test)]
    fn sketched_quantiles(&self, q: f64) -> Option<[f64; 3]> {
        Some([
            self.recency.quantile(q).ok()??,
            self.frequency.quantile(q).ok()??,
            self.monetary.quantile(q).ok()??,
        ])
    }
}

/// The four quintile edges of one dimension; `None` when the sketch is empty.
fn quintile_edges(sketch: &DDSketch, axis: Axis) -> Option<[f64; 4]> {
    let config = Config::defaults();
    let mut edges = [0.0; 4];
    for (edge, q) in edges.iter_mut().zip(QUINTILES) {
        let representative = sketch.quantile(q).ok()??;
        let bin = config.key(representative);
        *edge = axis.edge(config.pow_gamma(bin.saturating_add(1)));
    }
    Some(edges)
}

/// What a valid blob may contain, from the sketch config and the value domain.
fn sketch_limits() -> BlobLimits {
    let config = Config::defaults();
    BlobLimits {
        gamma: config.gamma,
        // Sketched values are within [1, MAX_SKETCH_VALUE + 1].
        min_value: 1.0,
        max_value: MAX_SKETCH_VALUE + 1.0,
        max_key: config.key(MAX_SKETCH_VALUE + 1.0),
    }
}

fn corrupt(reason: impl Into<String>) -> ScoringError {
    ScoringError::Decode { what: WHAT, reason: reason.into() }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, LogNormal};

    use super::*;

    const ALPHA: f64 = 0.01;

    fn values(n: usize, seed: u64) -> Vec<RfmValues> {
        let mut rng = StdRng::seed_from_u64(seed);
        let days = LogNormal::new(3.0, 1.2).unwrap();
        let spend = LogNormal::new(4.0, 1.5).unwrap();
        (0..n)
            .map(|_| RfmValues {
                recency_days: days.sample(&mut rng) - 1.0,
                frequency: 1 + rng.random_range(0..60u64).pow(2) / 100,
                monetary: spend.sample(&mut rng),
            })
            .collect()
    }

    fn sketch_of(values: &[RfmValues]) -> RfmSketch {
        let mut sketch = RfmSketch::new();
        for v in values {
            sketch.add(v);
        }
        sketch
    }

    /// The exact quantile with DDSketch's rank convention: element `floor(q·(n−1))` in order.
    fn exact(mut column: Vec<f64>, q: f64) -> f64 {
        column.sort_by(f64::total_cmp);
        column[(q * (column.len() - 1) as f64) as usize]
    }

    fn sketched_columns(values: &[RfmValues]) -> [Vec<f64>; 3] {
        [
            values.iter().map(|v| RECENCY.to_sketch(v.recency_days)).collect(),
            values.iter().map(|v| FREQUENCY.to_sketch(v.frequency as f64)).collect(),
            values.iter().map(|v| MONETARY.to_sketch(v.monetary)).collect(),
        ]
    }

    #[test]
    fn quantiles_are_within_the_relative_accuracy_bound() {
        let values = values(10_000, 1);
        let sketch = sketch_of(&values);
        assert_eq!(sketch.count(), 10_000);
        let columns = sketched_columns(&values);
        for q in [0.01, 0.2, 0.4, 0.5, 0.6, 0.8, 0.99] {
            let got = sketch.sketched_quantiles(q).unwrap();
            for (dimension, column) in columns.iter().enumerate() {
                let want = exact(column.clone(), q);
                let error = (got[dimension] - want).abs() / want;
                assert!(error <= ALPHA + 1e-12, "dimension {dimension} q {q}: {} vs {want}", got[dimension]);
            }
        }
    }

    #[test]
    fn edges_are_within_one_bin_above_the_exact_quintiles() {
        let values = values(10_000, 2);
        let edges = sketch_of(&values).edges(7).unwrap();
        edges.validate().unwrap();
        assert_eq!(edges.version, 7);
        let gamma = Config::defaults().gamma;
        let columns = sketched_columns(&values);
        let axes = [(RECENCY, edges.recency_days), (FREQUENCY, edges.frequency), (MONETARY, edges.monetary)];
        for (dimension, (axis, got)) in axes.into_iter().enumerate() {
            for (i, q) in QUINTILES.into_iter().enumerate() {
                let want = exact(columns[dimension].clone(), q) - axis.offset;
                let edge = got[i];
                assert!(edge >= want, "dimension {dimension} edge {i}: {edge} below exact {want}");
                assert!(
                    edge + axis.offset <= (want + axis.offset) * gamma * (1.0 + 1e-12),
                    "dimension {dimension} edge {i}: {edge} more than one bin above {want}"
                );
            }
        }
        assert!(edges.frequency.iter().all(|e| e.fract() == 0.0), "{:?}", edges.frequency);
    }

    #[test]
    fn heavy_ties_stay_in_the_lowest_band() {
        // 60 % bought once for exactly 9.99, today; 20 % twice; 20 % more.
        let mut values = Vec::new();
        for i in 0..10_000u64 {
            let (frequency, monetary) = match i % 10 {
                0..=5 => (1, 9.99),
                6 | 7 => (2, 19.98),
                _ => (3 + i % 7, 50.0 + (i % 13) as f64),
            };
            values.push(RfmValues { recency_days: 0.0, frequency, monetary });
        }
        let edges = sketch_of(&values).edges(1).unwrap();
        assert_eq!(edges.frequency, [1.0, 1.0, 1.0, 2.0]);
        assert_eq!(edges.recency_days[0], edges.recency_days[3]);
        let once = edges.score(&RfmValues { recency_days: 0.0, frequency: 1, monetary: 9.99 });
        assert_eq!((once.r, once.f, once.m), (5, 1, 1), "{edges:?}");
        let twice = edges.score(&RfmValues { recency_days: 0.0, frequency: 2, monetary: 19.98 });
        assert_eq!((twice.f, twice.m), (4, 4), "{edges:?}");
        let more = edges.score(&RfmValues { recency_days: 0.0, frequency: 3, monetary: 60.0 });
        assert_eq!((more.f, more.m), (5, 5), "{edges:?}");
    }

    #[test]
    fn merged_halves_equal_one_sketch_of_everything() {
        let values = values(10_000, 3);
        let (left, right) = values.split_at(4_321);
        let mut merged = sketch_of(left);
        merged.merge(&sketch_of(right));
        let whole = sketch_of(&values);
        assert_eq!(merged.count(), whole.count());
        assert_eq!(merged.edges(1), whole.edges(1));
        for q in [0.1, 0.5, 0.9] {
            assert_eq!(merged.sketched_quantiles(q), whole.sketched_quantiles(q));
        }
    }

    #[test]
    fn merge_is_associative_and_commutative() {
        let values = values(3_000, 4);
        let parts: Vec<RfmSketch> = values.chunks(1_000).map(sketch_of).collect();
        let mut left_first = parts[0].clone();
        left_first.merge(&parts[1]);
        left_first.merge(&parts[2]);
        let mut right_first = parts[1].clone();
        right_first.merge(&parts[2]);
        let mut grouped_right = parts[0].clone();
        grouped_right.merge(&right_first);
        let mut reversed = parts[2].clone();
        reversed.merge(&parts[1]);
        reversed.merge(&parts[0]);
        let edges = left_first.edges(1).unwrap();
        assert_eq!(grouped_right.edges(1).unwrap(), edges);
        assert_eq!(reversed.edges(1).unwrap(), edges);
        assert_eq!(reversed.count(), 3_000);
    }

    #[test]
    fn store_never_collapses() {
        // Keys of sketched values are in 0..=max_key; with fewer than 2 048 of them the
        // collapsing store never collapses, which is what makes merges exact.
        let limits = sketch_limits();
        assert_eq!(limits.max_key, 1_726);
        let mut sketch = RfmSketch::new();
        for v in [0.0, 1e15, 1e20, -5.0] {
            sketch.add(&RfmValues { recency_days: v, frequency: 1, monetary: v });
        }
        let decoded = RfmSketch::decode(&sketch.encode()).unwrap();
        assert_eq!(decoded.count(), 4);
    }

    #[test]
    fn empty_sketch_has_no_edges() {
        let mut sketch = RfmSketch::new();
        assert!(sketch.is_empty());
        assert_eq!(sketch.edges(1), None);
        sketch.add(&RfmValues { recency_days: 1.0, frequency: 0, monetary: 5.0 });
        sketch.add(&RfmValues { recency_days: f64::NAN, frequency: 2, monetary: 5.0 });
        sketch.add(&RfmValues { recency_days: 1.0, frequency: 2, monetary: f64::INFINITY });
        assert_eq!(sketch.count(), 0, "customers without purchases and non-finite values are ignored");
        assert_eq!(RfmSketch::decode(&sketch.encode()).unwrap().edges(1), None);
    }

    #[test]
    fn decode_round_trips() {
        let values = values(5_000, 5);
        let sketch = sketch_of(&values);
        let bytes = sketch.encode();
        assert!(bytes.len() < 8_000, "{} bytes for 5 000 customers", bytes.len());
        let decoded = RfmSketch::decode(&bytes).unwrap();
        assert_eq!(decoded.count(), sketch.count());
        assert_eq!(decoded.edges(4), sketch.edges(4));
        assert_eq!(decoded.encode(), bytes, "decode(encode(x)) encodes identically");

        // A decoded sketch merges with fresh ones, both ways.
        let mut fresh = sketch_of(&values[..10]);
        fresh.merge(&decoded);
        assert_eq!(fresh.count(), 5_010);
        let mut decoded = decoded;
        decoded.merge(&sketch_of(&values[..10]));
        assert_eq!(decoded.edges(1), fresh.edges(1));
    }

    #[test]
    fn corrupt_bytes_are_errors_not_panics() {
        let bytes = sketch_of(&values(500, 6)).encode();
        let is_decode_error = |input: &[u8]| {
            matches!(RfmSketch::decode(input), Err(ScoringError::Decode { what: "rfm sketch", .. }))
        };
        assert!(is_decode_error(&[]));
        assert!(is_decode_error(&[9]));
        assert!(is_decode_error(&bytes[..bytes.len() - 1]));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(is_decode_error(&trailing));

        // Every truncation and many random one-byte corruptions: an error or a usable sketch.
        for len in 0..bytes.len() {
            let _ = RfmSketch::decode(&bytes[..len]);
        }
        let mut rng = StdRng::seed_from_u64(9);
        for _ in 0..20_000 {
            let mut mutated = bytes.clone();
            let at = rng.random_range(0..mutated.len());
            mutated[at] = rng.random();
            if let Ok(sketch) = RfmSketch::decode(&mutated) {
                let _ = sketch.edges(1);
                let mut copy = sketch.clone();
                copy.merge(&sketch);
            }
        }
    }
}
