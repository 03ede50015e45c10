//! A lock-free GCRA rate limiter on an injected clock.
//!
//! A [`Quota`] allows `cells` per `period`, with a burst of up to `burst`
//! cells at once (by default `burst = cells`). The limiter runs the generic
//! cell rate algorithm (GCRA, the continuous-time form of a token bucket):
//! one atomic holds the *theoretical arrival time* (TAT) and a check is one
//! compare-and-swap, so concurrent checks never take a lock.
//!
//! Each cell costs one *interval* (`period / cells`) of credit; credit
//! accrues with the clock and is capped at `burst` intervals.
//!
//! [`KeyedRateLimiter`] keeps one such bucket per key, in bounded memory.
//!
//! # Guarantees, and the check that proves each
//!
//! | guarantee | checked by |
//! |---|---|
//! | on a monotonic clock every decision equals a sequential token-bucket reference model exactly: a conforming request is never refused, and a refusal names the earliest instant it would conform | proptest `limiter_matches_token_bucket_model` (`tests/rate_limiter_model.rs`) |
//! | whatever the clock does (steps back, leaps ahead), total admitted cells ≤ burst + rate × (highest − lowest reading it has seen): ground a faulty clock covers twice is never paid for twice, and a leap ahead refills at most one burst | proptest `limiter_never_exceeds_envelope_under_clock_faults`; loom `loom_concurrent_checks_never_exceed_burst` (`tests/loom_rate_limiter.rs`) |
//! | a clock that steps back by `d` delays new capacity by at most `d`: once the clock is `n` intervals past its previous high point, `n` cells are admitted | proptest `limiter_never_exceeds_envelope_under_clock_faults` |
//! | concurrent checks are linearizable: at one instant, exactly `burst` of many concurrent single-cell checks succeed from a full bucket | loom `loom_concurrent_checks_never_exceed_burst` |
//! | `check_n(n)` with `n > burst` is [`CheckError::Insufficient`] (never an endless "not yet"); no arithmetic overflows or panics, up to [`Instant::MAX`] | unit tests `check_n_beyond_burst_is_insufficient_capacity`, `far_future_clock_never_overflows` |
//! | a zero or absurd quota is refused when it is built, with a typed [`QuotaError`] | unit test `bad_quotas_are_typed_errors` |
//! | the decisions for a fixed arrival pattern do not change unnoticed | insta snapshot `fixed_arrival_pattern_decisions_snapshot` (`tests/rate_limiter.rs`, in `snapshots/`) |
//! | [`until_n_ready`](RateLimiter::until_n_ready) ends exactly at the earliest conforming instant, not later | unit tests `until_ready_ends_exactly_at_the_conforming_instant`, `a_wait_under_a_burst_ends_when_the_bucket_has_room` (burst 3, 2 cells) |
//! | waiters are served in call order, and `check` cannot take cells a waiter has booked | unit test `waiters_are_served_in_call_order_and_check_cannot_barge` |
//! | a wait dropped before it returns gives its cells back, exactly once, even when its instant has passed | unit tests `dropping_a_wait_gives_its_reservation_back`, `cancelled_wait_between_bookings_returns_exactly_its_cells`; loom `loom_cancelled_wait_returns_its_cell_at_most_once` |
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use async_patterns::rate_limiter::{Quota, RateLimiter};
//! use async_patterns::time::{Clock, ManualClock};
//!
//! let clock = ManualClock::new();
//! let quota = Quota::per_second(2).unwrap(); // 2 cells/s, burst 2
//! let limiter = RateLimiter::new(quota, clock.clone());
//! assert!(limiter.check().is_ok());
//! assert!(limiter.check().is_ok());
//! let refused = limiter.check().unwrap_err();
//! assert_eq!(refused.earliest().saturating_duration_since(clock.now()), Duration::from_millis(500));
//! clock.advance(Duration::from_millis(500));
//! assert!(limiter.check().is_ok());
//! ```

