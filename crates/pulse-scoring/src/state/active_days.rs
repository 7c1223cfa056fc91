//! [`ActiveDays`]: which of the last 128 days had at least one event.

/// Days of history the bitmap keeps.
pub const HISTORY_DAYS: i64 = 128;

/// A 128-day bitmap anchored at the latest active day: bit `i` is day `anchor_day − i`.
///
/// Marking is idempotent and commutative, so any arrival order of the same events gives the same
/// bitmap (a day older than the window relative to the newest day is simply not recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ActiveDays {
    /// Day number of bit 0; meaningful only when `bits != 0`.
    anchor_day: i64,
    /// Bit `i` set ⇔ day `anchor_day − i` was active.
    bits: u128,
}

impl ActiveDays {
    /// Rebuilds a bitmap from its parts (decoding).
    pub(crate) fn from_parts(anchor_day: i64, bits: u128) -> Self {
        Self { anchor_day, bits }
    }

    /// The day of bit 0.
    pub(crate) fn anchor_day(&self) -> i64 {
        self.anchor_day
    }

    /// The raw bits.
    pub(crate) fn bits(&self) -> u128 {
        self.bits
    }

    /// Records activity on `day`.
    pub fn mark(&mut self, day: i64) {
        if self.bits == 0 {
            self.anchor_day = day;
            self.bits = 1;
            return;
        }
        if day > self.anchor_day {
            let shift = day - self.anchor_day;
            self.bits = if shift >= HISTORY_DAYS { 0 } else { self.bits << shift };
            self.anchor_day = day;
            self.bits |= 1;
        } else if self.anchor_day - day < HISTORY_DAYS {
            self.bits |= 1u128 << (self.anchor_day - day);
        }
    }

    /// Whether `day` is known to be active.
    pub fn is_active(&self, day: i64) -> bool {
        let offset = self.anchor_day - day;
        self.bits != 0 && (0..HISTORY_DAYS).contains(&offset) && self.bits & (1u128 << offset) != 0
    }

    /// Number of active days in `[first_day, last_day]` (inclusive).
    pub fn count(&self, first_day: i64, last_day: i64) -> u32 {
        if self.bits == 0 || first_day > last_day {
            return 0;
        }
        // Offsets from the anchor: day d ↔ bit (anchor − d); the range reverses.
        let lo = (self.anchor_day - last_day).max(0);
        let hi = (self.anchor_day - first_day).min(HISTORY_DAYS - 1);
        if lo > hi {
            return 0;
        }
        let width = hi - lo + 1;
        let mask = if width >= HISTORY_DAYS { u128::MAX } else { ((1u128 << width) - 1) << lo };
        (self.bits & mask).count_ones()
    }

    /// Active days in the `n` days ending with `day` (`[day − n + 1, day]`).
    pub fn count_trailing(&self, day: i64, n: i64) -> u32 {
        self.count(day - n + 1, day)
    }

    /// Iterates the active days, newest first.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        (0..HISTORY_DAYS).filter(|i| self.bits & (1u128 << i) != 0).map(|i| self.anchor_day - i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_in_any_order() {
        let days = [100, 3, 50, 100, 228, 101, 99];
        let mut forward = ActiveDays::default();
        days.iter().for_each(|d| forward.mark(*d));
        let mut backward = ActiveDays::default();
        days.iter().rev().for_each(|d| backward.mark(*d));
        assert_eq!(forward, backward);
        // 100 is 128 days before 228: just outside the window.
        assert_eq!(forward.iter().collect::<Vec<_>>(), [228, 101]);
    }

    #[test]
    fn counts_windows() {
        let mut days = ActiveDays::default();
        for d in [10, 8, 7, 1] {
            days.mark(d);
        }
        assert_eq!(days.count_trailing(10, 1), 1);
        assert_eq!(days.count_trailing(10, 3), 2);
        assert_eq!(days.count_trailing(12, 7), 3);
        assert_eq!(days.count_trailing(12, 300), 4);
        assert_eq!(days.count(2, 6), 0);
        assert_eq!(days.count_trailing(200, 30), 0);
        assert!(days.is_active(7) && !days.is_active(9));
    }

    #[test]
    fn window_edge_is_kept_exactly() {
        let mut days = ActiveDays::default();
        days.mark(200);
        days.mark(200 - 127);
        days.mark(200 - 128);
        assert_eq!(days.count(0, 200), 2);
    }
}
