//! The Gauss hypergeometric function ₂F₁(a, b; c; z) for real arguments, and the series summation
//! shared with the expected-purchases evaluation.
//!
//! ₂F₁(a, b; c; z) = Σₙ (a)ₙ(b)ₙ / ((c)ₙ n!) · zⁿ, with (q)ₙ the rising factorial. The series
//! converges for |z| < 1. Regions:
//! - |z| ≤ ½: the series as it stands (geometric convergence at rate ≤ ½);
//! - z < −½: Pfaff's transformation ₂F₁(a, b; c; z) = (1 − z)^(−a) ₂F₁(a, c − b; c; z/(z − 1)) maps
//!   z ∈ (−∞, −½) to w ∈ (⅓, 1), where the series has positive argument;
//! - ½ < z < 1 (and the Pfaff image): the series, or Euler's transformation
//!   (1 − z)^(c − a − b) ₂F₁(c − a, c − b; c; z) when that one's terms decay faster (a + b > c) or
//!   it terminates. Near z = 1 this needs about 40/(1 − z) terms; summation is capped
//!   at [`MAX_TERMS`], which covers 1 − z ≥ ~4·10⁻⁵ (z ≥ −2·10⁴ on the negative side) to full
//!   precision, beyond which the result is a truncated sum: finite, but approximate. (The
//!   connection formulas around z = 1 and z = ∞ would avoid that, at the price of Γ-function
//!   cancellations that need special handling whenever c − a − b or a − b is near an integer.
//!   Pulse's own use, eq. 10, never reaches this regime: see `predict.rs`.)
//! - z = 1: Gauss's theorem when c − a − b > 0.

use super::special::{exp, ln_1p, ln_gamma};

/// Upper bound on the terms summed by one series; see the module docs for what it covers.
pub(super) const MAX_TERMS: usize = 1_000_000;

/// Result of summing a (generalised) hypergeometric-type series.
#[derive(Debug, Clone, Copy)]
pub(super) struct SeriesSum {
    /// The sum.
    pub value: f64,
    /// The largest |term| seen: `max_abs_term / |value|` bounds the cancellation (lost digits).
    pub max_abs_term: f64,
    /// Whether the tail estimate fell below the rounding level before [`MAX_TERMS`].
    pub converged: bool,
}

impl SeriesSum {
    /// How much larger the largest term was than the sum (≥ 1 without cancellation).
    pub fn growth(&self) -> f64 {
        self.max_abs_term / self.value.abs()
    }
}

/// Sums `first + Σ_{n≥1} tₙ` where `t₁ = first·ratio(0)`, `tₙ₊₁ = tₙ·ratio(n)`.
///
/// `settled_after` is an index beyond which the ratio no longer changes sign and tends
/// monotonically to its limit `limit_abs` (|z| for hypergeometric series). Convergence is declared
/// when the geometric tail bound |t|·ρ/(1 − ρ) drops below the rounding level of the sum, with ρ
/// the larger of the current |ratio| and `limit_abs`.
pub(super) fn sum_series(
    first: f64,
    settled_after: f64,
    limit_abs: f64,
    max_terms: usize,
    mut ratio: impl FnMut(f64) -> f64,
) -> SeriesSum {
    let mut term = first;
    let mut sum = first;
    let mut max_abs_term = first.abs();
    for n in 0..max_terms {
        let index = n as f64;
        let step = ratio(index);
        term *= step;
        sum += term;
        max_abs_term = max_abs_term.max(term.abs());
        if term == 0.0 {
            // A non-positive integer parameter: the series terminated.
            return SeriesSum { value: sum, max_abs_term, converged: true };
        }
        if !term.is_finite() || !sum.is_finite() {
            return SeriesSum { value: sum, max_abs_term, converged: false };
        }
        let rho = step.abs().max(limit_abs);
        if index >= settled_after && rho < 1.0 && term.abs() * rho <= f64::EPSILON * sum.abs() * (1.0 - rho) {
            return SeriesSum { value: sum, max_abs_term, converged: true };
        }
    }
    SeriesSum { value: sum, max_abs_term, converged: false }
}

