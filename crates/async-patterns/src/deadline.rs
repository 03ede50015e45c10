//! Timeouts and deadlines on the injected timer.
//!
//! [`timeout`] bounds one future by a duration, [`timeout_at`] by a
//! [`Deadline`]: an instant that nested calls share and ask for their
//! remaining budget, so a 2 s request that has spent 1.5 s gives its
//! upstream calls 0.5 s, not a fresh 2 s each.
//!
//! # Guarantees, and the check that proves each
//!
//! | guarantee | checked by |
//! |---|---|
//! | a timeout elapses exactly at its deadline on the injected clock: pending 1 ns before, `Err(Elapsed)` at it | proptest `timeout_elapses_exactly_at_the_deadline` (`tests/deadline_model.rs`) |
//! | a future that finishes in time is returned untouched, even at the deadline's own instant | proptest `timeout_elapses_exactly_at_the_deadline`; unit test `ready_at_the_deadline_wins` |
//! | the inner future is dropped by the time an elapsed timeout's `.await` returns | unit test `elapsed_timeout_drops_the_inner_future` |
//! | the timer's sleep is made only if the inner future is pending, once, until the deadline fixed at creation (a ready future costs no timer registration) | unit test `the_sleep_is_made_only_for_a_pending_future_and_once` |
//! | a nested deadline never outlives its parent, and the remaining budget never goes negative | unit tests `within_never_extends_the_parent`, `remaining_saturates_at_zero` |
//! | a deadline has expired exactly from its instant on: 1 ns before it has 1 ns left | unit test `expires_exactly_at_its_instant` |
//! | a retrier hands every attempt the one overall deadline, never a fresh one | proptest `retrier_matches_reference_model` (`tests/retry_model.rs`) |
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use async_patterns::deadline::{Deadline, timeout_at};
//! use async_patterns::time::{ManualClock, Timer};
//! use futures::FutureExt;
//!
//! let clock = ManualClock::new();
//! let request = Deadline::after(&clock, Duration::from_secs(2));
//! clock.advance(Duration::from_millis(1_500));
//! // An upstream call gets what is left, at most 200 ms of it.
//! let call = request.within(&clock, Duration::from_millis(200));
//! assert_eq!(call.remaining(&clock), Duration::from_millis(200));
//! let mut slow = Box::pin(timeout_at(&clock, call, clock.sleep(Duration::from_secs(1))));
//! assert!((&mut slow).now_or_never().is_none());
//! clock.advance(Duration::from_millis(200));
//! assert!(slow.now_or_never().unwrap().is_err());
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;

use crate::time::{Clock, Instant, Timer};

/// An instant by which work must be done. Copy it into nested calls; each
/// asks [`remaining`](Deadline::remaining) or tightens it with
/// [`within`](Deadline::within).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline(Instant);

impl Deadline {
    /// The deadline at `instant`.
    pub const fn at(instant: Instant) -> Self {
        Deadline(instant)
    }

    /// The deadline `d` from now on `clock` (saturating far in the future).
    pub fn after(clock: &impl Clock, d: Duration) -> Self {
        Deadline(clock.now() + d)
    }

    /// The instant itself.
    pub const fn instant(self) -> Instant {
        self.0
    }

    /// Time left on `clock`: zero once the deadline has passed.
    pub fn remaining(self, clock: &impl Clock) -> Duration {
        self.0.saturating_duration_since(clock.now())
    }

    /// Whether the deadline has come on `clock`.
    pub fn is_expired(self, clock: &impl Clock) -> bool {
        clock.now() >= self.0
    }

    /// This deadline or `d` from now, whichever is sooner: the budget for
    /// a nested call with its own timeout.
    pub fn within(self, clock: &impl Clock, d: Duration) -> Self {
        self.min(Deadline::after(clock, d))
    }
}

/// "Too late": the deadline came before the future finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed {
    /// The deadline that passed.
    pub deadline: Deadline,
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "deadline {:?} elapsed", self.deadline.instant())
    }
}

impl std::error::Error for Elapsed {}

/// Runs `fut` for at most `d` on `timer`.
///
/// The clock is read once, here (the deadline is `d` from now, not from
/// the first poll); the timer's sleep is only made if `fut` is not ready
/// on its first poll.
pub fn timeout<T: Timer + Clone, F: Future>(timer: &T, d: Duration, fut: F) -> Timeout<T, F> {
    timeout_at(timer, Deadline::after(timer, d), fut)
}

/// Runs `fut` until `deadline` at most, on `timer`.
///
/// The timer's sleep is only made if `fut` is not ready on its first
/// poll: a future that completes at once costs no timer registration.
pub fn timeout_at<T: Timer + Clone, F: Future>(
    timer: &T,
    deadline: Deadline,
    fut: F,
) -> Timeout<T, F> {
    Timeout {
        fut,
        sleep: None,
        timer: timer.clone(),
        deadline,
    }
}

pin_project! {
    /// The future returned by [`timeout`] and [`timeout_at`]: the inner
    /// future's output, or [`Elapsed`]. The inner future is polled first, so
    /// one that is ready at the deadline's own instant wins; it is dropped
    /// with this future (as soon as an `.await` on it returns). The sleep
    /// on the timer is made at the first poll that finds the inner future
    /// pending (until the deadline fixed when the timeout was made).
    #[must_use = "futures do nothing unless polled"]
    pub struct Timeout<T, F>
    where
        T: Timer,
    {
        #[pin]
        fut: F,
        #[pin]
        sleep: Option<T::Sleep>,
        timer: T,
        deadline: Deadline,
    }
}

