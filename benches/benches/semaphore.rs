//! Wall-time benchmarks of the semaphore, each group pairing ours with
//! tokio's `Semaphore` in the same run so the ratio holds on a noisy machine.
//! Advisory: the regression gate is the instruction-count bench
//! (`semaphore_callgrind.rs`); see the README for both commands.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use async_patterns::semaphore::Semaphore;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

fn uncontended_try_acquire(c: &mut Criterion) {
    let mut g = c.benchmark_group("semaphore/try_acquire_release");
    let ours = Semaphore::new(1).unwrap();
    let tokio = tokio::sync::Semaphore::new(1);
    g.bench_function("async-patterns", |b| {
        b.iter(|| drop(black_box(ours.try_acquire().unwrap())))
    });
    g.bench_function("tokio", |b| {
        b.iter(|| drop(black_box(tokio.try_acquire().unwrap())))
    });
    g.finish();
}

fn acquire_await(c: &mut Criterion) {
    let mut g = c.benchmark_group("semaphore/acquire_await_release");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let ours = Semaphore::new(1).unwrap();
    let tokio = tokio::sync::Semaphore::new(1);
    g.bench_function("async-patterns", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    drop(black_box(ours.acquire().await.unwrap()));
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    drop(black_box(tokio.acquire().await.unwrap()));
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

/// Two OS threads each run `iters` acquire/release cycles (blocking on the
/// acquire future); the time is for both to finish, so lower is more
/// throughput.
fn two_threads<S: Sync>(iters: u64, sem: &S, cycle: impl Fn(&S) + Sync) -> Duration {
    let barrier = Barrier::new(2);
    let start = std::thread::scope(|s| {
        let worker = || {
            barrier.wait();
            for _ in 0..iters {
                cycle(sem);
            }
        };
        let other = s.spawn(worker);
        barrier.wait();
        let start = Instant::now();
        for _ in 0..iters {
            cycle(sem);
        }
        other.join().unwrap();
        start
    });
    start.elapsed()
}

fn contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("semaphore/contended_2_threads");
    for permits in [1usize, 64] {
        let ours = Arc::new(Semaphore::new(permits).unwrap());
        let tokio = Arc::new(tokio::sync::Semaphore::new(permits));
        g.bench_with_input(
            BenchmarkId::new("async-patterns", permits),
            &permits,
            |b, _| {
                b.iter_custom(|iters| {
                    two_threads(iters, &*ours, |s| {
                        drop(black_box(futures::executor::block_on(s.acquire()).unwrap()))
                    })
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("tokio", permits), &permits, |b, _| {
            b.iter_custom(|iters| {
                two_threads(iters, &*tokio, |s| {
                    drop(black_box(futures::executor::block_on(s.acquire()).unwrap()))
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, uncontended_try_acquire, acquire_await, contended);
criterion_main!(benches);
