//! What the history tests share (`linearizable_stress.rs` on real threads,
//! `shuttle_patterns.rs` under shuttle): a recorder of operations on one
//! shared tick, the try-acquire / release view of a semaphore, and the
//! limiter's model for a quota. The sync types are shuttle's under
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

use async_patterns::rate_limiter::Quota;
use async_patterns::semaphore::Semaphore;
use async_patterns::time::{Clock, Instant, ManualClock};
use async_patterns_linearize::Op;
use async_patterns_linearize::models::Limiter;

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
    u64::try_from(
        clock
            .now()
            .saturating_duration_since(Instant::ZERO)
            .as_nanos(),
    )
    .unwrap()
}
