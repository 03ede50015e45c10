//! loom model checks of the rate limiter over a loom-aware `ManualClock`.
//! Run with `scripts/loom.sh`.
#![cfg(async_patterns_loom)]

#[path = "support/loom_model.rs"]
mod loom_model;

use std::sync::Arc;
use std::time::Duration;

use async_patterns::rate_limiter::{Quota, RateLimiter};
use async_patterns::time::ManualClock;
use loom::thread;

/// Three threads check at the same instant against a full bucket of 2:
/// exactly 2 are admitted in every interleaving — never 3 (over the burst),
/// never 1 (a conforming request refused). That is what a sequential run
/// gives, so the checks are linearizable.
#[test]
fn loom_concurrent_checks_never_exceed_burst() {
    loom_model::check("concurrent_checks_never_exceed_burst", || {
        let quota = Quota::per_second(2).unwrap();
        let limiter = Arc::new(RateLimiter::new(quota, ManualClock::new()));
        let spawn = || {
            let limiter = limiter.clone();
            thread::spawn(move || limiter.check().is_ok())
        };
        let (a, b) = (spawn(), spawn());
        let here = limiter.check().is_ok();
        let admitted = [a.join().unwrap(), b.join().unwrap(), here]
            .into_iter()
            .filter(|&ok| ok)
            .count();
        assert_eq!(admitted, 2);
    });
}

/// Two threads check while a third moves the clock on by one interval:
/// at least the burst (1) and at most burst + 1 are admitted.
#[test]
fn loom_checks_racing_the_clock_stay_within_the_rate() {
    loom_model::check("checks_racing_the_clock_stay_within_the_rate", || {
        let quota = Quota::per_second(1).unwrap();
        let clock = ManualClock::new();
        let limiter = Arc::new(RateLimiter::new(quota, clock.clone()));
        let spawn = || {
            let limiter = limiter.clone();
            thread::spawn(move || limiter.check().is_ok())
        };
        let (a, b) = (spawn(), spawn());
        clock.advance(Duration::from_secs(1));
        let admitted = [a.join().unwrap(), b.join().unwrap()]
            .into_iter()
            .filter(|&ok| ok)
            .count();
        assert!((1..=2).contains(&admitted), "{admitted} admitted");
        // Whatever happened, the bucket is now spent up to the rate.
        let extra = limiter.check().is_ok();
        assert!(admitted + usize::from(extra) <= 2);
    });
}

/// A booked wait is dropped while the clock passes its instant: whichever
/// wins, its cell is returned at most once, so over that second no more
/// than burst + rate = 2 cells are admitted.
#[test]
fn loom_cancelled_wait_returns_its_cell_at_most_once() {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};

    loom_model::check("cancelled_wait_returns_its_cell_at_most_once", || {
        let quota = Quota::per_second(1).unwrap();
        let clock = ManualClock::new();
        let limiter = Arc::new(RateLimiter::new(quota, clock.clone()));
        assert!(limiter.check().is_ok());
        let advancer = {
            let clock = clock.clone();
            thread::spawn(move || clock.advance(Duration::from_secs(1)))
        };
        let canceller = {
            let limiter = limiter.clone();
            thread::spawn(move || {
                let mut wait = pin!(limiter.until_ready());
                // The first poll books the cell at 1 s.
                let polled = wait.as_mut().poll(&mut Context::from_waker(Waker::noop()));
                usize::from(polled.is_ready())
            })
        };
        advancer.join().unwrap();
        let waited = canceller.join().unwrap();
        let later = (0..2).filter(|_| limiter.check().is_ok()).count();
        let admitted = 1 + waited + later;
        assert!(
            admitted <= 2,
            "{admitted} cells admitted within one second, burst 1"
        );
        assert!(admitted >= 2, "the second's cell was lost");
    });
}

/// Two threads check the same key of a keyed limiter (burst 1) while a
/// third checks another key: exactly one of the first two is admitted, and
/// the other key is unaffected.
#[test]
fn loom_keyed_checks_on_one_key_are_linearizable() {
    use async_patterns::rate_limiter::KeyedRateLimiter;
    use std::num::NonZeroUsize;

    loom_model::check("keyed_checks_on_one_key_are_linearizable", || {
        let quota = Quota::per_second(1).unwrap();
        let limiter = Arc::new(KeyedRateLimiter::new(
            quota,
            ManualClock::new(),
            // One shard with room for both keys.
            NonZeroUsize::new(64).unwrap(),
        ));
        let spawn = |key: u8| {
            let limiter = limiter.clone();
            thread::spawn(move || limiter.check_key(&key).is_ok())
        };
        let (a, b) = (spawn(1), spawn(1));
        let other = limiter.check_key(&2).is_ok();
        let same_key = usize::from(a.join().unwrap()) + usize::from(b.join().unwrap());
        assert_eq!(same_key, 1);
        assert!(other);
    });
}

/// The same race on a key the limiter already holds (the path that updates
/// a stored TAT rather than inserting one), with burst 2 and one cell
/// already taken: of two concurrent checks, exactly one gets the last cell.
#[test]
fn loom_keyed_checks_on_a_held_key_are_linearizable() {
    use async_patterns::rate_limiter::KeyedRateLimiter;
    use std::num::NonZeroUsize;

    loom_model::check("keyed_checks_on_a_held_key_are_linearizable", || {
        let quota = Quota::per_second(1).unwrap().with_burst(2).unwrap();
        let limiter = Arc::new(KeyedRateLimiter::new(
            quota,
            ManualClock::new(),
            NonZeroUsize::new(16).unwrap(),
        ));
        limiter.check_key(&1u8).unwrap();
        let spawn = || {
            let limiter = limiter.clone();
            thread::spawn(move || limiter.check_key(&1u8).is_ok())
        };
        let (a, b) = (spawn(), spawn());
        let admitted = usize::from(a.join().unwrap()) + usize::from(b.join().unwrap());
        assert_eq!(admitted, 1);
    });
}
