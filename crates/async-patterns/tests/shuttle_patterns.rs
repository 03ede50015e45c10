//! shuttle: the core's semaphore, rate limiter, keyed limiter, circuit
//! breaker and adaptive limit with 4-8 threads and operation sequences, under shuttle's random and PCT schedulers,
//! every execution's history checked for linearizability against the
//! plain models of `async_patterns_linearize`. Built only under
//! `--cfg async_patterns_shuttle` (`scripts/shuttle.sh`), where the core's
//! sync shim takes shuttle's atomics, mutexes and `Arc`.
//!
//! loom stays the proof for small programs (every interleaving of 2-3
//! threads, and the memory orderings); shuttle is the search where loom
//! cannot finish, under sequential consistency only (it does not test
//! memory orderings). A failure panics with shuttle's schedule, which
//! `shuttle::replay` runs again.
//!
//! Executions per search: `SHUTTLE_ITERATIONS` (default 10,000); the
//! schedulers' seed: `SHUTTLE_SEED` (default 0: every run searches the same
//! schedules; a failure names the seed that replays it).
#![cfg(async_patterns_shuttle)]

#[path = "support/histories.rs"]
mod histories;

use std::time::Duration;

use std::num::NonZeroUsize;

use histories::{
    Permits, Recorder, adaptive_call, adaptive_pair, breaker_call, breaker_pair, limiter_model,
    reading,
};

use async_patterns::adaptive::AdaptiveLimit;
use async_patterns::circuit_breaker::CircuitBreaker;
use async_patterns::rate_limiter::{KeyedRateLimiter, Quota, RateLimiter};
use async_patterns::semaphore::Semaphore;
use async_patterns::time::ManualClock;
use async_patterns_linearize::models::{self, KeyedCheck, KeyedLimiter, LimiterCheck, SemaphoreOp};
use async_patterns_linearize::{Model, Op, Verdict, check};
use shuttle::sync::Arc;
use shuttle::sync::atomic::{AtomicU64, Ordering::SeqCst};

