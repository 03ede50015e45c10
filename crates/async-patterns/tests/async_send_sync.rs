//! Every public future and permit can cross threads: a permit moves into a
//! spawned task, a future is awaited inside one (as tokio's own
//! `tests/async_send_sync.rs` checks for its types). This file is the check:
//! it does not compile if one of them stops being `Send` (or `Sync`, where
//! shared references to it are handed out). Nothing here needs to run.
#![cfg(not(async_patterns_loom))]
#![allow(dead_code, clippy::let_underscore_future)]

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use async_patterns::adaptive::{self, AdaptiveLimit};
use async_patterns::circuit_breaker::{self, CircuitBreaker};
use async_patterns::deadline::{Deadline, timeout, timeout_at};
use async_patterns::fan_out::{gather, gather_stream, gather_until};
use async_patterns::rate_limiter::{Quota, RateLimiter, keyed::KeyedRateLimiter};
use async_patterns::retry::{Retrier, RetryBudget, RetryPolicy};
use async_patterns::semaphore::Semaphore;
use async_patterns::time::ManualClock;

fn send<T: Send>(_: &T) {}
fn send_sync<T: Send + Sync>(_: &T) {}
fn send_static<T: Send + 'static>(_: &T) {}

/// A `Send` future of `()`, for the combinators' inputs.
async fn work() {}

fn semaphore() {
    let sem = Arc::new(Semaphore::new(4).unwrap());
    send_sync(&*sem);
    send(&sem.acquire());
    send(&sem.acquire_many(2));
    send_static(&sem.clone().acquire_owned());
    send_static(&sem.clone().acquire_many_owned(2));
    send_sync(&sem.try_acquire().unwrap());
    send_static(&sem.clone().try_acquire_owned().unwrap());
    static STATIC: Semaphore = Semaphore::const_new(1);
    send(&STATIC.acquire());
}

fn rate_limiters() {
    let clock = ManualClock::new();
    let limiter = RateLimiter::new(Quota::per_second(5).unwrap(), clock.clone());
    send_sync(&limiter);
    send(&limiter.until_ready());
    send(&limiter.until_n_ready(2));
    send_sync(&limiter.check());
    let keyed: KeyedRateLimiter<u64, _> =
        KeyedRateLimiter::new(Quota::per_second(5).unwrap(), clock, NonZeroUsize::MIN);
    send_sync(&keyed);
}

fn breaker() {
    let config = circuit_breaker::BreakerConfig::builder().build().unwrap();
    let breaker = Arc::new(CircuitBreaker::new(config, ManualClock::new()));
    send_sync(&*breaker);
    send_sync(&breaker.try_acquire().unwrap());
    let owned = breaker.clone().try_acquire_owned().unwrap();
    send_static(&owned);
    send_sync(&owned);
    send(&breaker.call(async { Ok::<(), ()>(()) }));
}

fn adaptive_limit() {
    let config = adaptive::AdaptiveConfig::builder().build().unwrap();
    let limit = Arc::new(AdaptiveLimit::new(config, ManualClock::new()));
    send_sync(&*limit);
    send_sync(&limit.try_acquire().unwrap());
    let owned = limit.clone().try_acquire_owned().unwrap();
    send_static(&owned);
    send_sync(&owned);
}

fn retry() {
    let policy = RetryPolicy::builder().build().unwrap();
    let retrier = Retrier::new(policy, ManualClock::new()).with_budget(Arc::new(
        RetryBudget::new(0.1, 1, Duration::from_secs(1)).unwrap(),
    ));
    send_sync(&retrier);
    send(&retrier.run(|_| async { Ok::<(), ()>(()) }));
}

fn deadlines_and_fan_out() {
    let clock = ManualClock::new();
    send(&timeout(&clock, Duration::from_secs(1), work()));
    let deadline = Deadline::after(&clock, Duration::from_secs(1));
    send(&timeout_at(&clock, deadline, work()));
    let limit = NonZeroUsize::MIN;
    send(&gather([work(), work()], limit));
    send(&gather_stream([work(), work()], limit));
    send(&gather_until(&clock, deadline, [work(), work()], limit));
}
