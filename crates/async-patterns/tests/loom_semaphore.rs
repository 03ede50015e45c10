//! loom model checks of the semaphore: every interleaving of 2–3 threads
//! over the real code (the core's atomics and mutexes come from loom under
//! `--cfg async_patterns_loom`). Run with `scripts/loom.sh`.
//!
//! A lost wake-up makes loom report a deadlock (a thread parked in
//! `block_on` that nobody will ever notify), so every model that ends with
//! all its threads joined also proves that no wake-up was lost.
#![cfg(async_patterns_loom)]

#[path = "support/loom_model.rs"]
mod loom_model;

use async_patterns::semaphore::{AcquireError, Semaphore, TryAcquireError};
use loom::future::block_on;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc; // the semaphore's owned permits take std's Arc
use std::task::{Context, Poll, Waker};

/// Polls once with a waker that does nothing: puts a waiter in the queue at
/// a known point of the model.
fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(Waker::noop()))
}

/// Three threads contend for 2 permits (one asks for 2 at once): the number
/// in use never exceeds 2, and all permits come back.
///
/// Three threads are too many to explore exhaustively in CI time (bound 4:
/// 893,035 interleavings in 43 s; unbounded: over 15 min), so this model is
/// bounded at 3 preemptions (115,781 interleavings, 6 s). Empirical studies
/// of preemption bounding (CHESS) find nearly all concurrency bugs within
/// two preemptions; every other model here, with two threads, is exhaustive.
#[test]
fn loom_permits_never_exceed_capacity() {
    loom_model::check_bounded("permits_never_exceed_capacity", 3, || {
        let sem = Arc::new(Semaphore::new(2).unwrap());
        let in_use = Arc::new(AtomicUsize::new(0));
        let worker = |n: usize| {
            let (sem, in_use) = (sem.clone(), in_use.clone());
            move || {
                let permit = block_on(sem.acquire_many(n)).unwrap();
                let now = in_use.fetch_add(n, Ordering::SeqCst) + n;
                assert!(now <= 2, "{now} permits in use, capacity 2");
                in_use.fetch_sub(n, Ordering::SeqCst);
                drop(permit);
            }
        };
        let a = thread::spawn(worker(1));
        let b = thread::spawn(worker(2));
        worker(1)();
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(sem.available_permits(), 2);
        assert_eq!(sem.total_permits(), 2);
    });
}

/// A waiter for 2 permits is fed by two releases racing each other on two
/// threads: it collects both and is woken (else loom reports a deadlock).
#[test]
fn loom_no_lost_wakeup_acquire_many() {
    loom_model::check("no_lost_wakeup_acquire_many", || {
        let sem = Arc::new(Semaphore::new(2).unwrap());
        let p1 = sem.clone().try_acquire_owned().unwrap();
        let p2 = sem.clone().try_acquire_owned().unwrap();
        let a = thread::spawn(move || drop(p1));
        let b = thread::spawn(move || drop(p2));
        let permit = block_on(sem.acquire_many(2)).unwrap();
        assert_eq!(permit.num_permits(), 2);
        drop(permit);
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(sem.available_permits(), 2);
    });
}

/// Waiter A is queued first; B then races to acquire while the holder
/// releases. B must never get the permit before A has had it and given it
/// back, and `try_acquire` never barges past A.
#[test]
fn loom_fifo_two_waiters() {
    loom_model::check("fifo_two_waiters", || {
        let sem = Arc::new(Semaphore::new(1).unwrap());
        let held = sem.clone().try_acquire_owned().unwrap();
        let mut first = sem.clone().acquire_owned();
        assert!(poll_once(&mut first).is_pending());
        let a_done = Arc::new(AtomicBool::new(false));

        let releaser = thread::spawn(move || drop(held));
        let second = {
            let (sem, a_done) = (sem.clone(), a_done.clone());
            thread::spawn(move || {
                if let Ok(p) = sem.try_acquire() {
                    assert!(a_done.load(Ordering::SeqCst), "try_acquire barged past A");
                    drop(p);
                }
                let p = block_on(sem.acquire()).unwrap();
                assert!(a_done.load(Ordering::SeqCst), "B was served before A");
                drop(p);
            })
        };
        let p = block_on(first).unwrap();
        a_done.store(true, Ordering::SeqCst);
        drop(p);
        releaser.join().unwrap();
        second.join().unwrap();
        assert_eq!(sem.available_permits(), 1);
    });
}

