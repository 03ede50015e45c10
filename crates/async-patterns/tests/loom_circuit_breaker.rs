//! loom model checks of the circuit breaker over a loom-aware
//! `ManualClock`. Run with `scripts/loom.sh`.
#![cfg(async_patterns_loom)]

#[path = "support/loom_model.rs"]
mod loom_model;

use std::sync::Arc;
use std::time::Duration;

use async_patterns::circuit_breaker::{BreakerConfig, BreakerState, CircuitBreaker};
use async_patterns::time::ManualClock;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

fn opened(probes: u32) -> (Arc<CircuitBreaker<ManualClock>>, ManualClock) {
    let config = BreakerConfig::builder()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(1))
        .half_open_probes(probes)
        .build()
        .unwrap();
    let clock = ManualClock::new();
    let breaker = Arc::new(CircuitBreaker::new(config, clock.clone()));
    breaker.try_acquire().unwrap().failure();
    clock.advance(Duration::from_secs(1));
    (breaker, clock)
}

/// Three threads race for two probe slots: at most two are admitted, and
/// exactly two (a free slot is never refused).
#[test]
fn loom_half_open_admits_at_most_p_probes() {
    loom_model::check("half_open_admits_at_most_p_probes", || {
        let (breaker, _clock) = opened(2);
        let admitted = Arc::new(AtomicUsize::new(0));
        let spawn = || {
            let (breaker, admitted) = (breaker.clone(), admitted.clone());
            thread::spawn(move || {
                if let Ok(p) = breaker.try_acquire() {
                    admitted.fetch_add(1, Ordering::SeqCst);
                    std::mem::forget(p); // keep the slot for the whole model
                }
            })
        };
        let (a, b) = (spawn(), spawn());
        spawn().join().unwrap();
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(admitted.load(Ordering::SeqCst), 2);
    });
}

/// Two calls admitted while closed fail concurrently (trip at 2): the
/// breaker opens exactly once, whichever records first.
#[test]
fn loom_concurrent_failures_trip_exactly_once() {
    concurrent_failures_trip_exactly_once("concurrent_failures_trip_exactly_once", 0);
}

/// The same in a later closed state (generation 3, after one full cycle):
/// a call admitted while a failure holds the lock must get the current
/// generation from the lock-free word, not one the fold wrote wrongly (at
/// generation 0 a shift the wrong way writes the same word).
#[test]
fn loom_concurrent_failures_trip_exactly_once_after_a_cycle() {
    concurrent_failures_trip_exactly_once("concurrent_failures_trip_after_a_cycle", 1);
}

fn concurrent_failures_trip_exactly_once(name: &'static str, cycles: usize) {
    loom_model::check(name, move || {
        let config = BreakerConfig::builder()
            .consecutive_failures(2)
            .open_for(Duration::from_secs(1))
            .build()
            .unwrap();
        let opens = Arc::new(AtomicUsize::new(0));
        let counter = opens.clone();
        let clock = ManualClock::new();
        let breaker = Arc::new(CircuitBreaker::new(config, clock.clone()).with_observer(
            move |t| {
                if matches!(t.to, BreakerState::Open { .. }) {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            },
        ));
        for _ in 0..cycles {
            for _ in 0..2 {
                breaker.try_acquire().unwrap().failure();
            }
            clock.advance(Duration::from_secs(1));
            breaker.try_acquire().unwrap().success();
            assert_eq!(breaker.state(), BreakerState::Closed);
        }
        let spawn = || {
            let breaker = breaker.clone();
            thread::spawn(move || {
                if let Ok(p) = breaker.try_acquire() {
                    p.failure();
                }
            })
        };
        let (a, b) = (spawn(), spawn());
        a.join().unwrap();
        b.join().unwrap();
        // Both calls are admitted (the breaker stays closed until the
        // second failure is recorded), so it always opens, exactly once.
        assert!(matches!(breaker.state(), BreakerState::Open { .. }));
        assert_eq!(opens.load(Ordering::SeqCst), cycles + 1);
    });
}

/// Two threads each take the single probe slot if they can and drop it
/// (a cancelled call), racing each other: the slot always comes back, so a
/// later probe is admitted.
#[test]
fn loom_dropped_probe_frees_its_slot() {
    loom_model::check("dropped_probe_frees_its_slot", || {
        let (breaker, _clock) = opened(1);
        let spawn = || {
            let breaker = breaker.clone();
            thread::spawn(move || drop(breaker.try_acquire()))
        };
        let (a, b) = (spawn(), spawn());
        a.join().unwrap();
        b.join().unwrap();
        assert!(breaker.try_acquire().is_ok(), "the probe slot was lost");
    });
}

/// A window of the last 3 calls (all 3 needed) that trips at half failed.
fn window_of_three() -> BreakerConfig {
    BreakerConfig::builder()
        .window(3, 3)
        .failure_rate(0.5)
        .open_for(Duration::from_secs(1))
        .build()
        .unwrap()
}

/// A success counted lock-free races a failure recorded under the lock
/// (which folds the lock-free count into the window first): in either
/// order the window then holds both, so a second failure trips it. A
/// success lost in the fold would leave two calls, below the minimum.
#[test]
fn loom_lock_free_success_is_never_lost() {
    loom_model::check("lock_free_success_is_never_lost", || {
        let breaker = Arc::new(CircuitBreaker::new(window_of_three(), ManualClock::new()));
        let succeed = {
            let breaker = breaker.clone();
            thread::spawn(move || breaker.try_acquire().unwrap().success())
        };
        let fail = {
            let breaker = breaker.clone();
            thread::spawn(move || breaker.try_acquire().unwrap().failure())
        };
        succeed.join().unwrap();
        fail.join().unwrap();
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.try_acquire().unwrap().failure();
        assert!(
            matches!(breaker.state(), BreakerState::Open { .. }),
            "a success was lost"
        );
    });
}

/// A call admitted while closed finishes successfully while another thread
/// trips the breaker, waits out the cool-down and closes it again with a
/// probe: the old call's success belongs to a past generation and never
/// counts in the new window, whichever way the race goes.
#[test]
fn loom_stale_success_never_counts_in_a_later_closed_state() {
    loom_model::check("stale_success_never_counts_later", || {
        let clock = ManualClock::new();
        let breaker = Arc::new(CircuitBreaker::new(window_of_three(), clock.clone()));
        let old = breaker.try_acquire().unwrap();
        for _ in 0..3 {
            breaker.try_acquire().unwrap().failure();
        }
        assert!(matches!(breaker.state(), BreakerState::Open { .. }));
        clock.advance(Duration::from_secs(1));
        let cycle = {
            let breaker = breaker.clone();
            thread::spawn(move || breaker.try_acquire().unwrap().success())
        };
        // Reading the state takes the lock: without an operation here that
        // conflicts with the cycle's, loom 0.7 never ran the whole cycle
        // before the success's first (atomic) load, and this model missed
        // the very bug it is for (mutation
        // `breaker-quiet-success-any-generation`).
        let _ = breaker.state();
        old.success(); // on this thread, racing the cycle
        cycle.join().unwrap();
        assert_eq!(breaker.state(), BreakerState::Closed);
        // A fresh window: two failures are below the minimum of three.
        for _ in 0..2 {
            breaker.try_acquire().unwrap().failure();
        }
        assert_eq!(
            breaker.state(),
            BreakerState::Closed,
            "a stale success counted in the new window"
        );
        breaker.try_acquire().unwrap().failure();
        assert!(matches!(breaker.state(), BreakerState::Open { .. }));
    });
}
