//! A fair, cancel-safe, runtime-agnostic counting semaphore: bounded
//! concurrency.
//!
//! A semaphore holds a number of permits. [`Semaphore::acquire_many`] waits
//! until `n` permits can be handed over; dropping the returned permit gives
//! them back. Waiters are served strictly first in, first out: permits that
//! come back are handed to the waiter at the head of the queue (a large request
//! at the head collects them until it is satisfied), so a stream of small
//! requests can never starve a large one, and [`try_acquire`] never barges
//! ahead of a queued waiter.
//!
//! # Guarantees, and the check that proves each
//!
//! | guarantee | checked by |
//! |---|---|
//! | permits in use never exceed the total, and are conserved (available + held + handed to waiters, collected or not = total, at every step) | proptest `semaphore_matches_reference_model` (`tests/semaphore_model.rs`, conservation asserted after every operation); loom `loom_permits_never_exceed_capacity` (`tests/loom_semaphore.rs`) |
//! | strict FIFO: a waiter is served before every waiter that queued after it; a large request at the head blocks later small ones | proptest `semaphore_matches_reference_model` (grant order equals the model's); unit tests `large_request_at_head_blocks_later_small_ones`, `try_acquire_does_not_barge_past_waiters`; loom `loom_fifo_two_waiters` |
//! | no lost wake-up: a waiter whose permits have been assigned is always woken | proptest `semaphore_matches_reference_model` (every waiter the model says is served must have been woken); loom `loom_no_lost_wakeup_acquire_many` (a lost wake-up deadlocks the model, which loom reports) |
//! | cancel safety: dropping an acquire future at any point, also after permits were assigned to it but before it was polled again, returns them | unit test `dropping_granted_but_unpolled_acquire_returns_permits`; proptest (random drops); loom `loom_cancelled_waiter_returns_permits` |
//! | [`close`](Semaphore::close) fails pending and future acquires with [`AcquireError::Closed`] | unit test `close_fails_pending_and_new_acquires`; loom `loom_close_races_acquire` |
//! | asking for more permits than the semaphore holds in total is [`AcquireError::Exceeds`] at once, never a hang or a panic; so is a waiter left asking for more than remain after permits are forgotten | unit tests `acquire_more_than_total_is_an_error_at_once`, `forgetting_permits_fails_waiters_that_can_never_be_served`; loom `loom_forget_races_acquire_beyond_new_total` (the request racing the shrink is never left queued) |
//!
//! The same behaviour tests run on tokio and on futures' `LocalPool`
//! (`tests/runtime_agnostic.rs`): the semaphore needs no runtime.
//!
//! # Deliberate differences from `tokio::sync::Semaphore`
//!
//! The API follows tokio's (`acquire`, `acquire_many`, `_owned` forms,
//! `try_` forms, `add_permits`, `forget_permits`, `close`, `const_new`,
//! `MAX_PERMITS`); where the behaviour differs, it is on purpose:
//!
//! | situation | tokio | here | why |
//! |---|---|---|---|
//! | `acquire_many(n)` with `n` above the total | waits until enough permits are added (for ever if none are) | [`AcquireError::Exceeds`] at once | a request that can never be served is a bug to report, not a hang |
//! | permits forgotten while a waiter asks for more than remain | it keeps waiting | that waiter fails with `Exceeds` | the same rule, applied when the total shrinks |
//! | `close()` races a waiter already handed all its permits | `Err(AcquireError)` | `Ok(permit)`: the grant stands, the permits come back on drop | a grant is never taken back; nothing is lost either way |
//! | `try_acquire` that can never succeed (too many, or closed) | `TryAcquireError::Closed` / `NoPermits` | [`TryAcquireError::Failed`] (never) kept apart from [`TryAcquireError::NoPermits`] (not now) | a caller must be able to tell "retry later" from "give up" |
//! | `new` / `add_permits` past [`MAX_PERMITS`] | panics | [`CapacityError`] (only `const_new` panics, at compile time in a `static`) | bad input is a typed error |
//! | `MAX_PERMITS` | `usize::MAX >> 3` | `usize::MAX >> 2` (two flag bits in the state word) | |
//!
//! Checked decision by decision against tokio's semaphore in the benches'
//! agreement tests; the first three rows by the unit tests named in the
//! table above.
//!
//! # Capacity changes
//!
//! [`add_permits`](Semaphore::add_permits) grows the total;
//! [`SemaphorePermit::forget`] and [`forget_permits`](Semaphore::forget_permits)
//! shrink it. Shrinking only ever removes permits that are not in use, so
//! in-flight work can never exceed the new limit: to shrink by `k` while work
//! is running, acquire `k` permits (which waits for running work to return
//! them) and forget them.
//!
//! # Example
//!
//! ```
//! use async_patterns::semaphore::{Semaphore, TryAcquireError};
//!
//! # futures::executor::block_on(async {
//! let sem = Semaphore::new(2).unwrap();
//! let a = sem.acquire().await.unwrap();
//! let b = sem.acquire().await.unwrap();
//! assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
//! drop(a);
//! assert_eq!(sem.available_permits(), 1);
//! # drop(b);
//! # });
//! ```
//!
//! [`try_acquire`]: Semaphore::try_acquire

