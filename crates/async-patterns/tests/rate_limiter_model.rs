//! The rate limiter against a sequential token-bucket reference model.
//!
//! * On a monotonic clock every decision, including the earliest instant a
//!   refused request would conform, must equal the model's exactly.
//! * On a faulty clock (steps back, leaps ahead) the limiter must stay within
//!   the envelope: admitted credit ≤ burst + (highest − lowest reading it
//!   has seen), so ground the clock covers twice is never paid twice, and it
//!   must admit `n` cells once the clock is `n`
//!   intervals past its previous high point (a backward step never locks out
//!   for longer than the step).
//!
//! Failing cases persist in `rate_limiter_model.proptest-regressions`.

use std::time::Duration;

use std::num::NonZeroUsize;

use async_patterns::rate_limiter::{CheckError, KeyedRateLimiter, Quota, RateLimiter};
use async_patterns::time::{Instant, ManualClock};
use proptest::prelude::*;

/// Enough keys that several share a shard (there are 16).
const KEYS: usize = 40;

fn quota() -> impl Strategy<Value = Quota> {
    (1u32..=10, 1u64..=2_000, 1u32..=8).prop_map(|(cells, period_ms, burst)| {
        Quota::new(cells, Duration::from_millis(period_ms))
            .and_then(|q| q.with_burst(burst))
            .expect("valid by construction")
    })
}

/// The reference: credit in nanoseconds, refilled by elapsed time, capped at
/// a full burst.
struct TokenBucket {
    interval: u128,
    capacity: u128,
    credit: u128,
}

impl TokenBucket {
    fn new(q: Quota) -> Self {
        let interval = q.interval().as_nanos();
        let capacity = interval * u128::from(q.burst());
        TokenBucket {
            interval,
            capacity,
            credit: capacity,
        }
    }

    fn elapse(&mut self, ns: u128) {
        self.credit = (self.credit + ns).min(self.capacity);
    }

