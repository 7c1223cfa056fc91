//! The per-customer state and how one event changes it.
//!
//! ```text
//! CustomerState
//! ├── last_seen_ms ─────────── anchor of every decayed counter below
//! ├── short_counts[k], long_counts[k]   C_s[k], C_l[k] per event kind (h_s = 7 d, h_l = 30 d)
//! ├── long_spend                        S_l, purchase amounts
//! ├── purchase_count, total_amount, last_purchase_ms, purchase_days (BG/NBD, RFM)
//! ├── active_days                       128-day bitmap (L7/L30/L90, segments, weekday)
//! ├── categories[≤ 32]                  A_s[c], A_l[c], S_l[c], last_seen per category
//! └── memberships                       where the customer stood at the last evaluation
//! ```
//!
//! Every counter shares one anchor, the latest event time: decay is linear, so decaying all
//! counters to a newer event and adding there equals keeping one anchor per counter. An event
//! older than the anchor adds its decayed contribution instead, which makes the result
//! independent of arrival order (up to floating-point rounding).
//!
//! The deduplication window lives beside the state in [`RecentEventIds`], not in it.

mod active_days;
mod category;
pub(crate) mod codec;
mod purchase_days;
mod recent_ids;

pub use active_days::{ActiveDays, HISTORY_DAYS};
pub use category::CategoryState;
pub use purchase_days::{MAX_RETAINED_DAYS, PurchaseDays};
pub use recent_ids::{RecentEventIds, event_id_hash};

use crate::config::{MS_PER_DAY, ScoringConfig};
use crate::event::{Event, EventKind};
use crate::transition::Memberships;

/// Everything Pulse keeps about one customer (apart from recent event ids).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CustomerState {
    /// Events applied (duplicates excluded).
    pub events: u64,
    /// Earliest event time, Unix ms.
    pub first_seen_ms: i64,
    /// Latest event time, Unix ms: the anchor of every decayed counter.
    pub last_seen_ms: i64,
    /// `C_s[k]`: count of kind `k` with the short half-life, at the anchor.
    pub short_counts: [f64; EventKind::COUNT],
    /// `C_l[k]`: count of kind `k` with the long half-life, at the anchor.
    pub long_counts: [f64; EventKind::COUNT],
    /// `S_l`: purchase spend with the long half-life, at the anchor.
    pub long_spend: f64,
    /// Purchases applied (not decayed).
    pub purchase_count: u64,
    /// Sum of purchase amounts (not decayed).
    pub total_amount: f64,
    /// Latest purchase, Unix ms.
    pub last_purchase_ms: Option<i64>,
    /// Distinct purchase days.
    pub purchase_days: PurchaseDays,
    /// Active days of the last 128 days before the latest event.
    pub active_days: ActiveDays,
    /// Per-category counters, sorted by name, at most `max_categories`.
    pub categories: Vec<CategoryState>,
    /// Memberships at the last evaluation.
    pub memberships: Memberships,
}

impl CustomerState {
    /// The state of a customer without events.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether any event was applied.
    pub fn has_events(&self) -> bool {
        self.events > 0
    }

    /// Applies one validated, deduplicated event.
    pub fn apply(&mut self, event: &Event, config: &ScoringConfig) {
        let t = event.timestamp_ms;
        let h_short = config.short_half_life_ms();
        let h_long = config.long_half_life_ms();
        // Contribution factors of this event at the (possibly new) anchor.
        let (event_short, event_long) = if !self.has_events() {
            self.first_seen_ms = t;
            self.last_seen_ms = t;
            (1.0, 1.0)
        } else if t >= self.last_seen_ms {
            let elapsed = (t - self.last_seen_ms) as f64;
            self.decay_all(decay(elapsed, h_short), decay(elapsed, h_long));
            self.last_seen_ms = t;
            (1.0, 1.0)
        } else {
            self.first_seen_ms = self.first_seen_ms.min(t);
            let age = (self.last_seen_ms - t) as f64;
            (decay(age, h_short), decay(age, h_long))
        };
        self.events += 1;

        let k = event.kind.index();
        self.short_counts[k] += event_short;
        self.long_counts[k] += event_long;
        let day = config.day(t);
        self.active_days.mark(day);

        let spend = event.spend();
        if event.kind == EventKind::Purchase {
            self.purchase_count += 1;
            self.total_amount += spend;
            self.long_spend += spend * event_long;
            self.last_purchase_ms = Some(self.last_purchase_ms.map_or(t, |last| last.max(t)));
            self.purchase_days.mark(day);
        }

        if let Some(name) = &event.category {
            let weight = config.kind_weights.of(event.kind);
            let category = self.category_mut(name, t, config.max_categories as usize);
            category.last_seen_ms = category.last_seen_ms.max(t);
            category.short_activity += weight * event_short;
            category.long_activity += weight * event_long;
            category.long_spend += spend * event_long;
        }
    }

    /// Multiplies every decayed counter by the short / long decay factors.
    fn decay_all(&mut self, short: f64, long: f64) {
        for k in 0..EventKind::COUNT {
            self.short_counts[k] *= short;
            self.long_counts[k] *= long;
        }
        self.long_spend *= long;
        for c in &mut self.categories {
            c.short_activity *= short;
            c.long_activity *= long;
            c.long_spend *= long;
        }
    }

    /// The category `name`, created if missing; creating one beyond `max` evicts the category
    /// with the smallest long-term activity (ties: the greatest name), never the new one.
    fn category_mut(&mut self, name: &str, at_ms: i64, max: usize) -> &mut CategoryState {
        let at = match self.categories.binary_search_by(|c| c.name.as_str().cmp(name)) {
            Ok(at) => at,
            Err(mut at) => {
                if self.categories.len() >= max {
                    let weakest = self
                        .categories
                        .iter()
                        .enumerate()
                        .min_by(|(_, a), (_, b)| {
                            a.long_activity.total_cmp(&b.long_activity).then_with(|| b.name.cmp(&a.name))
                        })
                        .map(|(i, _)| i);
                    if let Some(weakest) = weakest {
                        self.categories.remove(weakest);
                        if weakest < at {
                            at -= 1;
                        }
                    }
                }
                self.categories.insert(at, CategoryState::new(name.into(), at_ms));
                at
            }
        };
        &mut self.categories[at]
    }

    /// Days (real) from the latest event to `as_of_ms`.
    pub fn days_since_last_event(&self, as_of_ms: i64) -> f64 {
        (as_of_ms - self.last_seen_ms) as f64 / MS_PER_DAY as f64
    }
}

/// `2^(−elapsed/half_life)`.
pub(crate) fn decay(elapsed: f64, half_life: f64) -> f64 {
    (-elapsed / half_life).exp2()
}
