//! loom model checks of the adaptive limit. Run with `scripts/loom.sh`.
#![cfg(async_patterns_loom)]

#[path = "support/loom_model.rs"]
mod loom_model;

use std::sync::Arc;

use async_patterns::adaptive::{AdaptiveConfig, AdaptiveLimit};
use async_patterns::time::ManualClock;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

/// Three threads race for a limit of two; two drop their call (cancelled),
/// one reports a failure: never more than two in flight at any moment,
/// nothing left in flight at the end, and the limit halved to 1 exactly
/// when the failing call was admitted.
#[test]
fn loom_adaptive_admissions_never_exceed_the_limit() {
    loom_model::check("adaptive_admissions_never_exceed_the_limit", || {
        let config = AdaptiveConfig::builder().limits(1, 2, 4).build().unwrap();
        let limit = Arc::new(AdaptiveLimit::new(config, ManualClock::new()));
        let peak = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicBool::new(false));
        let spawn = |fail: bool| {
            let (limit, peak, failed) = (limit.clone(), peak.clone(), failed.clone());
            thread::spawn(move || {
                let Ok(permit) = limit.try_acquire() else {
                    return;
                };
                peak.fetch_max(limit.in_flight() as usize, Ordering::SeqCst);
                if fail {
                    failed.store(true, Ordering::SeqCst);
                    permit.failure();
                } else {
                    drop(permit);
                }
            })
        };
        let (a, b) = (spawn(false), spawn(true));
        spawn(false).join().unwrap();
        a.join().unwrap();
        b.join().unwrap();
        assert!(
            peak.load(Ordering::SeqCst) <= 2,
            "more than the limit in flight"
        );
        assert_eq!(limit.in_flight(), 0, "a slot was lost");
        let expected = if failed.load(Ordering::SeqCst) { 1 } else { 2 };
        assert_eq!(limit.limit(), expected);
    });
}
