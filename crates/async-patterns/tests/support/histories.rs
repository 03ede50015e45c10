//! What the history tests share (`linearizable_stress.rs` on real threads,
//! `shuttle_patterns.rs` under shuttle): a recorder of operations on one
//! shared tick, the try-acquire / release view of a semaphore, the
//! limiter's model for a quota, and one recorded call through a breaker
//! or an adaptive limit. The sync types are shuttle's under
//! `--cfg async_patterns_shuttle` (so shuttle schedules at each tick), else
//! `std`'s.

#[cfg(async_patterns_shuttle)]
use shuttle::sync::{
    Mutex,
    atomic::{AtomicU64, Ordering::SeqCst},
};
#[cfg(not(async_patterns_shuttle))]
use std::sync::{
    Mutex,
    atomic::{AtomicU64, Ordering::SeqCst},
};

use std::time::Duration;

use async_patterns::adaptive::{AdaptiveConfig, AdaptiveLimit};
use async_patterns::circuit_breaker::{BreakerConfig, CircuitBreaker, Refused};
use async_patterns::rate_limiter::Quota;
use async_patterns::semaphore::Semaphore;
use async_patterns::time::{Clock, ManualClock};
use async_patterns_linearize::Op;
use async_patterns_linearize::models::{
    Adaptive, AdaptiveOp, Breaker, BreakerOp, BreakerOut, Ending, FailureShare, Limiter,
};

/// A history being recorded: a shared tick for the instants (an operation
/// whose return tick is below another's call tick really finished before
/// it started) and the operations.
pub struct Recorder<I, O> {
    ticks: AtomicU64,
    ops: Mutex<Vec<Op<I, O>>>,
}

impl<I, O: Clone> Recorder<I, O> {
    pub fn new() -> Self {
        Recorder {
            ticks: AtomicU64::new(0),
            ops: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` as one operation of `client`: a tick before and after.
    pub fn op(&self, client: u64, input: I, f: impl FnOnce() -> O) -> O {
        let call = self.ticks.fetch_add(1, SeqCst);
        let out = f();
        let ret = self.ticks.fetch_add(1, SeqCst);
        self.ops
            .lock()
            .unwrap()
            .push(Op::returned(client, input, call, ret, out.clone()));
        out
    }

    /// The operations recorded so far (taken out).
    pub fn history(&self) -> Vec<Op<I, O>> {
        std::mem::take(&mut *self.ops.lock().unwrap())
    }
}

/// Something with try-acquire and release, whole permits at a time.
pub trait Permits: Send + Sync + 'static {
    fn try_take(&self, n: u64) -> bool;
    fn give(&self, n: u64);
}

impl Permits for Semaphore {
    fn try_take(&self, n: u64) -> bool {
        // Held as a count, given back through `give`.
        self.try_acquire_many(n as usize)
            .map(|p| p.forget())
            .is_ok()
    }
    fn give(&self, n: u64) {
        self.add_permits(n as usize).expect("within the total");
    }
}

/// The limiter's model for `quota`.
pub fn limiter_model(quota: Quota) -> Limiter {
    Limiter {
        interval_ns: u64::try_from(quota.interval().as_nanos()).unwrap(),
        burst: u64::from(quota.burst()),
    }
}

/// `clock`'s reading in nanoseconds from its start.
pub fn reading(clock: &ManualClock) -> u64 {
    clock.now().as_nanos()
}

/// Lets other threads run while a permit is held.
fn pause() {
    #[cfg(async_patterns_shuttle)]
    shuttle::thread::yield_now();
    #[cfg(not(async_patterns_shuttle))]
    std::thread::yield_now();
}

/// One call through `breaker` by `client` at clock reading `at_ns`: asks
/// for a permit named `permit` and, if admitted, ends it by `how` (0: a
/// success, 1: a failure, else dropped), each step recorded.
pub fn breaker_call<C: Clock>(
    breaker: &CircuitBreaker<C>,
    rec: &Recorder<BreakerOp, BreakerOut>,
    (client, permit, at_ns): (u64, u64, u64),
    how: u64,
) {
    let mut held = None;
    rec.op(
        client,
        BreakerOp::Acquire { permit, at_ns },
        || match breaker.try_acquire() {
            Ok(p) => {
                held = Some(p);
                BreakerOut::Admitted
            }
            Err(Refused::Open(until)) => BreakerOut::Open {
                until_ns: until.as_nanos(),
            },
            Err(Refused::ProbesBusy) => BreakerOut::ProbesBusy,
        },
    );
    let Some(p) = held else { return };
    pause();
    let input = match how {
        0 => BreakerOp::Success { permit, at_ns },
        1 => BreakerOp::Failure { permit, at_ns },
        _ => BreakerOp::Drop { permit },
    };
    rec.op(client, input, || {
        match how {
            0 => p.success(),
            1 => p.failure(),
            _ => drop(p),
        }
        BreakerOut::Done
    });
}

/// One call through `limit` by `client` at clock reading `at_ns`: asks to
/// be admitted and, if it is, ends by `how` (0: a success, 1: a failure,
/// else dropped), each step recorded.
pub fn adaptive_call<C: Clock>(
    limit: &AdaptiveLimit<C>,
    rec: &Recorder<AdaptiveOp, bool>,
    (client, at_ns): (u64, u64),
    how: u64,
) {
    let mut held = None;
    rec.op(client, AdaptiveOp::Acquire, || {
        held = limit.try_acquire().ok();
        held.is_some()
    });
    let Some(p) = held else { return };
    pause();
    let ending = match how {
        0 => Ending::Success,
        1 => Ending::Failure,
        _ => Ending::Dropped,
    };
    let finish = AdaptiveOp::Finish {
        ending,
        started_ns: at_ns,
        at_ns,
    };
    rec.op(client, finish, || {
        match ending {
            Ending::Success => p.success(),
            Ending::Failure => p.failure(),
            Ending::Dropped => drop(p),
        }
        true
    });
}

/// The breaker the history tests run, and its model: it trips on 2
/// failures in a row or on half of its last 4 calls once 2 are in, stays
/// open 100 ms, probes 2 at a time and closes after 2 succeed.
pub fn breaker_pair() -> (BreakerConfig, Breaker) {
    let config = BreakerConfig::builder()
        .consecutive_failures(2)
        .window(4, 2)
        .failure_rate(0.5)
        .open_for(Duration::from_millis(100))
        .half_open_probes(2)
        .close_after(2)
        .build()
        .unwrap();
    let model = Breaker {
        consecutive_failures: Some(2),
        window: Some(FailureShare {
            calls: 4,
            min_calls: 2,
            failures: 1,
            of: 2,
        }),
        open_ns: 100_000_000,
        probes: 2,
        close_after: 2,
    };
    (config, model)
}

/// The adaptive limit the history tests run, and its model: 1 to 6,
/// starting at 3, up 1 at a time, halved on a failure, no latency target.
pub fn adaptive_pair() -> (AdaptiveConfig, Adaptive) {
    let config = AdaptiveConfig::builder()
        .limits(1, 3, 6)
        .increase(1)
        .backoff(0.5)
        .build()
        .unwrap();
    let model = Adaptive {
        min: 1,
        initial: 3,
        max: 6,
        increase: 1,
        backoff_num: 1,
        backoff_den: std::num::NonZeroU32::new(2).unwrap(),
        latency_target_ns: None,
    };
    (config, model)
}
