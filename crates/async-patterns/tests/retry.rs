//! Behaviour snapshots of retry: the seeded delay schedules of every jitter
//! kind, and the trace of one retried call in virtual time (each attempt,
//! each reported retry, the end), kept in `snapshots/` so that a change in
//! the generator, the backoff arithmetic or the retry loop shows as a diff.

#[path = "support/virtual_time.rs"]
mod virtual_time;

use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_patterns::retry::{Jitter, Policy, Retrier};
use async_patterns::time::{Clock, ManualClock, Timer};

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
        let policy = Policy::builder()
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
    let policy = Policy::builder()
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
