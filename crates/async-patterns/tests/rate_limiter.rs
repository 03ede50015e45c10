//! Behaviour snapshots of the rate limiter: a fixed arrival pattern and the
//! limiter's decision for each arrival, kept in `snapshots/` so any change
//! in what is admitted when shows up as a diff in review.

use std::fmt::Write as _;
use std::time::Duration;

use async_patterns::rate_limiter::{CheckError, Quota, RateLimiter};
use async_patterns::time::{Clock, Instant, ManualClock};

#[test]
fn fixed_arrival_pattern_decisions_snapshot() {
    // 5 cells per second (one per 200 ms), bursts of up to 2.
    let quota = Quota::per_second(5).unwrap().with_burst(2).unwrap();
    let clock = ManualClock::new();
    let limiter = RateLimiter::new(quota, clock.clone());
    // (arrival in ms, cells asked for)
    let arrivals = [
        (0, 1),
        (0, 1),
        (0, 1),
        (150, 1),
        (200, 1),
        (250, 1),
        (400, 2),
        (700, 2),
        (800, 3),
        (1_500, 2),
        (1_500, 1),
        (1_700, 1),
    ];
    let mut log = format!(
        "quota: one cell per {:?}, burst {}\n",
        quota.interval(),
        quota.burst()
    );
    for (ms, n) in arrivals {
        clock.advance_to(Instant::from_duration(Duration::from_millis(ms)));
        let verdict = match limiter.check_n(n) {
            Ok(()) => "admitted".to_string(),
            Err(CheckError::NotUntil(e)) => format!(
                "refused, conforms at {} ms",
                e.earliest().as_duration().as_millis()
            ),
            Err(e @ CheckError::Insufficient { .. }) => format!("never: {e}"),
        };
        let now = clock.now().as_duration().as_millis();
        writeln!(log, "t={now:>5} ms  n={n}  {verdict}").unwrap();
    }
    insta::with_settings!({snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../../snapshots")}, {
        insta::assert_snapshot!(log);
    });
}

/// `NotUntil::wait_time_from(now)`: the wait from `now` to the earliest
/// admission, zero once that instant has passed.
#[test]
fn a_refusal_says_how_long_to_wait_from_now() {
    let clock = ManualClock::new();
    let quota = Quota::per_second(4).unwrap().with_burst(1).unwrap();
    let limiter = RateLimiter::new(quota, clock.clone());
    limiter.check().unwrap();
    let refused = limiter.check().unwrap_err();
    assert_eq!(
        refused.wait_time_from(clock.now()),
        Duration::from_millis(250)
    );
    clock.advance(Duration::from_millis(100));
    assert_eq!(
        refused.wait_time_from(clock.now()),
        Duration::from_millis(150)
    );
    clock.advance(Duration::from_millis(200));
    assert_eq!(refused.wait_time_from(clock.now()), Duration::ZERO);
    assert_eq!(
        refused.wait_time_from(Instant::from_nanos(0)),
        refused
            .earliest()
            .saturating_duration_since(Instant::from_nanos(0))
    );
}

/// The interval is the period over the cells rounded down to a nanosecond
/// (never slower than asked); `with_period` is one cell a period, burst one.
#[test]
fn quotas_round_down_and_with_period_is_one_cell_a_period() {
    assert_eq!(
        Quota::per_second(3).unwrap().interval(),
        Duration::from_nanos(333_333_333)
    );
    assert_eq!(Quota::per_second(3).unwrap().burst(), 3);
    let q = Quota::with_period(Duration::from_millis(1_500)).unwrap();
    assert_eq!((q.interval(), q.burst()), (Duration::from_millis(1_500), 1));
    assert!(Quota::with_period(Duration::ZERO).is_err());
    let clock = ManualClock::new();
    let limiter = RateLimiter::new(q, clock.clone());
    limiter.check().unwrap();
    assert!(limiter.check().is_err());
    clock.advance(Duration::from_millis(1_499));
    assert!(limiter.check().is_err());
    clock.advance(Duration::from_millis(1));
    limiter.check().unwrap();
}
