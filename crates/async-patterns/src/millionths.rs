//! Ratios kept in millionths, so that scaling by one is exact integer
//! arithmetic (the breaker's backoff multiplier, the retry policy's growth
//! factor, the adaptive limit's backoff ratio). Their builders take an
//! `f64`, as resilience4j's and tower's do; it is converted once, here.

/// One, in millionths.
pub(crate) const ONE: u64 = 1_000_000;

/// The largest growth factor a builder takes (the breaker's multiplier, the
/// retry policy's factor): 10⁹ millionths, far inside `u64`.
pub(crate) const MAX_FACTOR: f64 = 1000.0;

/// `x` in millionths: `x × 10⁶` in `f64`, rounded to the nearest integer.
/// A ratio written with at most six decimals comes out exact; one written
/// halfway between two millionths (1.0000015) may round either way, as the
/// `f64` nearest it lies. `x` is finite and at least zero (the builders
/// check), and a value beyond `u64` saturates.
pub(crate) fn of(x: f64) -> u64 {
    (x * ONE as f64).round() as u64
}

/// `⌊n × m / 10⁶⌋` for a ratio `m` in millionths, exact (saturating at
/// `u128::MAX` before the division, far beyond any caller's range).
pub(crate) fn scale(n: u128, m: u64) -> u128 {
    // In u64 when the product fits (every real delay): a u128 division is
    // a library call, a u64 one by a constant is a multiply and a shift.
    if let Some(product) = u64::try_from(n).ok().and_then(|n| n.checked_mul(m)) {
        return u128::from(product / ONE);
    }
    n.saturating_mul(u128::from(m)) / u128::from(ONE)
}

#[cfg(all(test, not(async_patterns_loom)))]
mod tests {
    use super::*;

    #[test]
    fn conversion_rounds_to_the_nearest_millionth() {
        assert_eq!(of(1.0), ONE);
        assert_eq!(
            of(1.001),
            1_001_000,
            "1.001 × 10⁶ is 1000999.9999999999 in f64"
        );
        assert_eq!(of(0.99), 990_000);
        assert_eq!(of(0.0000004), 0);
        assert_eq!(of(0.0000006), 1);
        assert_eq!(of(1e300), u64::MAX);
    }

    #[test]
    fn scaling_is_exact_and_rounds_down() {
        assert_eq!(scale(100, of(0.99)), 99);
        assert_eq!(scale(7, 1_500_000), 10);
        assert_eq!(scale(u128::from(u64::MAX), ONE), u128::from(u64::MAX));
        assert_eq!(scale(u128::MAX, 2 * ONE), u128::MAX / u128::from(ONE));
        // Just past u64 in the product, and just past it in `n`.
        assert_eq!(
            scale(u128::from(u64::MAX), 3 * ONE),
            3 * u128::from(u64::MAX)
        );
        assert_eq!(scale(1 << 64, ONE / 2), 1 << 63);
        // (2⁶³ − 1) × 2.000001 = 18446744073709551614 + 9223372036854.775807
        assert_eq!(
            scale(u128::from(u64::MAX / 2), 2_000_001),
            18_446_753_297_081_588_468
        );
    }
}
