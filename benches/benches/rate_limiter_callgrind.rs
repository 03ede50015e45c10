//! Instruction counts under Callgrind (gungraun) for the rate limiter's
//! single-threaded check, ours beside governor's, both on a manual clock.
//! `baseline compare` gates on these.

// gungraun's macros generate undocumented modules and constants.
#![allow(missing_docs)]

use std::hint::black_box;
use std::num::NonZeroU32;

use async_patterns::rate_limiter::RateLimiter;
use async_patterns::time::ManualClock;
use governor::clock::FakeRelativeClock;
use gungraun::{library_benchmark, library_benchmark_group, main};

const CHECKS: usize = 1_000;

#[library_benchmark]
fn check_ours() {
    let quota = async_patterns_benches::unlimited_quota();
    let limiter = RateLimiter::new(quota, ManualClock::new());
    for _ in 0..CHECKS {
        assert!(black_box(limiter.check()).is_ok());
    }
}

#[library_benchmark]
fn check_governor() {
    let quota = governor::Quota::per_second(NonZeroU32::new(1_000_000_000).unwrap())
        .allow_burst(NonZeroU32::MAX);
    let limiter = governor::RateLimiter::direct_with_clock(quota, FakeRelativeClock::default());
    for _ in 0..CHECKS {
        assert!(black_box(limiter.check()).is_ok());
    }
}

library_benchmark_group!(
    name = rate_limiter,
    benchmarks = [check_ours, check_governor]
);
main!(library_benchmark_groups = rate_limiter);
