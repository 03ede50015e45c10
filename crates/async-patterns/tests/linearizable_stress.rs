//! Real threads: tasks on tokio's multi-thread runtime hammer the
//! semaphore, the rate limiter, the keyed limiter, the circuit breaker and
//! the adaptive limit, each recording every operation's call
//! and return on one shared logical clock (an atomic tick: an operation
//! whose return tick is below another's call tick really finished before
//! it started), and the history is checked for linearizability against a
//! plain sequential model (`async_patterns_linearize::models`). Bounded in
//! operations, never in time: no operation here waits, so nothing can
//! hang. loom proves these primitives for 2-3 threads; this is the search
//! with 8 callers, where loom cannot finish.
//!
//! A planted check-then-act semaphore (read the free permits, then write
//! them back less `n`) shows that the check catches what only overlapping
//! callers break.

#[path = "support/histories.rs"]
mod histories;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
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
use async_patterns_linearize::models::{
    self, AdaptiveOp, BreakerOp, BreakerOut, KeyedCheck, KeyedLimiter, LimiterCheck, SemaphoreOp,
};
use async_patterns_linearize::{Model, Op, Verdict, check};

const TASKS: u64 = 8;
const BUDGET: u64 = 50_000_000;

/// The planted bug: check, then act, with a gap between.
#[derive(Default)]
struct CheckThenAct(AtomicU64);

impl Permits for CheckThenAct {
    fn try_take(&self, n: u64) -> bool {
        let free = self.0.load(SeqCst);
        if free < n {
            return false;
        }
        std::thread::yield_now();
        self.0.store(free - n, SeqCst);
        true
    }
    fn give(&self, n: u64) {
        self.0.fetch_add(n, SeqCst);
    }
}

