//! The seeds' classroom demo, made exact: three upstream calls of 2 s each
//! take 6 s one after another and 2 s through `gather`, in virtual time.
//!
//! The client makes the three calls in sequence, then again concurrently
//! with `gather_until` under a 3 s deadline. Faults from the plan: a
//! partition cuts the client from upstream `b`, a hold delays upstream `a`,
//! a crash takes down upstream `c`.
//!
//! Invariants, checked on every run:
//! * with no fault during a phase, the sequence takes 6 s and the gather
//!   2 s, each within the network's round trips (exact, in virtual time);
//! * the gather never takes longer than its 3 s deadline, and never longer
//!   than the sequence when neither saw a fault;
//! * every call ends exactly once, as an answer or a reported error.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_patterns::deadline::{Deadline, timeout};
use async_patterns::fan_out::gather_until;
use async_patterns::rng::SplitMix64;
use async_patterns_tokio::TokioTimer;

use crate::plot::{GREEN, Lane, Timeline, fault_lanes};
use crate::{
    FaultPlan, Outcome, Scenario, Targets, Trace, exchange, hash_trace, run_with_faults, serve,
    sim_builder,
};

/// The scenario's entry for the CLI.
pub const SCENARIO: Scenario = Scenario {
    name: "sequential-parallel",
    checks: "three 2 s upstream calls: 6 s in sequence, 2 s through gather (exact in virtual time), the gather \
             within its deadline, every call ending once",
    run,
};

const UPSTREAMS: [&str; 3] = ["a", "b", "c"];
const WORK: Duration = Duration::from_secs(2);
const DEADLINE: Duration = Duration::from_secs(3);
const CALL_TIMEOUT: Duration = Duration::from_secs(4);
const PORT: u16 = 9000;

fn now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

#[derive(Default)]
struct Record {
    /// (phase, start, end).
    phases: Vec<(&'static str, Duration, Duration)>,
    /// (phase, upstream, ended ok).
    calls: Vec<(&'static str, usize, bool)>,
}

/// Runs one seed under `plan`.
pub fn run(seed: u64, plan: &FaultPlan) -> Outcome {
    let trace = Trace::default();
    let record = Arc::new(Mutex::new(Record::default()));
    let mut rng = SplitMix64::derive(seed, 4);
    let latency = (rng.between(1, 3), rng.between(4, 12));
    let mut sim = sim_builder(seed, latency);

    for name in UPSTREAMS {
        sim.host(name, || {
            serve(PORT, |_| async {
                tokio::time::sleep(WORK).await;
                "done".to_string()
            })
        });
    }

    let (t, r) = (trace.clone(), record.clone());
    sim.client("client", async move {
        let timer = TokioTimer::new();
        let one = |phase: &'static str, u: usize| {
            let (trace, record) = (t.clone(), r.clone());
            async move {
                let ok = matches!(
                    timeout(
                        &timer,
                        CALL_TIMEOUT,
                        exchange(UPSTREAMS[u], PORT, "work".into())
                    )
                    .await,
                    Ok(Ok(_))
                );
                trace.log(
                    now(),
                    format!(
                        "{phase}: call to {} {}",
                        UPSTREAMS[u],
                        if ok { "answered" } else { "failed" }
                    ),
                );
                record.lock().unwrap().calls.push((phase, u, ok));
                ok
            }
        };
        let start = now();
        for u in 0..3 {
            one("sequential", u).await;
        }
        let middle = now();
        r.lock().unwrap().phases.push(("sequential", start, middle));
        t.log(
            middle,
            format!("sequential: 3 calls in {:?}", middle - start),
        );
        let deadline = Deadline::after(&timer, DEADLINE);
        let limit = std::num::NonZeroUsize::new(3).expect("3 > 0");
        let parts = gather_until(&timer, deadline, (0..3).map(|u| one("parallel", u)), limit).await;
        let end = now();
        for (u, part) in parts.iter().enumerate() {
            if part.is_err() {
                // Cut off by the deadline: it ends here, as a failure.
                r.lock().unwrap().calls.push(("parallel", u, false));
                t.log(
                    end,
                    format!("parallel: call to {} cut off at the deadline", UPSTREAMS[u]),
                );
            }
        }
        r.lock().unwrap().phases.push(("parallel", middle, end));
        t.log(end, format!("parallel: 3 calls in {:?}", end - middle));
        Ok(())
    });

    let mut violations = Vec::new();
    let targets = Targets {
        partition: ("client", "b"),
        hold: ("client", "a"),
        crash: "c",
    };
    if let Err(e) = run_with_faults(&mut sim, plan, &targets, &trace) {
        violations.push(e);
    }
    let record = record.lock().unwrap();
    // One round trip is a connect (SYN, SYN-ACK), the request and the
    // answer: four one-way trips, each at most the maximum latency.
    let slack = Duration::from_millis(4 * latency.1);
    check(&record, plan, slack, &mut violations);
    let trace = trace.events();
    let mut lanes = fault_lanes(plan);
    for (phase, from, to) in &record.phases {
        let mut lane = Lane::new(format!("{phase} phase"));
        lane.spans
            .push((*from, *to, GREEN, format!("{phase}: {:?}", *to - *from)));
        lanes.push(lane);
    }
    Outcome {
        timeline: Timeline { lanes },
        trace_hash: hash_trace(&trace),
        trace,
        violations,
        latencies: record.phases.iter().map(|(_, a, b)| *b - *a).collect(),
        faults: plan.faults.len(),
    }
}

fn check(r: &Record, plan: &FaultPlan, slack: Duration, v: &mut Vec<String>) {
    let overlaps = |from: Duration, to: Duration| {
        plan.faults.iter().any(|f| {
            let (a, b) = (
                Duration::from_millis(f.at_ms),
                Duration::from_millis(f.at_ms + f.for_ms),
            );
            a <= to && b >= from
        })
    };
    let phase = |name: &str| {
        r.phases
            .iter()
            .find(|(p, _, _)| *p == name)
            .map(|(_, a, b)| (*a, *b))
    };
    let (Some((s0, s1)), Some((p0, p1))) = (phase("sequential"), phase("parallel")) else {
        v.push(format!("a phase never finished: {:?}", r.phases));
        return;
    };
    let (seq, par) = (s1 - s0, p1 - p0);
    let exact_sequence = (WORK * 3..=WORK * 3 + slack * 3).contains(&seq);
    if !overlaps(s0, s1) && !exact_sequence {
        v.push(format!(
            "3 calls in sequence took {seq:?}, not 6 s (+ up to {:?} of network)",
            slack * 3
        ));
    }
    let exact_gather = (WORK..=WORK + slack).contains(&par);
    if !overlaps(p0, p1) && !exact_gather {
        v.push(format!(
            "3 calls through gather took {par:?}, not 2 s (+ up to {slack:?} of network)"
        ));
    }
    if par > DEADLINE {
        v.push(format!(
            "the gather took {par:?}, past its {DEADLINE:?} deadline"
        ));
    }
    if !overlaps(s0, p1) && par > seq {
        v.push(format!(
            "the gather ({par:?}) was slower than the sequence ({seq:?})"
        ));
    }
    for phase in ["sequential", "parallel"] {
        for (u, name) in UPSTREAMS.iter().enumerate() {
            let n = r
                .calls
                .iter()
                .filter(|(p, x, _)| *p == phase && *x == u)
                .count();
            if n != 1 {
                v.push(format!("{phase} call to {name} ended {n} times"));
            }
        }
    }
}
