//! Wall-time benchmarks of the composition patterns beside the crates
//! people use for the same job, each pair in one criterion group:
//!
//! * retry overhead against backon: a call that succeeds at once, and one
//!   that fails three times with zero delay before succeeding;
//! * the timeout wrapper against `tokio::time::timeout` (the future is
//!   ready at once, so this is the wrapper's own cost);
//! * gather with a limit against futures' `buffered` (ordered, like
//!   gather) and `buffer_unordered` (like `gather_stream`), same limit, and
//!   unbounded `join_all` for reference;
//! * the pipeline against a hand-wired chain of tokio tasks and mpsc
//!   channels.
//!
//! Everything runs on one current-thread tokio runtime; each sample runs
//! its iterations inside one `block_on`, so the runtime's entry cost is
//! not part of the figure.

use std::future::Future;
use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use async_patterns::fan_out::gather;
use async_patterns::retry::{Retrier, RetryPolicy};
use async_patterns::{deadline, pipeline};
use async_patterns_tokio::TokioTimer;
use backon::{ConstantBuilder, Retryable};
use criterion::{Criterion, criterion_group, criterion_main};
use futures::StreamExt;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime")
}

/// Times `body` (a loop of the sample's iterations) inside one `block_on`.
fn timed(rt: &tokio::runtime::Runtime, body: impl Future<Output = ()>) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        body.await;
        start.elapsed()
    })
}

fn retry(c: &mut Criterion) {
    let rt = runtime();
    for failures in [0u32, 3] {
        let mut g = c.benchmark_group(format!("retry/{failures}_failures_zero_delay"));
        let policy = RetryPolicy::builder()
            .max_attempts(4)
            .constant(Duration::ZERO)
            .seed(0) // a fixed seed: a benchmark must repeat
            .build()
            .expect("a valid policy");
        let retrier = rt.block_on(async { Retrier::new(policy, TokioTimer::new()) });
        g.bench_function("async-patterns", |b| {
            b.iter_custom(|iters| {
                let mut op = async_patterns_benches::flaky(failures);
                timed(&rt, async {
                    for _ in 0..iters {
                        black_box(retrier.run(|_| op()).await.unwrap());
                    }
                })
            })
        });
        let backoff = ConstantBuilder::new()
            .with_delay(Duration::ZERO)
            .with_max_times(3);
        g.bench_function("backon", |b| {
            b.iter_custom(|iters| {
                let mut op = async_patterns_benches::flaky(failures);
                timed(&rt, async {
                    for _ in 0..iters {
                        let call = (&mut op).retry(backoff).sleep(tokio::time::sleep);
                        black_box(call.await.unwrap());
                    }
                })
            })
        });
        g.finish();
    }
}

fn timeout(c: &mut Criterion) {
    let rt = runtime();
    let timer = rt.block_on(async { TokioTimer::new() });
    let mut g = c.benchmark_group("timeout/ready_at_once");
    g.bench_function("async-patterns", |b| {
        b.iter_custom(|iters| {
            timed(&rt, async {
                for _ in 0..iters {
                    let ready = std::future::ready(black_box(1));
                    black_box(
                        deadline::timeout(&timer, Duration::from_secs(1), ready)
                            .await
                            .unwrap(),
                    );
                }
            })
        })
    });
    g.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            timed(&rt, async {
                for _ in 0..iters {
                    let ready = std::future::ready(black_box(1));
                    black_box(
                        tokio::time::timeout(Duration::from_secs(1), ready)
                            .await
                            .unwrap(),
                    );
                }
            })
        })
    });
    g.finish();
}

/// 1,000 inputs that each yield to the runtime once, 50 at a time.
fn fan_out(c: &mut Criterion) {
    const INPUTS: u64 = 1_000;
    const LIMIT: usize = 50;
    let rt = runtime();
    let inputs = || {
        (0..INPUTS).map(|i| async move {
            tokio::task::yield_now().await;
            i
        })
    };
    let mut g = c.benchmark_group("fan_out/1000_inputs_limit_50");
    g.bench_function("async-patterns", |b| {
        b.iter_custom(|iters| {
            timed(&rt, async {
                for _ in 0..iters {
                    black_box(gather(inputs(), NonZeroUsize::new(LIMIT).unwrap()).await);
                }
            })
        })
    });
    g.bench_function("futures buffered", |b| {
        b.iter_custom(|iters| {
            timed(&rt, async {
                for _ in 0..iters {
                    let out: Vec<u64> = futures::stream::iter(inputs())
                        .buffered(LIMIT)
                        .collect()
                        .await;
                    black_box(out);
                }
            })
        })
    });
    g.bench_function("futures buffer_unordered", |b| {
        b.iter_custom(|iters| {
            timed(&rt, async {
                for _ in 0..iters {
                    let out: Vec<u64> = futures::stream::iter(inputs())
                        .buffer_unordered(LIMIT)
                        .collect()
                        .await;
                    black_box(out);
                }
            })
        })
    });
    g.bench_function("futures join_all (unbounded)", |b| {
        b.iter_custom(|iters| {
            timed(&rt, async {
                for _ in 0..iters {
                    black_box(futures::future::join_all(inputs()).await);
                }
            })
        })
    });
    g.finish();
}

/// 10,000 items through two stages that each await once (a yield) per
/// item: our single-task pipeline (concurrency 8 per stage) beside the
/// hand-wired chain people write — a producer task, one task per stage and
/// tokio mpsc channels of capacity 8 between them — on the same runtime.
fn pipeline(c: &mut Criterion) {
    const ITEMS: u64 = 10_000;
    const CAP: usize = 8;
    let rt = runtime();
    let mut g = c.benchmark_group("pipeline/10000_items_2_stages");
    g.bench_function("async-patterns", |b| {
        b.iter_custom(|iters| {
            timed(&rt, async {
                for _ in 0..iters {
                    let cap = NonZeroUsize::new(CAP).unwrap();
                    let step = |x: u64| async move {
                        tokio::task::yield_now().await;
                        Ok::<_, ()>(x + 1)
                    };
                    let mut sum = 0;
                    pipeline::pipeline(futures::stream::iter(0..ITEMS), pipeline::Order::Ordered)
                        .stage(cap, step)
                        .stage(cap, step)
                        .run(pipeline::OnError::Deliver, |x| sum += x.unwrap())
                        .await;
                    black_box(sum);
                }
            })
        })
    });
    g.bench_function("tokio mpsc chain", |b| {
        b.iter_custom(|iters| {
            timed(&rt, async {
                for _ in 0..iters {
                    let (tx0, mut rx0) = tokio::sync::mpsc::channel::<u64>(CAP);
                    let (tx1, mut rx1) = tokio::sync::mpsc::channel::<u64>(CAP);
                    let (tx2, mut rx2) = tokio::sync::mpsc::channel::<u64>(CAP);
                    tokio::spawn(async move {
                        for x in 0..ITEMS {
                            tx0.send(x).await.unwrap();
                        }
                    });
                    tokio::spawn(async move {
                        while let Some(x) = rx0.recv().await {
                            tokio::task::yield_now().await;
                            tx1.send(x + 1).await.unwrap();
                        }
                    });
                    tokio::spawn(async move {
                        while let Some(x) = rx1.recv().await {
                            tokio::task::yield_now().await;
                            tx2.send(x + 1).await.unwrap();
                        }
                    });
                    let mut sum = 0;
                    while let Some(x) = rx2.recv().await {
                        sum += x;
                    }
                    black_box(sum);
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, retry, timeout, fan_out, pipeline);
criterion_main!(benches);
