//! Unit tests of the breaker, its policy and its configuration.

use super::policy::{Outcome, Policy};
use super::window::{Counts, PARTS, RateWindow, Span, Threshold};
use super::*;
use crate::time::Clock;
use crate::time::Instant;
use crate::time::ManualClock;
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex as StdMutex;
use std::time::Duration;

fn breaker(config: BreakerConfig) -> (CircuitBreaker<ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    (CircuitBreaker::new(config, clock.clone()), clock)
}

fn consecutive(k: u32) -> BreakerConfigBuilder {
    BreakerConfig::builder()
        .consecutive_failures(k)
        .open_for(Duration::from_secs(10))
}

#[test]
fn bad_configs_are_typed_errors() {
    let b = BreakerConfig::builder;
    assert_eq!(b().build(), Err(BreakerConfigError::NoTripPolicy));
    assert_eq!(
        b().consecutive_failures(0).build(),
        Err(BreakerConfigError::Zero(
            BreakerSetting::ConsecutiveFailures
        ))
    );
    assert_eq!(
        b().window(10, 5).failure_rate(0.0).build(),
        Err(BreakerConfigError::RateOutOfRange(
            BreakerSetting::FailureRate,
            0.0
        ))
    );
    assert_eq!(
        b().window(10, 5).failure_rate(1.5).build(),
        Err(BreakerConfigError::RateOutOfRange(
            BreakerSetting::FailureRate,
            1.5
        ))
    );
    assert!(matches!(
        b().window(10, 5).failure_rate(f64::NAN).build(),
        Err(BreakerConfigError::RateOutOfRange(..))
    ));
    assert_eq!(
        b().window(5, 10).failure_rate(0.5).build(),
        Err(BreakerConfigError::MinCallsAboveWindow {
            min_calls: 10,
            window: 5
        })
    );
    assert_eq!(
        b().window(0, 0).failure_rate(0.5).build(),
        Err(BreakerConfigError::Zero(BreakerSetting::WindowSize))
    );
    assert_eq!(
        b().failure_rate(0.5).build(),
        Err(BreakerConfigError::RateWithoutWindow(
            BreakerSetting::FailureRate
        ))
    );
    assert_eq!(
        consecutive(3)
            .slow_call_rate(Duration::from_secs(1), 0.5)
            .build(),
        Err(BreakerConfigError::RateWithoutWindow(
            BreakerSetting::SlowCallRate
        ))
    );
    assert_eq!(
        b().window(10, 5).build(),
        Err(BreakerConfigError::NoTripPolicy)
    );
    assert_eq!(
        consecutive(3).half_open_probes(0).build(),
        Err(BreakerConfigError::Zero(BreakerSetting::HalfOpenProbes))
    );
    assert_eq!(
        consecutive(3).close_after(0).build(),
        Err(BreakerConfigError::Zero(BreakerSetting::CloseAfter))
    );
    assert_eq!(
        consecutive(3).open_for(Duration::ZERO).build(),
        Err(BreakerConfigError::ZeroDuration(BreakerSetting::OpenFor))
    );
    assert_eq!(
        consecutive(3)
            .backoff(2.0)
            .max_open_for(Duration::from_secs(1))
            .build(),
        Err(BreakerConfigError::BackoffCapBelowOpenDuration)
    );
    for bad in [0.0, 0.999_999, 1000.001, f64::NAN, f64::INFINITY, -1.5] {
        assert!(
            matches!(
                consecutive(3).backoff(bad).build(),
                Err(BreakerConfigError::BadMultiplier(m)) if m.to_bits() == bad.to_bits()
            ),
            "{bad}"
        );
    }
    for good in [1.0, 1.5, 1000.0] {
        assert!(consecutive(3).backoff(good).build().is_ok(), "{good}");
    }
    assert_eq!(
        b().window(10, 5)
            .slow_call_rate(Duration::ZERO, 0.5)
            .build(),
        Err(BreakerConfigError::ZeroDuration(
            BreakerSetting::SlowCallThreshold
        ))
    );
    assert!(b().window(10, 10).failure_rate(1.0).build().is_ok());
    assert_eq!(
        b().window(10, 5)
            .time_window(Duration::from_secs(1), 5)
            .failure_rate(0.5)
            .build(),
        Err(BreakerConfigError::TwoWindows)
    );
    assert_eq!(
        b().time_window(Duration::from_nanos(9), 1)
            .failure_rate(0.5)
            .build(),
        Err(BreakerConfigError::ZeroDuration(BreakerSetting::TimeWindow))
    );
    assert_eq!(
        b().time_window(Duration::from_secs(1), 0)
            .failure_rate(0.5)
            .build(),
        Err(BreakerConfigError::Zero(BreakerSetting::MinCalls))
    );
}

