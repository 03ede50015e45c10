//! Shared driver for the loom model checks.
//!
//! Every silent early exit is switched off (`LOOM_MAX_DURATION`,
//! `LOOM_MAX_PERMUTATIONS` and `LOOM_MAX_PREEMPTIONS` are ignored): a model
//! is explored in full, or within the preemption bound it states in code, or
//! the test does not pass. Each run prints how many interleavings it explored
//! so a green run can be read, not just trusted.

#![allow(dead_code)] // each loom test binary uses only some of these

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Explores every interleaving of `f`.
pub fn check<F>(name: &str, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    run(name, None, f);
}

/// Explores every interleaving of `f` with at most `bound` preemptions per
/// execution (loom's CHESS-style bound), for models too large to explore
/// exhaustively.
pub fn check_bounded<F>(name: &str, bound: usize, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    run(name, Some(bound), f);
}

fn run<F>(name: &str, bound: Option<usize>, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    // Tests in one binary may run in parallel: one counter per model.
    let counter: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let mut builder = loom::model::Builder::new();
    builder.max_duration = None;
    builder.max_permutations = None;
    builder.preemption_bound = bound;
    let start = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    let bound = bound.map_or_else(|| "none (exhaustive)".to_string(), |b| b.to_string());
    println!(
        "loom: {name}: {} interleavings explored in {:.2?}, preemption bound: {bound}",
        counter.load(Ordering::Relaxed),
        start.elapsed()
    );
}
