//! The thread-safe breaker around the policy: the lock-free closed path,
//! the permits, `call`, and the errors a caller sees.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::config::BreakerConfig;
use super::policy::{BreakerState, Outcome, Policy, Transition};
use crate::Ending;
use crate::events::emit;
use crate::permit::{Held, Settle, permit_api};
use crate::sync::{AtomicU64, Mutex, Ordering, lock};
use crate::time::{Clock, Instant};

type Observer = Box<dyn Fn(&Transition) + Send + Sync>;

/// "Not now": the breaker refused the call without running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Open until the instant named.
    Open(Instant),
    /// Half-open with every probe slot taken.
    ProbesBusy,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Open(until) => write!(f, "circuit open until {until:?}"),
            Refused::ProbesBusy => f.write_str("circuit half-open and every probe slot is taken"),
        }
    }
}

impl std::error::Error for Refused {}

/// Why [`CircuitBreaker::call`] returned no value: the breaker refused to
/// run the call ("not now"), or the call ran and failed.
///
/// ```
/// use async_patterns::circuit_breaker::{CallError, CircuitBreaker, BreakerConfig, Refused};
/// use async_patterns::time::ManualClock;
///
/// let breaker = CircuitBreaker::new(
///     BreakerConfig::builder().consecutive_failures(1).build().unwrap(),
///     ManualClock::new(),
/// );
/// # futures::executor::block_on(async {
/// let failed = breaker.call(async { Err::<u32, _>("timeout") }).await;
/// assert_eq!(failed, Err(CallError::Inner("timeout")));
/// let refused = breaker.call(async { Ok::<u32, &str>(1) }).await;
/// assert!(matches!(refused, Err(CallError::Refused(Refused::Open(_)))));
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError<E> {
    /// The breaker did not run the call.
    Refused(Refused),
    /// The call ran and returned this error (recorded as a failure).
    Inner(E),
}

impl<E> CallError<E> {
    /// The call's own error, if it ran.
    pub fn into_inner(self) -> Option<E> {
        match self {
            CallError::Inner(e) => Some(e),
            CallError::Refused(_) => None,
        }
    }

    /// The refusal, if the breaker did not run the call.
    pub fn refused(&self) -> Option<Refused> {
        match self {
            CallError::Refused(r) => Some(*r),
            CallError::Inner(_) => None,
        }
    }
}

impl<E> From<Refused> for CallError<E> {
    fn from(r: Refused) -> Self {
        CallError::Refused(r)
    }
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Refused(r) => r.fmt(f),
            CallError::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CallError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Refused(r) => Some(r),
            CallError::Inner(e) => Some(e),
        }
    }
}

/// The lock-free word's layout: bit 63 set means "not closed, take the
/// lock"; otherwise bits 20..63 hold the closed state's generation (modulo
/// 2^43) and bits 0..20 how many more successes may be counted without the
/// lock.
pub(super) const NOT_CLOSED: u64 = 1 << 63;
pub(super) const QUIET_BITS: u32 = 20;
pub(super) const QUIET_MAX: u64 = (1 << QUIET_BITS) - 1;
pub(super) const GENERATION_MASK: u64 = (1 << (63 - QUIET_BITS)) - 1;

/// A thread-safe circuit breaker on an injected clock. See the
/// [module docs](crate::circuit_breaker).
///
/// While closed, admitting a call is one atomic load, and a success that
/// cannot move the state (see below) is one compare-and-swap: neither
/// takes the lock. Under the lock the breaker publishes, after every
/// change, how many successes in a row could not move the state; fast
/// successes count that budget down, and the next locked operation folds
/// them into the policy, in order, before it does anything else. A success
/// that could trip the breaker (the one that completes the minimum number
/// of calls, a slow call, any success under a time window), every failure
/// and every call outside the closed state take the lock.
///
/// Generations are compared modulo 2^43: a permit would have to stay out
/// across 8.8 trillion state changes to be mistaken for a current one.
pub struct CircuitBreaker<C> {
    pub(super) clock: C,
    pub(super) slow_threshold: Option<Duration>,
    /// See [`NOT_CLOSED`]; written under the lock after every locked
    /// operation, counted down by fast successes.
    pub(super) fast: AtomicU64,
    pub(super) locked: Mutex<Locked>,
    pub(super) observer: Option<Observer>,
}

pub(super) struct Locked {
    pub(super) policy: Policy,
    /// The quiet-success budget last published in `fast`.
    pub(super) quiet: u32,
}

