//! Benchmarks of async-patterns against the crates people use today, and the
//! `baseline` tool that records and gates them (see `src/bin/baseline.rs`).
//!
//! The fixtures below are shared by the criterion (wall-time) and Callgrind
//! (instruction-count) benches, so both measure the same configuration.

use std::time::Duration;

use async_patterns::circuit_breaker::{BreakerConfig, CircuitBreaker};
use async_patterns::rate_limiter::Quota;
use async_patterns::time::ManualClock;

/// One cell per nanosecond with a burst of `u32::MAX`: every check in a
/// benchmark run is admitted, so the admit path is what is measured.
pub fn unlimited_quota() -> Quota {
    Quota::new(1_000_000_000, Duration::from_secs(1))
        .and_then(|q| q.with_burst(u32::MAX))
        .expect("a valid quota")
}

/// A breaker configured like failsafe's default: trip on 5 consecutive
/// failures or a 50% failure rate over the last 100 calls (at least 20).
pub fn breaker() -> CircuitBreaker<ManualClock> {
    let config = BreakerConfig::builder()
        .consecutive_failures(5)
        .window(100, 20)
        .failure_rate(0.5)
        .open_for(Duration::from_secs(30))
        .build()
        .expect("a valid config");
    CircuitBreaker::new(config, ManualClock::new())
}

/// An operation for the retry benches that fails `failures` times per
/// call, then succeeds, round after round.
pub fn flaky(failures: u32) -> impl FnMut() -> std::future::Ready<Result<u32, &'static str>> {
    let mut seen = 0;
    move || {
        seen += 1;
        if seen > failures {
            seen = 0;
            std::future::ready(Ok(std::hint::black_box(7)))
        } else {
            std::future::ready(Err("unavailable"))
        }
    }
}
