//! [`PurchaseDays`]: the distinct days with a purchase, for BG/NBD's `x`, `t_x` and `T`.

/// Distinct purchase days retained exactly; older ones are folded into a count.
pub const MAX_RETAINED_DAYS: usize = 512;

/// The set of distinct days on which the customer purchased.
///
/// The newest [`MAX_RETAINED_DAYS`] days are kept exactly (delta-encoded on disk, typically one
/// byte a day), so the distinct count is exact and order-independent for any customer with up to
/// that many purchase days. Beyond it the oldest days are folded into `folded` and a late
/// purchase on a day older than every retained day counts as a new day: an approximation that
/// only backfills of very old history of very heavy buyers can notice.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PurchaseDays {
    /// Retained distinct days, ascending.
    days: Vec<i64>,
    /// Distinct days folded away (all older than `days[0]`).
    folded: u64,
    /// Earliest purchase day ever seen (kept across folding).
    first_day: Option<i64>,
}

impl PurchaseDays {
    /// Rebuilds from parts (decoding); `days` must be ascending and distinct.
    pub(crate) fn from_parts(days: Vec<i64>, folded: u64, first_day: Option<i64>) -> Self {
        debug_assert!(days.windows(2).all(|w| w[0] < w[1]));
        Self { days, folded, first_day }
    }

    /// Retained days, ascending.
    pub(crate) fn retained(&self) -> &[i64] {
        &self.days
    }

    /// Count of folded days.
    pub(crate) fn folded(&self) -> u64 {
        self.folded
    }

    /// Records a purchase on `day`.
    pub fn mark(&mut self, day: i64) {
        self.first_day = Some(self.first_day.map_or(day, |f| f.min(day)));
        if self.folded > 0 && self.days.first().is_some_and(|&oldest| day < oldest) {
            self.folded += 1;
            return;
        }
        if let Err(at) = self.days.binary_search(&day) {
            self.days.insert(at, day);
            if self.days.len() > MAX_RETAINED_DAYS {
                self.days.remove(0);
                self.folded += 1;
            }
        }
    }

    /// Number of distinct purchase days.
    pub fn distinct(&self) -> u64 {
        self.days.len() as u64 + self.folded
    }

    /// First purchase day.
    pub fn first(&self) -> Option<i64> {
        self.first_day
    }

    /// Latest purchase day.
    pub fn last(&self) -> Option<i64> {
        self.days.last().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_days_in_any_order() {
        let mut a = PurchaseDays::default();
        let mut b = PurchaseDays::default();
        let days = [5, 9, 5, 1, 9, 30];
        days.iter().for_each(|d| a.mark(*d));
        days.iter().rev().for_each(|d| b.mark(*d));
        assert_eq!(a, b);
        assert_eq!((a.distinct(), a.first(), a.last()), (4, Some(1), Some(30)));
    }

    #[test]
    fn folds_beyond_retention() {
        let mut days = PurchaseDays::default();
        for d in 0..(MAX_RETAINED_DAYS as i64 + 10) {
            days.mark(d);
        }
        assert_eq!(days.distinct(), MAX_RETAINED_DAYS as u64 + 10);
        assert_eq!(days.retained().len(), MAX_RETAINED_DAYS);
        assert_eq!(days.first(), Some(0));
    }
}