impl<C: Clock> CircuitBreaker<C> {
    /// A closed breaker.
    pub fn new(config: BreakerConfig, clock: C) -> Self {
        let slow_threshold = config.window.and_then(|w| w.slow.map(|s| s.0));
        let policy = Policy::new(config);
        let quiet = policy.quiet_successes().min(QUIET_MAX as u32);
        CircuitBreaker {
            clock,
            slow_threshold,
            fast: AtomicU64::new(u64::from(quiet)),
            locked: Mutex::new(Locked { policy, quiet }),
            observer: None,
        }
    }

    /// Calls `observer` on every state change (outside the breaker's lock).
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn with_observer(mut self, observer: impl Fn(&Transition) + Send + Sync + 'static) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    /// The state as of the last call: **lazy**. Once the open duration has
    /// elapsed the breaker still reads `Open { until }` (with `until` now in
    /// the past) until the next [`try_acquire`](Self::try_acquire) moves it
    /// to half-open and tells the observer; reading the state never changes
    /// it. So `Open { until }` with `until <= now` means "will probe on the
    /// next call". (Tested by `state_is_lazy_until_the_next_call`.)
    pub fn state(&self) -> BreakerState {
        // Successes not yet folded in cannot have moved it.
        lock(&self.locked).policy.state()
    }

    /// Takes a permit to make one call, or refuses ("not now").
    #[inline]
    pub fn try_acquire(&self) -> Result<BreakerPermit<'_, C>, Refused> {
        let (generation, started) = self.admit()?;
        Ok(BreakerPermit(Held::new(
            self,
            Ticket {
                generation,
                started,
            },
        )))
    }

    /// [`try_acquire`](Self::try_acquire) for a permit that owns a handle
    /// to the breaker, so it can move into a spawned task or a response
    /// future (`'static` and `Send` when the clock is).
    #[inline]
    pub fn try_acquire_owned(self: Arc<Self>) -> Result<OwnedBreakerPermit<C>, Refused> {
        let (generation, started) = self.admit()?;
        Ok(OwnedBreakerPermit(Held::new(
            self,
            Ticket {
                generation,
                started,
            },
        )))
    }

    /// Admits one call: its generation and start.
    #[inline]
    pub(super) fn admit(&self) -> Result<(u64, Instant), Refused> {
        let word = self.fast.load(Ordering::Acquire);
        if word & NOT_CLOSED == 0 {
            // Closed: admitting changes nothing in the policy. The clock is
            // read only if call durations matter.
            let started = match self.slow_threshold {
                Some(_) => self.clock.now(),
                None => Instant::ZERO,
            };
            Ok((word >> QUIET_BITS, started))
        } else {
            self.try_acquire_locked()
        }
    }

    #[inline(never)]
    pub(super) fn try_acquire_locked(&self) -> Result<(u64, Instant), Refused> {
        let now = self.clock.now();
        let (generation, transition) = self
            .with_policy(now, |policy| policy.try_admit(now))
            .inspect_err(|r| {
                if *r == Refused::ProbesBusy {
                    async_patterns_assert::reachable!(crate::points::BREAKER_PROBE_REFUSED);
                }
            })?;
        self.notify(transition);
        Ok((generation & GENERATION_MASK, now))
    }