/// A queued waiter is cancelled while a release races to hand it the
/// permit: whichever wins, the permit ends up with the next waiter, who
/// completes (no permit lost to the cancelled one, no lost wake-up).
#[test]
fn loom_cancelled_waiter_returns_permits() {
    loom_model::check("cancelled_waiter_returns_permits", || {
        let sem = Arc::new(Semaphore::new(1).unwrap());
        let held = sem.clone().try_acquire_owned().unwrap();
        let mut cancelled = sem.clone().acquire_owned();
        assert!(poll_once(&mut cancelled).is_pending());
        let next = {
            let sem = sem.clone();
            thread::spawn(move || {
                let p = block_on(sem.acquire()).unwrap();
                drop(p);
            })
        };
        let releaser = thread::spawn(move || drop(held));
        drop(cancelled);
        releaser.join().unwrap();
        next.join().unwrap();
        assert_eq!(sem.available_permits(), 1);
        assert_eq!(sem.total_permits(), 1);
    });
}

/// `close` races an acquire that may be queued, and a release: the
/// acquire always finishes (with the permit if it got there first, else
/// with `Closed`), nothing acquires after the close, and permits are
/// conserved.
#[test]
fn loom_close_races_acquire() {
    loom_model::check("close_races_acquire", || {
        let sem = Arc::new(Semaphore::new(1).unwrap());
        let held = sem.clone().try_acquire_owned().unwrap();
        let closed = Arc::new(AtomicBool::new(false));
        let acquirer = {
            let (sem, closed) = (sem.clone(), closed.clone());
            thread::spawn(move || match block_on(sem.acquire()) {
                Ok(p) => drop(p),
                Err(e) => {
                    assert_eq!(e, AcquireError::Closed);
                    assert!(closed.load(Ordering::SeqCst), "Closed before close()");
                }
            })
        };
        let closer = {
            let (sem, closed) = (sem.clone(), closed.clone());
            thread::spawn(move || {
                closed.store(true, Ordering::SeqCst);
                sem.close();
            })
        };
        drop(held);
        acquirer.join().unwrap();
        closer.join().unwrap();
        assert_eq!(
            sem.try_acquire().unwrap_err(),
            TryAcquireError::Failed(AcquireError::Closed)
        );
        assert_eq!(sem.available_permits(), 1);
    });
}

/// A permit is forgotten (the total drops from 2 to 1) while another thread
/// asks for 2: however the two interleave, the request ends with
/// `Exceeds` — it must never be left queued for permits that no longer exist.
#[test]
fn loom_forget_races_acquire_beyond_new_total() {
    loom_model::check("forget_races_acquire_beyond_new_total", || {
        let sem = Arc::new(Semaphore::new(2).unwrap());
        let p1 = sem.clone().try_acquire_owned().unwrap();
        let p2 = sem.clone().try_acquire_owned().unwrap();
        let asker = {
            let sem = sem.clone();
            thread::spawn(move || block_on(sem.acquire_many(2)).map(|p| p.num_permits()))
        };
        let forgetter = thread::spawn(move || p1.forget());
        forgetter.join().unwrap();
        assert_eq!(
            asker.join().unwrap(),
            Err(AcquireError::Exceeds {
                requested: 2,
                total: 1
            })
        );
        drop(p2);
        assert_eq!(sem.available_permits(), 1);
        assert_eq!(sem.total_permits(), 1);
    });
}
