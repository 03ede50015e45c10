//! Wall-time benchmarks of the circuit breaker's success path, ours beside
//! a bare call and failsafe's breaker in the same criterion group. Both
//! breakers are configured alike: trip on 5 consecutive failures or on a
//! failure rate over a window.

use criterion::{Criterion, criterion_group, criterion_main};
use failsafe::CircuitBreaker as _;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

fn op() -> Result<u64, ()> {
    Ok(black_box(1))
}

fn success_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("circuit_breaker/success_path");
    g.bench_function("bare call", |b| b.iter(|| black_box(op())));
    // The goal's yardstick: a bare call plus one uncontended atomic
    // read-modify-write (what recording an outcome must at least cost).
    let counter = AtomicU64::new(0);
    g.bench_function("bare call + one atomic RMW", |b| {
        b.iter(|| {
            let out = op();
            counter.fetch_add(1, Ordering::AcqRel);
            black_box(out)
        })
    });
    let ours = async_patterns_benches::breaker();
    g.bench_function("async-patterns", |b| {
        b.iter(|| {
            let permit = ours.try_acquire().unwrap();
            let out = op();
            permit.success();
            black_box(out)
        })
    });
    let failsafe = failsafe::Config::new().build();
    g.bench_function("failsafe", |b| b.iter(|| black_box(failsafe.call(op))));
    g.finish();
}

criterion_group!(benches, success_path);
criterion_main!(benches);