use std::fmt;
use std::time::Duration;

pub mod keyed;
pub use keyed::KeyedRateLimiter;

use crate::events::emit;
use crate::sync::{AtomicU64, Ordering};
use crate::time::{Clock, Instant, Timer};

/// How much a [`RateLimiter`] admits: `cells` per `period`, up to `burst`
/// at once. Validated when built; see [`QuotaError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    /// Nanoseconds of credit one cell costs.
    interval: u64,
    burst: u32,
}

/// Why a [`Quota`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QuotaError {
    /// `cells` was zero.
    ZeroCells,
    /// `period` was zero.
    ZeroPeriod,
    /// `burst` was zero.
    ZeroBurst,
    /// `period / cells` is under one nanosecond: more than a billion cells
    /// per second cannot be told apart on a nanosecond clock.
    IntervalUnderOneNanosecond,
    /// `burst × interval` (the time to refill a whole burst) does not fit
    /// the clock's range of about 584 years.
    TooLong,
}

impl fmt::Display for QuotaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuotaError::ZeroCells => "a quota needs at least one cell per period",
            QuotaError::ZeroPeriod => "a quota's period must be longer than zero",
            QuotaError::ZeroBurst => "a quota's burst must be at least one cell",
            QuotaError::IntervalUnderOneNanosecond => {
                "a quota may allow at most one cell per nanosecond"
            }
            QuotaError::TooLong => "the time to refill a whole burst exceeds 584 years",
        })
    }
}

impl std::error::Error for QuotaError {}

impl Quota {
    /// `cells` per `period`, with a burst of `cells`.
    ///
    /// The interval between cells is `period / cells` **rounded down** to a
    /// whole nanosecond, so a quota is never slower than asked: `per_second(3)`
    /// admits a cell every 333,333,333 ns (3.000000003 a second).
    pub fn new(cells: u32, period: Duration) -> Result<Self, QuotaError> {
        if cells == 0 {
            return Err(QuotaError::ZeroCells);
        }
        if period.is_zero() {
            return Err(QuotaError::ZeroPeriod);
        }
        let interval = u64::try_from(period.as_nanos() / u128::from(cells))
            .map_err(|_| QuotaError::TooLong)?;
        if interval == 0 {
            return Err(QuotaError::IntervalUnderOneNanosecond);
        }
        Quota { interval, burst: 1 }.with_burst(cells)
    }

    /// `cells` per second, with a burst of `cells`.
    pub fn per_second(cells: u32) -> Result<Self, QuotaError> {
        Self::new(cells, Duration::from_secs(1))
    }

    /// `cells` per minute, with a burst of `cells`.
    pub fn per_minute(cells: u32) -> Result<Self, QuotaError> {
        Self::new(cells, Duration::from_secs(60))
    }

    /// One cell every `period`, with a burst of one (governor's
    /// `Quota::with_period`): for rates slower than one a second, or not a
    /// whole number of cells a second.
    pub fn with_period(period: Duration) -> Result<Self, QuotaError> {
        Self::new(1, period)
    }

    /// The same rate with another burst size.
    pub fn with_burst(self, burst: u32) -> Result<Self, QuotaError> {
        if burst == 0 {
            return Err(QuotaError::ZeroBurst);
        }
        self.interval
            .checked_mul(u64::from(burst))
            .ok_or(QuotaError::TooLong)?;
        Ok(Quota { burst, ..self })
    }

    /// The credit one cell costs: `period / cells`.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval)
    }

    /// The most cells admitted at once.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The credit `n` cells cost, in nanoseconds, or
    /// [`CheckError::Insufficient`] beyond the burst (then it never conforms).
    /// `n ≤ burst`, so the product fits: checked when the quota was built.
    fn cost(&self, n: u32) -> Result<u64, CheckError> {
        if n > self.burst {
            return Err(CheckError::Insufficient {
                requested: n,
                burst: self.burst,
            });
        }
        Ok(self.interval * u64::from(n))
    }

    /// Credit of a full bucket, in nanoseconds (fits: checked when built).
    fn tolerance(&self) -> u64 {
        self.interval * u64::from(self.burst)
    }
}