mod waitlist;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use slab::Slab;

use std::sync::Arc;

use crate::sync::{AtomicUsize, Mutex, Ordering, lock};
use waitlist::{CLOSED, QUEUED, SHIFT, Status, Waiter, Waitlist, WakeList};

/// The most permits a semaphore can hold (2^62 − 1 on 64-bit targets).
pub const MAX_PERMITS: usize = usize::MAX >> SHIFT;

/// A semaphore of `$permits` (at most [`MAX_PERMITS`]), with no waiter: the
/// one construction `new` and `const_new` share.
macro_rules! semaphore_of {
    ($permits:expr) => {
        Semaphore {
            state: AtomicUsize::new($permits << SHIFT),
            total: AtomicUsize::new($permits),
            waiters: Mutex::new(Waitlist {
                total: $permits,
                nodes: Slab::new(),
                head: None,
                tail: None,
            }),
        }
    };
}

/// Why an acquire can never succeed ("never": give up, do not retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcquireError {
    /// The semaphore was [closed](Semaphore::close).
    Closed,
    /// More permits were asked for than the semaphore holds in total.
    Exceeds {
        /// Permits asked for.
        requested: usize,
        /// Permits the semaphore holds in total (available or not).
        total: usize,
    },
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::Closed => f.write_str("semaphore closed"),
            AcquireError::Exceeds { requested, total } => write!(
                f,
                "requested {requested} permits but the semaphore holds only {total}"
            ),
        }
    }
}

impl std::error::Error for AcquireError {}

/// Why [`Semaphore::try_acquire_many`] did not hand out permits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TryAcquireError {
    /// "Not now": too few permits are free, or earlier waiters are queued.
    NoPermits,
    /// "Never": the request cannot succeed however long one waits.
    Failed(AcquireError),
}

impl TryAcquireError {
    /// `true` for [`NoPermits`](TryAcquireError::NoPermits): the same request
    /// may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, TryAcquireError::NoPermits)
    }
}

impl From<AcquireError> for TryAcquireError {
    fn from(e: AcquireError) -> Self {
        TryAcquireError::Failed(e)
    }
}

impl fmt::Display for TryAcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryAcquireError::NoPermits => f.write_str("no permits available now"),
            TryAcquireError::Failed(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for TryAcquireError {}

/// A bad argument to [`Semaphore::new`] or [`Semaphore::add_permits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CapacityError {
    /// The total would exceed [`MAX_PERMITS`].
    Overflow {
        /// The total there would have been (saturated).
        total: usize,
    },
}

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapacityError::Overflow { total } => write!(
                f,
                "a semaphore holds at most {MAX_PERMITS} permits, not {total}"
            ),
        }
    }
}

impl std::error::Error for CapacityError {}

/// A fair counting semaphore. See the [module docs](self).
pub struct Semaphore {
    /// `available << SHIFT | QUEUED | CLOSED`.
    state: AtomicUsize,
    /// Mirror of `Waitlist::total` for lock-free reads; written under the lock.
    total: AtomicUsize,
    waiters: Mutex<Waitlist>,
}

impl Semaphore {
    /// A semaphore with `permits` permits. More than [`MAX_PERMITS`] is a
    /// [`CapacityError`]. Zero is allowed, but until permits are added every
    /// acquire fails with [`AcquireError::Exceeds`]: a request is judged
    /// against the total when it is made, so it never waits for permits that
    /// may never exist.
    pub fn new(permits: usize) -> Result<Self, CapacityError> {
        if permits > MAX_PERMITS {
            return Err(CapacityError::Overflow { total: permits });
        }
        Ok(semaphore_of!(permits))
    }

    /// The most permits a semaphore can hold ([`MAX_PERMITS`]).
    pub const MAX_PERMITS: usize = MAX_PERMITS;

