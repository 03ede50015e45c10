//! Instruction counts under Callgrind (gungraun) for the circuit breaker's
//! success path, ours beside failsafe's. `baseline compare` gates on these.

// gungraun's macros generate undocumented modules and constants.
#![allow(missing_docs)]

use failsafe::CircuitBreaker as _;
use gungraun::{library_benchmark, library_benchmark_group, main};
use std::hint::black_box;

const CALLS: usize = 1_000;

fn op() -> Result<u64, ()> {
    Ok(black_box(1))
}

#[library_benchmark]
fn success_path_ours() {
    let breaker = async_patterns_benches::breaker();
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
