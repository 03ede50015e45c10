//! A fleet of retriers built the recommended way for production — each
//! "process" seeds its policy with [`entropy_seed`] — must not retry in
//! lockstep: every retrier draws its own delay sequence, and the delays
//! are spread uniformly within their full-jitter bounds.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_patterns::retry::{Jitter, Retrier, RetryPolicy};
use async_patterns_tokio::{TokioTimer, entropy_seed};

const FLEET: usize = 200;
const RETRIES: usize = 4;
const BINS: u64 = 20;
/// χ² with 19 degrees of freedom exceeds this with probability 10⁻⁶.
const CHI2_CRITICAL: f64 = 63.68;

/// The delays one retrier sleeps before its retries, for a call that
/// always fails (paused time: the sleeps take no real time).
async fn delays_of_one_process() -> Vec<Duration> {
    let policy = RetryPolicy::builder()
        .max_attempts(RETRIES as u32 + 1)
        .exponential(Duration::from_millis(100), 2.0, Duration::from_secs(10))
        .jitter(Jitter::Full)
        .seed(entropy_seed())
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let retrier = Retrier::new(policy, TokioTimer::new())
        .with_observer(move |e| sink.lock().unwrap().push(e.delay));
    let result = retrier.run(|_| async { Err::<(), _>("down") }).await;
    assert_eq!(result.unwrap_err().attempts, RETRIES as u32 + 1);
    seen.lock().unwrap().clone()
}

#[tokio::test(start_paused = true)]
async fn fleet_seeded_from_entropy_draws_distinct_uniform_delays() {
    let mut fleet = Vec::new();
    for _ in 0..FLEET {
        fleet.push(delays_of_one_process().await);
    }
    let distinct: BTreeSet<&Vec<Duration>> = fleet.iter().collect();
    assert_eq!(
        distinct.len(),
        FLEET,
        "retriers share a jitter sequence: the fleet retries in lockstep"
    );

    // Retry n waits uniformly in 0..=ceiling(n), ceiling(n) = 100 ms × 2ⁿ.
    let mut counts = [0u64; BINS as usize];
    for delays in &fleet {
        for (n, d) in delays.iter().enumerate() {
            let ceiling = 100_000_000u64 << n;
            let ns = u64::try_from(d.as_nanos()).unwrap();
            assert!(ns <= ceiling, "retry {n}: {ns} ns above its ceiling");
            counts[((ns * BINS / ceiling).min(BINS - 1)) as usize] += 1;
        }
    }
    let expected = (FLEET * RETRIES) as f64 / BINS as f64;
    let chi2: f64 = counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum();
    assert!(
        chi2 < CHI2_CRITICAL,
        "delays are not uniform within their bounds: chi2 = {chi2:.1}, counts {counts:?}"
    );
}

#[test]
fn entropy_seeds_differ_call_to_call() {
    let seeds: BTreeSet<u64> = (0..1_000).map(|_| entropy_seed()).collect();
    assert_eq!(seeds.len(), 1_000);
}
