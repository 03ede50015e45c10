//! A retry budget: retries are capped at a share of the calls made, plus a
//! small floor, over a sliding window, so that a fleet of clients cannot
//! multiply the load on a struggling server (a retry storm).

use std::fmt;
use std::time::Duration;

use crate::buckets::TimeBuckets;
use crate::events::emit;
use crate::millionths;
use crate::sync::{Mutex, lock};
use crate::time::Instant;

/// Why a [`RetryBudget`] was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum BudgetError {
    /// The share of calls that may be retried is not a finite number in
    /// `0.0..=100.0`.
    RatioOutOfRange(f64),
    /// The window is shorter than its 10 buckets of at least 1 ns each.
    WindowTooShort(Duration),
    /// Both the share (in millionths, rounded to the nearest: a ratio
    /// under 0.0000005 is zero) and the floor are zero: the budget would
    /// allow no retry at all (use one attempt instead).
    NoRetries,
}

impl fmt::Display for BudgetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BudgetError::RatioOutOfRange(r) => {
                write!(f, "retry ratio {r} is not a number in 0.0..=100.0")
            }
            BudgetError::WindowTooShort(d) => write!(f, "retry budget window {d:?} is under 10 ns"),
            BudgetError::NoRetries => {
                f.write_str("a retry budget with no ratio and no floor allows no retry")
            }
        }
    }
}

impl std::error::Error for BudgetError {}

/// The window is kept as this many buckets.
const BUCKETS: usize = 10;

#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    calls: u64,
    retries: u64,
}

/// Allows, over the last `window`, at most `⌊ratio × calls⌋ + floor`
/// retries, where `floor = ⌊min_per_sec × window⌋` and `ratio` is the one
/// given rounded to the nearest millionth (5e-7 counts as 0.000001). Share one (in an `Arc`) between all
/// the retriers that call the same server.
///
/// Every logical call [`deposit`](Self::deposit)s once; every retry must
/// [`try_withdraw`](Self::try_withdraw) first. The ratio is held in parts
/// per million: 0.1% of 1,000 calls is exactly 1 retry, 99.9% exactly 999
/// (tower's budget misread fractional percentages, tower#857).
#[derive(Debug)]
pub struct RetryBudget {
    ppm: u64,
    floor: u64,
    window: Mutex<TimeBuckets<Tally>>,
}

impl RetryBudget {
    /// A budget of `ratio` retries per call (0.2 = one retry per five calls)
    /// plus `min_per_sec` retries per second, over a sliding `window`.
    ///
    /// Both round down to whole retries: the floor is `⌊min_per_sec ×
    /// window⌋` (1 per second over 500 ms is no floor), the ratio is held in
    /// whole parts per million, rounded to the nearest.
    pub fn new(ratio: f64, min_per_sec: u32, window: Duration) -> Result<Self, BudgetError> {
        if !(0.0..=100.0).contains(&ratio) {
            return Err(BudgetError::RatioOutOfRange(ratio));
        }
        let window_ns = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        let bucket_ns = window_ns / BUCKETS as u64;
        if bucket_ns == 0 {
            return Err(BudgetError::WindowTooShort(window));
        }
        // Kept in millionths (parts per million, rounded to the nearest), so
        // all arithmetic is on integers; 100.0 is 10^8, no overflow.
        let ppm = millionths::of(ratio);
        let floor = u64::try_from(u128::from(min_per_sec) * u128::from(window_ns) / 1_000_000_000)
            .unwrap_or(u64::MAX);
        if ppm == 0 && floor == 0 {
            return Err(BudgetError::NoRetries);
        }
        Ok(RetryBudget {
            ppm,
            floor,
            window: Mutex::new(TimeBuckets::new(BUCKETS, bucket_ns)),
        })
    }

    /// Records one logical call at `now`.
    pub fn deposit(&self, now: Instant) {
        let mut window = lock(&self.window);
        let tally = window.current(now);
        tally.calls = tally.calls.saturating_add(1);
    }

    /// Takes one retry from the budget at `now`, if the window allows it.
    #[must_use = "a withdrawal whose answer is ignored is a retry without a budget"]
    pub fn try_withdraw(&self, now: Instant) -> bool {
        let mut window = lock(&self.window);
        window.current(now);
        let (allowed, used) = self.totals(&window);
        if used >= allowed {
            async_patterns_assert::reachable!(crate::points::RETRY_BUDGET_EXHAUSTED);
            emit!(
                target: "async_patterns::retry",
                tracing::Level::WARN,
                available = 0,
                "retry budget exhausted"
            );
            return false;
        }
        let tally = window.current(now);
        tally.retries += 1;
        true
    }

