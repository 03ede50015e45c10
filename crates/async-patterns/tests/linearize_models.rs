//! The history models of `async_patterns_linearize` against the patterns
//! they describe, one operation at a time: random sequences of checks,
//! admissions, outcomes, drops and clock moves run on the keyed limiter,
//! the circuit breaker and the adaptive limit, recorded as a sequential
//! history, which must then be linearizable (the model gives every output
//! the pattern gave); and the same history with one decision flipped must
//! not be (the models are deterministic, so the check can fail).
//!
//! These agree before `shuttle_patterns.rs` and `linearizable_stress.rs`
//! trust the models to judge concurrent histories.

use std::num::NonZeroUsize;
use std::time::Duration;

use async_patterns::adaptive::{AdaptiveConfig, AdaptiveLimit};
use async_patterns::circuit_breaker::{BreakerConfig, CircuitBreaker, Refused};
use async_patterns::rate_limiter::{KeyedRateLimiter, Quota};
use async_patterns::time::{Clock, ManualClock};
use async_patterns_linearize::models::{
    Adaptive, AdaptiveOp, Breaker, BreakerOp, BreakerOut, Ending, FailureShare, KeyedCheck,
    KeyedLimiter, Limiter,
};
use async_patterns_linearize::{Model, Op, Verdict, check};
use proptest::prelude::*;

/// A sequential history: operation `i` runs from tick `2i` to `2i + 1`.
struct Sequence<I, O>(Vec<Op<I, O>>);

impl<I, O> Sequence<I, O> {
    fn new() -> Self {
        Sequence(Vec::new())
    }

    fn push(&mut self, input: I, output: O) {
        let t = 2 * self.0.len() as u64;
        self.0.push(Op::returned(0, input, t, t + 1, output));
    }
}