/// The Gauss hypergeometric function ₂F₁(a, b; c; z) for real a, b, c and z ≤ 1.
///
/// Exposed because the BG/NBD conditional expectation (Fader–Hardie–Lee 2005, eq. 10) is written
/// with it, and callers reproducing published figures want the same function.
///
/// Domain: all arguments finite, z ≤ 1, and c not a non-positive integer unless a or b is a
/// non-positive integer of smaller magnitude (then the series is a polynomial). Outside the
/// domain, including z > 1 (the branch cut) and z = 1 with c − a − b ≤ 0 (divergence), the
/// result is NaN. Inside it the result is finite unless the true value overflows. Accuracy is
/// near machine precision for −2·10⁴ ≤ z ≤ 1 − 4·10⁻⁵; closer to 1, or further out on the
/// negative axis (unless a Pfaff form terminates), the series is truncated after a million
/// terms and the result only approximate.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    if !(a.is_finite() && b.is_finite() && c.is_finite() && z.is_finite()) || z > 1.0 {
        return f64::NAN;
    }
    if z == 0.0 || a == 0.0 || b == 0.0 {
        return 1.0;
    }
    if is_non_positive_integer(c) && !terminates_before(a, b, c) {
        return f64::NAN;
    }
    if z == 1.0 {
        return gauss_at_one(a, b, c);
    }
    if z < -0.5 {
        // Pfaff keeps the first parameter p and turns the other into c − q. Prefer the form
        // whose series terminates, else the one with the smaller p, which decays faster near 1.
        let terminating = |p: f64, q: f64| is_non_positive_integer(p) || is_non_positive_integer(c - q);
        let swap = match (terminating(a, b), terminating(b, a)) {
            (true, _) => false,
            (false, true) => true,
            (false, false) => b < a,
        };
        let (p, q) = if swap { (b, a) } else { (a, b) };
        let w = z / (z - 1.0);
        let prefactor = exp(-p * ln_1p(-z));
        return prefactor * unit_interval(p, c - q, c, w);
    }
    if z <= 0.5 {
        return direct(a, b, c, z).value;
    }
    unit_interval(a, b, c, z)
}

/// ₂F₁ for 0 ≤ z < 1: the series itself or Euler's transform of it, whichever ends sooner.
fn unit_interval(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let terminates = is_non_positive_integer(a) || is_non_positive_integer(b);
    let euler_terminates = is_non_positive_integer(c - a) || is_non_positive_integer(c - b);
    if terminates || (!euler_terminates && a + b <= c) {
        return direct(a, b, c, z).value;
    }
    let prefactor = exp((c - a - b) * ln_1p(-z));
    prefactor * direct(c - a, c - b, c, z).value
}