/// "Not now": refused, conforming from [`earliest`](NotUntil::earliest) on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NotUntil(Instant);

impl NotUntil {
    /// The earliest instant at which the same request would be admitted, if
    /// nothing else is admitted first.
    pub fn earliest(&self) -> Instant {
        self.0
    }

    /// How long to wait from `now` until [`earliest`](NotUntil::earliest):
    /// zero if that instant has passed (governor's `wait_time_from`).
    pub fn wait_time_from(&self, now: Instant) -> Duration {
        self.0.saturating_duration_since(now)
    }
}

impl fmt::Display for NotUntil {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rate limited until {:?}", self.0)
    }
}

impl std::error::Error for NotUntil {}

/// Why [`RateLimiter::check_n`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckError {
    /// "Not now": retry at the instant it names.
    NotUntil(NotUntil),
    /// "Never": more cells than the burst were asked for at once.
    Insufficient {
        /// Cells asked for.
        requested: u32,
        /// The quota's burst.
        burst: u32,
    },
}

impl CheckError {
    /// `true` for [`CheckError::NotUntil`]: the same request may succeed
    /// later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, CheckError::NotUntil(_))
    }
}

impl From<NotUntil> for CheckError {
    fn from(e: NotUntil) -> Self {
        CheckError::NotUntil(e)
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::NotUntil(e) => e.fmt(f),
            CheckError::Insufficient { requested, burst } => write!(
                f,
                "{requested} cells asked for at once, but the burst is {burst}"
            ),
        }
    }
}

impl std::error::Error for CheckError {}

/// Passes a check's answer through, emitting a `tracing` event (with the
/// `tracing` feature) when it is a refusal.
#[inline(always)]
pub(crate) fn refused(answer: Result<(), NotUntil>) -> Result<(), NotUntil> {
    if let Err(_not_until) = &answer {
        async_patterns_assert::reachable!(crate::points::LIMITER_REFUSED);
        emit!(
            target: "async_patterns::rate_limiter",
            tracing::Level::DEBUG,
            not_until_ns = _not_until.0.as_nanos(),
            "rate limited"
        );
    }
    answer
}

/// A GCRA rate limiter. See the [module docs](self).
pub struct RateLimiter<C> {
    clock: C,
    quota: Quota,
    /// Theoretical arrival time, in the clock's nanoseconds. Never decreases,
    /// which is why no clock fault can hand out credit twice.
    tat: AtomicU64,
}

impl<C: Clock> RateLimiter<C> {
    /// A limiter with a full bucket.
    pub fn new(quota: Quota, clock: C) -> Self {
        RateLimiter {
            clock,
            quota,
            tat: AtomicU64::new(0),
        }
    }

    /// The quota this limiter enforces.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// Admits one cell now, or says when it would be admitted.
    pub fn check(&self) -> Result<(), NotUntil> {
        refused(self.take(self.quota.interval))
    }

    /// Admits `n` cells at once, or says when they would be, or that they
    /// never can be (`n` beyond the burst). `n == 0` is always admitted.
    pub fn check_n(&self, n: u32) -> Result<(), CheckError> {
        refused(self.take(self.quota.cost(n)?)).map_err(CheckError::from)
    }

    /// Waits until one cell is admitted; see
    /// [`until_n_ready`](RateLimiter::until_n_ready).
    pub async fn until_ready(&self)
    where
        C: Timer,
    {
        // One cell never exceeds the burst (a quota's burst is at least 1).
        let _ = self.until_n_ready(1).await;
    }

