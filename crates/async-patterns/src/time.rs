//! Injected time: a [`Clock`] that says what time it is and a [`Timer`] that
//! sleeps until an instant.
//!
//! Nothing in the core reads the wall clock. Every time-based pattern takes a
//! clock (and, if it waits, a timer) from its caller:
//!
//! * [`ManualClock`] (here) — time moves only when a test calls
//!   [`ManualClock::advance`]; it is loom-aware, so model checks can drive it.
//! * `async_patterns_tokio::TokioTimer` — tokio's clock and `sleep_until`,
//!   which tokio's paused time and turmoil drive in virtual time.
//! * anything a user brings, by implementing the two traits.
//!
//! # Guarantees
//!
//! * [`ManualClock::now`] never goes backwards on its own; only an explicit
//!   [`ManualClock::set`] can move it back (to test patterns against a
//!   misbehaving clock). Checked by `manual_clock_is_monotonic_under_advance`.
//! * [`ManualClock::advance`] completes exactly the sleeps whose deadline has
//!   come, waking them in deadline order (ties in registration order), and no
//!   others. Checked by `advance_wakes_due_sleepers_in_deadline_order` and
//!   `sleep_is_pending_until_its_exact_deadline` (unit tests in this module).
//! * No lost wake-up between a sleep registering and the clock advancing: both
//!   happen under one lock. Checked by the loom model
//!   `manual_clock_advance_races_sleep` in `tests/loom_time.rs`.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use async_patterns::time::{Clock, ManualClock, Timer};
//! use futures::FutureExt;
//!
//! let clock = ManualClock::new();
//! let mut sleep = clock.sleep(Duration::from_millis(10));
//! assert!((&mut sleep).now_or_never().is_none());
//! clock.advance(Duration::from_millis(10));
//! assert!(sleep.now_or_never().is_some());
//! assert_eq!(clock.now().as_nanos(), 10_000_000);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::ops::{Add, Sub};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::sync::{Arc, AtomicU64, Mutex, Ordering, lock};