#[test]
fn open_breaker_refuses_without_running_the_call() {
    let (b, clock) = breaker(consecutive(1).build().unwrap());
    let ran = std::cell::Cell::new(0);
    let fail = || async {
        ran.set(ran.get() + 1);
        Err::<(), ()>(())
    };
    assert_eq!(run_now(b.call(fail())), Err(CallError::Inner(())));
    assert_eq!(
        b.state(),
        BreakerState::Open {
            until: Instant::from_duration(Duration::from_secs(10))
        }
    );
    assert!(matches!(
        run_now(b.call(fail())),
        Err(CallError::Refused(Refused::Open(_)))
    ));
    assert_eq!(ran.get(), 1, "the refused call never ran");
    clock.advance(Duration::from_secs(10));
    assert_eq!(run_now(b.call(async { Ok::<_, ()>(7) })), Ok(7));
    assert_eq!(b.state(), BreakerState::Closed);
}

/// Polls a future that never waits to completion.
fn run_now<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    match fut
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => panic!("test futures complete at once"),
    }
}

#[test]
fn half_open_caps_probes_and_closes_after_successes() {
    let config = consecutive(1)
        .half_open_probes(2)
        .close_after(3)
        .build()
        .unwrap();
    let (b, clock) = breaker(config);
    b.try_acquire().unwrap().failure();
    clock.advance(Duration::from_secs(10));
    let p1 = b.try_acquire().unwrap();
    let p2 = b.try_acquire().unwrap();
    assert_eq!(b.try_acquire().unwrap_err(), Refused::ProbesBusy);
    p1.success();
    let p3 = b.try_acquire().unwrap();
    p2.success();
    assert!(matches!(
        b.state(),
        BreakerState::HalfOpen {
            in_flight: 1,
            successes: 2
        }
    ));
    p3.success();
    assert_eq!(b.state(), BreakerState::Closed);
}

#[test]
fn a_failed_probe_reopens() {
    let (b, clock) = breaker(consecutive(1).build().unwrap());
    b.try_acquire().unwrap().failure();
    clock.advance(Duration::from_secs(10));
    b.try_acquire().unwrap().failure();
    assert_eq!(
        b.state(),
        BreakerState::Open {
            until: Instant::from_duration(Duration::from_secs(20))
        }
    );
}

#[test]
fn dropped_probe_frees_its_slot() {
    let (b, clock) = breaker(consecutive(1).build().unwrap());
    b.try_acquire().unwrap().failure();
    clock.advance(Duration::from_secs(10));
    let probe = b.try_acquire().unwrap();
    assert_eq!(b.try_acquire().unwrap_err(), Refused::ProbesBusy);
    drop(probe);
    assert!(matches!(
        b.state(),
        BreakerState::HalfOpen {
            in_flight: 0,
            successes: 0
        }
    ));
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), BreakerState::Closed);
}

/// An owned permit reports and releases exactly as a borrowed one:
/// its failure trips the breaker from another thread, an owned probe
/// dropped there frees its slot, and an owned success closes it.
#[test]
fn owned_permits_report_and_release_from_another_thread() {
    let (b, clock) = breaker(consecutive(1).build().unwrap());
    let b = Arc::new(b);
    let permit = b.clone().try_acquire_owned().unwrap();
    std::thread::spawn(move || permit.failure()).join().unwrap();
    assert!(matches!(b.state(), BreakerState::Open { .. }));
    assert!(matches!(
        b.clone().try_acquire_owned(),
        Err(Refused::Open(_))
    ));
    clock.advance(Duration::from_secs(10));
    let probe = b.clone().try_acquire_owned().unwrap();
    assert_eq!(
        b.clone().try_acquire_owned().unwrap_err(),
        Refused::ProbesBusy
    );
    std::thread::spawn(move || drop(probe)).join().unwrap();
    assert!(matches!(
        b.state(),
        BreakerState::HalfOpen { in_flight: 0, .. }
    ));
    b.clone().try_acquire_owned().unwrap().success();
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(Arc::strong_count(&b), 1, "permits gave their handle back");
}