    /// `Ok`, or the nanoseconds until the request would conform.
    fn take(&mut self, n: u32) -> Result<(), u128> {
        let cost = self.interval * u128::from(n);
        if self.credit >= cost {
            self.credit -= cost;
            Ok(())
        } else {
            Err(cost - self.credit)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn limiter_matches_token_bucket_model(
        q in quota(),
        // (advance in quarter-intervals, cells asked for)
        ops in prop::collection::vec((0u64..=12, 0u32..=9), 1..80),
    ) {
        let clock = ManualClock::new();
        let limiter = RateLimiter::new(q, clock.clone());
        let mut model = TokenBucket::new(q);
        let quarter = q.interval() / 4;
        for (quarters, n) in ops {
            let d = quarter * u32::try_from(quarters).unwrap();
            clock.advance(d);
            model.elapse(d.as_nanos());
            agrees(q, limiter.check_n(n), &mut model, n, clock.now_nanos())?;
        }
    }

    #[test]
    fn keyed_limiter_matches_independent_models(
        q in quota(),
        // (key, advance in quarter-intervals, cells asked for)
        ops in prop::collection::vec((0usize..KEYS, 0u64..=12, 0u32..=9), 1..120),
    ) {
        let clock = ManualClock::new();
        // Room for every key in every shard (8 shards of 80 for 40 keys):
        // exact agreement holds only
        // while no shard is full of busy keys (the tight-memory property
        // below covers that case).
        let limiter = KeyedRateLimiter::new(q, clock.clone(), NonZeroUsize::new(16 * KEYS).unwrap());
        let mut models: Vec<TokenBucket> = (0..KEYS).map(|_| TokenBucket::new(q)).collect();
        let quarter = q.interval() / 4;
        for (key, quarters, n) in ops {
            let d = quarter * u32::try_from(quarters).unwrap();
            clock.advance(d);
            for m in &mut models {
                m.elapse(d.as_nanos());
            }
            agrees(q, limiter.check_key_n(&key, n), &mut models[key], n, clock.now_nanos())?;
        }
    }

    /// With room for only 16 keys (one shard), a new key may be refused while
    /// its shard is full of busy keys; even then no key is ever admitted
    /// beyond its own model, and no refusal names an instant more than one
    /// burst's refill away.
    #[test]
    fn tight_keyed_limiter_never_grants_extra_and_never_locks_out(
        q in quota(),
        ops in prop::collection::vec((0usize..KEYS, 0u64..=12, 0u32..=9), 1..120),
    ) {
        let clock = ManualClock::new();
        let limiter = KeyedRateLimiter::new(q, clock.clone(), NonZeroUsize::new(16).unwrap());
        let mut models: Vec<TokenBucket> = (0..KEYS).map(|_| TokenBucket::new(q)).collect();
        let quarter = q.interval() / 4;
        let tolerance = q.interval().as_nanos() * u128::from(q.burst());
        for (key, quarters, n) in ops {
            let d = quarter * u32::try_from(quarters).unwrap();
            clock.advance(d);
            for m in &mut models {
                m.elapse(d.as_nanos());
            }
            let now = u128::from(clock.now_nanos());
            match limiter.check_key_n(&key, n) {
                Ok(()) => prop_assert!(models[key].take(n).is_ok(), "key {} admitted beyond its model", key),
                Err(CheckError::NotUntil(e)) => {
                    let at = u128::from(e.earliest().as_nanos());
                    prop_assert!(at > now && at <= now + tolerance, "refused until {} at {}", at, now);
                }
                Err(CheckError::Insufficient { .. }) => prop_assert!(n > q.burst()),
            }
        }
    }

    #[test]
    fn limiter_never_exceeds_envelope_under_clock_faults(
        q in quota(),
        start_s in 10u64..1_000,
        // (clock step in ms, forwards or backwards; cells asked for)
        ops in prop::collection::vec((-20_000i64..=20_000, 0u32..=8), 1..80),
    ) {
        let clock = ManualClock::starting_at(Instant::from_duration(Duration::from_secs(start_s)));
        let limiter = RateLimiter::new(q, clock.clone());
        // Over the readings the limiter has seen: the last, lowest and
        // highest one.
        let mut seen: Option<(u64, u64, u64)> = None;
        let mut admitted: u128 = 0;
        let interval = q.interval().as_nanos();
        let tolerance = interval * u128::from(q.burst());
        for (step_ms, n) in ops {
            let now = clock.now_nanos().saturating_add_signed(step_ms * 1_000_000);
            clock.set(Instant::from_nanos(now));
            let result = limiter.check_n(n);
            if n > q.burst() {
                // Refused without reading the clock.
                let insufficient = matches!(result, Err(CheckError::Insufficient { .. }));
                prop_assert!(insufficient, "n beyond burst gave {:?}", result);
                continue;
            }
            let cost = interval * u128::from(n);
            let caught_up = seen.is_none_or(|(_, _, high)| u128::from(now) >= u128::from(high) + cost);
            if caught_up {
                prop_assert!(result.is_ok(), "locked out {:?} at {}ns, seen {:?}", result, now, seen);
            }
            if result.is_ok() {
                admitted += cost;
            }
            let (low, high) = seen.map_or((now, now), |(_, l, h)| (l.min(now), h.max(now)));
            seen = Some((now, low, high));
            // Ground the clock covers twice (back, then forward again) is
            // never paid for twice.
            let envelope = tolerance + u128::from(high - low);
            prop_assert!(admitted <= envelope, "admitted {}ns of credit, envelope {}ns", admitted, envelope);
        }
    }
}

/// Checks one decision against the model's (and applies it to the model).
fn agrees(
    q: Quota,
    got: Result<(), CheckError>,
    model: &mut TokenBucket,
    n: u32,
    now: u64,
) -> Result<(), TestCaseError> {
    if n > q.burst() {
        prop_assert_eq!(
            got,
            Err(CheckError::Insufficient {
                requested: n,
                burst: q.burst()
            })
        );
        return Ok(());
    }
    match (got, model.take(n)) {
        (Ok(()), Ok(())) => {}
        (Err(CheckError::NotUntil(e)), Err(wait)) => prop_assert_eq!(
            u128::from(e.earliest().as_nanos()),
            u128::from(now) + wait,
            "refusal must name the earliest conforming instant"
        ),
        (got, want) => prop_assert!(false, "check_n({}) = {:?}, model {:?}", n, got, want),
    }
    Ok(())
}

trait NowNanos {
    fn now_nanos(&self) -> u64;
}

impl NowNanos for ManualClock {
    fn now_nanos(&self) -> u64 {
        async_patterns::time::Clock::now(self).as_nanos()
    }
}
