//! Instruction counts under Callgrind (gungraun) for the composition
//! patterns, ours beside backon's retry and futures' `buffered`, all on
//! futures' single-threaded executor (no timers: zero delays). `baseline
//! compare` gates on ours.

// gungraun's macros generate undocumented modules and constants.
#![allow(missing_docs)]

use std::future::Future;
use std::hint::black_box;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_patterns::fan_out::gather;
use async_patterns::retry::{Retrier, RetryPolicy};
use async_patterns::time::ManualClock;
use backon::{ConstantBuilder, Retryable};
use futures::StreamExt;
use futures::executor::block_on;
use gungraun::{library_benchmark, library_benchmark_group, main};

const CALLS: usize = 1_000;

fn retry_ours(failures: u32) {
    let policy = RetryPolicy::builder()
        .max_attempts(4)
        .constant(Duration::ZERO)
        .seed(0) // a fixed seed: a benchmark must repeat
        .build()
        .unwrap();
    let retrier = Retrier::new(policy, ManualClock::new());
    let mut op = async_patterns_benches::flaky(failures);
    block_on(async {
        for _ in 0..CALLS {
            black_box(retrier.run(|_| op()).await.unwrap());
        }
    });
}

fn retry_backon(failures: u32) {
    let backoff = ConstantBuilder::new()
        .with_delay(Duration::ZERO)
        .with_max_times(3);
    let mut op = async_patterns_benches::flaky(failures);
    block_on(async {
        for _ in 0..CALLS {
            let call = (&mut op).retry(backoff).sleep(|_| std::future::ready(()));
            black_box(call.await.unwrap());
        }
    });
}

#[library_benchmark]
fn retry_success_ours() {
    retry_ours(0);
}

#[library_benchmark]
fn retry_success_backon() {
    retry_backon(0);
}

#[library_benchmark]
fn retry_3_failures_ours() {
    retry_ours(3);
}

#[library_benchmark]
fn retry_3_failures_backon() {
    retry_backon(3);
}

/// Pending once (waking itself), then ready: every input really waits.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

fn inputs() -> impl Iterator<Item = impl Future<Output = usize>> {
    (0..CALLS).map(|i| async move {
        YieldOnce(false).await;
        i
    })
}

const LIMIT: usize = 50;

#[library_benchmark]
fn gather_ours() {
    let out = block_on(gather(inputs(), NonZeroUsize::new(LIMIT).unwrap()));
    black_box(out);
}

#[library_benchmark]
fn gather_buffered() {
    let out: Vec<usize> = block_on(futures::stream::iter(inputs()).buffered(LIMIT).collect());
    black_box(out);
}

library_benchmark_group!(
    name = composition,
    benchmarks = [
        retry_success_ours,
        retry_success_backon,
        retry_3_failures_ours,
        retry_3_failures_backon,
        gather_ours,
        gather_buffered
    ]
);
main!(library_benchmark_groups = composition);
