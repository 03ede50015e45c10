//! The pure state machine: closed, open, half-open, with generations. No
//! clock, no lock, no futures.

use std::time::Duration;

use super::breaker::Refused;
use super::config::BreakerConfig;
use super::window::{Counts, Outcomes};
use crate::millionths;
use crate::time::Instant;

/// The breaker's state, as observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls run.
    Closed,
    /// Calls are refused until `until`.
    Open {
        /// When probing may start.
        until: Instant,
    },
    /// Probing: `in_flight` probes running, `successes` so far.
    HalfOpen {
        /// Probes running now (≤ the configured maximum).
        in_flight: u32,
        /// Successful probes since the breaker went half-open.
        successes: u32,
    },
}

/// A state change, as passed to the observer (and, with the `tracing`
/// feature, logged as an event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transition {
    /// When it happened.
    pub at: Instant,
    /// The state before.
    pub from: BreakerState,
    /// The state after.
    pub to: BreakerState,
    /// The generation the change began (every change begins a new one;
    /// outcomes of calls admitted in an earlier one are ignored).
    pub generation: u64,
    /// Why it changed.
    pub cause: TransitionCause,
}

/// Why the breaker changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransitionCause {
    /// Closed → open: `k` failures in a row.
    ConsecutiveFailures,
    /// Closed → open: the window's failure rate reached its threshold.
    FailureRate,
    /// Closed → open: the window's slow-call rate reached its threshold
    /// (and the failure rate did not).
    SlowCallRate,
    /// Half-open → open: a probe failed.
    ProbeFailed,
    /// Open → half-open: the open duration elapsed and a call came.
    OpenElapsed,
    /// Half-open → closed: enough probes succeeded.
    ProbesSucceeded,
}

/// What a finished call was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Outcome {
    /// It failed (by the caller's classification).
    pub(super) failed: bool,
    /// It took longer than the slow-call threshold.
    pub(super) slow: bool,
}

/// The pure state machine: no clock, no lock, no futures. Every method takes
/// the current instant; [`CircuitBreaker`] is the thread-safe wrapper, and
/// the only one that may call it: `record` and `release` trust that each
/// admitted generation is ended once, which [`BreakerPermit`] (consumed by its
/// outcome, released once on drop) guarantees.
#[derive(Debug, Clone)]
pub(super) struct Policy {
    pub(super) config: BreakerConfig,
    pub(super) state: BreakerState,
    pub(super) generation: u64,
    pub(super) consecutive_failures: u32,
    /// The open duration of the next trip (reset by a close).
    pub(super) open_next: Duration,
    /// Outcomes in the rate window while closed.
    pub(super) outcomes: Outcomes,
}

impl Policy {
    /// A closed breaker.
    pub(super) fn new(config: BreakerConfig) -> Self {
        Policy {
            outcomes: Outcomes::new(config.window),
            open_next: config.open_for,
            config,
            state: BreakerState::Closed,
            generation: 0,
            consecutive_failures: 0,
        }
    }

    /// The current state (an expired open state reads as open until the
    /// next admission attempt moves it to half-open).
    pub(super) fn state(&self) -> BreakerState {
        self.state
    }

    /// The generation: bumped on every transition.
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Tries to admit a call at `now`; on success returns the generation to
    /// stamp its outcome with.
    pub(super) fn try_admit(&mut self, now: Instant) -> Result<(u64, Option<Transition>), Refused> {
        let mut transition = None;
        if let BreakerState::Open { until } = self.state {
            if now < until {
                return Err(Refused::Open(until));
            }
            transition = Some(self.move_to(
                BreakerState::HalfOpen {
                    in_flight: 0,
                    successes: 0,
                },
                now,
                TransitionCause::OpenElapsed,
            ));
        }
        if let BreakerState::HalfOpen { in_flight, .. } = &mut self.state {
            if *in_flight >= self.config.half_open_probes {
                return Err(Refused::ProbesBusy);
            }
            *in_flight += 1;
        }
        Ok((self.generation, transition))
    }

    /// Records the outcome of a call admitted in `generation`. Outcomes
    /// from an earlier generation are ignored.
    pub(super) fn record(
        &mut self,
        generation: u64,
        outcome: Outcome,
        now: Instant,
    ) -> Option<Transition> {
        if generation != self.generation {
            return None;
        }
        match self.state {
            BreakerState::Closed => self.record_closed(outcome, now),
            BreakerState::HalfOpen {
                in_flight,
                successes,
            } => {
                if outcome.failed {
                    return Some(self.trip(now, TransitionCause::ProbeFailed));
                }
                let successes = successes + 1;
                if successes >= self.config.close_after {
                    return Some(self.close(now));
                }
                self.state = BreakerState::HalfOpen {
                    in_flight: in_flight.saturating_sub(1),
                    successes,
                };
                None
            }
            // Open never admits, so no current-generation call can end here.
            BreakerState::Open { .. } => None,
        }
    }