    /// Waits until `n` cells are admitted, on the limiter's own clock.
    ///
    /// The wait *reserves* its cells at once, so waiters are served strictly
    /// in the order they called, nobody (not even [`check`](Self::check))
    /// can take the reserved cells, and the wait ends exactly at the earliest
    /// instant the cells conform — no polling, no thundering herd. Dropping
    /// the future before it returns gives the reservation back.
    ///
    /// `n` beyond the burst fails at once with [`CheckError::Insufficient`]
    /// (it could never conform); `n == 0` is ready at once.
    pub async fn until_n_ready(&self, n: u32) -> Result<(), CheckError>
    where
        C: Timer,
    {
        let reservation = self.reserve(n)?;
        if self.clock.now() < reservation.at {
            async_patterns_assert::reachable!(crate::points::LIMITER_MADE_WAIT);
            self.clock.sleep_until(reservation.at).await;
        }
        reservation.redeem();
        Ok(())
    }

    /// Books `n` cells at the earliest instant they conform, however far off.
    fn reserve(&self, n: u32) -> Result<Reservation<'_, C>, CheckError> {
        let cost = self.quota.cost(n)?;
        let now = self.clock.now().as_nanos();
        let tolerance = self.quota.tolerance();
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let base = tat.max(now);
            let Some(new_tat) = base.checked_add(cost) else {
                return Err(NotUntil(Instant::MAX).into());
            };
            match self
                .tat
                .compare_exchange_weak(tat, new_tat, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    return Ok(Reservation {
                        limiter: self,
                        cost,
                        at: Instant::from_nanos(new_tat.saturating_sub(tolerance).max(now)),
                        redeemed: false,
                    });
                }
                Err(actual) => tat = actual,
            }
        }
    }

    /// One GCRA decision for `cost` nanoseconds of credit (`cost ≤ tolerance`).
    fn take(&self, cost: u64) -> Result<(), NotUntil> {
        let now = self.clock.now().as_nanos();
        let tolerance = self.quota.tolerance();
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let new_tat = gcra(tat, now, cost, tolerance)?;
            match self
                .tat
                .compare_exchange_weak(tat, new_tat, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(actual) => tat = actual,
            }
        }
    }
}

/// One GCRA step: the new theoretical arrival time if `cost` nanoseconds of
/// credit conform at `now` given `tat`, or the earliest instant they would.
/// A `tat` at or before `now` is a full bucket (`tolerance` of credit).
#[inline]
fn gcra(tat: u64, now: u64, cost: u64, tolerance: u64) -> Result<u64, NotUntil> {
    let base = tat.max(now);
    let Some(new_tat) = base.checked_add(cost) else {
        // Only at the end of the clock's range (584 years): refuse rather
        // than admit without bound.
        return Err(NotUntil(Instant::MAX));
    };
    let allowed_at = new_tat.saturating_sub(tolerance);
    if allowed_at > now {
        Err(NotUntil(Instant::from_nanos(allowed_at)))
    } else {
        Ok(new_tat)
    }
}

/// Cells booked by [`RateLimiter::until_n_ready`], admitted at `at`.
struct Reservation<'a, C: Clock> {
    limiter: &'a RateLimiter<C>,
    cost: u64,
    at: Instant,
    redeemed: bool,
}

impl<C: Clock> Reservation<'_, C> {
    fn redeem(mut self) {
        self.redeemed = true;
    }
}

impl<C: Clock> Drop for Reservation<'_, C> {
    /// A wait dropped before it returned gives its cells back, whenever
    /// that is: subtracting exactly what the reservation added leaves the
    /// TAT where it would stand had the reservation never been made, so no
    /// other booking moves and no cell is lost or handed out twice.
    fn drop(&mut self) {
        if !self.redeemed {
            self.limiter.tat.fetch_sub(self.cost, Ordering::AcqRel);
        }
    }
}

impl<C> fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("quota", &self.quota)
            .field("tat", &self.tat.load(Ordering::Relaxed))
            .finish()
    }
}