    /// A semaphore with `permits` permits, built at compile time: a
    /// `static` needs no lazy initialisation (tokio's `const_new`).
    ///
    /// ```
    /// use async_patterns::semaphore::Semaphore;
    ///
    /// static CONNECTIONS: Semaphore = Semaphore::const_new(10);
    /// assert_eq!(CONNECTIONS.available_permits(), 10);
    /// let held = CONNECTIONS.try_acquire().unwrap();
    /// assert_eq!(CONNECTIONS.available_permits(), 9);
    /// # drop(held);
    /// ```
    ///
    /// # Panics
    ///
    /// If `permits` exceeds [`MAX_PERMITS`]: in a `const` or `static`, that
    /// is a compile error. (Not under loom or shuttle, whose mutexes are
    /// not `const`.)
    #[cfg(not(any(async_patterns_loom, async_patterns_shuttle)))]
    pub const fn const_new(permits: usize) -> Self {
        assert!(
            permits <= MAX_PERMITS,
            "a semaphore holds at most Semaphore::MAX_PERMITS permits"
        );
        semaphore_of!(permits)
    }

    /// Permits free right now (zero while anyone is queued).
    pub fn available_permits(&self) -> usize {
        self.state.load(Ordering::Acquire) >> SHIFT
    }

    /// Permits in existence: free, held, or being collected by a waiter.
    pub fn total_permits(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// Whether [`close`](Semaphore::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Waits for one permit.
    pub fn acquire(&self) -> Acquire<'_> {
        self.acquire_many(1)
    }

    /// Waits for `n` permits, served in FIFO order with every other waiter.
    ///
    /// Fails at once with [`AcquireError::Exceeds`] if `n` is more than the
    /// semaphore holds in total, and with [`AcquireError::Closed`] once the
    /// semaphore is closed. Dropping the future at any point returns whatever
    /// had been handed to it. `n == 0` succeeds at once (unless closed).
    ///
    /// Polling the future again after it returned `Ready` panics, as an
    /// `async fn` does.
    pub fn acquire_many(&self, n: usize) -> Acquire<'_> {
        Acquire {
            sem: self,
            waiter: Waiter::new(n),
        }
    }

    /// Like [`acquire`](Semaphore::acquire), with a permit that owns an `Arc`
    /// of the semaphore and so can move to another task.
    pub fn acquire_owned(self: Arc<Self>) -> AcquireOwned {
        self.acquire_many_owned(1)
    }

    /// Like [`acquire_many`](Semaphore::acquire_many), with an owned permit.
    pub fn acquire_many_owned(self: Arc<Self>, n: usize) -> AcquireOwned {
        AcquireOwned {
            sem: self,
            waiter: Waiter::new(n),
        }
    }

    /// Takes one permit if one is free and nobody is queued.
    #[inline]
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if they are free and nobody is queued: it never
    /// barges ahead of a waiter.
    #[inline]
    pub fn try_acquire_many(&self, n: usize) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_take(n)?;
        Ok(SemaphorePermit {
            sem: self,
            permits: n,
        })
    }

    /// [`try_acquire`](Semaphore::try_acquire) with an owned permit.
    #[inline]
    pub fn try_acquire_owned(self: Arc<Self>) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        self.try_acquire_many_owned(1)
    }

    /// [`try_acquire_many`](Semaphore::try_acquire_many) with an owned permit.
    #[inline]
    pub fn try_acquire_many_owned(
        self: Arc<Self>,
        n: usize,
    ) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        self.try_take(n)?;
        Ok(OwnedSemaphorePermit {
            sem: self,
            permits: n,
        })
    }

    /// Adds `n` permits, serving queued waiters first. Fails, changing
    /// nothing, if the total would exceed [`MAX_PERMITS`].
    pub fn add_permits(&self, n: usize) -> Result<(), CapacityError> {
        let mut wakes = WakeList::default();
        {
            let mut list = lock(&self.waiters);
            let total = list.total.saturating_add(n);
            if total > MAX_PERMITS {
                return Err(CapacityError::Overflow { total });
            }
            self.set_total(&mut list, total);
            self.release_locked(&mut list, n, &mut wakes);
        }
        wakes.wake_all();
        Ok(())
    }

    /// Removes up to `n` free permits from the semaphore for good and returns
    /// how many it removed. Permits in use are never taken: in-flight work
    /// stays within the limit it started under, and the total never drops
    /// below what is held. Waiters left asking for more than the new total
    /// fail with [`AcquireError::Exceeds`].
    pub fn forget_permits(&self, n: usize) -> usize {
        let mut wakes = WakeList::default();
        let taken = {
            let mut list = lock(&self.waiters);
            let mut cur = self.state.load(Ordering::Acquire);
            let taken = loop {
                let take = n.min(cur >> SHIFT);
                match self.state.compare_exchange_weak(
                    cur,
                    cur - (take << SHIFT),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => break take,
                    Err(actual) => cur = actual,
                }
            };
            self.shrink_locked(&mut list, taken, &mut wakes);
            taken
        };
        wakes.wake_all();
        taken
    }

    /// Closes the semaphore: every queued waiter and every later acquire
    /// fails with [`AcquireError::Closed`]. Permits already held stay valid
    /// and are returned as usual when dropped; so does a waiter's that had
    /// been handed its permits in full before the close (it returns `Ok`).
    pub fn close(&self) {
        let mut wakes = WakeList::default();
        {
            let mut list = lock(&self.waiters);
            self.state.fetch_or(CLOSED, Ordering::AcqRel);
            let mut returned = 0;
            let mut cursor = list.head;
            while let Some(key) = cursor {
                let node = &mut list.nodes[key];
                cursor = node.next;
                returned += std::mem::take(&mut node.assigned);
                node.status = Status::Failed(AcquireError::Closed);
                node.prev = None;
                node.next = None;
                wakes.push(node.waker.take());
            }
            list.head = None;
            list.tail = None;
            self.clear_queued(returned);
        }
        wakes.wake_all();
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.load(Ordering::Acquire);
        f.debug_struct("Semaphore")
            .field("available", &(state >> SHIFT))
            .field("total", &self.total_permits())
            .field("queued", &(state & QUEUED != 0))
            .field("closed", &(state & CLOSED != 0))
            .finish()
    }
}

