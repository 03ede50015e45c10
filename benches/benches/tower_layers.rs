//! Wall-time benchmarks of the tower layers (`async-patterns-tower`)
//! beside tower's own equivalents and tower-resilience's, on a ready inner
//! service (`service_fn` returning `ready(Ok(x))`), one criterion group per
//! layer so each sits beside its anchors:
//!
//! | group | `async_patterns` | `tower` | `tower_resilience` |
//! |---|---|---|---|
//! | `tower/concurrency_limit` | `ConcurrencyLimitLayer` | `limit::ConcurrencyLimit` | `BulkheadLayer` |
//! | `tower/rate_limit` | `RateLimitLayer` | `limit::RateLimit` | `RateLimiterLayer` |
//! | `tower/circuit_breaker` | `BreakerLayer` | — | `CircuitBreakerLayer` |
//! | `tower/timeout` | `TimeoutLayer` | `timeout::Timeout` | — |
//! | `tower/timeout_pending` | the same, over a response pending once | | |
//! | `tower/retry` | `RetryLayer` | `retry::Retry` (a counting policy) | — |
//! | `tower/retry_budget` | `RetryLayer::budget` | `retry::Retry` with `TpsBudget` | — |
//! | `tower/load_shed` | `LoadShedLayer` | `load_shed::LoadShed` | `BulkheadLayer` (`reject_when_full`) |
//!
//! One iteration is what a caller does per request: `poll_ready`, `call`,
//! poll the response future to completion (first poll: every inner future
//! is ready, but in `tower/timeout_pending`, where it is pending once) and
//! drop it. Limits are set high enough never to bind.
//!
//! `cargo bench -p async-patterns-benches --bench tower_layers -- --warm-up-time 1 --measurement-time 3`

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
use criterion::{Criterion, criterion_group, criterion_main};
use tower::{Layer, Service};

type Inner = tower::util::ServiceFn<fn(u64) -> Ready<Result<u64, Infallible>>>;

fn inner() -> Inner {
    tower::service_fn(|x: u64| ready(Ok::<u64, Infallible>(x)))
}

/// One request through `svc`: ready, call, complete. Every service here
/// is ready at once over a ready inner service; anything else is a bug.
#[inline]
fn once<S: Service<u64>>(svc: &mut S, cx: &mut Context<'_>, x: u64) -> S::Response {
    match svc.poll_ready(cx) {
        Poll::Ready(Ok(())) => {}
        _ => panic!("not ready at once"),
    }
    let mut fut = pin!(svc.call(x));
    match fut.as_mut().poll(cx) {
        Poll::Ready(Ok(out)) => out,
        _ => panic!("not complete at once"),
    }
}

/// A future that is pending on its first poll and ready on its second
/// (it wakes itself): what a real inner service's response does.
struct PendingOnce(Option<u64>, bool);

