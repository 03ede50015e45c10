//! Retry against reference models: the delays against their jitter bounds
//! (recomputed from the policy's numbers), and the retrier against a
//! sequential model that replays the same schedule, attempt outcomes and
//! attempt durations on paper, including a budget shared across runs that
//! recomputes its window from the whole history. Everything runs in virtual
//! time on a `ManualClock`. Attempts may also fail with a refusal that
//! names an instant (as our breaker and limiter do): the model puts that
//! retry off to the later of the instant and the policy's delay. Every
//! attempt must be handed the one overall deadline, never a fresh one.
//! Failing cases persist in
//! `retry_model.proptest-regressions`.

#[path = "support/virtual_time.rs"]
mod virtual_time;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_patterns::deadline::Deadline;
use async_patterns::retry::{
    Attempt, Decision, GaveUp, Jitter, Retrier, RetryBudget, RetryEvent, RetryPolicy,
};
use async_patterns::rng::SplitMix64;
use async_patterns::time::{Clock, Instant, ManualClock, Timer};
use proptest::prelude::*;

fn jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated)
    ]
}

#[derive(Debug, Clone)]
struct Backoff {
    base_ns: u64,
    /// The growth factor as an exact fraction (numerator, denominator): the
    /// model grows ceilings in integers; the policy is handed it as an `f64`.
    factor: (u64, u64),
    cap_ns: u64,
    jitter: Jitter,
}

impl Backoff {
    fn factor_f64(&self) -> f64 {
        self.factor.0 as f64 / self.factor.1 as f64
    }
}

/// Microsecond-scale backoffs, and nanosecond-scale ones whose few possible
/// values make an off-by-one at a bound likely to be drawn.
fn backoff() -> impl Strategy<Value = Backoff> {
    let scale = prop_oneof![(1u64..=5_000_000, 0u64..=50_000_000), (1u64..=6, 0u64..=12),];
    // Thousandths (1.001 is 1000999.9999999999 millionths in f64), and
    // whole or half factors.
    let factor = prop_oneof![
        (1_000u64..4_000).prop_map(|n| (n, 1_000)),
        (2u64..8).prop_map(|n| (n, 2)),
    ];
    (scale, factor, jitter()).prop_map(|((base_ns, extra), factor, jitter)| Backoff {
        base_ns,
        factor,
        cap_ns: base_ns + extra,
        jitter,
    })
}