/// Future returned by [`Semaphore::acquire`] and
/// [`Semaphore::acquire_many`]. Cancel-safe: dropping it returns any permits
/// already handed to it.
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct Acquire<'a> {
    sem: &'a Semaphore,
    waiter: Waiter,
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<SemaphorePermit<'a>, AcquireError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let sem = this.sem;
        this.waiter
            .poll_acquire(sem, cx)
            .map_ok(|()| SemaphorePermit {
                sem,
                permits: this.waiter.needed,
            })
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        self.waiter.cancel(self.sem);
    }
}

/// Future returned by [`Semaphore::acquire_owned`] and
/// [`Semaphore::acquire_many_owned`]. Cancel-safe like [`Acquire`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct AcquireOwned {
    sem: Arc<Semaphore>,
    waiter: Waiter,
}

impl Future for AcquireOwned {
    type Output = Result<OwnedSemaphorePermit, AcquireError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let sem = &this.sem;
        this.waiter
            .poll_acquire(sem, cx)
            .map_ok(|()| OwnedSemaphorePermit {
                sem: sem.clone(),
                permits: this.waiter.needed,
            })
    }
}

impl Drop for AcquireOwned {
    fn drop(&mut self) {
        self.waiter.cancel(&self.sem);
    }
}

/// Permits borrowed from a [`Semaphore`]; dropping it gives them back.
#[must_use = "dropping a permit releases it at once"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    permits: usize,
}

impl SemaphorePermit<'_> {
    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// Removes the permits from the semaphore for good, lowering its total.
    pub fn forget(mut self) {
        self.sem.forget_held(std::mem::take(&mut self.permits));
    }
}

impl Drop for SemaphorePermit<'_> {
    #[inline]
    fn drop(&mut self) {
        self.sem.release(self.permits);
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("permits", &self.permits)
            .finish()
    }
}

/// Permits owned together with an `Arc` of their [`Semaphore`], so they can
/// move across tasks; dropping it gives them back.
#[must_use = "dropping a permit releases it at once"]
pub struct OwnedSemaphorePermit {
    sem: Arc<Semaphore>,
    permits: usize,
}

impl OwnedSemaphorePermit {
    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// The semaphore these permits came from.
    pub fn semaphore(&self) -> &Arc<Semaphore> {
        &self.sem
    }

    /// Removes the permits from the semaphore for good, lowering its total.
    pub fn forget(mut self) {
        self.sem.forget_held(std::mem::take(&mut self.permits));
    }
}

impl Drop for OwnedSemaphorePermit {
    #[inline]
    fn drop(&mut self) {
        self.sem.release(self.permits);
    }
}

impl fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphorePermit")
            .field("permits", &self.permits)
            .finish()
    }
}