#[cfg(all(test, not(async_patterns_loom)))]
mod tests {
    use super::*;
    use crate::time::ManualClock;
    use tokio_test::{assert_pending, assert_ready, assert_ready_ok, task};

    fn limiter(q: Quota) -> (RateLimiter<ManualClock>, ManualClock) {
        let clock = ManualClock::new();
        (RateLimiter::new(q, clock.clone()), clock)
    }

    #[test]
    fn bad_quotas_are_typed_errors() {
        let s = Duration::from_secs(1);
        assert_eq!(Quota::new(0, s), Err(QuotaError::ZeroCells));
        assert_eq!(Quota::new(5, Duration::ZERO), Err(QuotaError::ZeroPeriod));
        assert_eq!(
            Quota::per_second(5).unwrap().with_burst(0),
            Err(QuotaError::ZeroBurst)
        );
        assert_eq!(
            Quota::new(2_000_000_000, s),
            Err(QuotaError::IntervalUnderOneNanosecond)
        );
        assert_eq!(Quota::new(1, Duration::MAX), Err(QuotaError::TooLong));
        let yearly = Quota::new(1, Duration::from_secs(86_400 * 365)).unwrap();
        assert_eq!(yearly.with_burst(1_000), Err(QuotaError::TooLong));
        assert!(
            Quota::new(1_000_000_000, s).is_ok(),
            "1 cell/ns is the limit"
        );
    }

    #[test]
    fn burst_then_steady_rate() {
        let (l, clock) = limiter(Quota::per_second(10).unwrap().with_burst(3).unwrap());
        for _ in 0..3 {
            l.check().unwrap();
        }
        let e = l.check().unwrap_err();
        assert_eq!(e.earliest(), Instant::from_nanos(100_000_000));
        clock.advance(Duration::from_millis(99));
        assert!(l.check().is_err());
        clock.advance(Duration::from_millis(1));
        l.check().unwrap();
        assert!(l.check().is_err());
    }

    #[test]
    fn check_n_beyond_burst_is_insufficient_capacity() {
        let (l, _clock) = limiter(Quota::per_second(5).unwrap());
        assert_eq!(
            l.check_n(6),
            Err(CheckError::Insufficient {
                requested: 6,
                burst: 5
            })
        );
        assert!(!l.check_n(6).unwrap_err().is_retryable());
        l.check_n(5).unwrap();
        let e = l.check_n(5).unwrap_err();
        assert!(e.is_retryable());
        assert_eq!(
            e,
            CheckError::NotUntil(NotUntil(Instant::from_nanos(1_000_000_000)))
        );
        l.check_n(0).unwrap();
    }

    #[test]
    fn far_future_clock_never_overflows() {
        let (l, clock) = limiter(Quota::per_second(1).unwrap().with_burst(4).unwrap());
        clock.set(Instant::MAX);
        // Near the end of the clock's range a cell may no longer fit: refuse
        // rather than admit without bound; never panic.
        let mut admitted = 0;
        for _ in 0..10 {
            if l.check().is_ok() {
                admitted += 1;
            }
        }
        assert!(admitted <= 4);
        clock.set(Instant::MAX - Duration::from_secs(10));
        let _ = l.check_n(4);
    }

    #[test]
    fn until_ready_ends_exactly_at_the_conforming_instant() {
        let (l, clock) = limiter(Quota::per_second(10).unwrap().with_burst(1).unwrap());
        l.check().unwrap();
        let mut wait = task::spawn(l.until_ready());
        assert_pending!(wait.poll());
        clock.advance(Duration::from_nanos(99_999_999));
        assert!(!wait.is_woken());
        assert_pending!(wait.poll());
        clock.advance(Duration::from_nanos(1));
        assert!(wait.is_woken());
        assert_ready!(wait.poll());
        assert!(l.check().is_err(), "the waiter took the cell");
    }

