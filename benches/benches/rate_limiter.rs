//! Wall-time benchmarks of the rate limiter beside governor's direct
//! limiter, in the same criterion groups. Both run on a manual clock
//! (ours: `ManualClock`; governor: `FakeRelativeClock`) so the figures compare
//! the algorithms, not the clocks; governor on its default (quanta) clock is
//! listed too, for reference. Every check here is admitted: the quota's burst
//! is larger than any run's iteration count.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use std::num::NonZeroUsize;

use async_patterns::rate_limiter::{KeyedRateLimiter, RateLimiter};
use async_patterns::time::ManualClock;
use criterion::{Criterion, criterion_group, criterion_main};
use governor::clock::FakeRelativeClock;

const MAX: NonZeroU32 = NonZeroU32::MAX;

fn ours() -> RateLimiter<ManualClock> {
    let quota = async_patterns_benches::unlimited_quota();
    RateLimiter::new(quota, ManualClock::new())
}

fn governor_quota() -> governor::Quota {
    governor::Quota::per_second(NonZeroU32::new(1_000_000_000).unwrap()).allow_burst(MAX)
}

fn single_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("rate_limiter/check");
    let limiter = ours();
    g.bench_function("async-patterns", |b| {
        b.iter(|| assert!(black_box(limiter.check()).is_ok()))
    });
    let gov =
        governor::RateLimiter::direct_with_clock(governor_quota(), FakeRelativeClock::default());
    g.bench_function("governor", |b| {
        b.iter(|| assert!(black_box(gov.check()).is_ok()))
    });
    let gov_quanta = governor::RateLimiter::direct(governor_quota());
    g.bench_function("governor (quanta clock)", |b| {
        b.iter(|| assert!(black_box(gov_quanta.check()).is_ok()))
    });
    g.finish();
}

/// Two OS threads each run `iters` checks on one limiter; the time is for
/// both to finish.
fn two_threads(iters: u64, check: impl Fn() + Sync) -> Duration {
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let other = s.spawn(|| {
            barrier.wait();
            for _ in 0..iters {
                check();
            }
        });
        barrier.wait();
        let start = Instant::now();
        for _ in 0..iters {
            check();
        }
        other.join().unwrap();
        start.elapsed()
    })
}

fn contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("rate_limiter/check_2_threads");
    // Two cores ping-ponging one cache line: the noisiest figure here, so
    // it gets twice criterion's default measuring time.
    g.measurement_time(Duration::from_secs(10));
    let limiter = ours();
    g.bench_function("async-patterns", |b| {
        b.iter_custom(|iters| two_threads(iters, || assert!(black_box(limiter.check()).is_ok())))
    });
    let gov =
        governor::RateLimiter::direct_with_clock(governor_quota(), FakeRelativeClock::default());
    g.bench_function("governor", |b| {
        b.iter_custom(|iters| two_threads(iters, || assert!(black_box(gov.check()).is_ok())))
    });
    g.finish();
}

/// One check each for 1,000 keys in turn, ours beside governor's keyed
/// (dashmap) limiter, both on manual clocks.
fn keyed(c: &mut Criterion) {
    const KEYS: u32 = 1_000;
    let mut g = c.benchmark_group("rate_limiter/keyed_1000_keys");
    let quota = async_patterns_benches::unlimited_quota();
    let limiter =
        KeyedRateLimiter::new(quota, ManualClock::new(), NonZeroUsize::new(4_096).unwrap());
    let mut key = 0;
    g.bench_function("async-patterns", |b| {
        b.iter(|| {
            key = (key + 1) % KEYS;
            assert!(black_box(limiter.check_key(&key)).is_ok())
        })
    });
    let gov =
        governor::RateLimiter::dashmap_with_clock(governor_quota(), FakeRelativeClock::default());
    let mut key = 0;
    g.bench_function("governor", |b| {
        b.iter(|| {
            key = (key + 1) % KEYS;
            assert!(black_box(gov.check_key(&key)).is_ok())
        })
    });
    g.finish();
}

criterion_group!(benches, single_thread, contended, keyed);
criterion_main!(benches);
