//! Customer lifetime: the BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the
//! easy way") and its modified variant MBG/NBD (Batislam, Denizel & Filiztekin 2007).
//!
//! ## The model
//! While alive, a customer buys as a Poisson process with rate λ; after each repeat purchase
//! (MBG/NBD: also right after the first one) they drop out for good with probability p. Across
//! customers λ ~ Gamma(shape r, rate α) and p ~ Beta(a, b). A customer's history is summarised by
//! `(x, t_x, T)`: repeat purchases, time of the last one and time observed, all measured from the
//! first purchase. Pulse measures them in whole days (DESIGN.md section 3), so α is in days and
//! every time argument of the `*_f64` functions is in the unit of α.
//!
//! ## Layout
//! - this file: [`LifetimeParams`], [`PurchaseHistory`], [`LifetimePrediction`];
//! - `predict.rs`: P(alive) and the conditional expected purchases (FHL eq. 10 and its MBG
//!   counterpart), evaluated in forms that stay finite for any valid input;
//! - `hyp2f1.rs`: [`hyp2f1()`], the Gauss hypergeometric function, and the series summation
//!   behind eq. 10;
//! - [`HistoryCounts`]: grouped `(x, t_x, T)` counts, which shards send to the coordinator;
//! - `likelihood.rs`: [`log_likelihood`] (FHL eq. 6 / its MBG counterpart) and its gradient;
//! - `fit.rs`: [`fit`], maximum likelihood with argmin's L-BFGS over log-parameters;
//! - `special.rs`: ln Γ, ψ, softplus and the logistic function.
//!
//! ## Formulas
//! With `s = 0` for BG/NBD and `s = 1` for MBG/NBD, and `D` the log-odds of being dead:
//! ```text
//! D        = ln a − ln(b + x − 1 + s) + (r + x)·ln((α + T)/(α + t_x))   (BG/NBD, x = 0: D = −∞)
//! P(alive) = 1/(1 + e^D)
//! E[Y(t)]  = P(alive) · (a+b+x−1+s)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x)
//!                                              · ₂F₁(r+x, b+x+s; a+b+x−1+s; t/(α+T+t))]
//! ```
//! The bracketed factor of E[Y(t)] is computed with the 1/(a − 1) cancelled analytically, so
//! a = 1 is the exact limit rather than a special case (see `predict.rs`).
//!
//! ## Determinism
//! Predictions run on every replica, so they use the pure-Rust `libm` for ln, exp and ln Γ and
//! fixed summation orders: identical inputs give bit-identical outputs on every platform. The fit
//! runs once (on the coordinator) but is deterministic too: no randomness, groups visited in
//! sorted order.

mod counts;
mod fit;
mod hyp2f1;
mod likelihood;
mod predict;
mod special;

use serde::{Deserialize, Serialize};

use crate::error::{Result, ScoringError};

pub use counts::HistoryCounts;
pub use fit::{FittedModel, fit};
pub use hyp2f1::hyp2f1;
pub use likelihood::log_likelihood;

/// BG/NBD population parameters, fitted by [`fit`] over all customers and distributed as part of
/// the scoring config.
///
/// Invariant (checked by [`LifetimeParams::validate`]): all four are finite and > 0. Predictions
/// with parameters that fail validation are NaN.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifetimeParams {
    /// Shape r of the gamma distribution of purchase rates across customers (dimensionless).
    pub r: f64,
    /// Rate parameter α of that gamma distribution, in days: λ has density ∝ λ^(r−1)·e^(−αλ), so
    /// r/α is the mean purchase rate per day and α acts as a pseudo-observation time.
    pub alpha: f64,
    /// Beta parameter a of the dropout probability p (mean dropout a/(a + b)).
    pub a: f64,
    /// Beta parameter b of the dropout probability p.
    pub b: f64,
    /// Whether this is the modified BG/NBD (MBG/NBD), in which a customer can also drop out right
    /// after the first purchase, so one-time buyers can be dead. Absent in older configs: BG/NBD.
    #[serde(default)]
    pub modified: bool,
}

impl LifetimeParams {
    /// Checks that r, α, a and b are all finite and strictly positive; the error names every
    /// parameter that is not.
    pub fn validate(&self) -> Result<()> {
        let named = [("r", self.r), ("alpha", self.alpha), ("a", self.a), ("b", self.b)];
        let bad: Vec<String> = named
            .iter()
            .filter(|(_, value)| !(value.is_finite() && *value > 0.0))
            .map(|(name, value)| format!("{name} must be finite and > 0, got {value}"))
            .collect();
        if bad.is_empty() {
            Ok(())
        } else {
            Err(ScoringError::InvalidLifetimeParams { reason: bad.join("; ") })
        }
    }

