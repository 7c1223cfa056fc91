//! [`ScoringConfig`]: every parameter of the activity model, with the contract defaults of a
//! fresh cluster (DESIGN.md section 3). The config is versioned as a whole; a cluster stores it
//! in raft and every replica scores with the same version.

use serde::{Deserialize, Serialize};

use crate::error::{FieldViolation, Result, ScoringError};
use crate::event::EventKind;
use crate::lifetime::LifetimeParams;
use crate::rfm::RfmEdges;

/// Milliseconds in a day.
pub const MS_PER_DAY: i64 = 86_400_000;

/// Weight of each event kind in the weighted activity `A = Σ_k w_k·C[k]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KindWeights {
    /// Weight of PURCHASE events (1.0).
    pub purchase: f64,
    /// Weight of VISIT events (0.25).
    pub visit: f64,
    /// Weight of INTERACTION events (0.5).
    pub interaction: f64,
    /// Weight of PAYMENT events (0.5).
    pub payment: f64,
    /// Weight of SUPPORT events (0.25).
    pub support: f64,
}

impl Default for KindWeights {
    fn default() -> Self {
        Self { purchase: 1.0, visit: 0.25, interaction: 0.5, payment: 0.5, support: 0.25 }
    }
}

impl KindWeights {
    /// The weight of `kind`.
    pub fn of(&self, kind: EventKind) -> f64 {
        match kind {
            EventKind::Purchase => self.purchase,
            EventKind::Visit => self.visit,
            EventKind::Interaction => self.interaction,
            EventKind::Payment => self.payment,
            EventKind::Support => self.support,
        }
    }
}

/// Weights of the four components in the activity index; they sum to 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexWeights {
    /// Recency weight (0.35).
    pub recency: f64,
    /// Frequency weight (0.30).
    pub frequency: f64,
    /// Monetary weight (0.20).
    pub monetary: f64,
    /// Engagement weight (0.15); for categories this weight applies to the affinity.
    pub engagement: f64,
}

impl Default for IndexWeights {
    fn default() -> Self {
        Self { recency: 0.35, frequency: 0.30, monetary: 0.20, engagement: 0.15 }
    }
}

