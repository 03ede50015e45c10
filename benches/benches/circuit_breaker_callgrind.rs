//! Instruction counts under Callgrind (gungraun) for the circuit breaker's
//! success path, ours beside failsafe's. `baseline compare` gates on these.

// gungraun's macros generate undocumented modules and constants.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use async_patterns::circuit_breaker::{CircuitBreaker, Config};
use async_patterns::time::ManualClock;
use failsafe::CircuitBreaker as _;
use gungraun::{library_benchmark, library_benchmark_group, main};

const CALLS: usize = 1_000;

fn op() -> Result<u64, ()> {
    Ok(black_box(1))
}

#[library_benchmark]
fn success_path_ours() {
    let config = Config::builder()
        .consecutive_failures(5)
        .window(100, 20)
        .failure_rate(0.5)
        .open_for(Duration::from_secs(30))
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new(config, ManualClock::new());
    for _ in 0..CALLS {
        let permit = breaker.try_acquire().unwrap();
        let out = op();
        permit.success();
        black_box(out).unwrap();
    }
}

#[library_benchmark]
fn success_path_failsafe() {
    let breaker = failsafe::Config::new().build();
    for _ in 0..CALLS {
        black_box(breaker.call(op)).unwrap();
    }
}

library_benchmark_group!(
    name = circuit_breaker,
    benchmarks = [success_path_ours, success_path_failsafe]
);
main!(library_benchmark_groups = circuit_breaker);