impl Future for PendingOnce {
    type Output = Result<u64, Infallible>;
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if std::mem::replace(&mut self.1, true) {
            Poll::Ready(Ok(self.0.take().unwrap_or_default()))
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

type PendingInner = tower::util::ServiceFn<fn(u64) -> PendingOnce>;

fn pending_inner() -> PendingInner {
    tower::service_fn(|x: u64| PendingOnce(Some(x), false))
}

/// [`once`] for a response that is pending on its first poll: both polls
/// are timed, so a timeout's timer entry is registered on both sides.
fn bench_twice<S: Service<u64>>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    mut svc: S,
) {
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    g.bench_function(name, |b| {
        b.iter(|| {
            match svc.poll_ready(&mut cx) {
                Poll::Ready(Ok(())) => {}
                _ => panic!("not ready at once"),
            }
            let mut fut = pin!(svc.call(black_box(7)));
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            match fut.as_mut().poll(&mut cx) {
                Poll::Ready(Ok(out)) => black_box(out),
                _ => panic!("not complete at the second poll"),
            }
        })
    });
}

fn bench<S: Service<u64>>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    mut svc: S,
) {
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    g.bench_function(name, |b| {
        b.iter(|| black_box(once(&mut svc, &mut cx, black_box(7))))
    });
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

fn tower_layers(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _entered = rt.enter();
    let timer = TokioTimer::new();

    let mut g = c.benchmark_group("tower/concurrency_limit");
    bench(
        &mut g,
        "async-patterns",
        ours::ConcurrencyLimitLayer::new(64).unwrap().layer(inner()),
    );
    bench(
        &mut g,
        "tower",
        tower::limit::ConcurrencyLimitLayer::new(64).layer(inner()),
    );
    bench(
        &mut g,
        "tower-resilience",
        tower_resilience::bulkhead::BulkheadLayer::builder()
            .max_concurrent_calls(64)
            .build()
            .unwrap()
            .layer(inner()),
    );
    g.finish();

    let mut g = c.benchmark_group("tower/rate_limit");
    let quota = Quota::per_second(1_000_000_000).unwrap();
    bench(
        &mut g,
        "async-patterns",
        ours::RateLimitLayer::new(quota, timer).layer(inner()),
    );
    bench(
        &mut g,
        "tower",
        tower::limit::RateLimitLayer::new(u64::MAX, Duration::from_secs(1)).layer(inner()),
    );
    bench(
        &mut g,
        "tower-resilience",
        tower_resilience::ratelimiter::RateLimiterLayer::builder()
            .limit_for_period(usize::MAX)
            .refresh_period(Duration::from_secs(1))
            .timeout_duration(Duration::from_millis(500))
            .build()
            .unwrap()
            .layer(inner()),
    );
    g.finish();

    let mut g = c.benchmark_group("tower/circuit_breaker");
    let breaker = Arc::new(CircuitBreaker::new(
        BreakerConfig::builder()
            .consecutive_failures(5)
            .window(100, 10)
            .failure_rate(0.5)
            .build()
            .unwrap(),
        timer,
    ));
    bench(
        &mut g,
        "async-patterns",
        ours::BreakerLayer::new(breaker).layer(inner()),
    );
    bench(
        &mut g,
        "tower-resilience",
        tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
            .failure_rate_threshold(0.5)
            .sliding_window_size(100)
            .build()
            .unwrap()
            .layer(inner()),
    );
    g.finish();

    let mut g = c.benchmark_group("tower/timeout");
    bench(
        &mut g,
        "async-patterns",
        ours::TimeoutLayer::new(Duration::from_secs(1), timer).layer(inner()),
    );
    bench(
        &mut g,
        "tower",
        tower::timeout::TimeoutLayer::new(Duration::from_secs(1)).layer(inner()),
    );
    g.finish();

    // The same over an inner response that is pending once: both sides
    // register a timer entry (ours makes its sleep only then).
    let mut g = c.benchmark_group("tower/timeout_pending");
    bench_twice(
        &mut g,
        "async-patterns",
        ours::TimeoutLayer::new(Duration::from_secs(1), timer).layer(pending_inner()),
    );
    bench_twice(
        &mut g,
        "tower",
        tower::timeout::TimeoutLayer::new(Duration::from_secs(1)).layer(pending_inner()),
    );
    g.finish();

    let mut g = c.benchmark_group("tower/retry");
    let policy = RetryPolicy::builder()
        .max_attempts(3)
        .jitter(Jitter::Full)
        .seed(1)
        .build()
        .unwrap();
    bench(
        &mut g,
        "async-patterns",
        ours::RetryLayer::new(policy.clone(), timer).layer(inner()),
    );
    bench(
        &mut g,
        "tower",
        tower::retry::RetryLayer::new(Attempts(2)).layer(inner()),
    );
    g.finish();

    // The same with a retry budget (20% of calls over 10 s, at least 10
    // per second) on both sides: what a production retry carries.
    let mut g = c.benchmark_group("tower/retry_budget");
    let budget = Arc::new(RetryBudget::new(0.2, 10, Duration::from_secs(10)).unwrap());
    bench(
        &mut g,
        "async-patterns",
        ours::RetryLayer::new(policy, timer)
            .budget(budget)
            .layer(inner()),
    );
    let budgeted = Budgeted {
        attempts: 2,
        budget: Arc::new(tower::retry::budget::TpsBudget::new(
            Duration::from_secs(10),
            10,
            0.2,
        )),
    };
    bench(
        &mut g,
        "tower",
        tower::retry::RetryLayer::new(budgeted).layer(inner()),
    );
    g.finish();

    let mut g = c.benchmark_group("tower/load_shed");
    let limit = Arc::new(AdaptiveLimit::new(
        AdaptiveConfig::builder()
            .limits(1, 64, 1000)
            .build()
            .unwrap(),
        timer,
    ));
    bench(
        &mut g,
        "async-patterns",
        ours::LoadShedLayer::new(limit).layer(inner()),
    );
    bench(
        &mut g,
        "tower",
        tower::load_shed::LoadShedLayer::new().layer(inner()),
    );
    // A limit that rejects when full (not adaptive: the nearest shedding
    // limit tower-resilience has outside its adaptive crate).
    bench(
        &mut g,
        "tower-resilience",
        tower_resilience::bulkhead::BulkheadLayer::builder()
            .max_concurrent_calls(64)
            .reject_when_full()
            .build()
            .unwrap()
            .layer(inner()),
    );
    g.finish();
}

criterion_group!(benches, tower_layers);
criterion_main!(benches);