    /// How many retries the window allows at `now` beyond those taken.
    pub fn available(&self, now: Instant) -> u64 {
        let mut window = lock(&self.window);
        window.current(now);
        let (allowed, used) = self.totals(&window);
        allowed.saturating_sub(used)
    }

    /// (retries allowed, retries taken) over the live window.
    fn totals(&self, window: &TimeBuckets<Tally>) -> (u64, u64) {
        let (calls, retries) = window.live().fold((0u64, 0u64), |(c, r), t| {
            (c.saturating_add(t.calls), r + t.retries)
        });
        let earned =
            u64::try_from(millionths::scale(u128::from(calls), self.ppm)).unwrap_or(u64::MAX);
        (earned.saturating_add(self.floor), retries)
    }
}

#[cfg(all(test, not(async_patterns_loom)))]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    fn retries_allowed(budget: &RetryBudget, calls: u64) -> u64 {
        for _ in 0..calls {
            budget.deposit(at(0));
        }
        // Bounded: a budget that never runs out fails here, not by hanging.
        let bound = calls.saturating_mul(100).saturating_add(1_000);
        let n = (0..=bound)
            .take_while(|_| budget.try_withdraw(at(0)))
            .count() as u64;
        assert!(n <= bound, "the budget never ran out");
        n
    }

    #[test]
    fn fractional_percentages_are_exact() {
        let tenth_percent = RetryBudget::new(0.001, 0, SEC).unwrap();
        assert_eq!(retries_allowed(&tenth_percent, 1_000), 1);
        let nearly_all = RetryBudget::new(0.999, 0, SEC).unwrap();
        assert_eq!(retries_allowed(&nearly_all, 1_000), 999);
        let twenty = RetryBudget::new(0.2, 0, SEC).unwrap();
        assert_eq!(retries_allowed(&twenty, 10), 2);
    }

    #[test]
    fn the_floor_allows_retries_without_calls() {
        let budget = RetryBudget::new(0.0, 5, Duration::from_secs(2)).unwrap();
        assert_eq!(retries_allowed(&budget, 0), 10);
    }

    #[test]
    fn old_calls_and_retries_slide_out_of_the_window() {
        let budget = RetryBudget::new(1.0, 0, SEC).unwrap();
        budget.deposit(at(0));
        assert!(budget.try_withdraw(at(0)));
        assert!(!budget.try_withdraw(at(500)));
        assert_eq!(
            budget.available(at(1_100)),
            0,
            "the deposit has slid out too"
        );
        budget.deposit(at(1_100));
        assert!(budget.try_withdraw(at(1_100)));
    }

    #[test]
    fn a_backward_clock_step_earns_nothing() {
        let budget = RetryBudget::new(1.0, 0, SEC).unwrap();
        budget.deposit(at(5_000));
        assert!(budget.try_withdraw(at(5_000)));
        // Back in time: the same (newest) bucket, no fresh allowance.
        assert!(!budget.try_withdraw(at(0)));
    }

    #[test]
    fn bad_budgets_are_typed_errors() {
        assert_eq!(
            RetryBudget::new(-0.1, 1, SEC).unwrap_err(),
            BudgetError::RatioOutOfRange(-0.1)
        );
        assert!(matches!(
            RetryBudget::new(f64::NAN, 1, SEC),
            Err(BudgetError::RatioOutOfRange(_))
        ));
        assert_eq!(
            RetryBudget::new(100.5, 1, SEC).unwrap_err(),
            BudgetError::RatioOutOfRange(100.5)
        );
        assert_eq!(
            RetryBudget::new(0.1, 1, Duration::from_nanos(9)).unwrap_err(),
            BudgetError::WindowTooShort(Duration::from_nanos(9))
        );
        assert_eq!(
            RetryBudget::new(0.0, 0, SEC).unwrap_err(),
            BudgetError::NoRetries
        );
        // Under half a millionth rounds to no share at all.
        assert_eq!(
            RetryBudget::new(4e-7, 0, SEC).unwrap_err(),
            BudgetError::NoRetries
        );
    }

    #[test]
    fn the_ratio_is_rounded_to_the_nearest_millionth() {
        // Written halfway, each rounds up (their f64s lie a hair below the
        // half, but the product in f64 lands on it): 5e-7 counts as one
        // millionth (1 retry per 10⁶ calls), 1.5e-6 as two.
        for (ratio, allowed) in [(5e-7, 1), (1.5e-6, 2), (0.123_456_5, 123_457)] {
            let budget = RetryBudget::new(ratio, 0, SEC).unwrap();
            for _ in 0..1_000_000 {
                budget.deposit(at(0));
            }
            assert_eq!(budget.available(at(0)), allowed, "ratio {ratio}");
        }
    }
}
