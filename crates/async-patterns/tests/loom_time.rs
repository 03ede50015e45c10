//! loom model checks of the manual clock. Run with `scripts/loom.sh`.
#![cfg(async_patterns_loom)]

#[path = "support/loom_model.rs"]
mod loom_model;

use std::time::Duration;

use async_patterns::time::{Clock, Instant, ManualClock, Timer};
use loom::future::block_on;
use loom::thread;

/// A sleep registering races the clock advancing past its deadline: the
/// sleep always completes (a lost wake-up would be a loom deadlock).
#[test]
fn loom_manual_clock_advance_races_sleep() {
    loom_model::check("manual_clock_advance_races_sleep", || {
        let clock = ManualClock::new();
        let sleeper = {
            let clock = clock.clone();
            thread::spawn(move || {
                block_on(clock.sleep_until(Instant::from_nanos(10)));
                assert!(clock.now() >= Instant::from_nanos(10));
            })
        };
        clock.advance(Duration::from_nanos(4));
        clock.advance(Duration::from_nanos(6));
        sleeper.join().unwrap();
        assert_eq!(clock.now(), Instant::from_nanos(10));
    });
}
