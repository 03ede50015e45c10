//! The breaker at its exact edges, through the public API: a failure or
//! slow-call rate exactly at its threshold trips (compared exactly, not in
//! floating point), a call of exactly the slow-call threshold is not slow
//! (strictly greater is, as in resilience4j), and half-open begins at the
//! open deadline to the nanosecond.

use std::time::Duration;

use async_patterns::circuit_breaker::{BreakerConfig, BreakerState, CircuitBreaker, Refused};
use async_patterns::time::{Clock, ManualClock};
use proptest::prelude::*;

/// Runs `successes` then `failures` calls through a breaker whose window is
/// exactly their sum (so nothing is judged before the last call).
fn after(successes: u32, failures: u32, rate: f64) -> BreakerState {
    let n = successes + failures;
    let config = BreakerConfig::builder()
        .window(n, n)
        .failure_rate(rate)
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new(config, ManualClock::new());
    for _ in 0..successes {
        breaker.try_acquire().unwrap().success();
    }
    for _ in 0..failures {
        breaker.try_acquire().unwrap().failure();
    }
    breaker.state()
}

fn is_open(s: BreakerState) -> bool {
    matches!(s, BreakerState::Open { .. })
}

#[test]
fn failure_rate_exactly_at_the_threshold_trips() {
    // Each of these failed in f64: `rate * calls` lands just above the
    // whole number of failures that equals the threshold.
    for (pct, n) in [(55, 100), (7, 100), (28, 25), (56, 25)] {
        let failures = pct * n / 100;
        let rate = hundredths(pct);
        assert!(
            is_open(after(n - failures, failures, rate)),
            "{failures} failures of {n} at threshold {rate} must trip"
        );
        assert_eq!(
            after(n - failures + 1, failures - 1, rate),
            BreakerState::Closed,
            "{} failures of {n} at threshold {rate} must not trip",
            failures - 1
        );
    }
}

/// Runs `fast` calls of `threshold` exactly, then `slow` calls of one
/// nanosecond more, with a slow-call rate of `rate`.
fn after_slow(fast: u32, slow: u32, rate: f64) -> BreakerState {
    let threshold = Duration::from_millis(100);
    let n = fast + slow;
    let config = BreakerConfig::builder()
        .window(n, n)
        .slow_call_rate(threshold, rate)
        .build()
        .unwrap();
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::new(config, clock.clone());
    for i in 0..n {
        let p = breaker.try_acquire().unwrap();
        let extra = if i < fast { 0 } else { 1 };
        clock.advance(threshold + Duration::from_nanos(extra));
        p.success();
    }
    breaker.state()
}

#[test]
fn slow_call_rate_exactly_at_the_threshold_trips() {
    assert!(is_open(after_slow(93, 7, 0.07)));
    assert_eq!(after_slow(94, 6, 0.07), BreakerState::Closed);
}

#[test]
fn a_call_of_exactly_the_slow_threshold_is_not_slow() {
    // Every call takes exactly the threshold: none is slow, so even a rate
    // threshold of one call in a hundred never trips.
    assert_eq!(after_slow(100, 0, 0.01), BreakerState::Closed);
    // One nanosecond more is slow.
    assert!(is_open(after_slow(99, 1, 0.01)));
}

#[test]
fn half_open_begins_at_the_open_deadline_to_the_nanosecond() {
    let config = BreakerConfig::builder()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .build()
        .unwrap();
    let clock = ManualClock::new();
    clock.advance(Duration::from_nanos(123_456_789));
    let breaker = CircuitBreaker::new(config, clock.clone());
    breaker.try_acquire().unwrap().failure();
    let BreakerState::Open { until } = breaker.state() else {
        panic!("one failure opens it")
    };
    assert_eq!(until, clock.now() + Duration::from_secs(5));
    clock.advance_to(until - Duration::from_nanos(1));
    assert_eq!(
        breaker.try_acquire().unwrap_err(),
        Refused::Open(until),
        "1 ns before the deadline is still open"
    );
    clock.advance(Duration::from_nanos(1));
    assert_eq!(clock.now(), until);
    let probe = breaker
        .try_acquire()
        .expect("the deadline itself admits a probe");
    probe.success();
    assert_eq!(breaker.state(), BreakerState::Closed);
}

/// A two-decimal threshold `k` (in hundredths) and a window size up to
/// 10,000, mostly one where the threshold is a whole number of failures
/// (`k·n` divisible by 100): only there can a rounding error make the exact
/// count miss.
fn threshold_and_window() -> impl Strategy<Value = (u32, u32)> {
    (1u32..=100).prop_flat_map(|k| {
        let step = 100 / gcd(k, 100);
        let n = prop_oneof![
            3 => (1..=10_000 / step).prop_map(move |m| m * step),
            1 => 1u32..=10_000,
        ];
        (Just(k), n)
    })
}

/// `k / 100` as a user writes it (`0.55`): the decimal parsed, not computed.
fn hundredths(k: u32) -> f64 {
    format!("{}.{:02}", k / 100, k % 100)
        .parse()
        .expect("a decimal")
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// For every two-decimal threshold `k / 100` and window size `n` up to
    /// 10,000: `ceil(k·n / 100)` failures trip, one fewer does not. The
    /// expected counts are integer arithmetic, never the breaker's.
    #[test]
    fn rate_at_or_over_the_threshold_trips((k, n) in threshold_and_window()) {
        let at = (k * n).div_ceil(100);
        let rate = hundredths(k);
        prop_assert!(is_open(after(n - at, at, rate)), "{} of {} at {}", at, n, rate);
        prop_assert_eq!(after(n - at + 1, at - 1, rate), BreakerState::Closed, "{} of {} at {}", at - 1, n, rate);
    }
}