    /// A call admitted in `generation` ended without an outcome (dropped):
    /// frees its probe slot, counts as nothing.
    pub(super) fn release(&mut self, generation: u64) {
        if generation != self.generation {
            return;
        }
        if let BreakerState::HalfOpen { in_flight, .. } = &mut self.state {
            *in_flight = in_flight.saturating_sub(1);
        }
    }

    pub(super) fn record_closed(&mut self, outcome: Outcome, now: Instant) -> Option<Transition> {
        if outcome.failed {
            self.consecutive_failures += 1;
        } else {
            self.consecutive_failures = 0;
        }
        if let Some(k) = self.config.consecutive_failures
            && self.consecutive_failures >= k
        {
            return Some(self.trip(now, TransitionCause::ConsecutiveFailures));
        }
        let w = self.config.window?;
        let counts = self.outcomes.push(outcome, now);
        w.trips(counts).then(|| self.trip(now, w.cause(counts)))
    }

    /// How many fast successes in a row could be recorded now without any
    /// of them moving the state, so that they may be counted without the
    /// lock and folded in later, in order, by
    /// [`record_quiet_successes`](Self::record_quiet_successes).
    ///
    /// Only a closed breaker has any. With a count window, a success never
    /// raises a rate: below the window size it adds a call and no failure;
    /// at the size it replaces the oldest outcome. So once the minimum
    /// number of calls has been judged, no success can trip the breaker, and
    /// before that only the success that reaches the minimum can. A time
    /// window may drop old outcomes between any two calls, so it has none.
    pub(super) fn quiet_successes(&self) -> u32 {
        if self.state != BreakerState::Closed {
            return 0;
        }
        let Some(w) = self.config.window else {
            return u32::MAX; // consecutive failures only
        };
        let Outcomes::Calls { counts, .. } = &self.outcomes else {
            return 0;
        };
        if counts.calls >= w.min_calls {
            return u32::MAX;
        }
        let at_minimum = Counts {
            calls: w.min_calls,
            ..*counts
        };
        if w.trips(at_minimum) {
            w.min_calls - counts.calls - 1
        } else {
            u32::MAX
        }
    }

    /// Records `n` fast successes counted while
    /// [`quiet_successes`](Self::quiet_successes) allowed at least `n`.
    pub(super) fn record_quiet_successes(&mut self, n: u32, now: Instant) {
        // Past the window's size, more successes leave the same window.
        let n = match &self.outcomes {
            Outcomes::None => n.min(1),
            Outcomes::Calls { size, .. } => n.min(u32::try_from(*size).unwrap_or(u32::MAX)),
            Outcomes::Time(_) => n,
        };
        for _ in 0..n {
            let transition = self.record_closed(
                Outcome {
                    failed: false,
                    slow: false,
                },
                now,
            );
            debug_assert!(transition.is_none(), "a quiet success moved the state");
        }
    }

    pub(super) fn trip(&mut self, now: Instant, cause: TransitionCause) -> Transition {
        let open_for = self.open_next;
        // Rounded down; below 2⁶⁴ · 10⁹ < 2¹²⁸, and capped below 2⁶⁴.
        let grown = millionths::scale(open_for.as_nanos(), self.config.multiplier);
        let cap = self.config.max_open_for.as_nanos();
        self.open_next = Duration::from_nanos(u64::try_from(grown.min(cap)).unwrap_or(u64::MAX));
        self.move_to(
            BreakerState::Open {
                until: now + open_for,
            },
            now,
            cause,
        )
    }

    pub(super) fn close(&mut self, now: Instant) -> Transition {
        self.open_next = self.config.open_for;
        self.move_to(BreakerState::Closed, now, TransitionCause::ProbesSucceeded)
    }

    pub(super) fn move_to(
        &mut self,
        to: BreakerState,
        now: Instant,
        cause: TransitionCause,
    ) -> Transition {
        let from = self.state;
        self.state = to;
        self.generation += 1;
        self.consecutive_failures = 0;
        self.outcomes.clear();
        Transition {
            at: now,
            from,
            to,
            generation: self.generation,
            cause,
        }
    }
}
