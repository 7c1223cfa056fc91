//! PLACEHOLDER — owned by the lifetime helper; replace entirely.
use crate::error::Result;
use serde::{Deserialize, Serialize};

/// BG/NBD population parameters (α in days).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifetimeParams {
    /// Shape of the gamma mixing of purchase rates.
    pub r: f64,
    /// Scale of the gamma mixing of purchase rates, days.
    pub alpha: f64,
    /// Beta parameter a of the dropout probability.
    pub a: f64,
    /// Beta parameter b of the dropout probability.
    pub b: f64,
    /// Modified BG/NBD (one-time buyers can be dead).
    #[serde(default)]
    pub modified: bool,
}

impl LifetimeParams {
    /// Checks all four parameters are finite and positive.
    pub fn validate(&self) -> Result<()> {
        Ok(())
    }
    /// Prediction for one customer's history over `horizon_days`.
    pub fn predict(&self, history: &PurchaseHistory, horizon_days: f64) -> LifetimePrediction {
        let _ = (history, horizon_days);
        LifetimePrediction { p_alive: 1.0, expected_purchases: 0.0 }
    }
}

/// A customer's purchase history in whole days: `x` repeat purchase days, `t_x`, `T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PurchaseHistory {
    /// Distinct purchase days − 1.
    pub x: u32,
    /// Last − first purchase day.
    pub t_x: u32,
    /// D − first purchase day.
    pub t: u32,
}

/// BG/NBD prediction for one customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LifetimePrediction {
    /// Probability that the customer is still alive.
    pub p_alive: f64,
    /// Expected purchases in the horizon (30 days by default).
    pub expected_purchases: f64,
}
