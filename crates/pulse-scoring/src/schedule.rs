//! [`next_reevaluation_ms`]: when time alone can next change a customer's memberships.
//!
//! Shards keep a timer per customer at this instant; a clock tick re-scores the customers whose
//! timer is due, so a stored membership lags the true one by at most the tick interval.
//!
//! - Activity segment, lifecycle and weekday pattern depend on whole days: they can only change
//!   when a new day starts (in the configured time zone), and never once every active day is
//!   older than the longest window they look at.
//! - The activity index never grows without events (every component decays), so the level
//!   changes exactly when the index falls below the current level's threshold: found by
//!   bisection to the millisecond.
//! - The RFM R score changes when the days since the last purchase pass a quintile edge.
//!
//! Custom rules over continuous fields (`recency_days`, `p_alive`) are re-evaluated at these
//! instants too, so they may lag by up to a day; rules over the fields above are exact.

use crate::config::{MS_PER_DAY, ScoringConfig};
use crate::score::activity_index_at;
use crate::segment::ActivityLevel;
use crate::state::{CustomerState, HISTORY_DAYS};

/// Longest look-ahead of the level search; beyond it the index is effectively constant.
const LEVEL_HORIZON_MS: i64 = 4 * 365 * MS_PER_DAY;

/// The first instant after `as_of_ms` at which time alone may change the customer's activity
/// segment, lifecycle, weekday pattern, level or RFM segment; `None` when nothing more can
/// change without new events.
pub fn next_reevaluation_ms(state: &CustomerState, as_of_ms: i64, config: &ScoringConfig) -> Option<i64> {
    if !state.has_events() {
        return None;
    }
    let mut next: Option<i64> = None;
    let consider = |next: &mut Option<i64>, t: i64| *next = Some(next.map_or(t, |n: i64| n.min(t)));

    // Day-based dimensions: the next midnight, while any active day is within reach.
    let d = config.day(as_of_ms);
    let windows = [i64::from(config.lifecycle_period_days * 2), i64::from(config.weekday_window_days), 90];
    let longest_window = windows.into_iter().max().unwrap_or(90).min(HISTORY_DAYS);
    let newest_active_day = config.day(state.last_seen_ms);
    if d - newest_active_day < longest_window {
        consider(&mut next, (d + 1) * MS_PER_DAY - config.tz_offset_ms);
    }

    // Level: the instant the index falls below the current level's threshold.
    let index = activity_index_at(state, as_of_ms, config);
    let threshold = match ActivityLevel::from_index(index, config) {
        ActivityLevel::High => Some(config.level_high),
        ActivityLevel::Medium => Some(config.level_medium),
        ActivityLevel::Low => Some(config.level_low),
        ActivityLevel::Inactive => None,
    };
    if let Some(threshold) = threshold {
        // Only a crossing before the earliest instant already found matters (the answer is the
        // minimum), so the search stops there: usually the next midnight, where one evaluation
        // shows the index still above the threshold and no search is needed at all.
        let horizon = next.unwrap_or(i64::MAX).min(as_of_ms.saturating_add(LEVEL_HORIZON_MS));
        if activity_index_at(state, horizon, config) < threshold {
            // Invariant: index(low) ≥ threshold > index(high).
            let (mut low, mut high) = (as_of_ms, horizon);
            while high - low > 1 {
                let mid = low + (high - low) / 2;
                if activity_index_at(state, mid, config) >= threshold {
                    low = mid;
                } else {
                    high = mid;
                }
            }
            consider(&mut next, high);
        }
    }

    // RFM: R changes when days since the last purchase pass an edge (`recency_days > edge`).
    if let (Some(edges), Some(last_purchase)) = (&config.rfm_edges, state.last_purchase_ms) {
        for edge in edges.recency_days {
            let crossing = last_purchase + (edge * MS_PER_DAY as f64).floor() as i64 + 1;
            if crossing > as_of_ms {
                consider(&mut next, crossing);
            }
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, EventInput, EventKind};
    use crate::score::score;

    const START_MS: i64 = 1_767_225_600_000;

    fn busy_state(config: &ScoringConfig) -> CustomerState {
        let mut state = CustomerState::new();
        for day in 0..30 {
            let input = EventInput {
                customer_id: "c".into(),
                event_id: format!("e{day}"),
                timestamp_ms: START_MS + day * MS_PER_DAY,
                kind: Some(EventKind::Purchase),
                amount: 80.0,
                category: "books".into(),
                ..EventInput::default()
            };
            state.apply(&Event::validate(input, START_MS + 400 * MS_PER_DAY, config).unwrap(), config);
        }
        state
    }

    #[test]
    fn next_midnight_while_days_matter() {
        let config = ScoringConfig::default();
        let state = busy_state(&config);
        let as_of = state.last_seen_ms + 3_600_000;
        let next = next_reevaluation_ms(&state, as_of, &config).unwrap();
        assert!(next > as_of && next <= (config.day(as_of) + 1) * MS_PER_DAY);
    }

    #[test]
    fn level_drops_exactly_at_the_scheduled_instant() {
        let config = ScoringConfig::default();
        let state = busy_state(&config);
        // Walk forward through every scheduled instant; each level change must happen at one.
        let mut t = state.last_seen_ms;
        let mut level = score("c", &state, t, &config).unwrap().level;
        let mut changes = 0;
        for _ in 0..2000 {
            let Some(next) = next_reevaluation_ms(&state, t, &config) else { break };
            assert!(next > t);
            let before = score("c", &state, next - 1, &config).unwrap().level;
            assert_eq!(before, level, "level changed before the scheduled instant {next}");
            let after = score("c", &state, next, &config).unwrap().level;
            if after != level {
                changes += 1;
                level = after;
            }
            t = next;
        }
        assert_eq!(level, ActivityLevel::Inactive);
        assert!(changes >= 2, "a busy customer decays through several levels, saw {changes}");
        assert_eq!(next_reevaluation_ms(&state, t, &config), None, "nothing left to change");
    }
}
