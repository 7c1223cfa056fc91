//! Segment vocabularies (activity segment, lifecycle, level, weekday, dimension) and the rules
//! that assign them.

use std::fmt;

use crate::config::ScoringConfig;
use crate::state::ActiveDays;

/// Coarse activity level derived from the activity index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActivityLevel {
    /// index ≥ `level_high` (70).
    High,
    /// index ≥ `level_medium` (40).
    Medium,
    /// index ≥ `level_low` (15).
    Low,
    /// Below `level_low`.
    Inactive,
}

/// Calendar activity segment, first match wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActivitySegment {
    /// Active on ≥ 5 of the last 7 days.
    Daily,
    /// Active in ≥ 3 of the 4 trailing weeks.
    Weekly,
    /// Active at least once in the last 30 days.
    Monthly,
    /// Active at least once in the last 90 days.
    Dormant,
    /// Not active in the last 90 days.
    Churned,
}

/// Lifecycle stage over trailing periods (7 days by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lifecycle {
    /// First event falls in the current period.
    New,
    /// Active in the current and the previous period.
    Returning,
    /// Active now, not in the previous period, active before it.
    Resurrecting,
    /// Not active in the current period.
    Dormant,
}

/// Day of week of a weekday-only activity pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Weekday {
    /// No single-weekday pattern.
    None,
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

/// The segment families a customer is classified along.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// [`ActivitySegment`].
    ActivitySegment,
    /// [`Lifecycle`].
    Lifecycle,
    /// [`ActivityLevel`].
    Level,
    /// [`crate::RfmSegment`].
    RfmSegment,
    /// Custom CEL segments, by id.
    Custom,
}

macro_rules! short_names {
    ($ty:ty { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$(<$ty>::$variant),+];

            /// The short name used in the API (`DAILY`, `HIGH`, ...): the suffix of the proto
            /// enum value name.
            pub const fn name(self) -> &'static str {
                match self { $(<$ty>::$variant => $name),+ }
            }

            /// Parses a short name as produced by [`Self::name`].
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($name => Some(<$ty>::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

short_names!(ActivityLevel { High => "HIGH", Medium => "MEDIUM", Low => "LOW", Inactive => "INACTIVE" });
short_names!(ActivitySegment {
    Daily => "DAILY", Weekly => "WEEKLY", Monthly => "MONTHLY", Dormant => "DORMANT", Churned => "CHURNED",
});
short_names!(Lifecycle {
    New => "NEW", Returning => "RETURNING", Resurrecting => "RESURRECTING", Dormant => "DORMANT",
});
short_names!(Weekday {
    None => "NONE", Monday => "MONDAY", Tuesday => "TUESDAY", Wednesday => "WEDNESDAY",
    Thursday => "THURSDAY", Friday => "FRIDAY", Saturday => "SATURDAY", Sunday => "SUNDAY",
});
short_names!(Dimension {
    ActivitySegment => "ACTIVITY_SEGMENT", Lifecycle => "LIFECYCLE", Level => "LEVEL",
    RfmSegment => "RFM_SEGMENT", Custom => "CUSTOM",
});

impl ActivityLevel {
    /// The level of an activity index.
    pub fn from_index(index: f64, config: &ScoringConfig) -> Self {
        if index >= config.level_high {
            ActivityLevel::High
        } else if index >= config.level_medium {
            ActivityLevel::Medium
        } else if index >= config.level_low {
            ActivityLevel::Low
        } else {
            ActivityLevel::Inactive
        }
    }
}

impl ActivitySegment {
    /// The activity segment on day `d`: the first rule that matches.
    pub fn classify(days: &ActiveDays, d: i64, config: &ScoringConfig) -> Self {
        if days.count_trailing(d, 7) >= config.daily_min_active_days {
            return ActivitySegment::Daily;
        }
        let active_weeks = (0..4).filter(|week| days.count_trailing(d - 7 * week, 7) > 0).count() as u32;
        if active_weeks >= config.weekly_min_active_weeks {
            ActivitySegment::Weekly
        } else if days.count_trailing(d, 30) >= 1 {
            ActivitySegment::Monthly
        } else if days.count_trailing(d, 90) >= 1 {
            ActivitySegment::Dormant
        } else {
            ActivitySegment::Churned
        }
    }
}

impl Lifecycle {
    /// The lifecycle stage on day `d` of a customer first seen on `first_day`.
    pub fn classify(days: &ActiveDays, first_day: i64, d: i64, config: &ScoringConfig) -> Self {
        let period = i64::from(config.lifecycle_period_days);
        let current_start = d - period + 1;
        if days.count(current_start, d) == 0 {
            Lifecycle::Dormant
        } else if first_day >= current_start {
            Lifecycle::New
        } else if days.count(current_start - period, current_start - 1) > 0 {
            Lifecycle::Returning
        } else {
            // Active now, first seen before the current period and idle in the previous one:
            // the first active day precedes the previous period.
            Lifecycle::Resurrecting
        }
    }
}

impl Weekday {
    /// Weekdays Monday..Sunday in order (without `None`).
    pub const DAYS: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];

    /// The weekday of day number `day` (day 0, 1970-01-01, was a Thursday).
    pub fn of_day(day: i64) -> Self {
        Self::DAYS[(day + 3).rem_euclid(7) as usize]
    }

    /// The weekday pattern on day `d`: over the trailing `weekday_window_days`, at least
    /// `weekday_min_active_days` active days of which at least `weekday_min_share` fall on one
    /// weekday.
    pub fn classify(days: &ActiveDays, d: i64, config: &ScoringConfig) -> Self {
        let first = d - i64::from(config.weekday_window_days) + 1;
        let mut per_weekday = [0u32; 7];
        let mut total = 0u32;
        for day in days.iter().filter(|day| (first..=d).contains(day)) {
            per_weekday[(day + 3).rem_euclid(7) as usize] += 1;
            total += 1;
        }
        if total < config.weekday_min_active_days {
            return Weekday::None;
        }
        let (best, count) = per_weekday
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
            .unwrap_or((0, &0));
        if f64::from(*count) >= config.weekday_min_share * f64::from(total) {
            Self::DAYS[best]
        } else {
            Weekday::None
        }
    }
}