/// `history` passes against `model`, and fails with the first output that
/// `flip` changes changed.
fn agrees<M: Model>(
    model: &M,
    mut history: Vec<Op<M::Input, M::Output>>,
    flip: impl Fn(&M::Input, &M::Output) -> Option<M::Output>,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(check(model, &history, 1_000_000), Verdict::Linearizable);
    let first = history.iter_mut().find_map(|op| {
        let (_, out) = op.ret.as_mut()?;
        let flipped = flip(&op.input, out)?;
        *out = flipped;
        Some(())
    });
    if first.is_some() {
        prop_assert!(matches!(
            check(model, &history, 1_000_000),
            Verdict::NotLinearizable(_)
        ));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Keys 0-3, 0-3 cells, 1-3 of burst at 100 ms a cell, and room for
    /// 1-3 busy keys (or the limiter's 1,000: no bound met).
    #[test]
    fn the_keyed_limiter_model_agrees(
        burst in 1u32..=3,
        room in prop::option::of(1u64..=3),
        ops in prop::collection::vec((0u64..4, 0u32..=3, 0u64..250), 1..60),
    ) {
        let quota = Quota::per_second(10).unwrap().with_burst(burst).unwrap();
        let clock = ManualClock::new();
        let max_keys = NonZeroUsize::new(room.map_or(1_000, |r| r as usize)).unwrap();
        let limiter = KeyedRateLimiter::new(quota, clock.clone(), max_keys);
        let bucket = Limiter { interval_ns: 100_000_000, burst: u64::from(burst) };
        let model = KeyedLimiter { bucket, room };
        let mut h = Sequence::new();
        for (key, cells, advance_ms) in ops {
            let input = KeyedCheck { key, at_ns: clock.now().as_nanos(), cells: u64::from(cells) };
            h.push(input, limiter.check_key_n(&key, cells).is_ok());
            clock.advance(Duration::from_millis(advance_ms));
        }
        agrees(&model, h.0, |_, out| Some(!out))?;
    }

    /// Permits held at once up to 4; consecutive failures and/or a share
    /// of a count window; 1-2 probes, closing after 1-2.
    #[test]
    fn the_breaker_model_agrees(
        consecutive in prop::option::of(1u32..=3),
        window in prop::option::of((1u32..=4, 1u32..=4, 1u32..=4)),
        probes in 1u32..=2,
        close_after in 1u32..=2,
        ops in prop::collection::vec((0u8..4, 0usize..4, 0u64..120), 1..80),
    ) {
        let mut config = BreakerConfig::builder()
            .open_for(Duration::from_millis(100))
            .half_open_probes(probes)
            .close_after(close_after);
        // Without any trip policy, three failures in a row.
        let consecutive = consecutive.or(window.is_none().then_some(3));
        if let Some(k) = consecutive {
            config = config.consecutive_failures(k);
        }
        // (size, minimum calls up to the size, failures in quarters).
        let window = window.map(|(size, min, quarters)| FailureShare {
            calls: size,
            min_calls: min.min(size),
            failures: quarters,
            of: 4,
        });
        if let Some(w) = window {
            config = config
                .window(w.calls, w.min_calls)
                .failure_rate(f64::from(w.failures) / 4.0);
        }
        let clock = ManualClock::new();
        let breaker = CircuitBreaker::new(config.build().unwrap(), clock.clone());
        let model = Breaker {
            consecutive_failures: consecutive,
            window,
            open_ns: 100_000_000,
            probes,
            close_after,
        };
        let mut held = Vec::new();
        let mut h = Sequence::new();
        for (permit, (what, which, advance_ms)) in (0u64..).zip(ops) {
            let at_ns = clock.now().as_nanos();
            if what == 0 || held.is_empty() {
                let out = match breaker.try_acquire() {
                    Ok(p) => {
                        held.push((permit, p));
                        BreakerOut::Admitted
                    }
                    Err(Refused::Open(until)) => BreakerOut::Open {
                        until_ns: until.as_nanos(),
                    },
                    Err(Refused::ProbesBusy) => BreakerOut::ProbesBusy,
                };
                h.push(BreakerOp::Acquire { permit, at_ns }, out);
            } else {
                let (id, p) = held.swap_remove(which % held.len());
                let input = match what {
                    1 => {
                        p.success();
                        BreakerOp::Success { permit: id, at_ns }
                    }
                    2 => {
                        p.failure();
                        BreakerOp::Failure { permit: id, at_ns }
                    }
                    _ => {
                        drop(p);
                        BreakerOp::Drop { permit: id }
                    }
                };
                h.push(input, BreakerOut::Done);
            }
            clock.advance(Duration::from_millis(advance_ms));
        }
        agrees(&model, h.0, |input, out| match (input, out) {
            (BreakerOp::Acquire { .. }, BreakerOut::Admitted) => Some(BreakerOut::ProbesBusy),
            (BreakerOp::Acquire { .. }, _) => Some(BreakerOut::Admitted),
            _ => None,
        })?;
    }

    /// Limits 1-6 (min 1-2, starting up to 2 above it), backoff halves or takes a tenth off, and a latency
    /// target of 50 ms or none.
    #[test]
    fn the_adaptive_model_agrees(
        (min, initial, max) in (1u32..=2, 0u32..=2, 4u32..=6).prop_map(|(a, b, c)| (a, a + b, c)),
        increase in 1u32..=2,
        halves in any::<bool>(),
        target in prop::option::of(Just(50u64)),
        ops in prop::collection::vec((0u8..4, 0usize..6, 0u64..80), 1..80),
    ) {
        let (backoff_num, backoff_den) = if halves { (1, 2) } else { (9, 10) };
        let mut config = AdaptiveConfig::builder()
            .limits(min, initial, max)
            .increase(increase)
            .backoff(f64::from(backoff_num) / f64::from(backoff_den));
        if let Some(ms) = target {
            config = config.latency_target(Duration::from_millis(ms));
        }
        let clock = ManualClock::new();
        let limit = AdaptiveLimit::new(config.build().unwrap(), clock.clone());
        let model = Adaptive {
            min,
            initial,
            max,
            increase,
            backoff_num,
            backoff_den: std::num::NonZeroU32::new(backoff_den).unwrap(),
            latency_target_ns: target.map(|ms| ms * 1_000_000),
        };
        let mut held = Vec::new();
        let mut h = Sequence::new();
        for (what, which, advance_ms) in ops {
            let at_ns = clock.now().as_nanos();
            if what == 0 || held.is_empty() {
                let out = match limit.try_acquire() {
                    Ok(p) => {
                        held.push((at_ns, p));
                        true
                    }
                    Err(_) => false,
                };
                h.push(AdaptiveOp::Acquire, out);
            } else {
                let (started_ns, p) = held.swap_remove(which % held.len());
                let ending = match what {
                    1 => {
                        p.success();
                        Ending::Success
                    }
                    2 => {
                        p.failure();
                        Ending::Failure
                    }
                    _ => {
                        drop(p);
                        Ending::Dropped
                    }
                };
                h.push(AdaptiveOp::Finish { ending, started_ns, at_ns }, true);
            }
            clock.advance(Duration::from_millis(advance_ms));
        }
        agrees(&model, h.0, |input, out| {
            matches!(input, AdaptiveOp::Acquire).then_some(!out)
        })?;
    }
}