#[test]
fn stale_outcomes_are_ignored() {
    let (b, clock) = breaker(consecutive(2).build().unwrap());
    let slow_call = b.try_acquire().unwrap(); // admitted while closed
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().failure(); // opens
    clock.advance(Duration::from_secs(10));
    let probe = b.try_acquire().unwrap(); // half-open
    slow_call.failure(); // from the closed generation: ignored
    assert!(matches!(
        b.state(),
        BreakerState::HalfOpen { in_flight: 1, .. }
    ));
    probe.success();
    assert_eq!(b.state(), BreakerState::Closed);
}

/// A success from a call admitted before a trip, finishing after the
/// breaker has closed again, is from an old generation: it must not
/// count in the new window (the lock-free path checks the generation).
#[test]
fn stale_success_after_a_full_cycle_is_ignored() {
    let config = BreakerConfig::builder()
        .window(3, 3)
        .failure_rate(0.5)
        .build()
        .unwrap();
    let (b, clock) = breaker(config);
    let old = b.try_acquire().unwrap();
    for _ in 0..3 {
        b.try_acquire().unwrap().failure();
    }
    clock.advance(Duration::from_secs(60));
    b.try_acquire().unwrap().success(); // the probe closes it
    assert_eq!(b.state(), BreakerState::Closed);
    old.success();
    for _ in 0..2 {
        b.try_acquire().unwrap().failure();
    }
    // Two failures are below the new window's minimum of three.
    assert_eq!(b.state(), BreakerState::Closed);
}

/// The same after 1 to 24 full cycles: the generation the lock-free word
/// carries (43 bits) must tell them all apart, not only the last few.
#[test]
fn stale_success_after_many_cycles_is_ignored() {
    for cycles in 1..=24 {
        let config = BreakerConfig::builder()
            .window(3, 3)
            .failure_rate(0.5)
            .build()
            .unwrap();
        let (b, clock) = breaker(config);
        let old = b.try_acquire().unwrap();
        for _ in 0..cycles {
            for _ in 0..3 {
                b.try_acquire().unwrap().failure();
            }
            clock.advance(Duration::from_secs(60));
            b.try_acquire().unwrap().success();
            assert_eq!(b.state(), BreakerState::Closed);
        }
        old.success();
        for _ in 0..2 {
            b.try_acquire().unwrap().failure();
        }
        assert_eq!(b.state(), BreakerState::Closed, "after {cycles} cycles");
    }
}

#[test]
fn failure_rate_window_with_minimum_calls() {
    let config = BreakerConfig::builder()
        .window(4, 3)
        .failure_rate(0.5)
        .build()
        .unwrap();
    let (b, _clock) = breaker(config);
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().failure(); // 2 of 2, but under 3 calls
    assert_eq!(b.state(), BreakerState::Closed);
    b.try_acquire().unwrap().success(); // 2 of 3 ≥ 50%
    assert!(matches!(b.state(), BreakerState::Open { .. }));
}

#[test]
fn time_window_forgets_old_buckets() {
    let config = BreakerConfig::builder()
        .time_window(Duration::from_secs(10), 2)
        .failure_rate(1.0)
        .build()
        .unwrap();
    let (b, clock) = breaker(config);
    b.try_acquire().unwrap().failure();
    clock.advance(Duration::from_secs(11)); // that failure's bucket slid out
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), BreakerState::Closed, "one failure in the window");
    clock.advance(Duration::from_secs(8));
    b.try_acquire().unwrap().failure();
    assert!(
        matches!(b.state(), BreakerState::Open { .. }),
        "two in the last 10 s"
    );
}

