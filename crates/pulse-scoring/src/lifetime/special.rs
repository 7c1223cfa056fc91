//! Special functions for the lifetime model: ln Γ, the digamma function ψ and the logistic pair.
//!
//! Every transcendental call of the lifetime module goes through the pure-Rust `libm` crate
//! rather than the platform's C library, so that a P(alive) computed on one replica is
//! bit-identical to the one computed on another, whatever their libc or CPU (DESIGN.md section 3:
//! replicas must stay byte-identical, and custom segment rules may test `p_alive`).

/// ln Γ(x) for x > 0 (libm's `lgamma`, accurate to a few ulp; `+∞` at 0).
pub(super) fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// Natural logarithm (libm).
pub(super) fn ln(x: f64) -> f64 {
    libm::log(x)
}

/// ln(1 + x), accurate for small x (libm).
pub(super) fn ln_1p(x: f64) -> f64 {
    libm::log1p(x)
}

/// eˣ (libm).
pub(super) fn exp(x: f64) -> f64 {
    libm::exp(x)
}

/// eˣ − 1, accurate for small x (libm).
pub(super) fn exp_m1(x: f64) -> f64 {
    libm::expm1(x)
}

/// The digamma function ψ(x) = d/dx ln Γ(x) for x > 0.
///
/// Shifts x up to at least 10 with ψ(x) = ψ(x + 1) − 1/x, then uses the asymptotic (Stirling)
/// series to the x⁻¹⁴ term; the first omitted term is below 10⁻¹⁶ at x = 10.
pub(super) fn digamma(x: f64) -> f64 {
    const SHIFT_TO: f64 = 10.0;
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    let mut x = x;
    let mut shift = 0.0;
    while x < SHIFT_TO {
        shift -= 1.0 / x;
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    // Σ B₂ₖ/(2k·x²ᵏ) for k = 1..7, Horner form.
    let tail = inv2
        * (1.0 / 12.0
            - inv2
                * (1.0 / 120.0
                    - inv2
                        * (1.0 / 252.0
                            - inv2
                                * (1.0 / 240.0
                                    - inv2 * (1.0 / 132.0 - inv2 * (691.0 / 32760.0 - inv2 / 12.0))))));
    shift + ln(x) - 0.5 * inv - tail
}

/// Above this, ln Γ and ψ differences use Stirling's series instead of subtracting two large
/// values (ln Γ(10⁵) ≈ 10⁶, so the direct difference would keep only ~10 digits).
const STIRLING_FROM: f64 = 1e5;

/// ln Γ(z + h) − ln Γ(z) for z > 0, h ≥ 0, accurate also when z is huge and h small against it
/// (ln B(a, b + x)/B(a, b) at b = 10¹⁰, say).
pub(super) fn ln_gamma_ratio(z: f64, h: f64) -> f64 {
    if h == 0.0 {
        return 0.0;
    }
    if z < STIRLING_FROM {
        return ln_gamma(z + h) - ln_gamma(z);
    }
    // (w − ½) ln w − w + ½ ln 2π + 1/(12w) − …, differenced analytically; the next term,
    // 1/(360w³), is below 10⁻¹⁷ here.
    (z - 0.5) * ln_1p(h / z) + h * ln(z + h) - h - h / (12.0 * z * (z + h))
}

/// ψ(z + h) − ψ(z) for z > 0, h ≥ 0, accurate also when z is huge and h small against it.
pub(super) fn digamma_difference(z: f64, h: f64) -> f64 {
    if h == 0.0 {
        return 0.0;
    }
    if z < STIRLING_FROM {
        return digamma(z + h) - digamma(z);
    }
    // ψ(w) = ln w − 1/(2w) − 1/(12w²) + O(w⁻⁴), differenced analytically.
    let w = z + h;
    ln_1p(h / z) + h / (2.0 * z * w) + h * (z + w) / (12.0 * z * z * w * w)
}

/// ln(1 + eᵈ) without overflow for large d and without loss for very negative d.
pub(super) fn softplus(d: f64) -> f64 {
    if d > 0.0 { d + ln_1p(exp(-d)) } else { ln_1p(exp(d)) }
}

/// The logistic function 1/(1 + e⁻ᵈ), in [0, 1] for every d (0 at −∞, 1 at +∞).
pub(super) fn logistic(d: f64) -> f64 {
    if d >= 0.0 {
        1.0 / (1.0 + exp(-d))
    } else {
        let e = exp(d);
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digamma_matches_known_values() {
        // ψ(1) = −γ, ψ(1/2) = −γ − 2 ln 2, ψ(n + 1) = H_n − γ.
        let euler_gamma = 0.577_215_664_901_532_9;
        assert!((digamma(1.0) + euler_gamma).abs() < 1e-14);
        assert!((digamma(0.5) + euler_gamma + 2.0 * std::f64::consts::LN_2).abs() < 1e-14);
        let h20: f64 = (1..=20).map(|k| 1.0 / f64::from(k)).sum();
        assert!((digamma(21.0) - (h20 - euler_gamma)).abs() < 1e-14);
        // Large argument: ψ(x) ≈ ln x − 1/(2x).
        let x = 1e8;
        assert!((digamma(x) - (x.ln() - 0.5 / x)).abs() < 1e-12);
        // Tiny argument: ψ(x) ≈ −1/x − γ.
        assert!((digamma(1e-10) - (-1e10 - euler_gamma)).abs() < 1e-4);
        assert!(digamma(0.0).is_nan() && digamma(-1.0).is_nan());
    }

    #[test]
    fn digamma_is_the_derivative_of_ln_gamma() {
        for &x in &[0.03, 0.7, 2.5, 13.0, 450.0] {
            let h = 1e-6 * x;
            let numeric = (ln_gamma(x + h) - ln_gamma(x - h)) / (2.0 * h);
            assert!((numeric - digamma(x)).abs() < 1e-6 * (1.0 + digamma(x).abs()), "x = {x}");
        }
    }

    #[test]
    fn differences_are_continuous_at_the_stirling_switch() {
        for &h in &[1e-3, 0.8, 1.0, 37.0, 5000.0] {
            let below = STIRLING_FROM * (1.0 - 1e-12);
            let ratio_direct = ln_gamma(below + h) - ln_gamma(below);
            let ratio_stirling = ln_gamma_ratio(STIRLING_FROM, h);
            assert!((ratio_direct - ratio_stirling).abs() < 1e-8 * (1.0 + ratio_direct.abs()), "h = {h}");
            let psi_direct = digamma(below + h) - digamma(below);
            let psi_stirling = digamma_difference(STIRLING_FROM, h);
            // The direct ψ difference itself only keeps ~8 digits at h = 10⁻³ (why we switch).
            assert!((psi_direct - psi_stirling).abs() < 1e-6 * psi_direct.abs(), "h = {h}");
        }
        // Far out, against the exact ln Γ(z + n) − ln Γ(z) = Σ ln(z + j) for whole n.
        let z = 1e10;
        let exact: f64 = (0..3).map(|j| (z + f64::from(j)).ln()).sum();
        assert!((ln_gamma_ratio(z, 3.0) - exact).abs() < 1e-12 * exact);
        let exact_psi: f64 = (0..3).map(|j| 1.0 / (z + f64::from(j))).sum();
        assert!((digamma_difference(z, 3.0) - exact_psi).abs() < 1e-12 * exact_psi);
        assert_eq!(ln_gamma_ratio(0.5, 0.0), 0.0);
    }

    #[test]
    fn softplus_and_logistic_are_stable() {
        assert_eq!(softplus(1000.0), 1000.0);
        assert_eq!(softplus(-1000.0), 0.0);
        assert!((softplus(0.0) - std::f64::consts::LN_2).abs() < 1e-15);
        assert!((softplus(-40.0) - (-40.0f64).exp()).abs() < 1e-30);
        assert_eq!(logistic(f64::INFINITY), 1.0);
        assert_eq!(logistic(f64::NEG_INFINITY), 0.0);
        assert_eq!(logistic(0.0), 0.5);
        assert!((logistic(3.0) + logistic(-3.0) - 1.0).abs() < 1e-15);
    }
}