/// All parameters of the activity model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoringConfig {
    /// Version of this config; bumped by every accepted update (0 = built-in defaults).
    pub version: u64,
    /// Offset added to timestamps before cutting days: `day(t) = floor((t + tz) / 86_400_000)`.
    pub tz_offset_ms: i64,
    /// Short half-life `h_s` of decayed counters, days (7).
    pub short_half_life_days: f64,
    /// Long half-life `h_l` of decayed counters, days (30).
    pub long_half_life_days: f64,
    /// Half-life of the recency component, days (14).
    pub recency_half_life_days: f64,
    /// Scale of the frequency component: `F = 1 − exp(−A_l / scale)` (10).
    pub frequency_scale: f64,
    /// Scale of the monetary component: `M = 1 − exp(−S_l / scale)` (100).
    pub monetary_scale: f64,
    /// Scale of the engagement component: `E = 1 − exp(−(C_l[VISIT]+C_l[INTERACTION]) / scale)` (20).
    pub engagement_scale: f64,
    /// Kind weights.
    pub kind_weights: KindWeights,
    /// Component weights of the index.
    pub index_weights: IndexWeights,
    /// Index at or above which the level is HIGH (70).
    pub level_high: f64,
    /// Index at or above which the level is MEDIUM (40).
    pub level_medium: f64,
    /// Index at or above which the level is LOW (15).
    pub level_low: f64,
    /// Active days in the last 7 for DAILY (5).
    pub daily_min_active_days: u32,
    /// Active weeks out of the 4 trailing weeks for WEEKLY (3).
    pub weekly_min_active_weeks: u32,
    /// Lifecycle period, days (7); at most 42 so that three periods fit the 128-day history.
    pub lifecycle_period_days: u32,
    /// Window of the weekday-pattern rule, days (56).
    pub weekday_window_days: u32,
    /// Minimum active days in the window for a weekday pattern (4).
    pub weekday_min_active_days: u32,
    /// Minimum share of active days on one weekday for a weekday pattern (0.8).
    pub weekday_min_share: f64,
    /// Maximum categories kept per customer (32); a new one evicts the weakest.
    pub max_categories: u32,
    /// Events more than this far ahead of the clock are rejected, ms (5 min).
    pub max_future_skew_ms: i64,
    /// Duplicate event ids are recognised for at least this long after arrival, ms (24 h).
    pub dedup_window_ms: i64,
    /// Horizon of `expected_purchases`, days (30).
    pub expected_purchases_horizon_days: f64,
    /// RFM quintile edges, cluster-wide; without them customers have no RFM score.
    pub rfm_edges: Option<RfmEdges>,
    /// Fitted BG/NBD parameters; without them customers have no lifetime prediction.
    pub lifetime: Option<LifetimeParams>,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        Self {
            version: 0,
            tz_offset_ms: 0,
            short_half_life_days: 7.0,
            long_half_life_days: 30.0,
            recency_half_life_days: 14.0,
            frequency_scale: 10.0,
            monetary_scale: 100.0,
            engagement_scale: 20.0,
            kind_weights: KindWeights::default(),
            index_weights: IndexWeights::default(),
            level_high: 70.0,
            level_medium: 40.0,
            level_low: 15.0,
            daily_min_active_days: 5,
            weekly_min_active_weeks: 3,
            lifecycle_period_days: 7,
            weekday_window_days: 56,
            weekday_min_active_days: 4,
            weekday_min_share: 0.8,
            max_categories: 32,
            max_future_skew_ms: 5 * 60 * 1000,
            dedup_window_ms: MS_PER_DAY,
            expected_purchases_horizon_days: 30.0,
            rfm_edges: None,
            lifetime: None,
        }
    }
}

