//! Behaviour snapshot of the circuit breaker: a scripted sequence of
//! outcomes and clock moves, and the state-transition log it produces, kept
//! in `snapshots/` so any change in when the breaker trips, probes or closes
//! shows up as a diff in review.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_patterns::circuit_breaker::{BreakerConfig, BreakerState, CircuitBreaker};
use async_patterns::time::{Clock, ManualClock};

fn show(s: BreakerState) -> String {
    match s {
        BreakerState::Closed => "closed".into(),
        BreakerState::Open { until } => {
            format!("open until {} ms", until.as_duration().as_millis())
        }
        BreakerState::HalfOpen {
            in_flight,
            successes,
        } => format!("half-open ({in_flight} probing, {successes} ok)"),
    }
}

#[test]
fn scripted_outcomes_transition_log_snapshot() {
    let config = BreakerConfig::builder()
        .consecutive_failures(3)
        .window(6, 4)
        .failure_rate(0.5)
        .open_for(Duration::from_millis(100))
        .backoff(2.0)
        .max_open_for(Duration::from_millis(400))
        .half_open_probes(2)
        .close_after(2)
        .build()
        .unwrap();
    let clock = ManualClock::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    let breaker = CircuitBreaker::new(config, clock.clone()).with_observer(move |t| {
        sink.lock().unwrap().push(format!(
            "t={:>4} ms  {} -> {}",
            t.at.as_duration().as_millis(),
            show(t.from),
            show(t.to)
        ))
    });
    // "+ms" advances the clock; "s" / "f" tries a call that succeeds / fails
    // ("|" only groups steps for the reader).
    let script = "s f s f f s | f f f | +100 f | +200 s s | f s f s f | +100 s";
    let mut calls = Vec::new();
    for step in script.split_whitespace() {
        if let Some(ms) = step.strip_prefix('+') {
            clock.advance(Duration::from_millis(ms.parse().unwrap()));
            continue;
        }
        let result = match step {
            "|" => continue,
            "s" | "f" => match breaker.try_acquire() {
                Ok(p) if step == "s" => {
                    p.success();
                    true
                }
                Ok(p) => {
                    p.failure();
                    true
                }
                Err(_) => false,
            },
            other => panic!("bad step {other}"),
        };
        calls.push(format!(
            "t={:>4} ms  {step}: {}",
            clock.now().as_duration().as_millis(),
            if result { "ran" } else { "refused" }
        ));
    }
    let transitions = log.lock().unwrap().join("\n");
    insta::with_settings!({snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../../snapshots")}, {
        insta::assert_snapshot!(format!("calls:\n{}\n\ntransitions:\n{transitions}", calls.join("\n")));
    });
}

/// `state()` is lazy: past the open duration it still reads `Open` (with
/// `until` in the past), reading it changes nothing and tells the observer
/// nothing, and the next `try_acquire` moves it to half-open.
#[test]
fn state_is_lazy_until_the_next_call() {
    let config = BreakerConfig::builder()
        .consecutive_failures(1)
        .open_for(Duration::from_millis(100))
        .build()
        .unwrap();
    let clock = ManualClock::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let breaker = CircuitBreaker::new(config, clock.clone())
        .with_observer(move |t| sink.lock().unwrap().push(show(t.to)));
    breaker.try_acquire().unwrap().failure();
    let until = match breaker.state() {
        BreakerState::Open { until } => until,
        other => panic!("{other:?}"),
    };
    clock.advance(Duration::from_millis(150));
    assert!(until <= clock.now());
    assert_eq!(
        breaker.state(),
        BreakerState::Open { until },
        "reading moved it"
    );
    assert_eq!(*seen.lock().unwrap(), ["open until 100 ms"]);
    let probe = breaker
        .try_acquire()
        .expect("past the open duration, a probe");
    assert!(matches!(
        breaker.state(),
        BreakerState::HalfOpen { in_flight: 1, .. }
    ));
    assert_eq!(seen.lock().unwrap().len(), 2);
    probe.success();
}

/// `CallError` keeps "refused" apart from the call's own error, each with
/// its accessor, message and source.
#[test]
fn a_call_error_says_which_it_is() {
    use async_patterns::circuit_breaker::{CallError, Refused};
    use std::error::Error;
    #[derive(Debug, PartialEq)]
    struct Upstream;
    impl std::fmt::Display for Upstream {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("upstream failed")
        }
    }
    impl Error for Upstream {}
    let inner: CallError<Upstream> = CallError::Inner(Upstream);
    assert_eq!(inner.refused(), None);
    assert_eq!(inner.to_string(), "upstream failed");
    assert_eq!(inner.source().unwrap().to_string(), "upstream failed");
    assert_eq!(inner.into_inner(), Some(Upstream));
    let refused: CallError<Upstream> = Refused::ProbesBusy.into();
    assert_eq!(refused.refused(), Some(Refused::ProbesBusy));
    assert_eq!(
        refused.to_string(),
        "circuit half-open and every probe slot is taken"
    );
    assert_eq!(
        refused.source().unwrap().to_string(),
        "circuit half-open and every probe slot is taken"
    );
    assert_eq!(refused.into_inner(), None);
}
