//! Instruction counts under Callgrind (gungraun) for the tower layers,
//! ours beside tower's own (and tower-resilience's breaker): the same
//! iterations as `tower_layers.rs` (ready, call, complete; a ready inner
//! service), `CALLS` of them per benchmark, inside one tokio runtime the
//! benchmark builds (the same fixed cost on both sides of a pair). Gated by
//! `baseline compare` like the core's (ours only); a noise-free companion to
//! the wall-time ratios.

// gungraun's macros generate undocumented modules and constants.
#![allow(missing_docs)]

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_patterns::{
    AdaptiveConfig, AdaptiveLimit, BreakerConfig, CircuitBreaker, Jitter, Quota, RetryBudget,
    RetryPolicy,
};
use async_patterns_tokio::TokioTimer;
use async_patterns_tower as ours;
use gungraun::{library_benchmark, library_benchmark_group, main};
use tower::{Layer, Service};

const CALLS: u64 = 10_000;

type Inner = tower::util::ServiceFn<fn(u64) -> Ready<Result<u64, Infallible>>>;

fn inner() -> Inner {
    tower::service_fn(|x: u64| ready(Ok::<u64, Infallible>(x)))
}

/// `CALLS` requests through the service `make` builds, inside a runtime.
fn run<S: Service<u64>>(make: impl FnOnce(TokioTimer) -> S) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _entered = rt.enter();
    let mut svc = make(TokioTimer::new());
    let mut cx = Context::from_waker(std::task::Waker::noop());
    for x in 0..CALLS {
        assert!(matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))));
        let mut fut = pin!(svc.call(black_box(x)));
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(out)) => drop(black_box(out)),
            _ => panic!("not complete at once"),
        }
    }
}

#[derive(Clone)]
struct Attempts(usize);

impl<E> tower::retry::Policy<u64, u64, E> for Attempts {
    type Future = Ready<()>;
    fn retry(&mut self, _: &mut u64, result: &mut Result<u64, E>) -> Option<Ready<()>> {
        match result {
            Err(_) if self.0 > 0 => {
                self.0 -= 1;
                Some(ready(()))
            }
            _ => None,
        }
    }
    fn clone_request(&mut self, req: &u64) -> Option<u64> {
        Some(*req)
    }
}

/// tower's retry as its docs write one with a budget: a counter of
/// attempts and a shared `TpsBudget` (deposit on every success, withdraw
/// before every retry); cloned into every response future as tower does.
#[derive(Clone)]
struct Budgeted {
    attempts: usize,
    budget: Arc<tower::retry::budget::TpsBudget>,
}

impl<E> tower::retry::Policy<u64, u64, E> for Budgeted {
    type Future = Ready<()>;
    fn retry(&mut self, _: &mut u64, result: &mut Result<u64, E>) -> Option<Ready<()>> {
        use tower::retry::budget::Budget;
        match result {
            Ok(_) => {
                self.budget.deposit();
                None
            }
            Err(_) if self.attempts > 0 && self.budget.withdraw() => {
                self.attempts -= 1;
                Some(ready(()))
            }
            Err(_) => None,
        }
    }
    fn clone_request(&mut self, req: &u64) -> Option<u64> {
        Some(*req)
    }
}

#[library_benchmark]
fn concurrency_limit_ours() {
    run(|_| ours::ConcurrencyLimitLayer::new(64).unwrap().layer(inner()));
}

#[library_benchmark]
fn concurrency_limit_tower() {
    run(|_| tower::limit::ConcurrencyLimitLayer::new(64).layer(inner()));
}

#[library_benchmark]
fn rate_limit_ours() {
    run(|t| ours::RateLimitLayer::new(Quota::per_second(1_000_000_000).unwrap(), t).layer(inner()));
}

#[library_benchmark]
fn rate_limit_tower() {
    run(|_| tower::limit::RateLimitLayer::new(u64::MAX, Duration::from_secs(1)).layer(inner()));
}

#[library_benchmark]
fn timeout_ours() {
    run(|t| ours::TimeoutLayer::new(Duration::from_secs(1), t).layer(inner()));
}

#[library_benchmark]
fn timeout_tower() {
    run(|_| tower::timeout::TimeoutLayer::new(Duration::from_secs(1)).layer(inner()));
}

#[library_benchmark]
fn retry_ours() {
    run(|t| {
        let policy = RetryPolicy::builder()
            .max_attempts(3)
            .jitter(Jitter::Full)
            .seed(1)
            .build()
            .unwrap();
        ours::RetryLayer::new(policy, t).layer(inner())
    });
}

#[library_benchmark]
fn retry_tower() {
    run(|_| tower::retry::RetryLayer::new(Attempts(2)).layer(inner()));
}

#[library_benchmark]
fn budgeted_retry_ours() {
    run(|t| {
        let policy = RetryPolicy::builder()
            .max_attempts(3)
            .jitter(Jitter::Full)
            .seed(1)
            .build()
            .unwrap();
        let budget = RetryBudget::new(0.2, 10, Duration::from_secs(10)).unwrap();
        ours::RetryLayer::new(policy, t)
            .budget(Arc::new(budget))
            .layer(inner())
    });
}

#[library_benchmark]
fn budgeted_retry_tower() {
    run(|_| {
        let budget = tower::retry::budget::TpsBudget::new(Duration::from_secs(10), 10, 0.2);
        tower::retry::RetryLayer::new(Budgeted {
            attempts: 2,
            budget: Arc::new(budget),
        })
        .layer(inner())
    });
}

#[library_benchmark]
fn circuit_breaker_ours() {
    run(|t| {
        let config = BreakerConfig::builder()
            .consecutive_failures(5)
            .window(100, 10)
            .failure_rate(0.5)
            .build()
            .unwrap();
        ours::BreakerLayer::new(Arc::new(CircuitBreaker::new(config, t))).layer(inner())
    });
}

#[library_benchmark]
fn circuit_breaker_tower_resilience() {
    run(|_| {
        tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
            .failure_rate_threshold(0.5)
            .sliding_window_size(100)
            .build()
            .unwrap()
            .layer(inner())
    });
}

#[library_benchmark]
fn load_shed_ours() {
    run(|t| {
        let config = AdaptiveConfig::builder()
            .limits(1, 64, 1000)
            .build()
            .unwrap();
        ours::LoadShedLayer::new(Arc::new(AdaptiveLimit::new(config, t))).layer(inner())
    });
}

#[library_benchmark]
fn load_shed_tower() {
    run(|_| tower::load_shed::LoadShedLayer::new().layer(inner()));
}

library_benchmark_group!(
    name = tower_layers,
    benchmarks = [
        concurrency_limit_ours,
        concurrency_limit_tower,
        rate_limit_ours,
        rate_limit_tower,
        timeout_ours,
        timeout_tower,
        retry_ours,
        retry_tower,
        budgeted_retry_ours,
        budgeted_retry_tower,
        circuit_breaker_ours,
        circuit_breaker_tower_resilience,
        load_shed_ours,
        load_shed_tower
    ]
);
main!(library_benchmark_groups = tower_layers);