fn iterations() -> usize {
    std::env::var("SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}

fn seed() -> u64 {
    std::env::var("SHUTTLE_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `f` under shuttle's random scheduler, seeded.
fn random(f: impl Fn() + Send + Sync + 'static, executions: usize) {
    shuttle::check_random_with_seed(f, seed(), executions);
}

/// `f` under shuttle's PCT scheduler (`depth` - 1 priority changes),
/// seeded.
fn pct(f: impl Fn() + Send + Sync + 'static, executions: usize, depth: usize) {
    let scheduler = shuttle::scheduler::PctScheduler::new_from_seed(seed(), depth, executions);
    shuttle::Runner::new(scheduler, shuttle::Config::default()).run(f);
}

fn assert_linearizable<M: Model>(model: &M, h: &[Op<M::Input, M::Output>]) {
    match check(model, h, 10_000_000) {
        Verdict::Linearizable => {}
        other => panic!("{other:?} on {} operations: {h:?}", h.len()),
    }
}

/// `threads` threads, each `rounds` times: try to take 1 or 2 of 3
/// permits, and give back what it took.
fn semaphore_run<P: Permits>(permits: Arc<P>, threads: u64, rounds: u64) {
    let rec = Arc::new(Recorder::new());
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (p, rec) = (permits.clone(), rec.clone());
            shuttle::thread::spawn(move || {
                for i in 0..rounds {
                    let n = 1 + (t * 7 + i) % 3 / 2;
                    if rec.op(t, SemaphoreOp::TryAcquire(n), || p.try_take(n)) {
                        rec.op(t, SemaphoreOp::Release(n), || {
                            p.give(n);
                            true
                        });
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_linearizable(&models::Semaphore { permits: 3 }, &rec.history());
}

#[test]
fn shuttle_semaphore_6_threads_random() {
    random(
        || semaphore_run(Arc::new(Semaphore::new(3).unwrap()), 6, 8),
        iterations(),
    );
}

#[test]
fn shuttle_semaphore_8_threads_pct() {
    pct(
        || semaphore_run(Arc::new(Semaphore::new(3).unwrap()), 8, 6),
        iterations(),
        3,
    );
}

/// `phases` times: `threads` threads each run `body(thread, at_ns)` with
/// the clock standing at `at_ns`; then the clock moves `step`.
fn in_phases(
    clock: &ManualClock,
    (phases, threads, step): (u64, u64, Duration),
    body: impl Fn(u64, u64) + Send + Sync + 'static,
) {
    let body = Arc::new(body);
    for _ in 0..phases {
        let at_ns = reading(clock);
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let body = body.clone();
                shuttle::thread::spawn(move || body(t, at_ns))
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        clock.advance(step);
    }
}

/// 4-6 threads check 1 or 2 cells of a 10/s, burst-3 limiter at one clock
/// reading; then the clock moves 150 ms and they check again.
fn limiter_run(threads: u64) {
    let quota = Quota::per_second(10).unwrap().with_burst(3).unwrap();
    let clock = ManualClock::new();
    let limiter = Arc::new(RateLimiter::new(quota, clock.clone()));
    let rec = Arc::new(Recorder::new());
    let r = rec.clone();
    in_phases(
        &clock,
        (2, threads, Duration::from_millis(150)),
        move |t, at_ns| {
            for i in 0..2 {
                let cells = 1 + (t + i) % 2;
                r.op(t, LimiterCheck { at_ns, cells }, || {
                    limiter.check_n(cells as u32).is_ok()
                });
            }
        },
    );
    assert_linearizable(&limiter_model(quota), &rec.history());
}

#[test]
fn shuttle_limiter_6_threads_random() {
    random(|| limiter_run(6), iterations());
}

#[test]
fn shuttle_limiter_4_threads_pct() {
    pct(|| limiter_run(4), iterations(), 3);
}

/// 4-6 threads check 1 or 2 cells for one of 3 keys of a 10/s, burst-2
/// keyed limiter with room for 2 busy keys, in 3 phases 120 ms apart: keys
/// compete for room, and a key refilled frees its place.
fn keyed_run(threads: u64) {
    let quota = Quota::per_second(10).unwrap().with_burst(2).unwrap();
    let clock = ManualClock::new();
    let limiter = Arc::new(KeyedRateLimiter::new(
        quota,
        clock.clone(),
        NonZeroUsize::new(2).unwrap(),
    ));
    let rec = Arc::new(Recorder::new());
    let r = rec.clone();
    in_phases(
        &clock,
        (3, threads, Duration::from_millis(120)),
        move |t, at_ns| {
            for i in 0..2 {
                let (key, cells) = ((t + i) % 3, 1 + (t * 3 + i) % 2);
                r.op(t, KeyedCheck { key, at_ns, cells }, || {
                    limiter.check_key_n(&key, cells as u32).is_ok()
                });
            }
        },
    );
    let model = KeyedLimiter {
        bucket: limiter_model(quota),
        room: Some(2),
    };
    assert_linearizable(&model, &rec.history());
}

#[test]
fn shuttle_keyed_limiter_6_threads_random() {
    random(|| keyed_run(6), iterations());
}

#[test]
fn shuttle_keyed_limiter_4_threads_pct() {
    pct(|| keyed_run(4), iterations(), 3);
}

/// 4-6 threads each make 2 calls through the breaker of `breaker_pair`
/// (succeeding, failing or dropped by thread and round), in 4 phases
/// 100 ms apart: failures trip it, the open time passes, probes race for
/// 2 slots, and successes counted without the lock meet failures that
/// take it.
fn breaker_run(threads: u64) {
    let (config, model) = breaker_pair();
    let clock = ManualClock::new();
    let breaker = Arc::new(CircuitBreaker::new(config, clock.clone()));
    let rec = Arc::new(Recorder::new());
    let r = rec.clone();
    in_phases(
        &clock,
        (4, threads, Duration::from_millis(100)),
        move |t, at_ns| {
            for i in 0..2 {
                let permit = at_ns / 1_000_000 * 100 + t * 10 + i;
                breaker_call(&breaker, &r, (t, permit, at_ns), (t + 2 * i) % 4);
            }
        },
    );
    assert_linearizable(&model, &rec.history());
}

#[test]
fn shuttle_breaker_6_threads_random() {
    random(|| breaker_run(6), iterations());
}

#[test]
fn shuttle_breaker_4_threads_pct() {
    pct(|| breaker_run(4), iterations(), 3);
}

/// 4-6 threads each make 3 calls through the adaptive limit of
/// `adaptive_pair` (1 to 6 from 3), succeeding, failing or dropped by
/// thread and round: admissions race the limit's moves.
fn adaptive_run(threads: u64) {
    let (config, model) = adaptive_pair();
    let clock = ManualClock::new();
    let limit = Arc::new(AdaptiveLimit::new(config, clock.clone()));
    let rec = Arc::new(Recorder::new());
    let r = rec.clone();
    in_phases(&clock, (1, threads, Duration::ZERO), move |t, at_ns| {
        for i in 0..3 {
            adaptive_call(&limit, &r, (t, at_ns), (t * 2 + i) % 5 / 2);
        }
    });
    assert_linearizable(&model, &rec.history());
}

#[test]
fn shuttle_adaptive_6_threads_random() {
    random(|| adaptive_run(6), iterations());
}

#[test]
fn shuttle_adaptive_4_threads_pct() {
    pct(|| adaptive_run(4), iterations(), 3);
}

/// The planted bug: free permits and the callers inside `try_take` packed
/// into one word, the callers in 2 bits. A fourth caller inside at once
/// carries into the permits: a permit appears until one of them leaves.
/// Three callers (all loom can model here) never reach it.
struct Packed(AtomicU64);

impl Permits for Packed {
    fn try_take(&self, n: u64) -> bool {
        self.0.fetch_add(1, SeqCst);
        let mut cur = self.0.load(SeqCst);
        let took = loop {
            if cur >> 2 < n {
                break false;
            }
            match self.0.compare_exchange(cur, cur - (n << 2), SeqCst, SeqCst) {
                Ok(_) => break true,
                Err(now) => cur = now,
            }
        };
        self.0.fetch_sub(1, SeqCst);
        took
    }
    fn give(&self, n: u64) {
        self.0.fetch_add(n << 2, SeqCst);
    }
}

/// How many executions the planted bug took to show (or `None`).
fn executions_until_caught(threads: u64, use_pct: bool) -> Option<usize> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    RUNS.store(0, Ordering::SeqCst);
    let caught = std::panic::catch_unwind(|| {
        let body = move || {
            RUNS.fetch_add(1, Ordering::SeqCst);
            semaphore_run(Arc::new(Packed(AtomicU64::new(3 << 2))), threads, 6);
        };
        if use_pct {
            pct(body, 20_000, 5);
        } else {
            random(body, 20_000);
        }
    })
    .is_err();
    caught.then(|| RUNS.load(Ordering::SeqCst))
}

#[test]
fn shuttle_finds_the_bug_four_callers_need() {
    // With 3 threads it cannot happen: 20,000 executions pass.
    assert_eq!(executions_until_caught(3, false), None);
    let by_random = executions_until_caught(6, false);
    let by_pct = executions_until_caught(6, true);
    println!(
        "packed semaphore, 6 threads: caught after {by_random:?} random, {by_pct:?} PCT (depth 5) executions"
    );
    assert!(by_random.is_some() && by_pct.is_some());
}
