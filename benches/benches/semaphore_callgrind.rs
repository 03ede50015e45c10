//! Instruction counts under Callgrind (gungraun) for the single-threaded
//! semaphore paths. Unlike wall time these repeat to ~0.01% on this machine,
//! so they are what `baseline compare` gates on. tokio's figures are recorded
//! beside ours for reference.

// gungraun's macros generate undocumented modules and constants.
#![allow(missing_docs)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Waker};

use async_patterns::semaphore::Semaphore;
use gungraun::{library_benchmark, library_benchmark_group, main};

const CYCLES: usize = 1_000;

/// Polls `fut` once with a no-op waker; the acquires here never wait.
fn poll_ready<F: Future>(fut: F) -> F::Output {
    match pin!(fut).poll(&mut Context::from_waker(Waker::noop())) {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => unreachable!("uncontended acquire is ready at once"),
    }
}

#[library_benchmark]
fn try_acquire_release_ours() {
    let sem = Semaphore::new(1).unwrap();
    for _ in 0..CYCLES {
        drop(black_box(sem.try_acquire().unwrap()));
    }
}

#[library_benchmark]
fn try_acquire_release_tokio() {
    let sem = tokio::sync::Semaphore::new(1);
    for _ in 0..CYCLES {
        drop(black_box(sem.try_acquire().unwrap()));
    }
}

#[library_benchmark]
fn acquire_poll_release_ours() {
    let sem = Semaphore::new(1).unwrap();
    for _ in 0..CYCLES {
        drop(black_box(poll_ready(sem.acquire()).unwrap()));
    }
}

#[library_benchmark]
fn acquire_poll_release_tokio() {
    let sem = tokio::sync::Semaphore::new(1);
    for _ in 0..CYCLES {
        drop(black_box(poll_ready(sem.acquire()).unwrap()));
    }
}

/// The queued path: a waiter queues behind a held permit, the release hands
/// the permit over, the waiter completes. Both semaphores have the same API
/// shape, so one body serves both.
macro_rules! handoff {
    ($sem:expr) => {{
        let sem = $sem;
        let waker = Waker::noop();
        for _ in 0..CYCLES {
            let held = sem.try_acquire().unwrap();
            let mut waiter = pin!(sem.acquire());
            assert!(
                waiter
                    .as_mut()
                    .poll(&mut Context::from_waker(waker))
                    .is_pending()
            );
            drop(held);
            let permit = waiter.as_mut().poll(&mut Context::from_waker(waker));
            drop(black_box(permit));
        }
    }};
}

#[library_benchmark]
fn handoff_ours() {
    handoff!(Semaphore::new(1).unwrap())
}

#[library_benchmark]
fn handoff_tokio() {
    handoff!(tokio::sync::Semaphore::new(1))
}

library_benchmark_group!(
    name = semaphore,
    benchmarks = [
        try_acquire_release_ours,
        try_acquire_release_tokio,
        acquire_poll_release_ours,
        acquire_poll_release_tokio,
        handoff_ours,
        handoff_tokio
    ]
);
main!(library_benchmark_groups = semaphore);
