//! [`CustomerActivity`]: everything Pulse knows about one customer at one instant.
//!
//! This is the scored view that `GetActivity` returns, that custom segment rules are evaluated
//! over, and that the segment index is derived from. It is computed by
//! [`crate::score`] from a [`crate::CustomerState`] and is never stored.

use crate::lifetime::LifetimePrediction;
use crate::rfm::RfmScore;
use crate::segment::{ActivityLevel, ActivitySegment, Lifecycle, Weekday};

/// The four components of the activity index, each in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Components {
    /// `2^(−days_since_last_event / 14)`.
    pub recency: f64,
    /// `1 − exp(−A_l / 10)`: weighted, decayed event count.
    pub frequency: f64,
    /// `1 − exp(−S_l / 100)`: decayed purchase spend.
    pub monetary: f64,
    /// `1 − exp(−(C_l[VISIT] + C_l[INTERACTION]) / 20)`.
    pub engagement: f64,
}

/// The activity of a customer within one transaction category.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryActivity {
    /// Normalised category name (trimmed, lowercase).
    pub category: String,
    /// Category activity index, 0–100.
    pub activity_index: f64,
    /// Share of the customer's long-term weighted activity in this category, in `[0, 1]`.
    pub affinity: f64,
    /// `(A_s/h_s)/(A_l/h_l) − 1` within the category; 0 when there is no long-term activity.
    pub trend: f64,
    /// Time of the latest event in this category, Unix ms.
    pub last_seen_ms: i64,
}

/// A customer's scored activity at `as_of_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerActivity {
    /// The customer.
    pub customer_id: String,
    /// The instant this view describes, Unix ms.
    pub as_of_ms: i64,
    /// Activity index, 0–100.
    pub activity_index: f64,
    /// Coarse level derived from the index.
    pub level: ActivityLevel,
    /// The components the index is made of.
    pub components: Components,
    /// Short-term against long-term activity rate, minus one (0 = steady, > 0 = rising).
    pub trend: f64,
    /// Daily / weekly / monthly / dormant / churned.
    pub segment: ActivitySegment,
    /// New / returning / resurrecting / dormant.
    pub lifecycle: Lifecycle,
    /// The single weekday the customer is active on, if any.
    pub weekday_pattern: Weekday,
    /// Active days in the last 7 days (`[D−6, D]`).
    pub active_days_7: u32,
    /// Active days in the last 30 days.
    pub active_days_30: u32,
    /// Active days in the last 90 days.
    pub active_days_90: u32,
    /// Earliest event time, Unix ms.
    pub first_seen_ms: i64,
    /// Latest event time, Unix ms.
    pub last_seen_ms: i64,
    /// Latest purchase time, Unix ms; `None` without purchases.
    pub last_purchase_ms: Option<i64>,
    /// Number of purchase events (not decayed).
    pub purchase_count: u64,
    /// Sum of purchase amounts (not decayed).
    pub total_amount: f64,
    /// `total_amount / purchase_count`, 0 without purchases.
    pub average_order_value: f64,
    /// Days (real) since the latest event.
    pub recency_days: f64,
    /// RFM scores and segment; `None` without purchases or without quintile edges.
    pub rfm: Option<RfmScore>,
    /// BG/NBD prediction; `None` without purchases or without fitted parameters.
    pub lifetime: Option<LifetimePrediction>,
    /// Per-category activity, highest index first.
    pub categories: Vec<CategoryActivity>,
    /// Ids of the custom segments the customer is a member of, sorted.
    pub custom_segments: Vec<String>,
}
