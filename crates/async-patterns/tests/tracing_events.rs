//! With the `tracing` feature, every event in `src/events.rs`'s table
//! appears, with its target, level and fields, under a subscriber. Run with
//! `cargo test -p async-patterns --features tracing --test tracing_events`
//! (CI does); without the feature this file is empty.
#![cfg(all(feature = "tracing", not(async_patterns_loom)))]

use std::fmt::Debug;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_patterns::pipeline::{OnError, Order, pipeline};
use async_patterns::{
    AdaptiveConfig, AdaptiveLimit, BreakerConfig, CircuitBreaker, Jitter, KeyedRateLimiter,
    ManualClock, Quota, RateLimiter, Retrier, RetryBudget, RetryPolicy,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// One event as text: `LEVEL target: message field=value ...`.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<String>>>);

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" {
            self.0.push_str(&format!(" {value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl Subscriber for Collector {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut line = Line(format!("{} {}:", meta.level(), meta.target()));
        event.record(&mut line);
        self.0.lock().unwrap().push(line.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The events `f` emits, as lines.
fn events(f: impl FnOnce()) -> Vec<String> {
    let collector = Collector::default();
    tracing::subscriber::with_default(collector.clone(), f);
    collector.0.lock().unwrap().clone()
}

#[test]
fn breaker_transitions_are_info_events_with_from_to_generation_and_cause() {
    let clock = ManualClock::new();
    let lines = events(|| {
        let config = BreakerConfig::builder()
            .consecutive_failures(1)
            .build()
            .unwrap();
        let breaker = CircuitBreaker::new(config, clock.clone());
        breaker.try_acquire().unwrap().failure();
        clock.advance(Duration::from_secs(30));
        breaker.try_acquire().unwrap().success();
    });
    assert_eq!(
        lines,
        [
            "INFO async_patterns::circuit_breaker: circuit breaker transition from=Closed \
             to=Open { until: Instant(30s) } generation=1 cause=ConsecutiveFailures",
            "INFO async_patterns::circuit_breaker: circuit breaker transition \
             from=Open { until: Instant(30s) } to=HalfOpen { in_flight: 0, successes: 0 } \
             generation=2 cause=OpenElapsed",
            "INFO async_patterns::circuit_breaker: circuit breaker transition \
             from=HalfOpen { in_flight: 1, successes: 0 } to=Closed generation=3 \
             cause=ProbesSucceeded",
        ]
    );
}

#[test]
fn retries_give_ups_and_budget_exhaustion_are_events() {
    let clock = ManualClock::new();
    let lines = events(|| {
        let policy = RetryPolicy::builder()
            .max_attempts(3)
            .constant(Duration::from_millis(10))
            .jitter(Jitter::None)
            .build()
            .unwrap();
        let retrier = Retrier::new(policy.clone(), clock.clone()).with_id(7);
        let run = retrier.run(|_| async { Err::<(), _>("down") });
        let out = futures::executor::block_on(async {
            // The sleeps are on the manual clock: drive it by hand.
            let mut run = std::pin::pin!(run);
            loop {
                match futures::poll!(run.as_mut()) {
                    std::task::Poll::Ready(out) => break out,
                    std::task::Poll::Pending => clock.advance(Duration::from_millis(10)),
                }
            }
        });
        assert!(out.is_err());
        // A budget with nothing to spend refuses the first retry.
        let budget = Arc::new(RetryBudget::new(0.1, 0, Duration::from_secs(1)).unwrap());
        let retrier = Retrier::new(policy, clock.clone())
            .with_id(8)
            .with_budget(budget);
        let out = futures::executor::block_on(retrier.run(|_| async { Err::<(), _>("down") }));
        assert!(out.is_err());
    });
    assert_eq!(
        lines,
        [
            "DEBUG async_patterns::retry: retrying retrier=7 failed_attempt=1 delay_ns=10000000 reason=Retry",
            "DEBUG async_patterns::retry: retrying retrier=7 failed_attempt=2 delay_ns=10000000 reason=Retry",
            "DEBUG async_patterns::retry: retrier gave up retrier=7 attempts=3 gave_up=Attempts",
            "WARN async_patterns::retry: retry budget exhausted available=0",
            "DEBUG async_patterns::retry: retrier gave up retrier=8 attempts=1 gave_up=Budget",
        ]
    );
}

#[test]
fn refusals_and_limit_moves_are_debug_events() {
    let clock = ManualClock::new();
    let lines = events(|| {
        let limiter = RateLimiter::new(Quota::per_second(1).unwrap(), clock.clone());
        limiter.check().unwrap();
        assert!(limiter.check().is_err());
        let keyed: KeyedRateLimiter<u8, _> = KeyedRateLimiter::new(
            Quota::per_second(1).unwrap(),
            clock.clone(),
            NonZeroUsize::MIN,
        );
        keyed.check_key(&1).unwrap();
        assert!(keyed.check_key_n(&1, 1).is_err());
        let config = AdaptiveConfig::builder().limits(1, 1, 2).build().unwrap();
        let limit = AdaptiveLimit::new(config, clock.clone());
        let permit = limit.try_acquire().unwrap();
        assert!(limit.try_acquire().is_err());
        permit.success();
    });
    assert_eq!(
        lines,
        [
            "DEBUG async_patterns::rate_limiter: rate limited not_until_ns=1000000000",
            "DEBUG async_patterns::rate_limiter: rate limited not_until_ns=1000000000",
            "DEBUG async_patterns::adaptive: overloaded: call shed limit=1",
            "DEBUG async_patterns::adaptive: adaptive limit moved limit=2",
        ]
    );
}

#[test]
fn dead_letters_are_warn_events() {
    let lines = events(|| {
        let source = futures::stream::iter(1..=3u32);
        let one = NonZeroUsize::MIN;
        let report = futures::executor::block_on(
            pipeline(source, Order::Ordered)
                .stage(
                    one,
                    |x| async move { if x == 2 { Ok(x) } else { Err("odd") } },
                )
                .run(OnError::DeadLetter(Box::new(|_| {})), |_| {}),
        );
        assert_eq!(report.dead_lettered, 2);
    });
    assert_eq!(
        lines,
        [
            "WARN async_patterns::pipeline: error dead-lettered dead_lettered=1",
            "WARN async_patterns::pipeline: error dead-lettered dead_lettered=2",
        ]
    );
}
