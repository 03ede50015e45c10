//! The retry policy: how many attempts, how long in all, and the delays
//! between them (exponential, capped, jittered from a seeded generator).

use std::fmt;
use std::time::Duration;

use crate::millionths;
use crate::rng::SplitMix64;

/// How the delay before each retry is spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Exactly the exponential ceiling.
    None,
    /// Uniform between zero and the ceiling (AWS "full jitter").
    Full,
    /// Uniform between half the ceiling and the ceiling.
    Equal,
    /// Uniform between the base and three times the previous delay, capped
    /// (AWS "decorrelated jitter").
    Decorrelated,
}

/// Why a [`RetryPolicy`] was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum RetryConfigError {
    /// `max_attempts` was 0: not even the first call would be made.
    ZeroAttempts,
    /// An exponential backoff with a zero base would never wait (use
    /// [`RetryPolicyBuilder::constant`] with zero for that).
    ZeroBase,
    /// The growth factor is not a number from 1 to 1000 (the circuit
    /// breaker's multiplier has the same range).
    BadFactor(f64),
    /// The cap is below the base.
    CapBelowBase,
    /// `max_elapsed` was zero: no retry could ever be made.
    ZeroMaxElapsed,
    /// The policy jitters its delays but was given no seed: see the
    /// [module docs](crate::retry) on choosing one.
    NoSeed,
}

impl fmt::Display for RetryConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryConfigError::ZeroAttempts => f.write_str("max_attempts must be at least 1"),
            RetryConfigError::ZeroBase => {
                f.write_str("an exponential backoff needs a base above zero")
            }
            RetryConfigError::BadFactor(x) => {
                write!(f, "backoff factor {x} is not a number from 1 to 1000")
            }
            RetryConfigError::CapBelowBase => f.write_str("the backoff cap is below its base"),
            RetryConfigError::ZeroMaxElapsed => f.write_str("max_elapsed must be above zero"),
            RetryConfigError::NoSeed => f.write_str(
                "a jittered policy needs a seed: .seed(n) with a fixed n for tests and \
                 simulations, or a per-process random one in production (e.g. \
                 async_patterns_tokio::entropy_seed()), so a fleet does not retry in lockstep",
            ),
        }
    }
}

impl std::error::Error for RetryConfigError {}

/// A validated retry policy. Build one with [`RetryPolicy::builder`].
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub(super) max_attempts: u32,
    pub(super) max_elapsed: Option<Duration>,
    base: Duration,
    /// As given (what `Debug` shows).
    factor: f64,
    cap: Duration,
    jitter: Jitter,
    seed: u64,
    /// `base` and `cap` in nanoseconds (saturated), and the factor in
    /// millionths (10⁶ is no growth), for the schedule.
    base_ns: u64,
    cap_ns: u64,
    factor_millionths: u64,
}

/// Builds a [`RetryPolicy`]; [`build`](RetryPolicyBuilder::build) validates it.
///
/// Defaults: 3 attempts, exponential from 100 ms doubling up to 10 s, full
/// jitter, no overall limit on elapsed time, and **no seed**: a jittered
/// policy must be given one ([`seed`](Self::seed)).
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until built"]
pub struct RetryPolicyBuilder {
    max_attempts: u32,
    max_elapsed: Option<Duration>,
    base: Duration,
    factor: f64,
    cap: Duration,
    constant: bool,
    jitter: Jitter,
    seed: Option<u64>,
}

impl RetryPolicy {
    /// A builder with the defaults listed on [`RetryPolicyBuilder`].
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            max_attempts: 3,
            max_elapsed: None,
            base: Duration::from_millis(100),
            factor: 2.0,
            cap: Duration::from_secs(10),
            constant: false,
            jitter: Jitter::Full,
            seed: None,
        }
    }

    /// Attempts at most, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The overall limit on a call's time, attempts and waits included, if
    /// one was set.
    pub fn max_elapsed(&self) -> Option<Duration> {
        self.max_elapsed
    }

    /// The delays before retries 1, 2, … for retrier `id` (an endless
    /// iterator; the policy's attempt limit is the retrier's business).
    pub fn schedule(&self, id: u64) -> Schedule {
        let base = self.base_ns;
        Schedule {
            rng: SplitMix64::derive(self.seed, id),
            base,
            cap: self.cap_ns,
            factor: self.factor_millionths,
            jitter: self.jitter,
            ceiling: base,
            previous: base,
        }
    }
}