impl<T: Timer, F: Future> Future for Timeout<T, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(out) = this.fut.poll(cx) {
            return Poll::Ready(Ok(out));
        }
        if this.sleep.is_none() {
            let sleep = this.timer.sleep_until(this.deadline.instant());
            this.sleep.set(Some(sleep));
        }
        let Some(sleep) = this.sleep.as_pin_mut() else {
            unreachable!("the sleep was made above")
        };
        match sleep.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed {
                deadline: *this.deadline,
            })),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: Timer, F> fmt::Debug for Timeout<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(async_patterns_loom)))]
mod tests {
    use super::*;
    use crate::time::ManualClock;
    use futures::FutureExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const MS: Duration = Duration::from_millis(1);

    /// Expiry and the remaining budget at the deadline's exact boundary,
    /// in nanoseconds: 1 ns before, it has 1 ns left and has not expired;
    /// at it, nothing is left and it has.
    #[test]
    fn expires_exactly_at_its_instant() {
        let clock = ManualClock::new();
        let deadline = Deadline::after(&clock, 10 * MS);
        assert!(!deadline.is_expired(&clock));
        clock.advance(10 * MS - Duration::from_nanos(1));
        assert!(!deadline.is_expired(&clock), "1 ns before");
        assert_eq!(deadline.remaining(&clock), Duration::from_nanos(1));
        clock.advance(Duration::from_nanos(1));
        assert!(deadline.is_expired(&clock), "at the instant");
        assert_eq!(deadline.remaining(&clock), Duration::ZERO);
    }

    /// A timer that counts the sleeps it makes.
    #[derive(Clone)]
    struct Counting {
        clock: ManualClock,
        sleeps: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Clock for Counting {
        fn now(&self) -> Instant {
            self.clock.now()
        }
    }

    impl Timer for Counting {
        type Sleep = <ManualClock as Timer>::Sleep;
        fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
            self.sleeps
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.clock.sleep_until(deadline)
        }
    }

    /// The sleep is made only when the inner future is pending, once, and
    /// until the deadline fixed when the timeout was made (not the first
    /// poll): a timeout made at 0 and first polled at 6 ms still ends at
    /// 10 ms.
    #[test]
    fn the_sleep_is_made_only_for_a_pending_future_and_once() {
        let timer = Counting {
            clock: ManualClock::new(),
            sleeps: Arc::default(),
        };
        let made = || timer.sleeps.load(std::sync::atomic::Ordering::Relaxed);
        let ready = timeout(&timer, 10 * MS, async { 7 }).now_or_never();
        assert_eq!(ready, Some(Ok(7)));
        assert_eq!(made(), 0, "a ready future needs no sleep");

        let mut pending = Box::pin(timeout(&timer, 10 * MS, std::future::pending::<()>()));
        timer.clock.advance(6 * MS);
        assert!(pending.as_mut().now_or_never().is_none());
        assert!(pending.as_mut().now_or_never().is_none());
        assert_eq!(made(), 1, "one sleep, however many polls");
        timer.clock.advance(4 * MS - Duration::from_nanos(1));
        assert!(pending.as_mut().now_or_never().is_none(), "1 ns before");
        timer.clock.advance(Duration::from_nanos(1));
        let elapsed = pending.now_or_never().expect("elapsed at 10 ms");
        assert_eq!(
            elapsed,
            Err(Elapsed {
                deadline: Deadline::at(Instant::from_nanos(10_000_000))
            })
        );
    }

    #[test]
    fn ready_at_the_deadline_wins() {
        let clock = ManualClock::new();
        let deadline = Deadline::after(&clock, 10 * MS);
        let mut t = Box::pin(timeout_at(
            &clock,
            deadline,
            clock.sleep_until(deadline.instant()),
        ));
        assert!((&mut t).now_or_never().is_none());
        clock.advance(10 * MS);
        assert_eq!(t.now_or_never(), Some(Ok(())));
    }

    struct Alive(Arc<AtomicUsize>);
    impl Drop for Alive {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn elapsed_timeout_drops_the_inner_future() {
        let clock = ManualClock::new();
        let alive = Arc::new(AtomicUsize::new(1));
        let guard = Alive(alive.clone());
        let never = async move {
            let _guard = guard;
            futures::future::pending::<()>().await
        };
        let waiter = clock.clone();
        let mut run = Box::pin(async move { timeout(&waiter, 5 * MS, never).await });
        assert!((&mut run).now_or_never().is_none());
        assert_eq!(alive.load(Ordering::SeqCst), 1);
        clock.advance(5 * MS);
        let out = run.as_mut().now_or_never().expect("elapsed");
        assert!(out.is_err());
        assert_eq!(
            alive.load(Ordering::SeqCst),
            0,
            "the inner future still lives"
        );
    }

    #[test]
    fn within_never_extends_the_parent() {
        let clock = ManualClock::new();
        let parent = Deadline::after(&clock, 100 * MS);
        assert_eq!(parent.within(&clock, 500 * MS), parent);
        assert_eq!(parent.within(&clock, 20 * MS).remaining(&clock), 20 * MS);
    }

    #[test]
    fn remaining_saturates_at_zero() {
        let clock = ManualClock::new();
        let d = Deadline::after(&clock, MS);
        clock.advance(5 * MS);
        assert_eq!(d.remaining(&clock), Duration::ZERO);
        assert!(d.is_expired(&clock));
        // Far deadlines saturate instead of overflowing.
        assert_eq!(
            Deadline::after(&clock, Duration::MAX).instant(),
            Instant::MAX
        );
    }
}