fn policy(b: &Backoff, seed: u64) -> RetryPolicy {
    RetryPolicy::builder()
        .exponential(
            Duration::from_nanos(b.base_ns),
            b.factor_f64(),
            Duration::from_nanos(b.cap_ns),
        )
        .jitter(b.jitter)
        .seed(seed)
        .build()
        .expect("valid by construction")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn delays_stay_within_their_jitter_bounds(b in backoff(), seed: u64, id: u64) {
        let (base, cap) = (b.base_ns, b.cap_ns);
        let (num, den) = b.factor;
        // The documented ceilings: base, then each the last × num / den,
        // rounded down, never above the cap.
        let mut c = base;
        let mut previous = base;
        for (n, delay) in policy(&b, seed).schedule(id).take(40).enumerate() {
            let d = u64::try_from(delay.as_nanos()).unwrap();
            let (lo, hi) = match b.jitter {
                Jitter::None => (c, c),
                Jitter::Full => (0, c),
                Jitter::Equal => (c - c / 2, c),
                Jitter::Decorrelated => (base.min(cap), (previous * 3).min(cap)),
            };
            prop_assert!(lo <= d && d <= hi, "retry {n}: {d} ns outside {lo}..={hi}");
            prop_assert!(d <= cap);
            previous = d;
            c = (c * num / den).min(cap);
        }
    }

    #[test]
    fn same_seed_same_delays(b in backoff(), seed: u64, id in 0u64..1_000) {
        let p = policy(&b, seed);
        let a: Vec<Duration> = p.schedule(id).take(16).collect();
        prop_assert_eq!(&a, &p.schedule(id).take(16).collect::<Vec<_>>());
        // Another retrier's stream differs, unless nothing is random.
        let spread = match b.jitter {
            Jitter::None => false,
            // Draws span base..=3 x previous, clamped at the cap: with the
            // cap near the base nearly every draw is the cap itself.
            Jitter::Decorrelated => b.cap_ns >= 2 * b.base_ns && b.base_ns >= 1_000,
            Jitter::Full | Jitter::Equal => b.base_ns >= 1_000,
        };
        if spread {
            prop_assert_ne!(a, p.schedule(id + 1).take(16).collect::<Vec<_>>());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Ok,
    Retryable,
    Fatal,
    /// Refused until this many ms after the attempt ends (a breaker's or a
    /// limiter's "not before").
    RefusedFor(u64),
}

#[derive(Debug, Clone)]
struct Script {
    max_attempts: u32,
    max_elapsed_ms: Option<u64>,
    constant_ms: Option<u64>,
    backoff: Backoff,
    seed: u64,
    /// (ratio, floor per second, window in ms)
    budget: Option<(f64, u32, u64)>,
    /// Per run: each attempt's outcome and duration in ms, and the idle
    /// time before the run.
    runs: Vec<(u64, Vec<(Outcome, u64)>)>,
}

fn script() -> impl Strategy<Value = Script> {
    let attempt = (
        prop_oneof![
            3 => Just(Outcome::Retryable),
            1 => Just(Outcome::Ok),
            1 => Just(Outcome::Fatal),
            1 => (0u64..=300).prop_map(Outcome::RefusedFor),
        ],
        0u64..=30,
    );
    let run = (0u64..=500, prop::collection::vec(attempt, 1..=8));
    (
        1u32..=6,
        prop::option::of(1u64..=200),
        prop::option::of(0u64..=20),
        backoff(),
        any::<u64>(),
        prop::option::of((
            prop_oneof![Just(0.0), Just(0.1), Just(0.5), Just(1.0)],
            0u32..=3,
            prop_oneof![Just(100u64), Just(1_000)],
        )),
        prop::collection::vec(run, 1..=6),
    )
        .prop_map(
            |(max_attempts, max_elapsed_ms, constant_ms, backoff, seed, budget, runs)| Script {
                max_attempts,
                max_elapsed_ms,
                constant_ms,
                backoff,
                seed,
                // A budget allowing nothing is refused at build: skip it.
                budget: budget.filter(|&(r, f, w)| r > 0.0 || u64::from(f) * w >= 1_000),
                runs,
            },
        )
}

impl Script {
    fn policy(&self) -> RetryPolicy {
        let mut b = RetryPolicy::builder()
            .max_attempts(self.max_attempts)
            .jitter(self.backoff.jitter)
            .seed(self.seed);
        b = match self.constant_ms {
            Some(ms) => b.constant(Duration::from_millis(ms)),
            None => b.exponential(
                Duration::from_nanos(self.backoff.base_ns),
                self.backoff.factor_f64(),
                Duration::from_nanos(self.backoff.cap_ns),
            ),
        };
        if let Some(ms) = self.max_elapsed_ms {
            b = b.max_elapsed(Duration::from_millis(ms));
        }
        b.build().expect("valid by construction")
    }
}

/// What a run ended with: the attempt count, and the success or the reason.
type RunResult = (u32, Result<(), GaveUp>);

/// The budget, recomputed from its whole history: 10 buckets, the window
/// being the newest bucket seen and the nine before it.
struct BudgetModel {
    ratio_ppm: u64,
    floor: u64,
    bucket_ns: u64,
    newest: u64,
    /// (bucket, is_retry)
    events: Vec<(u64, bool)>,
}

impl BudgetModel {
    fn bucket(&mut self, now: u64) -> u64 {
        self.newest = self.newest.max(now / self.bucket_ns);
        self.newest
    }
    fn deposit(&mut self, now: u64) {
        let b = self.bucket(now);
        self.events.push((b, false));
    }
    fn withdraw(&mut self, now: u64) -> bool {
        let b = self.bucket(now);
        let live = self.events.iter().filter(|(e, _)| e + 10 > b);
        let (calls, retries) =
            live.fold(
                (0u64, 0u64),
                |(c, r), (_, retry)| {
                    if *retry { (c, r + 1) } else { (c + 1, r) }
                },
            );
        let allowed = calls * self.ratio_ppm / 1_000_000 + self.floor;
        if retries < allowed {
            self.events.push((b, true));
            true
        } else {
            false
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn retrier_matches_reference_model(s in script()) {
        let policy = s.policy();
        let clock = ManualClock::new();
        let events: Arc<Mutex<Vec<RetryEvent>>> = Arc::default();
        let sink = events.clone();
        let observed_at = clock.clone();
        let reported_late: Arc<Mutex<Vec<RetryEvent>>> = Arc::default();
        let late = reported_late.clone();
        let mut retrier = Retrier::new(policy.clone(), clock.clone())
            .with_id(7)
            .with_observer(move |e| {
                // Reported before the sleep: the clock still reads the
                // instant the failure was seen.
                if observed_at.now() != e.at {
                    late.lock().unwrap().push(*e);
                }
                sink.lock().unwrap().push(*e)
            });
        let mut model_budget = None;
        if let Some((ratio, floor, window_ms)) = s.budget {
            let window = Duration::from_millis(window_ms);
            retrier = retrier.with_budget(Arc::new(RetryBudget::new(ratio, floor, window).unwrap()));
            model_budget = Some(BudgetModel {
                ratio_ppm: (ratio * 1e6).round() as u64,
                floor: u64::from(floor) * window_ms / 1_000,
                bucket_ns: window_ms * 100_000,
                newest: 0,
                events: Vec::new(),
            });
        }

        let mut retried = 0u64;
        for (run, (idle_ms, attempts)) in s.runs.iter().enumerate() {
            clock.advance(Duration::from_millis(*idle_ms));
            events.lock().unwrap().clear();
            let start = clock.now();

            // The model: the same schedule, on paper.
            // The retrier numbers only the calls that retry.
            let mut schedule = policy.schedule(SplitMix64::derive(7, retried).next_u64());
            if attempts[0].0 != Outcome::Ok {
                retried += 1;
            }
            let deadline = s.max_elapsed_ms.map(|ms| start + Duration::from_millis(ms));
            if let Some(m) = &mut model_budget { m.deposit(start.as_nanos()); }
            let mut t = start;
            let mut expected_delays = Vec::new();
            let expected: RunResult = 'model: {
                for n in 1.. {
                    let (outcome, ms) = attempts.get(n as usize - 1).copied().unwrap_or((Outcome::Retryable, 0));
                    t = t + Duration::from_millis(ms);
                    let mut delay = schedule.next().unwrap();
                    if let Outcome::RefusedFor(wait) = outcome {
                        delay = delay.max(Duration::from_millis(wait));
                    }
                    let reason = match outcome {
                        Outcome::Ok => break 'model (n, Ok(())),
                        Outcome::Fatal => Some(GaveUp::NotRetryable),
                        _ if n >= s.max_attempts => Some(GaveUp::Attempts),
                        _ if deadline.is_some_and(|d| t + delay >= d) => Some(GaveUp::Elapsed),
                        _ if model_budget.as_mut().is_some_and(|m| !m.withdraw(t.as_nanos())) => Some(GaveUp::Budget),
                        _ => None,
                    };
                    if let Some(r) = reason { break 'model (n, Err(r)); }
                    expected_delays.push((n, t, delay));
                    t = t + delay;
                }
                unreachable!()
            };

            // The real thing, in virtual time.
            let timer = clock.clone();
            let handed: Mutex<Vec<Option<Deadline>>> = Mutex::default();
            let op = |a: Attempt| {
                handed.lock().unwrap().push(a.deadline);
                let (outcome, ms) = attempts
                    .get(a.number as usize - 1)
                    .copied()
                    .unwrap_or((Outcome::Retryable, 0));
                let sleep = timer.sleep(Duration::from_millis(ms));
                let timer = timer.clone();
                async move {
                    sleep.await;
                    match outcome {
                        Outcome::Ok => Ok(()),
                        Outcome::RefusedFor(wait) => Err((outcome, Some(timer.now() + Duration::from_millis(wait)))),
                        _ => Err((outcome, None)),
                    }
                }
            };
            let classify = |e: &(Outcome, Option<Instant>)| match e {
                (_, Some(at)) => Decision::RetryAfter(*at),
                (Outcome::Retryable, None) => Decision::Retry,
                _ => Decision::Stop,
            };
            let fut = retrier.run_classified(op, classify);
            let (got, elapsed) = virtual_time::run(&clock, fut);
            let got: RunResult = match got {
                Ok(()) => (events.lock().unwrap().len() as u32 + 1, Ok(())),
                Err(e) => (e.attempts, Err(e.gave_up)),
            };
            prop_assert_eq!(got, expected, "run {}", run);
            prop_assert_eq!(elapsed, t.saturating_duration_since(start), "run {}", run);
            let seen: Vec<(u32, Instant, Duration)> = events
                .lock()
                .unwrap()
                .iter()
                .map(|e| (e.failed_attempt, e.at, e.delay))
                .collect();
            prop_assert_eq!(&seen, &expected_delays, "run {}", run);
            // Every attempt got the one overall deadline: what is left of
            // `max_elapsed` from the first attempt, never a fresh one.
            let want = deadline.map(Deadline::at);
            let handed = handed.into_inner().unwrap();
            prop_assert_eq!(handed.len() as u32, got.0);
            for (n, d) in handed.iter().enumerate() {
                prop_assert_eq!(*d, want, "attempt {} was handed another deadline", n + 1);
            }
            prop_assert!(reported_late.lock().unwrap().is_empty(), "retries reported after their sleep: {:?}", reported_late.lock().unwrap());
            // The invariants, stated directly.
            prop_assert!(got.0 <= s.max_attempts);
            if let Some(d) = deadline {
                for (_, at, delay) in &seen {
                    prop_assert!(*at + *delay < d, "a sleep ends past the deadline");
                }
            }
        }
    }
}