impl RetryPolicyBuilder {
    /// Attempts at most, the first included (1 = never retry).
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// No retry starts `d` or later after the first attempt began.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn max_elapsed(mut self, d: Duration) -> Self {
        self.max_elapsed = Some(d);
        self
    }

    /// Delays grow from `base` by `factor` (1 to 1000) per retry, up to
    /// `cap`: each ceiling is the last one × `factor`, rounded down to the
    /// nanosecond (exact integer arithmetic: the factor is kept as `m`
    /// millionths, rounded to the nearest, so one below 1.0000005 is 1: no
    /// growth). A base under `10⁶ / (m − 10⁶)` ns therefore never grows
    /// (under 2 ns for a factor of 1.5), which no real backoff meets.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn exponential(mut self, base: Duration, factor: f64, cap: Duration) -> Self {
        (self.base, self.factor, self.cap, self.constant) = (base, factor, cap, false);
        self
    }

    /// The same delay before every retry (zero is allowed), before jitter.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn constant(mut self, d: Duration) -> Self {
        (self.base, self.factor, self.cap, self.constant) = (d, 1.0, d, true);
        self
    }

    /// How delays are spread (default [`Jitter::Full`]).
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The seed every retrier's delays derive from (with its id). Required
    /// unless the jitter is [`Jitter::None`]: the core never seeds itself
    /// from the system. Give each process its own in production (e.g.
    /// `async_patterns_tokio::entropy_seed()`), or a fleet retries in
    /// lockstep; a fixed one in tests and simulations.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Validates the policy.
    pub fn build(self) -> Result<RetryPolicy, RetryConfigError> {
        if self.max_attempts == 0 {
            return Err(RetryConfigError::ZeroAttempts);
        }
        if self.max_elapsed == Some(Duration::ZERO) {
            return Err(RetryConfigError::ZeroMaxElapsed);
        }
        if !self.constant {
            if self.base.is_zero() {
                return Err(RetryConfigError::ZeroBase);
            }
            if !(1.0..=millionths::MAX_FACTOR).contains(&self.factor) {
                return Err(RetryConfigError::BadFactor(self.factor));
            }
            if self.cap < self.base {
                return Err(RetryConfigError::CapBelowBase);
            }
        }
        let seed = match (self.seed, self.jitter) {
            (Some(seed), _) => seed,
            // Nothing is drawn: the stream's seed never matters.
            (None, Jitter::None) => 0,
            (None, _) => return Err(RetryConfigError::NoSeed),
        };
        Ok(RetryPolicy {
            max_attempts: self.max_attempts,
            max_elapsed: self.max_elapsed,
            base: self.base,
            factor: self.factor,
            cap: self.cap,
            jitter: self.jitter,
            seed,
            base_ns: nanos(self.base),
            cap_ns: nanos(self.cap),
            // From 1 to 1000 (checked above, or 1.0 for a constant delay):
            // at most 10⁹ millionths.
            factor_millionths: millionths::of(self.factor),
        })
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The delays of one retrier, in order. See the [module docs](crate::retry).
#[derive(Debug, Clone)]
pub struct Schedule {
    rng: SplitMix64,
    base: u64,
    cap: u64,
    /// In millionths.
    factor: u64,
    jitter: Jitter,
    /// The un-jittered delay for the next retry, in nanoseconds (never
    /// above `cap`).
    ceiling: u64,
    /// The previous delay (decorrelated jitter).
    previous: u64,
}

impl Schedule {
    /// The exponential ceiling for the next retry, before jitter.
    pub fn ceiling(&self) -> Duration {
        Duration::from_nanos(self.ceiling)
    }
}

impl Iterator for Schedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(Duration::from_nanos(self.next_nanos()))
    }
}

impl Schedule {
    /// The next delay in nanoseconds (the retry loop's arithmetic is on
    /// the clock's nanoseconds, so it skips the `Duration` round trip).
    pub(super) fn next_nanos(&mut self) -> u64 {
        let ceiling = self.ceiling;
        let delay = match self.jitter {
            Jitter::None => ceiling,
            Jitter::Full => self.rng.between(0, ceiling),
            Jitter::Equal => self.rng.between(ceiling - ceiling / 2, ceiling),
            Jitter::Decorrelated => {
                let d = self
                    .rng
                    .between(self.base, self.previous.saturating_mul(3))
                    .min(self.cap);
                self.previous = d;
                d
            }
        };
        let grown = millionths::scale(u128::from(ceiling), self.factor);
        self.ceiling = u64::try_from(grown).map_or(self.cap, |g| g.min(self.cap));
        delay
    }
}
