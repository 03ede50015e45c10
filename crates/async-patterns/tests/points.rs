//! The patterns report the points of `src/points.rs` to a listener on the
//! thread (a simulation), each where its table says and nowhere else.
#![cfg(not(async_patterns_loom))]

use std::cell::RefCell;
use std::fmt;
use std::num::NonZeroUsize;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use async_patterns::pipeline::{OnError, Order, pipeline};
use async_patterns::points;
use async_patterns::{
    AdaptiveConfig, AdaptiveLimit, BreakerConfig, CircuitBreaker, Deadline, Jitter,
    KeyedRateLimiter, ManualClock, Quota, RateLimiter, Retrier, RetryBudget, RetryPolicy,
    Semaphore, gather_until,
};
use async_patterns_assert::{Kind, Listener, listen};
use tokio_test::task;
use tokio_test::{assert_pending, assert_ready_ok};

#[derive(Default)]
struct Reached(RefCell<Vec<&'static str>>);

impl Listener for Reached {
    fn hit(&self, kind: Kind, name: &'static str, holds: bool, _: fmt::Arguments<'_>) {
        assert_eq!((kind, holds), (Kind::Reachable, true), "{name}");
        self.0.borrow_mut().push(name);
    }
}

/// The points `f` reaches, in order.
fn reached(f: impl FnOnce()) -> Vec<&'static str> {
    let log = Rc::new(Reached::default());
    let guard = listen(log.clone());
    f();
    drop(guard);
    log.0.take()
}

#[test]
fn a_breaker_reports_opening_a_refused_probe_and_closing_again() {
    let clock = ManualClock::new();
    let seen = reached(|| {
        let config = BreakerConfig::builder()
            .consecutive_failures(1)
            .half_open_probes(1)
            .build()
            .unwrap();
        let breaker = CircuitBreaker::new(config, clock.clone());
        breaker.try_acquire().unwrap().success();
        breaker.try_acquire().unwrap().failure();
        // Open: refusals, but not a probe's (two, so that counting these
        // instead of the probe's shows).
        assert!(breaker.try_acquire().is_err());
        assert!(breaker.try_acquire().is_err());
        clock.advance(Duration::from_secs(30));
        let probe = breaker.try_acquire().unwrap();
        assert!(breaker.try_acquire().is_err());
        probe.failure();
        clock.advance(Duration::from_secs(30));
        breaker.try_acquire().unwrap().success();
    });
    assert_eq!(
        seen,
        [
            points::BREAKER_OPENED,
            points::BREAKER_PROBE_REFUSED,
            points::BREAKER_OPENED,
            points::BREAKER_CLOSED_AGAIN,
        ]
    );
}

#[test]
fn limiters_report_each_refusal_and_nothing_for_an_admission() {
    let clock = ManualClock::new();
    let seen = reached(|| {
        let limiter = RateLimiter::new(Quota::per_second(1).unwrap(), clock.clone());
        limiter.check().unwrap();
        assert!(limiter.check().is_err());
        let keyed: KeyedRateLimiter<u8, _> = KeyedRateLimiter::new(
            Quota::per_second(1).unwrap(),
            clock.clone(),
            NonZeroUsize::MIN,
        );
        keyed.check_key(&1).unwrap();
        assert!(keyed.check_key(&1).is_err());
        let config = AdaptiveConfig::builder().limits(1, 1, 2).build().unwrap();
        let limit = AdaptiveLimit::new(config, clock.clone());
        let permit = limit.try_acquire().unwrap();
        assert!(limit.try_acquire().is_err());
        permit.success();
    });
    assert_eq!(
        seen,
        [
            points::LIMITER_REFUSED,
            points::LIMITER_REFUSED,
            points::ADAPTIVE_SHED
        ]
    );
}

#[test]
fn a_limiter_reports_a_wait_only_when_its_caller_waits() {
    let clock = ManualClock::new();
    let seen = reached(|| {
        let limiter = RateLimiter::new(Quota::per_second(1).unwrap(), clock.clone());
        futures::executor::block_on(limiter.until_ready());
        let mut wait = task::spawn(limiter.until_ready());
        assert_pending!(wait.poll());
        clock.advance(Duration::from_secs(1));
        assert!(wait.poll().is_ready());
    });
    assert_eq!(seen, [points::LIMITER_MADE_WAIT]);
}