#[test]
fn slow_calls_trip_on_the_injected_clock() {
    let config = BreakerConfig::builder()
        .window(2, 2)
        .slow_call_rate(Duration::from_millis(100), 1.0)
        .build()
        .unwrap();
    let (b, clock) = breaker(config);
    for _ in 0..2 {
        let p = b.try_acquire().unwrap();
        clock.advance(Duration::from_millis(101));
        p.success();
    }
    assert!(matches!(b.state(), BreakerState::Open { .. }));
}

/// Every two-decimal threshold `k / 100` against every window of up to
/// 10,000 calls: `ceil(k·n / 100)` failures reach it, one fewer does
/// not. The expectation is integer arithmetic alone.
#[test]
fn two_decimal_thresholds_are_exact() {
    for k in 1..=100u32 {
        let rate = f64::from(k) / 100.0;
        let window = RateWindow {
            span: Span::Calls(10_000),
            min_calls: 1,
            failure_rate: Threshold::new(rate),
            slow: None,
        };
        for n in 1..=10_000u32 {
            let at = (k * n).div_ceil(100);
            let counts = |failures| Counts {
                calls: n,
                failures,
                slows: 0,
            };
            assert!(window.trips(counts(at)), "{at} of {n} at {rate}");
            assert!(!window.trips(counts(at - 1)), "{} of {n} at {rate}", at - 1);
        }
    }
}

#[test]
fn thresholds_round_to_nine_decimals_and_refuse_what_rounds_to_zero() {
    assert_eq!(Threshold::new(0.55), Some(Threshold(550_000_000)));
    assert_eq!(Threshold::new(1.0), Some(Threshold(PARTS)));
    assert_eq!(Threshold::new(1e-9), Some(Threshold(1)));
    assert_eq!(Threshold::new(4e-10), None);
    assert_eq!(Threshold::new(0.0), None);
    assert_eq!(Threshold::new(1.0 + f64::EPSILON), None);
    assert_eq!(Threshold::new(f64::NAN), None);
    assert_eq!(Threshold::new(-0.5), None);
}

/// The crate-private policy, driven past what a permit allows (a slot
/// released twice, an outcome recorded after a release), neither
/// panics nor wedges: the next admission still works.
#[test]
fn policy_survives_double_release_and_double_record() {
    let mut policy = Policy::new(consecutive(1).half_open_probes(1).build().unwrap());
    let t0 = Instant::ZERO;
    let (g, _) = policy.try_admit(t0).unwrap();
    policy.record(
        g,
        Outcome {
            failed: true,
            slow: false,
        },
        t0,
    );
    let t1 = t0 + Duration::from_secs(10);
    let (g, _) = policy.try_admit(t1).unwrap();
    policy.release(g);
    policy.release(g);
    policy.record(
        g,
        Outcome {
            failed: false,
            slow: false,
        },
        t1,
    );
    assert!(matches!(
        policy.state(),
        BreakerState::Closed | BreakerState::HalfOpen { in_flight: 0, .. }
    ));
    assert!(policy.try_admit(t1).is_ok(), "not wedged");
}

#[test]
fn open_duration_grows_and_saturates() {
    let config = consecutive(1)
        .open_for(Duration::from_secs(1))
        .backoff(1000.0)
        .max_open_for(Duration::from_secs(60))
        .build()
        .unwrap();
    let (b, clock) = breaker(config);
    let mut opens = Vec::new();
    for _ in 0..40 {
        b.try_acquire().unwrap().failure();
        let BreakerState::Open { until } = b.state() else {
            panic!("should be open")
        };
        opens.push(until.saturating_duration_since(clock.now()));
        clock.advance_to(until);
    }
    assert_eq!(opens[0], Duration::from_secs(1));
    assert!(
        opens[1..].iter().all(|&d| d == Duration::from_secs(60)),
        "{opens:?}"
    );
}

