//! tokio adapters for `async-patterns`.
//!
//! [`TokioTimer`] implements the core's [`Clock`] and [`Timer`] on tokio's
//! clock and `sleep_until`. tokio's clock is the one tokio's paused time
//! (`#[tokio::test(start_paused = true)]`) and turmoil's simulations drive, so
//! a pattern given a `TokioTimer` runs in virtual time under either, and in
//! real time in production.
//!
//! # Guarantees, and the check that proves each
//!
//! * `now()` is the time since the timer was created on tokio's clock, so it
//!   follows paused time exactly: `now_follows_paused_time`.
//! * `sleep_until(t)` completes at exactly `t` in virtual time, not before:
//!   `sleep_until_completes_at_exact_virtual_deadline`.
//! * A deadline too far out for tokio (e.g. [`Instant::MAX`]) never panics; it
//!   just never comes: `far_deadline_does_not_panic`.
//! * [`entropy_seed`] gives every call (and every process) its own seed, so a
//!   fleet of retriers seeded with it draws distinct, uniformly spread
//!   jitter: `fleet_seeded_from_entropy_draws_distinct_uniform_delays` (200
//!   retriers; a χ² test of their delays at a false-alarm rate of 10⁻⁶).
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use async_patterns::time::{Clock, Timer};
//! use async_patterns_tokio::TokioTimer;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let timer = TokioTimer::new();
//! timer.sleep(Duration::from_secs(3600)).await; // instant under paused time
//! assert_eq!(timer.now().as_duration(), Duration::from_secs(3600));
//! # });
//! ```

use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_patterns::time::{Clock, Instant, Timer};

/// A seed for a retry policy's jitter in production, different in every
/// process and on every call:
/// `retry::RetryPolicy::builder().seed(async_patterns_tokio::entropy_seed())`.
///
/// The core never seeds itself (its simulations must replay exactly), so
/// this is where randomness comes in, on purpose and in sight. It hashes a
/// per-call counter, the wall clock and the process id with the standard
/// library's randomly keyed hasher (whose keys come from the operating
/// system's random source): no new dependency. Not for cryptography; for
/// tests and simulations, use a fixed seed instead.
pub fn entropy_seed() -> u64 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    let wall = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(wall);
    h.write_u32(std::process::id());
    h.finish()
}

/// About 30 years: what tokio itself uses for "never".
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// The core's [`Clock`] and [`Timer`] on tokio's clock. Its epoch
/// ([`Instant::ZERO`]) is the moment it was created. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct TokioTimer {
    epoch: tokio::time::Instant,
}

impl TokioTimer {
    /// A timer whose epoch is tokio's "now". Call it inside a runtime with
    /// time enabled (as for any tokio timer).
    pub fn new() -> Self {
        TokioTimer {
            epoch: tokio::time::Instant::now(),
        }
    }

    /// The tokio instant that `instant` on this timer stands for, clamped to
    /// what tokio can represent.
    pub fn to_tokio(&self, instant: Instant) -> tokio::time::Instant {
        self.epoch
            .checked_add(instant.as_duration())
            .unwrap_or_else(|| tokio::time::Instant::now() + FAR_FUTURE)
    }
}

impl Default for TokioTimer {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioTimer {
    #[inline]
    fn now(&self) -> Instant {
        let since = tokio::time::Instant::now().saturating_duration_since(self.epoch);
        // Whole seconds and the rest, in u64 (saturating after ~584 years):
        // cheaper than the u128 of `Duration::as_nanos`.
        let nanos = since
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(since.subsec_nanos()));
        Instant::from_nanos(nanos)
    }
}

impl Timer for TokioTimer {
    type Sleep = tokio::time::Sleep;
    fn sleep_until(&self, deadline: Instant) -> tokio::time::Sleep {
        tokio::time::sleep_until(self.to_tokio(deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn now_follows_paused_time() {
        let timer = TokioTimer::new();
        assert_eq!(timer.now(), Instant::ZERO);
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(timer.now().as_duration(), Duration::from_millis(1500));
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_until_completes_at_exact_virtual_deadline() {
        let timer = TokioTimer::new();
        let deadline = Instant::from_duration(Duration::from_millis(250));
        let mut sleep = std::pin::pin!(timer.sleep_until(deadline));
        tokio::time::advance(Duration::from_millis(249)).await;
        assert!(futures_poll_once(sleep.as_mut()).await.is_pending());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(futures_poll_once(sleep.as_mut()).await.is_ready());
        assert_eq!(timer.now(), deadline);
    }

    #[tokio::test(start_paused = true)]
    async fn far_deadline_does_not_panic() {
        let timer = TokioTimer::new();
        let mut sleep = std::pin::pin!(timer.sleep_until(Instant::MAX));
        assert!(futures_poll_once(sleep.as_mut()).await.is_pending());
    }

    /// Polls `fut` exactly once.
    async fn futures_poll_once<F: std::future::Future>(
        mut fut: std::pin::Pin<&mut F>,
    ) -> std::task::Poll<F::Output> {
        std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await
    }
}
