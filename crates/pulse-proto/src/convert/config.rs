//! `pulse.v1.ScoringConfig` ↔ [`ScoringConfig`], with its parts: kind and index weights, RFM
//! edges and BG/NBD parameters.
//!
//! Wire → domain converts structurally and then runs [`ScoringConfig::validate`], so a
//! converted config is always usable; the nested `kind_weights` and `index_weights` messages
//! are required (the API replaces the whole config). The part conversions on their own
//! ([`RfmEdges`], [`LifetimeParams`]) only check structure; their `validate()` is the caller's
//! (it runs as part of the config's).

use pulse_scoring::{IndexWeights, KindWeights, LifetimeParams, RfmEdges, ScoringConfig};

use crate::error::{ConvertError, Result};
use crate::v1;

impl From<ScoringConfig> for v1::ScoringConfig {
    fn from(config: ScoringConfig) -> Self {
        v1::ScoringConfig {
            version: config.version,
            tz_offset_ms: config.tz_offset_ms,
            short_half_life_days: config.short_half_life_days,
            long_half_life_days: config.long_half_life_days,
            recency_half_life_days: config.recency_half_life_days,
            frequency_scale: config.frequency_scale,
            monetary_scale: config.monetary_scale,
            engagement_scale: config.engagement_scale,
            kind_weights: Some(config.kind_weights.into()),
            index_weights: Some(config.index_weights.into()),
            level_high: config.level_high,
            level_medium: config.level_medium,
            level_low: config.level_low,
            daily_min_active_days: config.daily_min_active_days,
            weekly_min_active_weeks: config.weekly_min_active_weeks,
            lifecycle_period_days: config.lifecycle_period_days,
            weekday_window_days: config.weekday_window_days,
            weekday_min_active_days: config.weekday_min_active_days,
            weekday_min_share: config.weekday_min_share,
            max_categories: config.max_categories,
            max_future_skew_ms: config.max_future_skew_ms,
            dedup_window_ms: config.dedup_window_ms,
            expected_purchases_horizon_days: config.expected_purchases_horizon_days,
            rfm_edges: config.rfm_edges.as_ref().map(Into::into),
            lifetime: config.lifetime.map(Into::into),
        }
    }
}

impl From<&ScoringConfig> for v1::ScoringConfig {
    fn from(config: &ScoringConfig) -> Self {
        Self::from(config.clone())
    }
}

impl TryFrom<v1::ScoringConfig> for ScoringConfig {
    type Error = ConvertError;

    /// Converts and validates. Missing `kind_weights` / `index_weights` and badly sized RFM
    /// edges are named as conversion errors; out-of-range values as
    /// [`ConvertError::Invalid`] with every violation of [`ScoringConfig::validate`].
    fn try_from(config: v1::ScoringConfig) -> Result<Self> {
        let kind_weights = config.kind_weights.ok_or_else(|| ConvertError::missing("kind_weights"))?;
        let index_weights = config.index_weights.ok_or_else(|| ConvertError::missing("index_weights"))?;
        let rfm_edges = match config.rfm_edges {
            Some(edges) => Some(RfmEdges::try_from(edges).map_err(|e| e.nested_in("rfm_edges"))?),
            None => None,
        };
        let domain = ScoringConfig {
            version: config.version,
            tz_offset_ms: config.tz_offset_ms,
            short_half_life_days: config.short_half_life_days,
            long_half_life_days: config.long_half_life_days,
            recency_half_life_days: config.recency_half_life_days,
            frequency_scale: config.frequency_scale,
            monetary_scale: config.monetary_scale,
            engagement_scale: config.engagement_scale,
            kind_weights: kind_weights.into(),
            index_weights: index_weights.into(),
            level_high: config.level_high,
            level_medium: config.level_medium,
            level_low: config.level_low,
            daily_min_active_days: config.daily_min_active_days,
            weekly_min_active_weeks: config.weekly_min_active_weeks,
            lifecycle_period_days: config.lifecycle_period_days,
            weekday_window_days: config.weekday_window_days,
            weekday_min_active_days: config.weekday_min_active_days,
            weekday_min_share: config.weekday_min_share,
            max_categories: config.max_categories,
            max_future_skew_ms: config.max_future_skew_ms,
            dedup_window_ms: config.dedup_window_ms,
            expected_purchases_horizon_days: config.expected_purchases_horizon_days,
            rfm_edges,
            lifetime: config.lifetime.map(Into::into),
        };
        domain.validate()?;
        Ok(domain)
    }
}