/// The defining series, summed term by term.
fn direct(a: f64, b: f64, c: f64, z: f64) -> SeriesSum {
    let settled_after = a.abs().max(b.abs()).max(c.abs()) + 1.0;
    sum_series(1.0, settled_after, z.abs(), MAX_TERMS, |n| (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z)
}

/// Gauss: ₂F₁(a, b; c; 1) = Γ(c)Γ(c − a − b) / (Γ(c − a)Γ(c − b)) for c − a − b > 0.
fn gauss_at_one(a: f64, b: f64, c: f64) -> f64 {
    if c - a - b <= 0.0 {
        return f64::NAN;
    }
    if is_non_positive_integer(a) || is_non_positive_integer(b) {
        // Polynomial: the series at 1 is exact and avoids Γ at poles.
        return direct(a, b, c, 1.0).value;
    }
    let (ln_num, sign_num) = signed_ln_gamma_product(&[c, c - a - b]);
    let (ln_den, sign_den) = signed_ln_gamma_product(&[c - a, c - b]);
    f64::from(sign_num * sign_den) * exp(ln_num - ln_den)
}

/// ln|Π Γ(xᵢ)| and the product's sign.
fn signed_ln_gamma_product(xs: &[f64]) -> (f64, i32) {
    let mut total = 0.0;
    let mut sign = 1;
    for &x in xs {
        if x > 0.0 {
            total += ln_gamma(x);
        } else {
            let (value, s) = libm::lgamma_r(x);
            total += value;
            sign *= s;
        }
    }
    (total, sign)
}

fn is_non_positive_integer(x: f64) -> bool {
    x <= 0.0 && x.fract() == 0.0
}

/// Whether a or b is a non-positive integer that stops the series before c + n hits zero.
fn terminates_before(a: f64, b: f64, c: f64) -> bool {
    (is_non_positive_integer(a) && a > c) || (is_non_positive_integer(b) && b > c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_rel(actual: f64, expected: f64, tol: f64, what: &str) {
        let err = ((actual - expected) / expected).abs();
        assert!(err <= tol, "{what}: got {actual}, expected {expected}, relative error {err:e}");
    }

    /// z from 0 to 0.99 and a few negative values, including the Pfaff region.
    fn grid() -> Vec<f64> {
        let mut zs: Vec<f64> = (0..=99).map(|i| f64::from(i) / 100.0).collect();
        zs.extend([0.995, 0.999, -0.1, -0.49, -0.51, -0.9, -2.0, -10.0, -1e3]);
        zs
    }

    #[test]
    fn log_closed_form() {
        // ₂F₁(1, 1; 2; z) = −ln(1 − z)/z; c − a − b = 0 is the degenerate case for z → 1.
        for z in grid() {
            let expected = if z == 0.0 { 1.0 } else { -(-z).ln_1p() / z };
            assert_rel(hyp2f1(1.0, 1.0, 2.0, z), expected, 1e-13, &format!("2F1(1,1;2;{z})"));
        }
    }

    #[test]
    fn binomial_closed_form() {
        // ₂F₁(a, b; b; z) = (1 − z)^(−a).
        for &(a, b) in &[(0.5, 1.5), (2.5, 0.3), (-1.5, 4.0), (7.0, 2.0), (0.243, 3.1)] {
            for z in grid() {
                let expected = (1.0 - z).powf(-a);
                assert_rel(hyp2f1(a, b, b, z), expected, 1e-12, &format!("2F1({a},{b};{b};{z})"));
            }
        }
    }

    #[test]
    fn arcsin_closed_form() {
        // ₂F₁(½, ½; 3/2; s²) = arcsin(s)/s: parameters that are not integers.
        for i in 1..=99 {
            let s = f64::from(i) / 100.0;
            assert_rel(hyp2f1(0.5, 0.5, 1.5, s * s), s.asin() / s, 1e-13, &format!("arcsin at {s}"));
        }
        // And ₂F₁(½, 1; 3/2; −s²) = arctan(s)/s on the negative axis, far into the Pfaff region.
        for &s in &[0.3, 0.9, 1.5, 10.0, 30.0] {
            assert_rel(hyp2f1(0.5, 1.0, 1.5, -s * s), s.atan() / s, 1e-12, &format!("arctan at {s}"));
        }
    }

    #[test]
    fn reference_values() {
        // Computed with mpmath.hyp2f1 at 50 digits.
        let cases = [
            ((2.243, 5.426, 6.219, 0.5006), 3.761_420_350_573_246),
            ((0.3, 0.7, 2.2, 0.97), 1.169_204_098_740_536_4),
            ((20.5, 3.25, 30.0, 0.8), 15.250_507_453_216_129),
            ((1.5, 2.5, 3.5, -4.0), 0.150_787_805_583_045_32),
            ((-3.0, 2.0, 5.5, 0.9), 0.360_760_839_160_839_2),
        ];
        for ((a, b, c, z), expected) in cases {
            assert_rel(hyp2f1(a, b, c, z), expected, 1e-12, &format!("2F1({a},{b};{c};{z})"));
        }
    }

    #[test]
    fn gauss_theorem_at_one() {
        // ₂F₁(a, b; c; 1) = Γ(c)Γ(c−a−b)/(Γ(c−a)Γ(c−b)); with a = 1, b = 1, c = 3: 2.
        assert_rel(hyp2f1(1.0, 1.0, 3.0, 1.0), 2.0, 1e-13, "gauss");
        assert!(hyp2f1(1.0, 1.0, 2.0, 1.0).is_nan(), "diverges at 1 when c − a − b ≤ 0");
    }

    #[test]
    fn extreme_arguments_stay_finite() {
        // Far along the negative axis the Pfaff image is within 10⁻⁶ of 1 and the series is
        // truncated: documented as approximate, but finite and of the right size.
        let value = hyp2f1(1.0, 1.0, 2.0, -1e6);
        let exact = (1e6f64).ln_1p() / 1e6;
        assert!(value.is_finite() && (value / exact - 1.0).abs() < 0.05, "{value} vs {exact}");
        let value = hyp2f1(0.3, 0.7, 1.2, 1.0 - 1e-9);
        assert!(value.is_finite() && value > 1.0, "{value}");
        // A terminating Pfaff form is exact however far out.
        assert_rel(hyp2f1(2.5, 0.3, 0.3, -1e6), (1.0 + 1e6f64).powf(-2.5), 1e-13, "binomial at -1e6");
    }

    #[test]
    fn outside_the_domain_is_nan() {
        assert!(hyp2f1(1.0, 1.0, 2.0, 1.5).is_nan());
        assert!(hyp2f1(1.0, 1.0, -2.0, 0.5).is_nan());
        assert!(hyp2f1(f64::NAN, 1.0, 2.0, 0.5).is_nan());
        // A terminating series survives a non-positive integer c further out.
        assert_rel(hyp2f1(-1.0, 1.0, -2.0, 0.5), 1.25, 1e-15, "terminating");
    }
}