    /// Runs `fut` if the breaker admits it, recording `Err` as a failure:
    /// its value, or why there is none ([`CallError`]).
    pub async fn call<T, E, F>(&self, fut: F) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        match self.call_classified(fut, Result::is_err).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(CallError::Inner(e)),
            Err(refused) => Err(CallError::Refused(refused)),
        }
    }

    /// Runs `fut` if the breaker admits it; `is_failure` decides which
    /// outputs count as failures (e.g. not a 404). Dropping the returned
    /// future mid-call records nothing and frees the probe slot.
    pub async fn call_classified<O, F>(
        &self,
        fut: F,
        is_failure: impl FnOnce(&O) -> bool,
    ) -> Result<O, Refused>
    where
        F: Future<Output = O>,
    {
        let permit = self.try_acquire()?;
        let out = fut.await;
        if is_failure(&out) {
            permit.failure();
        } else {
            permit.success();
        }
        Ok(out)
    }

    /// A success: counted lock-free if the published budget allows it and
    /// the permit is from the current closed generation.
    #[inline]
    pub(super) fn succeed(&self, generation: u64, started: Instant) {
        let now = self.slow_threshold.map(|_| self.clock.now());
        let slow = self.is_slow(started, now);
        if !slow && self.count_quiet_success(generation) {
            return;
        }
        self.finish(generation, started, Ending::Succeeded, now);
    }

    pub(super) fn count_quiet_success(&self, generation: u64) -> bool {
        let mut word = self.fast.load(Ordering::Relaxed);
        // A not-closed word never matches: its generation bits read 2^43.
        while word >> QUIET_BITS == generation && word & QUIET_MAX > 0 {
            match self.fast.compare_exchange_weak(
                word,
                word - 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => word = actual,
            }
        }
        false
    }

    pub(super) fn is_slow(&self, started: Instant, now: Option<Instant>) -> bool {
        match (self.slow_threshold, now) {
            (Some(t), Some(now)) => now.saturating_duration_since(started) > t,
            _ => false,
        }
    }

    /// Records an outcome (`Some(failed)`) or a release (`None`) under the
    /// lock.
    #[inline(never)]
    pub(super) fn finish(
        &self,
        generation: u64,
        started: Instant,
        ending: Ending,
        now: Option<Instant>,
    ) {
        let now = now.unwrap_or_else(|| self.clock.now());
        let slow = self.is_slow(started, Some(now));
        let transition = self.with_policy(now, |policy| {
            // The permit's generation is the policy's modulo 2^43.
            let generation = (policy.generation() & !GENERATION_MASK) | generation;
            match ending {
                Ending::Succeeded => policy.record(
                    generation,
                    Outcome {
                        failed: false,
                        slow,
                    },
                    now,
                ),
                Ending::Failed => policy.record(generation, Outcome { failed: true, slow }, now),
                Ending::Abandoned => {
                    policy.release(generation);
                    None
                }
            }
        });
        self.notify(transition);
    }

    /// Runs `op` on the policy under the lock: first folds in the successes
    /// counted lock-free since the last publish, then runs `op`, then
    /// publishes the new state and budget for the lock-free paths.
    pub(super) fn with_policy<R>(&self, now: Instant, op: impl FnOnce(&mut Policy) -> R) -> R {
        let mut guard = lock(&self.locked);
        let Locked { policy, quiet } = &mut *guard;
        if *quiet > 0 {
            // The swap stops the count: later fast successes find no budget
            // and wait for this lock.
            let generation = policy.generation() & GENERATION_MASK;
            let left = self.fast.swap(generation << QUIET_BITS, Ordering::AcqRel) & QUIET_MAX;
            policy.record_quiet_successes(*quiet - left as u32, now);
        }
        let out = op(policy);
        let word = match policy.state() {
            BreakerState::Closed => {
                *quiet = policy.quiet_successes().min(QUIET_MAX as u32);
                (policy.generation() & GENERATION_MASK) << QUIET_BITS | u64::from(*quiet)
            }
            _ => {
                *quiet = 0;
                NOT_CLOSED
            }
        };
        self.fast.store(word, Ordering::Release);
        out
    }

    pub(super) fn notify(&self, transition: Option<Transition>) {
        let Some(t) = transition else { return };
        match (t.from, t.to) {
            (_, BreakerState::Open { .. }) => {
                async_patterns_assert::reachable!(crate::points::BREAKER_OPENED)
            }
            (BreakerState::HalfOpen { .. }, BreakerState::Closed) => {
                async_patterns_assert::reachable!(crate::points::BREAKER_CLOSED_AGAIN)
            }
            _ => {}
        }
        emit!(
            target: "async_patterns::circuit_breaker",
            tracing::Level::INFO,
            from = ?t.from,
            to = ?t.to,
            generation = t.generation,
            cause = ?t.cause,
            "circuit breaker transition"
        );
        if let Some(observer) = &self.observer {
            observer(&t);
        }
    }
}

impl<C> fmt::Debug for CircuitBreaker<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("state", &lock(&self.locked).policy.state())
            .finish()
    }
}

/// A breaker's ticket: the generation and start of an admitted call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    pub(super) generation: u64,
    pub(super) started: Instant,
}

impl<C: Clock> Settle for CircuitBreaker<C> {
    type Ticket = Ticket;

    #[inline]
    fn settle(&self, t: Ticket, ending: Ending) {
        match ending {
            Ending::Succeeded => self.succeed(t.generation, t.started),
            _ => self.finish(t.generation, t.started, ending, None),
        }
    }
}

/// Leave to make one call; say how it went with
/// [`success`](BreakerPermit::success) or
/// [`failure`](BreakerPermit::failure). Dropping it unrecorded frees its
/// probe slot and counts as nothing.
#[must_use = "record the call's outcome, or drop the permit to abandon the call"]
pub struct BreakerPermit<'a, C: Clock>(Held<&'a CircuitBreaker<C>>);

/// A [`BreakerPermit`] that owns an `Arc` of its breaker, from
/// [`CircuitBreaker::try_acquire_owned`]: the same reports, the same
/// release on drop.
#[must_use = "record the call's outcome, or drop the permit to abandon the call"]
pub struct OwnedBreakerPermit<C: Clock>(Held<Arc<CircuitBreaker<C>>>);

permit_api!(
    BreakerPermit<'_, C>,
    "The call succeeded.",
    "The call failed."
);
permit_api!(
    OwnedBreakerPermit<C>,
    "The call succeeded.",
    "The call failed."
);