/// `TASKS` tasks, each `rounds` times: try to take 1 or 2 permits, and
/// give back what it took after a yield.
fn semaphore_history<P: Permits>(permits: Arc<P>, rounds: u64) -> Vec<Op<SemaphoreOp, bool>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let rec = Arc::new(Recorder::new());
    rt.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|client| {
                let (p, rec) = (permits.clone(), rec.clone());
                tokio::spawn(async move {
                    for i in 0..rounds {
                        let n = 1 + (client + i) % 2;
                        let got = rec.op(client, SemaphoreOp::TryAcquire(n), || p.try_take(n));
                        tokio::task::yield_now().await;
                        if got {
                            rec.op(client, SemaphoreOp::Release(n), || {
                                p.give(n);
                                true
                            });
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    rec.history()
}

#[test]
fn the_semaphore_under_8_real_callers_is_linearizable() {
    for round in 0..3 {
        let sem = Arc::new(Semaphore::new(3).unwrap());
        let h = semaphore_history(sem, 500);
        assert!(h.len() >= 4_000, "{}", h.len());
        let v = check(&models::Semaphore { permits: 3 }, &h, BUDGET);
        assert_eq!(
            v,
            Verdict::Linearizable,
            "round {round}: {} operations",
            h.len()
        );
    }
}

#[test]
fn a_check_then_act_semaphore_is_caught() {
    // Bounded: at most 20 histories of 8 x 200 rounds. Here it was caught
    // in the first.
    let mut verdicts = Vec::new();
    for _ in 0..20 {
        let racy = Arc::new(CheckThenAct(AtomicU64::new(3)));
        let h = semaphore_history(racy, 200);
        let v = check(&models::Semaphore { permits: 3 }, &h, BUDGET);
        if matches!(v, Verdict::NotLinearizable(_)) {
            return;
        }
        verdicts.push(v);
    }
    panic!("the check-then-act semaphore passed 20 histories: {verdicts:?}");
}

/// `batches` times: `TASKS` tasks on tokio's multi-thread runtime each run
/// `body(task, at_ns)` with `clock` standing at `at_ns` (so each
/// operation's reading is known); then the clock moves 0-149 ms.
fn in_batches(clock: &ManualClock, batches: u64, body: impl Fn(u64, u64) + Send + Sync + 'static) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let body = Arc::new(body);
    let mut step = 7u64;
    for _ in 0..batches {
        let at_ns = reading(clock);
        rt.block_on(async {
            let tasks: Vec<_> = (0..TASKS)
                .map(|client| {
                    let body = body.clone();
                    tokio::spawn(async move { body(client, at_ns) })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        step = step
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        clock.advance(Duration::from_millis((step >> 33) % 150));
    }
}

/// `h` is linearizable against `model`, and not against `changed` (so
/// the check can fail).
fn linearizable_but_not_against<M: Model>(model: &M, changed: &M, h: &[Op<M::Input, M::Output>]) {
    assert_eq!(check(model, h, BUDGET), Verdict::Linearizable);
    let v = check(changed, h, BUDGET);
    assert!(matches!(v, Verdict::NotLinearizable(_)), "{v:?}");
}

/// How many operations of `h` returned `out`.
fn answered<I, O: PartialEq>(h: &[Op<I, O>], out: &O) -> usize {
    h.iter()
        .filter(|op| op.ret.as_ref().is_some_and(|(_, o)| o == out))
        .count()
}

#[test]
fn the_rate_limiter_under_8_real_callers_is_linearizable() {
    // 10 cells a second, burst 5: 100 ms a cell.
    let quota = Quota::per_second(10).unwrap().with_burst(5).unwrap();
    let clock = ManualClock::new();
    let limiter = Arc::new(RateLimiter::new(quota, clock.clone()));
    let rec: Arc<Recorder<LimiterCheck, bool>> = Arc::new(Recorder::new());
    let r = rec.clone();
    in_batches(&clock, 100, move |client, at_ns| {
        for i in 0..3 {
            let cells = 1 + (client + i) % 2;
            r.op(client, LimiterCheck { at_ns, cells }, || {
                limiter.check_n(cells as u32).is_ok()
            });
            std::thread::yield_now();
        }
    });
    let h = rec.history();
    let admitted = answered(&h, &true);
    assert!(
        admitted > 50 && admitted < h.len(),
        "{admitted} of {}",
        h.len()
    );
    let model = limiter_model(quota);
    // A bucket one cell smaller refuses something admitted.
    let smaller = models::Limiter {
        burst: model.burst - 1,
        ..model
    };
    linearizable_but_not_against(&model, &smaller, &h);
}

#[test]
fn the_keyed_limiter_under_8_real_callers_is_linearizable() {
    // 3 keys at 10 cells a second, burst 2, room for 2 busy keys.
    let quota = Quota::per_second(10).unwrap().with_burst(2).unwrap();
    let clock = ManualClock::new();
    let two = NonZeroUsize::new(2).unwrap();
    let limiter = Arc::new(KeyedRateLimiter::new(quota, clock.clone(), two));
    let rec: Arc<Recorder<KeyedCheck, bool>> = Arc::new(Recorder::new());
    let r = rec.clone();
    in_batches(&clock, 100, move |client, at_ns| {
        for i in 0..3 {
            let (key, cells) = ((client + i) % 3, 1 + (client * 3 + i) % 2);
            r.op(client, KeyedCheck { key, at_ns, cells }, || {
                limiter.check_key_n(&key, cells as u32).is_ok()
            });
            std::thread::yield_now();
        }
    });
    let h = rec.history();
    let admitted = answered(&h, &true);
    assert!(
        admitted > 50 && admitted < h.len(),
        "{admitted} of {}",
        h.len()
    );
    let model = KeyedLimiter {
        bucket: limiter_model(quota),
        room: Some(2),
    };
    // Room for 3 would have admitted a key that found none.
    let roomier = KeyedLimiter {
        room: Some(3),
        ..model
    };
    linearizable_but_not_against(&model, &roomier, &h);
}

#[test]
fn the_breaker_under_8_real_callers_is_linearizable() {
    let (config, model) = breaker_pair();
    let clock = ManualClock::new();
    let breaker = Arc::new(CircuitBreaker::new(config, clock.clone()));
    let rec: Arc<Recorder<BreakerOp, BreakerOut>> = Arc::new(Recorder::new());
    let r = rec.clone();
    in_batches(&clock, 100, move |client, at_ns| {
        for i in 0..3 {
            // Names unique over the run: readings are whole milliseconds.
            let permit = at_ns / 1_000_000 * 100 + client * 10 + i;
            // One call in 8 fails, one is dropped.
            let how = match (client + 3 * i + at_ns / 1_000_000) % 8 {
                0 => 1,
                1 => 2,
                _ => 0,
            };
            breaker_call(&breaker, &r, (client, permit, at_ns), how);
            std::thread::yield_now();
        }
    });
    let h = rec.history();
    let open = h
        .iter()
        .filter(|op| matches!(op.ret, Some((_, BreakerOut::Open { .. }))))
        .count();
    let (admitted, busy) = (
        answered(&h, &BreakerOut::Admitted),
        answered(&h, &BreakerOut::ProbesBusy),
    );
    println!(
        "breaker: {admitted} admitted, {open} open, {busy} probes busy of {}",
        h.len()
    );
    assert!(
        admitted > 100 && open > 10,
        "{admitted} admitted, {open} open, {busy} busy of {}",
        h.len()
    );
    // Opening for 1 ms less names other instants in its refusals.
    let shorter = models::Breaker {
        open_ns: model.open_ns - 1_000_000,
        ..model
    };
    linearizable_but_not_against(&model, &shorter, &h);
}

#[test]
fn the_adaptive_limit_under_8_real_callers_is_linearizable() {
    let (config, model) = adaptive_pair();
    let clock = ManualClock::new();
    let limit = Arc::new(AdaptiveLimit::new(config, clock.clone()));
    let rec: Arc<Recorder<AdaptiveOp, bool>> = Arc::new(Recorder::new());
    let r = rec.clone();
    in_batches(&clock, 100, move |client, at_ns| {
        for i in 0..3 {
            adaptive_call(&limit, &r, (client, at_ns), (client * 2 + i) % 7 / 3);
            std::thread::yield_now();
        }
    });
    let h = rec.history();
    let acquires = h.iter().filter(|op| op.input == AdaptiveOp::Acquire);
    let shed = acquires
        .filter(|op| op.ret.as_ref().is_some_and(|(_, o)| !o))
        .count();
    assert!(shed > 10, "{shed} shed of {}", h.len());
    // Growing by 2 would have admitted calls that were shed.
    let faster = models::Adaptive {
        increase: 2,
        ..model
    };
    linearizable_but_not_against(&model, &faster, &h);
}