/// A point in time on an injected clock, as nanoseconds since that clock's
/// own epoch (its zero is whatever the clock chose; only differences matter).
///
/// Arithmetic saturates instead of overflowing or panicking: `Instant::MAX`
/// (about 584 years after the epoch) absorbs any further addition and
/// [`Instant::ZERO`] any further subtraction.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The clock's epoch.
    pub const ZERO: Instant = Instant(0);
    /// The latest representable instant.
    pub const MAX: Instant = Instant(u64::MAX);

    /// The instant `nanos` nanoseconds after the epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The instant `d` after the epoch, saturating at [`Instant::MAX`].
    pub fn from_duration(d: Duration) -> Self {
        Instant(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// Time since the epoch.
    pub const fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// `self - earlier`, or zero if `earlier` is later than `self`.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, saturating at [`Instant::MAX`].
    pub fn saturating_add(self, d: Duration) -> Instant {
        self + d
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturates at [`Instant::MAX`].
    fn add(self, d: Duration) -> Instant {
        let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(d))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    /// Saturates at [`Instant::ZERO`].
    fn sub(self, d: Duration) -> Instant {
        let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_sub(d))
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Instant({:?})", self.as_duration())
    }
}

/// A monotonic source of "now".
pub trait Clock {
    /// The current instant on this clock.
    fn now(&self) -> Instant;
}

/// A clock that can also wait: the future returned by
/// [`sleep_until`](Timer::sleep_until) completes once the clock reaches the
/// deadline (at once if it already has).
pub trait Timer: Clock {
    /// The future returned by [`sleep_until`](Timer::sleep_until).
    type Sleep: Future<Output = ()>;

    /// Completes when [`now`](Clock::now) `>= deadline`.
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep;

    /// Completes `d` after the current instant.
    fn sleep(&self, d: Duration) -> Self::Sleep {
        self.sleep_until(self.now() + d)
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Instant {
        (**self).now()
    }
}

impl<T: Timer + ?Sized> Timer for &T {
    type Sleep = T::Sleep;
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        (**self).sleep_until(deadline)
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Instant {
        (**self).now()
    }
}

impl<T: Timer + ?Sized> Timer for std::sync::Arc<T> {
    type Sleep = T::Sleep;
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        (**self).sleep_until(deadline)
    }
}

/// A clock whose time moves only when told to. Cloning shares the clock.
///
/// Sleeps registered on it complete when [`advance`](ManualClock::advance)
/// (or [`set`](ManualClock::set)) reaches their deadline; they are woken in
/// deadline order, ties broken by the order in which they first waited.
#[derive(Clone, Default)]
pub struct ManualClock {
    inner: Arc<ClockInner>,
}

#[derive(Default)]
struct ClockInner {
    /// Mirrors `sleepers.now` so `now()` needs no lock; written only under it.
    now: AtomicU64,
    sleepers: Mutex<Sleepers>,
}

#[derive(Default)]
struct Sleepers {
    now: u64,
    next_id: u64,
    /// Registered sleeps, keyed by (deadline, registration id).
    waiting: BTreeMap<(u64, u64), Waker>,
}

impl ManualClock {
    /// A clock at [`Instant::ZERO`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock at `start`.
    pub fn starting_at(start: Instant) -> Self {
        let clock = Self::new();
        clock.set(start);
        clock
    }

    /// Moves time forward by `d` (saturating) and wakes every sleep now due.
    pub fn advance(&self, d: Duration) {
        self.set_inner(|now| (Instant(now) + d).as_nanos());
    }

    /// Moves time forward to `to` if it is later than now; never backwards.
    pub fn advance_to(&self, to: Instant) {
        self.set_inner(|now| now.max(to.as_nanos()));
    }

    /// Sets the time to `to`, **even backwards**: for testing how a pattern
    /// copes with a clock that steps back. Sleeps due at `to` complete.
    pub fn set(&self, to: Instant) {
        self.set_inner(|_| to.as_nanos());
    }

    /// The deadline of the earliest pending sleep, if any: lets a test driver
    /// jump straight to the next event, as tokio's paused time does.
    pub fn next_deadline(&self) -> Option<Instant> {
        let s = lock(&self.inner.sleepers);
        s.waiting.keys().next().map(|&(at, _)| Instant(at))
    }

    /// How many sleeps are registered and not yet due.
    pub fn pending_sleeps(&self) -> usize {
        lock(&self.inner.sleepers).waiting.len()
    }

    fn set_inner(&self, f: impl FnOnce(u64) -> u64) {
        let due = {
            let mut s = lock(&self.inner.sleepers);
            s.now = f(s.now);
            self.inner.now.store(s.now, Ordering::Release);
            // Everything strictly after `now` stays; the rest is due.
            let later = match s.now.checked_add(1) {
                Some(next) => s.waiting.split_off(&(next, 0)),
                None => BTreeMap::new(),
            };
            std::mem::replace(&mut s.waiting, later)
        };
        // Wake outside the lock, in (deadline, registration) order.
        for (_, waker) in due {
            waker.wake();
        }
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .field("pending_sleeps", &self.pending_sleeps())
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        Instant(self.inner.now.load(Ordering::Acquire))
    }
}

impl Timer for ManualClock {
    type Sleep = ManualSleep;
    fn sleep_until(&self, deadline: Instant) -> ManualSleep {
        ManualSleep {
            clock: self.clone(),
            deadline,
            key: None,
        }
    }
}

/// The future returned by [`ManualClock`]'s [`Timer::sleep_until`].
#[must_use = "futures do nothing unless polled"]
pub struct ManualSleep {
    clock: ManualClock,
    deadline: Instant,
    key: Option<(u64, u64)>,
}

impl ManualSleep {
    /// The instant this sleep completes at.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Future for ManualSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut s = lock(&this.clock.inner.sleepers);
        if s.now >= this.deadline.0 {
            if let Some(key) = this.key.take() {
                s.waiting.remove(&key);
            }
            return Poll::Ready(());
        }
        let key = match this.key {
            Some(key) => key,
            None => {
                let key = (this.deadline.0, s.next_id);
                s.next_id += 1;
                this.key = Some(key);
                key
            }
        };
        // A set() that moved time back and forth may have removed the entry
        // (woken) while the deadline is not yet reached: re-register.
        match s.waiting.get_mut(&key) {
            Some(w) if w.will_wake(cx.waker()) => {}
            Some(w) => *w = cx.waker().clone(),
            None => {
                s.waiting.insert(key, cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

impl Drop for ManualSleep {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            lock(&self.clock.inner.sleepers).waiting.remove(&key);
        }
    }
}

impl fmt::Debug for ManualSleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualSleep")
            .field("deadline", &self.deadline)
            .finish()
    }
}

#[cfg(all(test, not(async_patterns_loom)))]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;
    use std::task::Wake;

    struct Recorder {
        id: usize,
        log: std::sync::Arc<StdMutex<Vec<usize>>>,
    }
    impl Wake for Recorder {
        fn wake(self: std::sync::Arc<Self>) {
            self.log.lock().unwrap().push(self.id);
        }
    }

    fn poll_with(sleep: &mut ManualSleep, waker: &Waker) -> Poll<()> {
        Pin::new(sleep).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn sleep_is_pending_until_its_exact_deadline() {
        let clock = ManualClock::new();
        let mut sleep = clock.sleep(Duration::from_nanos(100));
        let waker = Waker::noop();
        assert!(poll_with(&mut sleep, waker).is_pending());
        clock.advance(Duration::from_nanos(99));
        assert!(poll_with(&mut sleep, waker).is_pending());
        clock.advance(Duration::from_nanos(1));
        assert!(poll_with(&mut sleep, waker).is_ready());
        assert_eq!(clock.pending_sleeps(), 0);
    }

    #[test]
    fn advance_wakes_due_sleepers_in_deadline_order() {
        let clock = ManualClock::new();
        let log = std::sync::Arc::new(StdMutex::new(Vec::new()));
        // Registered out of deadline order; ids 3 and 4 share a deadline.
        let deadlines = [30u64, 10, 20, 40, 40, 50];
        let mut sleeps: Vec<_> = deadlines
            .iter()
            .map(|&d| clock.sleep_until(Instant::from_nanos(d)))
            .collect();
        for (id, sleep) in sleeps.iter_mut().enumerate() {
            let waker = Waker::from(std::sync::Arc::new(Recorder {
                id,
                log: log.clone(),
            }));
            assert!(poll_with(sleep, &waker).is_pending());
        }
        clock.advance(Duration::from_nanos(40));
        assert_eq!(*log.lock().unwrap(), vec![1, 2, 0, 3, 4]);
        assert_eq!(clock.pending_sleeps(), 1, "the sleep due at 50 stays");
        assert_eq!(clock.next_deadline(), Some(Instant::from_nanos(50)));
    }

    #[test]
    fn dropped_sleep_unregisters() {
        let clock = ManualClock::new();
        let mut sleep = clock.sleep(Duration::from_secs(1));
        assert!(poll_with(&mut sleep, Waker::noop()).is_pending());
        assert_eq!(clock.pending_sleeps(), 1);
        drop(sleep);
        assert_eq!(clock.pending_sleeps(), 0);
    }

    #[test]
    fn manual_clock_is_monotonic_under_advance() {
        let clock = ManualClock::starting_at(Instant::from_nanos(500));
        clock.advance_to(Instant::from_nanos(100));
        assert_eq!(clock.now(), Instant::from_nanos(500));
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), Instant::MAX, "saturates instead of panicking");
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now(), Instant::MAX);
    }

    #[test]
    fn set_backwards_then_forwards_still_completes_sleep() {
        let clock = ManualClock::starting_at(Instant::from_nanos(50));
        let mut sleep = clock.sleep_until(Instant::from_nanos(100));
        assert!(poll_with(&mut sleep, Waker::noop()).is_pending());
        clock.set(Instant::from_nanos(10));
        assert!(poll_with(&mut sleep, Waker::noop()).is_pending());
        clock.set(Instant::from_nanos(100));
        assert!(poll_with(&mut sleep, Waker::noop()).is_ready());
    }

    #[test]
    fn instant_arithmetic_saturates() {
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant::ZERO - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(
            Instant::from_nanos(5).saturating_duration_since(Instant::from_nanos(9)),
            Duration::ZERO
        );
        assert_eq!(
            Instant::from_duration(Duration::MAX),
            Instant::MAX,
            "a duration past u64 nanos saturates"
        );
    }
}