impl From<KindWeights> for v1::KindWeights {
    fn from(w: KindWeights) -> Self {
        v1::KindWeights {
            purchase: w.purchase,
            visit: w.visit,
            interaction: w.interaction,
            payment: w.payment,
            support: w.support,
        }
    }
}

impl From<v1::KindWeights> for KindWeights {
    fn from(w: v1::KindWeights) -> Self {
        KindWeights {
            purchase: w.purchase,
            visit: w.visit,
            interaction: w.interaction,
            payment: w.payment,
            support: w.support,
        }
    }
}

impl From<IndexWeights> for v1::IndexWeights {
    fn from(w: IndexWeights) -> Self {
        v1::IndexWeights {
            recency: w.recency,
            frequency: w.frequency,
            monetary: w.monetary,
            engagement: w.engagement,
        }
    }
}

impl From<v1::IndexWeights> for IndexWeights {
    fn from(w: v1::IndexWeights) -> Self {
        IndexWeights {
            recency: w.recency,
            frequency: w.frequency,
            monetary: w.monetary,
            engagement: w.engagement,
        }
    }
}

impl From<&RfmEdges> for v1::RfmEdges {
    /// `customers` is not part of the domain edges and is left 0 (unknown); the service that
    /// computed the edges fills it in.
    fn from(edges: &RfmEdges) -> Self {
        v1::RfmEdges {
            version: edges.version,
            recency_days: edges.recency_days.to_vec(),
            frequency: edges.frequency.to_vec(),
            monetary: edges.monetary.to_vec(),
            customers: 0,
        }
    }
}

impl From<RfmEdges> for v1::RfmEdges {
    fn from(edges: RfmEdges) -> Self {
        Self::from(&edges)
    }
}

impl TryFrom<v1::RfmEdges> for RfmEdges {
    type Error = ConvertError;

    /// Requires exactly four edges per measure (named field on failure); `customers` is
    /// dropped. Does not call [`RfmEdges::validate`].
    fn try_from(edges: v1::RfmEdges) -> Result<Self> {
        Ok(RfmEdges {
            version: edges.version,
            recency_days: four("recency_days", &edges.recency_days)?,
            frequency: four("frequency", &edges.frequency)?,
            monetary: four("monetary", &edges.monetary)?,
        })
    }
}

/// The four quintile edges held in `values`, or a [`ConvertError::WrongLength`] of `field`.
fn four(field: &str, values: &[f64]) -> Result<[f64; 4]> {
    values.try_into().map_err(|_| ConvertError::WrongLength {
        field: field.to_owned(),
        expected: 4,
        actual: values.len(),
    })
}

impl From<LifetimeParams> for v1::LifetimeParams {
    fn from(p: LifetimeParams) -> Self {
        v1::LifetimeParams { r: p.r, alpha: p.alpha, a: p.a, b: p.b, modified: p.modified }
    }
}

impl From<v1::LifetimeParams> for LifetimeParams {
    /// Structural only; [`LifetimeParams::validate`] is the caller's.
    fn from(p: v1::LifetimeParams) -> Self {
        LifetimeParams { r: p.r, alpha: p.alpha, a: p.a, b: p.b, modified: p.modified }
    }
}

impl From<&v1::LifetimeModel> for LifetimeParams {
    /// The parameters of a fitted model, without its statistics.
    fn from(model: &v1::LifetimeModel) -> Self {
        LifetimeParams { r: model.r, alpha: model.alpha, a: model.a, b: model.b, modified: model.modified }
    }
}

impl v1::LifetimeModel {
    /// The wire form of a fit: its parameters, the number of customers it was fitted on, the
    /// log-likelihood at the optimum and the scoring config `version` that installed it.
    pub fn new(params: &LifetimeParams, customers: u64, log_likelihood: f64, version: u64) -> Self {
        v1::LifetimeModel {
            r: params.r,
            alpha: params.alpha,
            a: params.a,
            b: params.b,
            customers,
            log_likelihood,
            modified: params.modified,
            version,
        }
    }
}

#[cfg(test)]
mod tests {
    use pulse_scoring::ScoringError;

    use super::*;

