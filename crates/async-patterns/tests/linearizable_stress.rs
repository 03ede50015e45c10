//! Real threads: tasks on tokio's multi-thread runtime hammer the
//! semaphore and the rate limiter, each recording every operation's call
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

use histories::{Permits, Recorder, limiter_model, reading};

use async_patterns::rate_limiter::{Quota, RateLimiter};
use async_patterns::semaphore::Semaphore;
use async_patterns::time::ManualClock;
use async_patterns_linearize::models::{self, LimiterCheck, SemaphoreOp};
use async_patterns_linearize::{Op, Verdict, check};

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

#[test]
fn the_rate_limiter_under_8_real_callers_is_linearizable() {
    // 10 cells a second, burst 5: 100 ms a cell. The clock stands still
    // while the callers run (so each check's reading is known), and moves
    // 0-149 ms between batches.
    let quota = Quota::per_second(10).unwrap().with_burst(5).unwrap();
    let clock = ManualClock::new();
    let limiter = Arc::new(RateLimiter::new(quota, clock.clone()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let rec: Arc<Recorder<LimiterCheck, bool>> = Arc::new(Recorder::new());
    let mut step = 7u64;
    for _ in 0..100 {
        let at_ns = reading(&clock);
        rt.block_on(async {
            let tasks: Vec<_> = (0..TASKS)
                .map(|client| {
                    let (l, rec) = (limiter.clone(), rec.clone());
                    tokio::spawn(async move {
                        for i in 0..3 {
                            let cells = 1 + (client + i) % 2;
                            rec.op(client, LimiterCheck { at_ns, cells }, || {
                                l.check_n(cells as u32).is_ok()
                            });
                            tokio::task::yield_now().await;
                        }
                    })
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
    let h = rec.history();
    let admitted = h
        .iter()
        .filter(|op| op.ret.as_ref().is_some_and(|(_, o)| *o))
        .count();
    assert!(
        admitted > 50 && admitted < h.len(),
        "{admitted} of {}",
        h.len()
    );
    let model = limiter_model(quota);
    assert_eq!(check(&model, &h, BUDGET), Verdict::Linearizable);
    // The same history against a bucket one cell smaller fails: the check
    // can fail.
    let smaller = models::Limiter {
        burst: model.burst - 1,
        ..model
    };
    assert!(matches!(
        check(&smaller, &h, BUDGET),
        Verdict::NotLinearizable(_)
    ));
}
