//! Timeouts in virtual time against the obvious model: a future that needs
//! `w` under a timeout of `d` finishes with its output at `w` if `w <= d`,
//! and with `Elapsed` at `d` otherwise, and is pending one nanosecond
//! before either.

use std::time::Duration;

use async_patterns::deadline::{Deadline, timeout, timeout_at};
use async_patterns::time::{Clock, ManualClock, Timer};
use futures::FutureExt;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn timeout_elapses_exactly_at_the_deadline(d_ns in 1u64..=10_000, w_ns in 0u64..=10_000, nested_ns in prop::option::of(1u64..=10_000)) {
        let clock = ManualClock::new();
        let (d, w) = (Duration::from_nanos(d_ns), Duration::from_nanos(w_ns));
        // Optionally through a parent deadline that a nested call tightens.
        let deadline = match nested_ns {
            Some(parent) => Deadline::after(&clock, Duration::from_nanos(parent)).within(&clock, d),
            None => Deadline::after(&clock, d),
        };
        let limit = deadline.instant().as_nanos();
        let inner = clock.sleep(w).map(|()| "done");
        let mut fut = match nested_ns {
            Some(_) => timeout_at(&clock, deadline, inner).boxed_local(),
            None => timeout(&clock, d, inner).boxed_local(),
        };
        let end = w_ns.min(limit);
        if end > 0 {
            clock.advance(Duration::from_nanos(end - 1));
            prop_assert!((&mut fut).now_or_never().is_none(), "ready 1 ns early");
            clock.advance(Duration::from_nanos(1));
        }
        let out = (&mut fut).now_or_never();
        prop_assert_eq!(clock.now().as_nanos(), end);
        if w_ns <= limit {
            prop_assert_eq!(out, Some(Ok("done")));
        } else {
            let err = out.expect("elapsed at the deadline").unwrap_err();
            prop_assert_eq!(err.deadline, deadline);
        }
    }
}