    fn full_config() -> ScoringConfig {
        ScoringConfig {
            version: 7,
            tz_offset_ms: 3_600_000,
            rfm_edges: Some(RfmEdges {
                version: 3,
                recency_days: [7.0, 14.0, 30.0, 90.0],
                frequency: [1.0, 2.0, 3.0, 5.0],
                monetary: [10.0, 50.0, 100.0, 500.0],
            }),
            lifetime: Some(LifetimeParams { r: 0.24, alpha: 4.41, a: 0.79, b: 2.43, modified: true }),
            ..ScoringConfig::default()
        }
    }

    #[test]
    fn config_round_trips() {
        for config in [ScoringConfig::default(), full_config()] {
            let wire = v1::ScoringConfig::from(&config);
            assert_eq!(ScoringConfig::try_from(wire).unwrap(), config);
        }
    }

    #[test]
    fn missing_weights_are_named() {
        let wire = v1::ScoringConfig { kind_weights: None, ..ScoringConfig::default().into() };
        let err = ScoringConfig::try_from(wire).unwrap_err();
        assert_eq!(err, ConvertError::missing("kind_weights"));
        let wire = v1::ScoringConfig { index_weights: None, ..ScoringConfig::default().into() };
        assert_eq!(ScoringConfig::try_from(wire).unwrap_err().field(), Some("index_weights"));
    }

    #[test]
    fn wrong_number_of_edges_is_named_with_its_path() {
        let mut wire = v1::ScoringConfig::from(full_config());
        wire.rfm_edges.as_mut().unwrap().monetary.pop();
        let err = ScoringConfig::try_from(wire).unwrap_err();
        assert_eq!(
            err,
            ConvertError::WrongLength { field: "rfm_edges.monetary".into(), expected: 4, actual: 3 }
        );
        assert_eq!(err.to_string(), "rfm_edges.monetary: must hold exactly 4 values, got 3");
    }

    #[test]
    fn converted_config_is_validated() {
        // An empty message has every number at 0: invalid in many ways, all reported.
        let wire = v1::ScoringConfig {
            kind_weights: Some(v1::KindWeights::default()),
            index_weights: Some(v1::IndexWeights::default()),
            ..v1::ScoringConfig::default()
        };
        let err = ScoringConfig::try_from(wire).unwrap_err();
        let ConvertError::Invalid(ScoringError::InvalidConfig { .. }) = &err else {
            panic!("unexpected {err:?}")
        };
        let fields: Vec<String> = err.violations().into_iter().map(|v| v.field).collect();
        assert!(fields.contains(&"short_half_life_days".to_owned()), "{fields:?}");
        assert!(fields.contains(&"index_weights".to_owned()), "{fields:?}");
        assert_eq!(err.field(), Some("short_half_life_days"));
    }

    #[test]
    fn lifetime_params_and_model() {
        let params = LifetimeParams { r: 0.24, alpha: 4.41, a: 0.79, b: 2.43, modified: false };
        assert_eq!(LifetimeParams::from(v1::LifetimeParams::from(params)), params);
        let model = v1::LifetimeModel::new(&params, 1_000, -9_582.4, 12);
        assert_eq!((model.customers, model.version, model.modified), (1_000, 12, false));
        assert_eq!(LifetimeParams::from(&model), params);
    }

    #[test]
    fn rfm_edges_round_trip_and_customers_is_unknown() {
        let edges = full_config().rfm_edges.unwrap();
        let wire = v1::RfmEdges::from(&edges);
        assert_eq!(wire.customers, 0);
        assert_eq!(RfmEdges::try_from(wire).unwrap(), edges);
        let err = RfmEdges::try_from(v1::RfmEdges::default()).unwrap_err();
        assert_eq!(err.field(), Some("recency_days"));
    }

    #[test]
    fn json_mapping_of_config() {
        let json = serde_json::to_value(v1::ScoringConfig::from(full_config())).unwrap();
        assert_eq!(json["version"], "7");
        assert_eq!(json["kindWeights"]["purchase"], 1.0);
        assert_eq!(json["rfmEdges"]["recencyDays"], serde_json::json!([7.0, 14.0, 30.0, 90.0]));
        assert_eq!(json["lifetime"]["modified"], true);
        let back: v1::ScoringConfig = serde_json::from_value(json).unwrap();
        assert_eq!(ScoringConfig::try_from(back).unwrap(), full_config());
    }
}