    /// With a burst above the cells asked for, a wait ends when the
    /// bucket has room for them, not when every earlier cell has drained:
    /// burst 3 at 10 per second, two waits for 2 cells each. The first is
    /// admitted at once (3 cells free); the second needs 1 more than the 1
    /// left, so it ends 100 ms later, to the nanosecond.
    #[test]
    fn a_wait_under_a_burst_ends_when_the_bucket_has_room() {
        let (l, clock) = limiter(Quota::per_second(10).unwrap().with_burst(3).unwrap());
        let mut first = task::spawn(l.until_n_ready(2));
        assert_ready_ok!(first.poll());
        let mut second = task::spawn(l.until_n_ready(2));
        assert_pending!(second.poll());
        clock.advance(Duration::from_nanos(99_999_999));
        assert_pending!(second.poll());
        clock.advance(Duration::from_nanos(1));
        assert!(second.is_woken());
        assert_ready_ok!(second.poll());
    }

    #[test]
    fn waiters_are_served_in_call_order_and_check_cannot_barge() {
        let (l, clock) = limiter(Quota::per_second(10).unwrap().with_burst(1).unwrap());
        l.check().unwrap();
        let mut first = task::spawn(l.until_n_ready(1));
        let mut second = task::spawn(l.until_n_ready(1));
        assert_pending!(first.poll());
        assert_pending!(second.poll());
        clock.advance(Duration::from_millis(100));
        assert!(l.check().is_err(), "the cell at 100 ms is reserved");
        assert!(first.is_woken() && !second.is_woken());
        assert_ready_ok!(first.poll());
        assert_pending!(second.poll());
        clock.advance(Duration::from_millis(100));
        assert_ready_ok!(second.poll());
    }

    #[test]
    fn dropping_a_wait_gives_its_reservation_back() {
        let (l, clock) = limiter(Quota::per_second(10).unwrap().with_burst(1).unwrap());
        l.check().unwrap();
        let mut wait = task::spawn(l.until_ready());
        assert_pending!(wait.poll());
        drop(wait);
        clock.advance(Duration::from_millis(100));
        l.check().unwrap();
        assert!(l.check().is_err(), "only one cell came back, not two");
    }

    #[test]
    fn cancelled_wait_between_bookings_returns_exactly_its_cells() {
        // 10 cells/s, burst 1: over [0, 200 ms] at most 1 + 2 cells.
        let (l, clock) = limiter(Quota::per_second(10).unwrap().with_burst(1).unwrap());
        let mut admitted = usize::from(l.check().is_ok());
        let mut first = task::spawn(l.until_ready());
        let mut second = task::spawn(l.until_ready());
        assert_pending!(first.poll());
        assert_pending!(second.poll());
        drop(first); // its slot frees up once, behind `second`'s booking
        for _ in 0..2 {
            clock.advance(Duration::from_millis(100));
            admitted += (0..3).filter(|_| l.check().is_ok()).count();
            if second.is_woken() {
                assert_ready!(second.poll());
                admitted += 1;
            }
        }
        assert_eq!(admitted, 3, "the freed cell is neither lost nor doubled");
    }

    #[test]
    fn until_n_ready_beyond_burst_fails_at_once() {
        let (l, _clock) = limiter(Quota::per_second(3).unwrap());
        let mut wait = task::spawn(l.until_n_ready(4));
        assert_eq!(
            assert_ready!(wait.poll()),
            Err(CheckError::Insufficient {
                requested: 4,
                burst: 3
            })
        );
    }

    #[test]
    fn backward_step_never_refills() {
        let (l, clock) = limiter(Quota::per_second(1).unwrap().with_burst(2).unwrap());
        clock.set(Instant::from_duration(Duration::from_secs(100)));
        l.check_n(2).unwrap();
        clock.set(Instant::from_duration(Duration::from_secs(10)));
        assert!(l.check().is_err(), "stepping back must not refill");
        clock.set(Instant::from_duration(Duration::from_secs(101)));
        l.check().unwrap();
    }
}
