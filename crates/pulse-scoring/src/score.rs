//! [`score`]: a customer's [`CustomerActivity`] at any instant, computed from the state.

use crate::activity::{CategoryActivity, Components, CustomerActivity};
use crate::config::{MS_PER_DAY, ScoringConfig};
use crate::error::{Result, ScoringError};
use crate::event::EventKind;
use crate::lifetime::PurchaseHistory;
use crate::rfm::RfmValues;
use crate::segment::{ActivityLevel, ActivitySegment, Lifecycle, Weekday};
use crate::state::{CustomerState, decay};

/// Scores `state` exactly at `as_of_ms`.
///
/// Fails with [`ScoringError::AsOfBeforeLastEvent`] when `as_of_ms` precedes the latest event:
/// history is not kept, so the past cannot be reconstructed. `custom_segments` is taken from the
/// stored memberships; re-evaluating rules is the caller's business (see `rules`).
pub fn score(
    customer_id: &str,
    state: &CustomerState,
    as_of_ms: i64,
    config: &ScoringConfig,
) -> Result<CustomerActivity> {
    if state.has_events() && as_of_ms < state.last_seen_ms {
        return Err(ScoringError::AsOfBeforeLastEvent { as_of_ms, last_seen_ms: state.last_seen_ms });
    }
    let Overall { components, activity_index, short_activity, long_activity, short, long, recency_days } =
        overall(state, as_of_ms, config);

    let d = config.day(as_of_ms);
    let days = &state.active_days;
    let categories = score_categories(state, as_of_ms, short, long, config);

    let last_purchase_ms = state.last_purchase_ms;
    let has_purchases = state.purchase_count > 0;
    let rfm = match (&config.rfm_edges, last_purchase_ms) {
        (Some(edges), Some(last)) if has_purchases => Some(edges.score(&RfmValues {
            recency_days: (as_of_ms - last).max(0) as f64 / MS_PER_DAY as f64,
            frequency: state.purchase_count,
            monetary: state.total_amount,
        })),
        _ => None,
    };
    let lifetime = match (&config.lifetime, purchase_history(state, d)) {
        (Some(params), Some(history)) => {
            Some(params.predict(&history, config.expected_purchases_horizon_days))
        }
        _ => None,
    };

    Ok(CustomerActivity {
        customer_id: customer_id.to_owned(),
        as_of_ms,
        activity_index,
        level: ActivityLevel::from_index(activity_index, config),
        components,
        trend: trend(short_activity, long_activity, config),
        segment: ActivitySegment::classify(days, d, config),
        lifecycle: Lifecycle::classify(days, config.day(state.first_seen_ms), d, config),
        weekday_pattern: Weekday::classify(days, d, config),
        active_days_7: days.count_trailing(d, 7),
        active_days_30: days.count_trailing(d, 30),
        active_days_90: days.count_trailing(d, 90),
        first_seen_ms: state.first_seen_ms,
        last_seen_ms: state.last_seen_ms,
        last_purchase_ms,
        purchase_count: state.purchase_count,
        total_amount: state.total_amount,
        average_order_value: if has_purchases {
            state.total_amount / state.purchase_count as f64
        } else {
            0.0
        },
        recency_days,
        rfm,
        lifetime,
        categories,
        custom_segments: state.memberships.custom_ids(),
    })
}

/// The customer-wide part of the score at `as_of_ms` (no categories, no segments).
struct Overall {
    components: Components,
    activity_index: f64,
    /// `A_s` decayed to `as_of_ms`.
    short_activity: f64,
    /// `A_l` decayed to `as_of_ms`.
    long_activity: f64,
    /// Short-half-life decay factor from the anchor to `as_of_ms`.
    short: f64,
    /// Long-half-life decay factor from the anchor to `as_of_ms`.
    long: f64,
    recency_days: f64,
}

