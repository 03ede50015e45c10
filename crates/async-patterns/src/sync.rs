//! The one place the core takes its synchronisation primitives from.
//!
//! Under `--cfg async_patterns_loom` every atomic, mutex and `Arc` comes from
//! [`loom`], so the model checker sees (and permutes) every access; under
//! `--cfg async_patterns_shuttle` from shuttle, whose randomized schedulers
//! search the interleavings of many more threads than loom can enumerate
//! (under sequential consistency only: it does not test memory orderings);
//! otherwise they are `std`'s. Project-specific cfgs are used instead of
//! `--cfg loom` because tokio does not compile under the latter, and the test
//! suites link tokio.

#[cfg(async_patterns_loom)]
pub(crate) use loom::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicU64, AtomicUsize, Ordering},
};

#[cfg(async_patterns_shuttle)]
pub(crate) use shuttle::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicU64, AtomicUsize, Ordering},
};

#[cfg(not(any(async_patterns_loom, async_patterns_shuttle)))]
pub(crate) use std::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicU64, AtomicUsize, Ordering},
};

/// Locks `mutex`, ignoring poisoning: every critical section in the core
/// leaves its data consistent before anything that could panic (waking a
/// task) runs, so a poisoned lock still guards valid state.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
