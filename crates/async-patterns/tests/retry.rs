//! Behaviour snapshots of retry: the seeded delay schedules of every jitter
//! kind, and the trace of one retried call in virtual time (each attempt,
//! each reported retry, the end), kept in `snapshots/` so that a change in
//! the generator, the backoff arithmetic or the retry loop shows as a diff;
//! and a retrier around our own circuit breaker, which must wait for the
//! instant the breaker names instead of spending its attempts on refusals.

#[path = "support/virtual_time.rs"]
mod virtual_time;

use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_patterns::circuit_breaker::{BreakerConfig, CallError, CircuitBreaker, Refused};
use async_patterns::retry::{Attempt, Decision, GaveUp, Jitter, Retrier, RetryError, RetryPolicy};
use async_patterns::time::{Clock, Instant, ManualClock, Timer};

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

#[test]
fn seeded_retry_schedule() {
    let mut out = String::new();
    for jitter in [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ] {
        let policy = RetryPolicy::builder()
            .exponential(Duration::from_millis(100), 2.0, Duration::from_secs(2))
            .jitter(jitter)
            .seed(42)
            .build()
            .unwrap();
        let delays: Vec<String> = policy.schedule(7).take(8).map(ms).collect();
        writeln!(out, "{jitter:?}: {}", delays.join(", ")).unwrap();
    }

    // One call that fails three times, then succeeds; each attempt takes
    // 30 ms, under a 2 s overall limit.
    let clock = ManualClock::new();
    let trace: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = trace.clone();
    let policy = RetryPolicy::builder()
        .max_attempts(6)
        .max_elapsed(Duration::from_secs(2))
        .exponential(Duration::from_millis(100), 2.0, Duration::from_secs(1))
        .jitter(Jitter::Decorrelated)
        .seed(42)
        .build()
        .unwrap();
    let retrier = Retrier::new(policy, clock.clone())
        .with_id(7)
        .with_observer(move |e| {
            sink.lock().unwrap().push(format!(
                "t={} attempt {} failed; retry in {}",
                ms(e.at.as_duration()),
                e.failed_attempt,
                ms(e.delay)
            ))
        });
    let timer = clock.clone();
    let log = trace.clone();
    let (result, elapsed) = virtual_time::run(
        &clock,
        retrier.run(|a| {
            let sleep = timer.sleep(Duration::from_millis(30));
            let log = log.clone();
            let clock = timer.clone();
            async move {
                log.lock().unwrap().push(format!(
                    "t={} attempt {} starts",
                    ms(clock.now().as_duration()),
                    a.number
                ));
                sleep.await;
                if a.number < 4 {
                    Err("unavailable")
                } else {
                    Ok(a.number)
                }
            }
        }),
    );
    writeln!(out, "\n{}", trace.lock().unwrap().join("\n")).unwrap();
    writeln!(out, "result: {result:?} after {}", ms(elapsed)).unwrap();
    insta::with_settings!({snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../../snapshots")}, {
        insta::assert_snapshot!(out);
    });
}

/// A server that fails its first call and then succeeds, behind a breaker
/// that opens for 5 s on one failure, behind a retrier whose own delay is
/// 10 ms: the retry after the refusal waits for the breaker to half-open
/// (5 s) instead of spending its attempts on refusals every 10 ms.
fn breaker_behind_retrier(
    max_elapsed: Duration,
) -> (Result<u32, RetryError<CallError<()>>>, Duration) {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::new(
        BreakerConfig::builder()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(5))
            .build()
            .unwrap(),
        clock.clone(),
    );
    let policy = RetryPolicy::builder()
        .max_attempts(5)
        .max_elapsed(max_elapsed)
        .constant(Duration::from_millis(10))
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let retrier = Retrier::new(policy, clock.clone());
    let server_calls = std::cell::Cell::new(0u32);
    let op = |a: Attempt| {
        let breaker = &breaker;
        let server_calls = &server_calls;
        async move {
            let server = async {
                server_calls.set(server_calls.get() + 1);
                if server_calls.get() == 1 {
                    Err(())
                } else {
                    Ok(a.number)
                }
            };
            breaker.call(server).await
        }
    };
    let classify = |e: &CallError<()>| Decision::from(e);
    virtual_time::run(&clock, retrier.run_classified(op, classify))
}

#[test]
fn retry_waits_for_the_breaker_to_half_open() {
    let (result, elapsed) = breaker_behind_retrier(Duration::from_secs(20));
    // Attempt 1 fails at 0 and opens the breaker; attempt 2 at 10 ms is
    // refused until 5 s; attempt 3 is the probe, at 5 s exactly.
    assert_eq!(result, Ok(3));
    assert_eq!(elapsed, Duration::from_secs(5));
}

#[test]
fn retry_gives_up_when_the_breaker_opens_past_its_deadline() {
    let (result, elapsed) = breaker_behind_retrier(Duration::from_secs(2));
    let e = result.unwrap_err();
    assert_eq!(
        e.error,
        CallError::Refused(Refused::Open(Instant::from_duration(Duration::from_secs(
            5
        ))))
    );
    assert_eq!((e.attempts, e.gave_up), (2, GaveUp::Elapsed));
    assert_eq!(elapsed, Duration::from_millis(10), "gave up at once");
}