fn overall(state: &CustomerState, as_of_ms: i64, config: &ScoringConfig) -> Overall {
    let elapsed_ms = (as_of_ms - state.last_seen_ms).max(0) as f64;
    let short = decay(elapsed_ms, config.short_half_life_ms());
    let long = decay(elapsed_ms, config.long_half_life_ms());
    let weights = &config.kind_weights;
    let mut short_activity = 0.0;
    let mut long_activity = 0.0;
    for kind in EventKind::ALL {
        short_activity += weights.of(kind) * state.short_counts[kind.index()] * short;
        long_activity += weights.of(kind) * state.long_counts[kind.index()] * long;
    }
    let engagement_count = (state.long_counts[EventKind::Visit.index()]
        + state.long_counts[EventKind::Interaction.index()])
        * long;
    let recency_days = if state.has_events() { elapsed_ms / MS_PER_DAY as f64 } else { f64::INFINITY };
    let components = Components {
        recency: recency(recency_days, config),
        frequency: saturate(long_activity, config.frequency_scale),
        monetary: saturate(state.long_spend * long, config.monetary_scale),
        engagement: saturate(engagement_count, config.engagement_scale),
    };
    let w = &config.index_weights;
    let activity_index = clamp_index(
        100.0
            * (w.recency * components.recency
                + w.frequency * components.frequency
                + w.monetary * components.monetary
                + w.engagement * components.engagement),
    );
    Overall { components, activity_index, short_activity, long_activity, short, long, recency_days }
}

/// The activity index alone at `as_of_ms` (cheaper than [`score`]; used to schedule
/// re-evaluation).
pub fn activity_index_at(state: &CustomerState, as_of_ms: i64, config: &ScoringConfig) -> f64 {
    overall(state, as_of_ms, config).activity_index
}

/// The BG/NBD summary `(x, t_x, T)` of a customer on day `d`, in whole days.
pub fn purchase_history(state: &CustomerState, d: i64) -> Option<PurchaseHistory> {
    let days = &state.purchase_days;
    let (first, last) = (days.first()?, days.last()?);
    Some(PurchaseHistory {
        x: u32::try_from(days.distinct().saturating_sub(1)).unwrap_or(u32::MAX),
        t_x: u32::try_from(last - first).unwrap_or(0),
        t: u32::try_from((d - first).max(last - first)).unwrap_or(0),
    })
}

fn score_categories(
    state: &CustomerState,
    as_of_ms: i64,
    short: f64,
    long: f64,
    config: &ScoringConfig,
) -> Vec<CategoryActivity> {
    let total_long: f64 = state.categories.iter().map(|c| c.long_activity).sum::<f64>() * long;
    let w = &config.index_weights;
    let mut out: Vec<CategoryActivity> = state
        .categories
        .iter()
        .map(|c| {
            let long_activity = c.long_activity * long;
            let affinity = if total_long > 0.0 { (long_activity / total_long).clamp(0.0, 1.0) } else { 0.0 };
            let days_since = (as_of_ms - c.last_seen_ms).max(0) as f64 / MS_PER_DAY as f64;
            let index = 100.0
                * (w.recency * recency(days_since, config)
                    + w.frequency * saturate(long_activity, config.frequency_scale)
                    + w.monetary * saturate(c.long_spend * long, config.monetary_scale)
                    + w.engagement * affinity);
            CategoryActivity {
                category: c.name.to_string(),
                activity_index: clamp_index(index),
                affinity,
                trend: trend(c.short_activity * short, long_activity, config),
                last_seen_ms: c.last_seen_ms,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.activity_index.total_cmp(&a.activity_index).then_with(|| a.category.cmp(&b.category))
    });
    out
}

/// `2^(−days / recency_half_life)`; 0 for a customer never seen.
fn recency(days: f64, config: &ScoringConfig) -> f64 {
    if days.is_finite() { (-days / config.recency_half_life_days).exp2().clamp(0.0, 1.0) } else { 0.0 }
}

/// `1 − exp(−value / scale)`, in `[0, 1]`.
fn saturate(value: f64, scale: f64) -> f64 {
    (-(-value / scale).exp_m1()).clamp(0.0, 1.0)
}

/// `(A_s/h_s)/(A_l/h_l) − 1`, 0 without long-term activity.
fn trend(short_activity: f64, long_activity: f64, config: &ScoringConfig) -> f64 {
    if long_activity <= 0.0 {
        return 0.0;
    }
    (short_activity / config.short_half_life_days) / (long_activity / config.long_half_life_days) - 1.0
}

fn clamp_index(index: f64) -> f64 {
    index.clamp(0.0, 100.0)
}
