//! [`CategoryState`]: the decayed counters of one customer restricted to one category.

use compact_str::CompactString;

/// Per-category counters, anchored (like every counter of the customer) at the customer's latest
/// event time, so decaying them to any instant needs no per-category anchor.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryState {
    /// Normalised category name; names up to 24 bytes are stored inline, without allocation.
    pub name: CompactString,
    /// Latest event in this category, Unix ms.
    pub last_seen_ms: i64,
    /// Weighted activity with the short half-life, `A_s[c]`, at the customer's anchor.
    pub short_activity: f64,
    /// Weighted activity with the long half-life, `A_l[c]`, at the customer's anchor.
    pub long_activity: f64,
    /// Purchase spend with the long half-life, `S_l[c]`, at the customer's anchor.
    pub long_spend: f64,
}

impl CategoryState {
    /// An empty category first seen at `at_ms`.
    pub fn new(name: CompactString, at_ms: i64) -> Self {
        Self { name, last_seen_ms: at_ms, short_activity: 0.0, long_activity: 0.0, long_spend: 0.0 }
    }
}