/// resilience4j's default multiplier, 1.5: each open duration is the
/// last one's times 3/2, rounded down to the nanosecond, up to the cap;
/// a close starts again from `open_for`.
#[test]
fn open_duration_grows_by_a_fractional_multiplier_rounded_down() {
    let config = consecutive(1)
        .open_for(Duration::from_nanos(1_001))
        .backoff(1.5)
        .max_open_for(Duration::from_nanos(5_000))
        .build()
        .unwrap();
    let (b, clock) = breaker(config);
    let trip = || {
        b.try_acquire().unwrap().failure();
        let BreakerState::Open { until } = b.state() else {
            panic!("should be open")
        };
        let d = until.saturating_duration_since(clock.now()).as_nanos();
        clock.advance_to(until);
        d
    };
    // 1001, 1501 (1501.5 down), 2251 (2251.5 down), 3376 (3376.5 down),
    // then 5064 capped at 5000.
    let opens: Vec<u128> = (0..6).map(|_| trip()).collect();
    assert_eq!(opens, [1_001, 1_501, 2_251, 3_376, 5_000, 5_000]);
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(trip(), 1_001, "a close resets the growth");
}

/// Without `max_open_for`, or with a cap beyond `u64::MAX` ns, growth
/// saturates at `u64::MAX` ns instead of overflowing.
#[test]
fn uncapped_growth_saturates() {
    for cap in [None, Some(Duration::MAX)] {
        let mut b = consecutive(1)
            .open_for(Duration::from_secs(1))
            .backoff(1000.0);
        if let Some(cap) = cap {
            b = b.max_open_for(cap);
        }
        let mut policy = Policy::new(b.build().unwrap());
        for _ in 0..10 {
            policy.trip(Instant::ZERO, TransitionCause::ConsecutiveFailures);
        }
        assert_eq!(policy.open_next, Duration::from_nanos(u64::MAX), "{cap:?}");
    }
}

#[test]
fn transitions_are_observed() {
    let log = Arc::new(StdMutex::new(Vec::new()));
    let sink = log.clone();
    let clock = ManualClock::new();
    let b = CircuitBreaker::new(consecutive(1).build().unwrap(), clock.clone())
        .with_observer(move |t| sink.lock().unwrap().push((t.from, t.to)));
    b.try_acquire().unwrap().failure();
    clock.advance(Duration::from_secs(10));
    b.try_acquire().unwrap().success();
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 3, "{log:?}");
    assert_eq!(log[2].1, BreakerState::Closed);
}

/// Every transition says why it happened and which generation it began:
/// one per change, counting up from 1.
#[test]
fn transitions_say_why_and_number_their_generation() {
    use TransitionCause::*;
    let log = Arc::new(StdMutex::new(Vec::new()));
    let sink = log.clone();
    let clock = ManualClock::new();
    let config = BreakerConfig::builder()
        .consecutive_failures(3)
        .window(4, 4)
        .failure_rate(0.5)
        .slow_call_rate(Duration::from_millis(100), 0.5)
        .open_for(Duration::from_secs(10))
        .build()
        .unwrap();
    let b = CircuitBreaker::new(config, clock.clone())
        .with_observer(move |t| sink.lock().unwrap().push((t.cause, t.generation)));
    let wait_out = || clock.advance(Duration::from_secs(10));
    // Two failures of four (each also slow): the failure rate is named.
    for fail in [true, true, false, false] {
        let p = b.try_acquire().unwrap();
        clock.advance(Duration::from_millis(150));
        if fail { p.failure() } else { p.success() }
    }
    wait_out();
    b.try_acquire().unwrap().failure(); // the probe fails
    wait_out();
    b.try_acquire().unwrap().success(); // the probe closes it
    // Two slow successes of four: only the slow-call rate is over.
    for slow in [true, true, false, false] {
        let p = b.try_acquire().unwrap();
        clock.advance(Duration::from_millis(if slow { 150 } else { 10 }));
        p.success();
    }
    wait_out();
    b.try_acquire().unwrap().success();
    // Three failures in a row, fast: before the window's minimum.
    for _ in 0..3 {
        b.try_acquire().unwrap().failure();
    }
    let log = log.lock().unwrap();
    assert_eq!(
        *log,
        [
            (FailureRate, 1),
            (OpenElapsed, 2),
            (ProbeFailed, 3),
            (OpenElapsed, 4),
            (ProbesSucceeded, 5),
            (SlowCallRate, 6),
            (OpenElapsed, 7),
            (ProbesSucceeded, 8),
            (ConsecutiveFailures, 9),
        ]
    );
}
