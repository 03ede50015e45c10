//! The same semaphore behaviour on three executors: tokio's current-thread
//! runtime, tokio's multi-thread runtime, and futures' `LocalPool`. The
//! scenarios use no runtime API at all (concurrency comes from
//! `join_all`, yielding from a hand-written future), which is the point: the
//! core works wherever futures are polled.
//!
//! Every scenario runs under a hang guard, so a lost wake-up fails the test
//! within seconds, naming it, instead of hanging CI: paused time on the
//! current-thread runtime, run-until-stalled on the `LocalPool`, and on the
//! multi-thread runtime (where time cannot be paused) a watchdog of
//! [`WATCHDOG`] of real time — a bound on failure only: passing runs take
//! milliseconds and nothing asserts on how long they took.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_patterns::semaphore::{AcquireError, Semaphore};
use futures::future::join_all;

/// Returns `Pending` once (waking itself), so other futures get to run.
struct YieldNow(bool);
impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
fn yield_now() -> YieldNow {
    YieldNow(false)
}

/// 24 jobs wanting 1–3 permits of 4, each holding them across a few yields:
/// never more than 4 in use, every job finishes, every permit comes back.
async fn bounded_concurrency_holds_and_everyone_finishes() {
    let sem = Semaphore::new(4).unwrap();
    let in_use = Cell::new(0usize);
    let peak = Cell::new(0usize);
    let finished = Cell::new(0usize);
    join_all((0..24).map(|i| {
        let (sem, in_use, peak, finished) = (&sem, &in_use, &peak, &finished);
        async move {
            let n = 1 + i % 3;
            let permit = sem.acquire_many(n).await.unwrap();
            in_use.set(in_use.get() + n);
            peak.set(peak.get().max(in_use.get()));
            for _ in 0..(i % 4) {
                yield_now().await;
            }
            in_use.set(in_use.get() - n);
            drop(permit);
            finished.set(finished.get() + 1);
        }
    }))
    .await;
    assert!(peak.get() <= 4, "peak {} permits in use", peak.get());
    assert_eq!(finished.get(), 24);
    assert_eq!(sem.available_permits(), 4);
}

/// Waiters queued in order 0..8 are served in exactly that order.
async fn waiters_are_served_in_arrival_order() {
    let sem = Semaphore::new(1).unwrap();
    let order = RefCell::new(Vec::new());
    let held = sem.try_acquire().unwrap();
    let waiters = join_all((0..8).map(|i| {
        let (sem, order) = (&sem, &order);
        async move {
            let _p = sem.acquire().await.unwrap();
            order.borrow_mut().push(i);
            yield_now().await;
        }
    }));
    let releaser = async {
        yield_now().await; // every waiter has queued by now
        drop(held);
    };
    futures::join!(waiters, releaser);
    assert_eq!(*order.borrow(), (0..8).collect::<Vec<_>>());
}

/// Closing wakes every queued waiter with `Closed`.
async fn close_wakes_every_waiter() {
    let sem = Semaphore::new(1).unwrap();
    let _held = sem.try_acquire().unwrap();
    let waiters = join_all((0..5).map(|_| sem.acquire_many(1)));
    let closer = async {
        yield_now().await;
        sem.close();
    };
    let (results, ()) = futures::join!(waiters, closer);
    assert_eq!(results.len(), 5);
    assert!(
        results
            .into_iter()
            .all(|r| r.unwrap_err() == AcquireError::Closed)
    );
}

/// Runs `scenario` on tokio's current-thread runtime in paused time: if it
/// stalls (every task waiting on a wake-up that never comes), tokio jumps
/// virtual time to the watchdog and the test fails instead of hanging.
fn on_tokio_paused(scenario: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(3600), scenario)
                .await
                .expect("scenario stalled: a wake-up was lost")
        });
}

/// How long a scenario may run on the multi-thread runtime before it is
/// declared stalled.
const WATCHDOG: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs `scenario` on tokio's multi-thread runtime (2 workers) under the
/// [`WATCHDOG`]: a stalled scenario fails with a message instead of hanging.
fn on_tokio_multi_thread<F: Future<Output = ()>>(name: &str, scenario: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(WATCHDOG, scenario)
                .await
                .unwrap_or_else(|_| {
                    panic!("{name} stalled for {WATCHDOG:?} on the multi-thread runtime: a wake-up was lost")
                })
        });
}

/// Runs `scenario` on futures' `LocalPool` until nothing is left to do; it
/// must have finished by then, so a lost wake-up fails instead of hanging.
fn on_local_pool(scenario: impl Future<Output = ()> + 'static) {
    use futures::task::LocalSpawnExt;
    let mut pool = futures::executor::LocalPool::new();
    let done = std::rc::Rc::new(Cell::new(false));
    let finished = done.clone();
    pool.spawner()
        .spawn_local(async move {
            scenario.await;
            finished.set(true);
        })
        .unwrap();
    pool.run_until_stalled();
    assert!(done.get(), "scenario stalled: a wake-up was lost");
}

macro_rules! on_every_runtime {
    ($($scenario:ident),* $(,)?) => {
        mod tokio_current_thread {
            $(#[test]
            fn $scenario() {
                super::on_tokio_paused(super::$scenario());
            })*
        }
        mod tokio_multi_thread {
            $(#[test]
            fn $scenario() {
                super::on_tokio_multi_thread(stringify!($scenario), super::$scenario());
            })*
        }
        mod futures_local_pool {
            $(#[test]
            fn $scenario() {
                super::on_local_pool(super::$scenario());
            })*
        }
    };
}

on_every_runtime!(
    bounded_concurrency_holds_and_everyone_finishes,
    waiters_are_served_in_arrival_order,
    close_wakes_every_waiter,
);

/// Owned permits crossing tokio worker threads: 64 spawned tasks share 3
/// permits; the peak observed in use never exceeds 3.
#[test]
fn owned_permits_across_tokio_worker_threads() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    on_tokio_multi_thread("owned_permits_across_tokio_worker_threads", async {
        let sem = Arc::new(Semaphore::new(3).unwrap());
        let in_use = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (sem, in_use, peak) = (sem.clone(), in_use.clone(), peak.clone());
                tokio::spawn(async move {
                    let permit = sem.acquire_owned().await.unwrap();
                    let now = in_use.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    in_use.fetch_sub(1, Ordering::SeqCst);
                    drop(permit);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= 3);
        assert_eq!(sem.available_permits(), 3);
    });
}