#[test]
fn retries_report_giving_up_and_an_empty_budget() {
    let clock = ManualClock::new();
    let seen = reached(|| {
        let policy = RetryPolicy::builder()
            .max_attempts(2)
            .constant(Duration::ZERO)
            .jitter(Jitter::None)
            .build()
            .unwrap();
        let ok = Retrier::new(policy.clone(), clock.clone());
        let mut first = true;
        let out = futures::executor::block_on(ok.run(|_| {
            let fail = std::mem::replace(&mut first, false);
            async move { if fail { Err("once") } else { Ok(()) } }
        }));
        assert!(out.is_ok());
        let budget = Arc::new(RetryBudget::new(0.1, 0, Duration::from_secs(1)).unwrap());
        let broke = Retrier::new(policy, clock.clone()).with_budget(budget);
        let out = futures::executor::block_on(broke.run(|_| async { Err::<(), _>("down") }));
        assert!(out.is_err());
    });
    assert_eq!(
        seen,
        [points::RETRY_BUDGET_EXHAUSTED, points::RETRY_GAVE_UP]
    );
}

#[test]
fn a_pipeline_reports_each_dead_letter() {
    let seen = reached(|| {
        let one = NonZeroUsize::MIN;
        let report = futures::executor::block_on(
            pipeline(futures::stream::iter(1..=3u32), Order::Ordered)
                .stage(
                    one,
                    |x| async move { if x == 2 { Ok(x) } else { Err("odd") } },
                )
                .run(OnError::DeadLetter(Box::new(|_| {})), |_| {}),
        );
        assert_eq!(report.dead_lettered, 2);
    });
    assert_eq!(seen, [points::DEAD_LETTER, points::DEAD_LETTER]);
}

#[test]
fn a_cancelled_acquire_reports_returning_permits_only_when_it_held_some() {
    let seen = reached(|| {
        let s = Semaphore::new(2).unwrap();
        let held = s.try_acquire_many(2).unwrap();
        let mut first = task::spawn(s.acquire_many(2));
        assert_pending!(first.poll());
        let mut second = task::spawn(s.acquire_many(2));
        assert_pending!(second.poll());
        // Cancelled while queued with nothing assigned: nothing to return.
        let mut idle = task::spawn(s.acquire_many(1));
        assert_pending!(idle.poll());
        drop(idle);
        drop(held); // both permits are now assigned to `first`...
        drop(first); // ...which is cancelled before it polls again
        // Another cancelled with nothing assigned, after: still nothing.
        let mut late = task::spawn(s.acquire_many(1));
        assert_pending!(late.poll());
        drop(late);
        drop(assert_ready_ok!(second.poll()));
    });
    assert_eq!(seen, [points::PERMIT_RETURNED_ON_CANCEL]);
}

#[test]
fn a_gather_reports_a_partial_answer_only_when_something_elapsed() {
    let clock = ManualClock::new();
    let limit = NonZeroUsize::new(4).unwrap();
    let seen = reached(|| {
        let whole = futures::executor::block_on(gather_until(
            &clock,
            Deadline::after(&clock, Duration::from_secs(1)),
            [std::future::ready(1), std::future::ready(2)],
            limit,
        ));
        assert!(whole.iter().all(Result::is_ok));
        let deadline = Deadline::after(&clock, Duration::ZERO);
        let late = std::future::pending::<u32>();
        let partial = futures::executor::block_on(gather_until(
            &clock,
            deadline,
            [Box::pin(late) as std::pin::Pin<Box<dyn Future<Output = u32>>>],
            limit,
        ));
        assert!(partial[0].is_err());
    });
    assert_eq!(seen, [points::FAN_OUT_PARTIAL]);
}

#[test]
fn every_point_is_listed_once() {
    let mut names = points::ALL.to_vec();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), points::ALL.len());
    assert_eq!(points::ALL.len(), 11);
}