impl ScoringConfig {
    /// Checks every field; all violations are reported at once.
    pub fn validate(&self) -> Result<()> {
        let mut bad = Vec::new();
        let mut positive = |field: &str, v: f64| {
            if !(v.is_finite() && v > 0.0) {
                bad.push(FieldViolation::new(field, format!("must be a positive number, got {v}")));
            }
        };
        positive("short_half_life_days", self.short_half_life_days);
        positive("long_half_life_days", self.long_half_life_days);
        positive("recency_half_life_days", self.recency_half_life_days);
        positive("frequency_scale", self.frequency_scale);
        positive("monetary_scale", self.monetary_scale);
        positive("engagement_scale", self.engagement_scale);
        positive("expected_purchases_horizon_days", self.expected_purchases_horizon_days);
        let w = &self.kind_weights;
        for (field, v) in [
            ("kind_weights.purchase", w.purchase),
            ("kind_weights.visit", w.visit),
            ("kind_weights.interaction", w.interaction),
            ("kind_weights.payment", w.payment),
            ("kind_weights.support", w.support),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                bad.push(FieldViolation::new(field, format!("must be a non-negative number, got {v}")));
            }
        }
        let iw = &self.index_weights;
        let parts = [
            ("index_weights.recency", iw.recency),
            ("index_weights.frequency", iw.frequency),
            ("index_weights.monetary", iw.monetary),
            ("index_weights.engagement", iw.engagement),
        ];
        let mut sum = 0.0;
        for (field, v) in parts {
            if !(v.is_finite() && v >= 0.0) {
                bad.push(FieldViolation::new(field, format!("must be a non-negative number, got {v}")));
            }
            sum += v;
        }
        if (sum - 1.0).abs() > 1e-9 {
            bad.push(FieldViolation::new("index_weights", format!("must sum to 1, got {sum}")));
        }
        if !(self.level_low >= 0.0
            && self.level_low <= self.level_medium
            && self.level_medium <= self.level_high
            && self.level_high <= 100.0)
        {
            bad.push(FieldViolation::new(
                "level_high",
                "levels must satisfy 0 ≤ level_low ≤ level_medium ≤ level_high ≤ 100",
            ));
        }
        if !(1..=7).contains(&self.daily_min_active_days) {
            bad.push(FieldViolation::new("daily_min_active_days", "must be within 1..=7"));
        }
        if !(1..=4).contains(&self.weekly_min_active_weeks) {
            bad.push(FieldViolation::new("weekly_min_active_weeks", "must be within 1..=4"));
        }
        if !(1..=42).contains(&self.lifecycle_period_days) {
            bad.push(FieldViolation::new("lifecycle_period_days", "must be within 1..=42"));
        }
        if !(7..=128).contains(&self.weekday_window_days) {
            bad.push(FieldViolation::new("weekday_window_days", "must be within 7..=128"));
        }
        if self.weekday_min_active_days == 0 {
            bad.push(FieldViolation::new("weekday_min_active_days", "must be at least 1"));
        }
        if !(self.weekday_min_share > 0.0 && self.weekday_min_share <= 1.0) {
            bad.push(FieldViolation::new("weekday_min_share", "must be within (0, 1]"));
        }
        if !(1..=255).contains(&self.max_categories) {
            bad.push(FieldViolation::new("max_categories", "must be within 1..=255"));
        }
        if self.max_future_skew_ms < 0 {
            bad.push(FieldViolation::new("max_future_skew_ms", "must not be negative"));
        }
        if self.dedup_window_ms < 0 {
            bad.push(FieldViolation::new("dedup_window_ms", "must not be negative"));
        }
        if self.tz_offset_ms.abs() > MS_PER_DAY {
            bad.push(FieldViolation::new("tz_offset_ms", "must be within ±86_400_000"));
        }
        if let Some(params) = &self.lifetime
            && let Err(e) = params.validate()
        {
            bad.push(FieldViolation::new("lifetime", e.to_string()));
        }
        if let Some(edges) = &self.rfm_edges {
            match edges.validate() {
                Ok(()) => {}
                Err(ScoringError::InvalidConfig { violations }) => bad.extend(violations),
                Err(other) => bad.push(FieldViolation::new("rfm_edges", other.to_string())),
            }
        }
        if bad.is_empty() { Ok(()) } else { Err(ScoringError::InvalidConfig { violations: bad }) }
    }

    /// `day(t)`: the day number of `t_ms` in the configured time zone.
    pub fn day(&self, t_ms: i64) -> i64 {
        (t_ms + self.tz_offset_ms).div_euclid(MS_PER_DAY)
    }

    /// Short half-life in ms.
    pub fn short_half_life_ms(&self) -> f64 {
        self.short_half_life_days * MS_PER_DAY as f64
    }

    /// Long half-life in ms.
    pub fn long_half_life_ms(&self) -> f64 {
        self.long_half_life_days * MS_PER_DAY as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        ScoringConfig::default().validate().unwrap();
    }

    #[test]
    fn every_bad_field_is_named() {
        let config = ScoringConfig {
            short_half_life_days: 0.0,
            lifecycle_period_days: 100,
            ..ScoringConfig::default()
        };
        let Err(ScoringError::InvalidConfig { violations }) = config.validate() else {
            panic!("expected invalid config");
        };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["short_half_life_days", "lifecycle_period_days"]);
    }

    #[test]
    fn toml_rejects_unknown_keys() {
        let err = serde_json::from_str::<ScoringConfig>(r#"{"no_such_key": 1}"#).unwrap_err();
        assert!(err.to_string().contains("no_such_key"), "{err}");
    }

    #[test]
    fn day_honours_time_zone() {
        let utc = ScoringConfig::default();
        assert_eq!(utc.day(MS_PER_DAY - 1), 0);
        assert_eq!(utc.day(-1), -1);
        let plus_one_hour = ScoringConfig { tz_offset_ms: 3_600_000, ..ScoringConfig::default() };
        assert_eq!(plus_one_hour.day(MS_PER_DAY - 3_600_000), 1);
    }
}