    /// P(alive) and expected purchases in the next `horizon_days` days for one customer.
    ///
    /// With valid parameters both values are finite for every history and horizon: P(alive) is
    /// in [0, 1] and the expectation ≥ 0. A negative or NaN horizon counts as 0.
    pub fn predict(&self, history: &PurchaseHistory, horizon_days: f64) -> LifetimePrediction {
        let x = f64::from(history.x);
        let t_x = f64::from(history.t_x);
        let t = f64::from(history.t);
        LifetimePrediction {
            p_alive: self.p_alive_f64(x, t_x, t),
            expected_purchases: self.expected_purchases_f64(x, t_x, t, horizon_days),
        }
    }

    /// 0 for BG/NBD, 1 for MBG/NBD: the shift of x in the dropout terms.
    fn dropout_shift(&self) -> f64 {
        if self.modified { 1.0 } else { 0.0 }
    }
}

/// A customer's purchase history in whole days, the sufficient statistic of the model.
///
/// For purchase days d₀ < … < d_x (distinct calendar days in the scoring time zone) and today D:
/// `x = distinct days − 1`, `t_x = d_x − d₀`, `t = D − d₀`; so `x ≤ t_x ≤ t` for real histories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PurchaseHistory {
    /// Repeat purchase days: distinct purchase days − 1.
    pub x: u32,
    /// Recency: last − first purchase day, days.
    pub t_x: u32,
    /// Age T: today − first purchase day, days.
    pub t: u32,
}

/// The model's prediction for one customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LifetimePrediction {
    /// Probability that the customer is still alive (has not dropped out), in [0, 1].
    pub p_alive: f64,
    /// Expected purchase days in the requested horizon (30 days by default), ≥ 0.
    pub expected_purchases: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> LifetimeParams {
        LifetimeParams { r: 0.5, alpha: 10.0, a: 0.8, b: 2.5, modified: false }
    }

    #[test]
    fn validate_names_each_bad_parameter() {
        assert!(params().validate().is_ok());
        let bad = LifetimeParams { alpha: -1.0, b: f64::NAN, ..params() };
        let Err(ScoringError::InvalidLifetimeParams { reason }) = bad.validate() else {
            panic!("expected InvalidLifetimeParams");
        };
        let named: Vec<&str> = reason.split("; ").map(|part| part.split(' ').next().unwrap_or("")).collect();
        assert_eq!(named, ["alpha", "b"], "{reason}");
        for field in ["r", "alpha", "a", "b"] {
            let mut p = params();
            match field {
                "r" => p.r = 0.0,
                "alpha" => p.alpha = f64::INFINITY,
                "a" => p.a = -0.1,
                _ => p.b = 0.0,
            }
            let err = p.validate().unwrap_err().to_string();
            assert!(err.contains(&format!("{field} must")), "{err}");
        }
    }

    #[test]
    fn serde_rejects_unknown_fields_and_defaults_modified() {
        let p: LifetimeParams = serde_json::from_str(r#"{"r":0.5,"alpha":10,"a":0.8,"b":2.5}"#).unwrap();
        assert_eq!(p, params());
        let err = serde_json::from_str::<LifetimeParams>(r#"{"r":0.5,"alpha":10,"a":0.8,"b":2.5,"c":1}"#);
        assert!(err.is_err());
        let round: LifetimeParams = serde_json::from_str(
            &serde_json::to_string(&LifetimeParams { modified: true, ..params() }).unwrap(),
        )
        .unwrap();
        assert!(round.modified);
    }

    #[test]
    fn predict_uses_the_whole_day_history() {
        let p = params();
        let history = PurchaseHistory { x: 3, t_x: 40, t: 90 };
        let prediction = p.predict(&history, 30.0);
        assert_eq!(prediction.p_alive, p.p_alive_f64(3.0, 40.0, 90.0));
        assert_eq!(prediction.expected_purchases, p.expected_purchases_f64(3.0, 40.0, 90.0, 30.0));
        assert!(prediction.p_alive > 0.0 && prediction.p_alive < 1.0);
        assert!(prediction.expected_purchases > 0.0);
    }

    #[test]
    fn invalid_parameters_predict_nan() {
        let p = LifetimeParams { a: 0.0, ..params() };
        let prediction = p.predict(&PurchaseHistory { x: 1, t_x: 2, t: 3 }, 30.0);
        assert!(prediction.p_alive.is_nan() && prediction.expected_purchases.is_nan());
    }
}
