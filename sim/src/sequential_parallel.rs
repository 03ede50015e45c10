//! The seeds' classroom demo, made exact: three upstream calls of 2 s each
//! take 6 s one after another and 2 s through `gather`, in virtual time.
//!
//! The client makes the three calls in sequence, then again concurrently
//! with `gather_until` under a 3 s deadline, then concurrently once more
//! with the call to `a` made blocking (see `EventLoop` for how a blocked
//! thread is made visible in virtual time). Faults from the plan: a
//! partition cuts the client from upstream `b`, a hold delays upstream `a`,
//! a crash takes down upstream `c`.
//!
//! Invariants, checked on every run:
//! * with no fault during a phase, the sequence takes 6 s and the gather
//!   2 s, each within the network's round trips (exact, in virtual time);
//! * the gather never takes longer than its 3 s deadline, and never longer
//!   than the sequence when neither saw a fault;
//! * a blocking call (one that keeps the client's event loop while it waits
//!   for the network) stalls the other two: the gather takes 4 s, not 2 s,
//!   and the stall detector reports each stalled call once, naming the
//!   blocking one; it reports nothing in the other phases;
//! * every call ends exactly once, as an answer or a reported error.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use async_patterns::deadline::{Deadline, timeout};
use async_patterns::fan_out::gather_until;
use async_patterns::rng::SplitMix64;
use async_patterns::semaphore::{Semaphore, SemaphorePermit};
use async_patterns_sim::plot::{GREEN, Lane};
use async_patterns_sim::{
    Ctx, Eventually, FaultPlan, Network, Point, RunInfo, Scenario, Swarm, Targets, Violation, now,
};
use async_patterns_tokio::TokioTimer;

use crate::classic_swarm;
use crate::wire::{exchange, join_all, serve};

/// The scenario.
pub struct SequentialParallel;

const UPSTREAMS: [&str; 3] = ["a", "b", "c"];
const WORK: Duration = Duration::from_secs(2);
const DEADLINE: Duration = Duration::from_secs(3);
const CALL_TIMEOUT: Duration = Duration::from_secs(4);
/// The blocking phase's deadline: room for the blocking call and then the
/// others.
const BLOCKING_DEADLINE: Duration = Duration::from_secs(10);
/// The call that blocks in the blocking phase (to upstream `a`).
const BLOCKER: usize = 0;
/// A wait for the event loop longer than this is a stall.
const STALL: Duration = Duration::from_millis(50);
const PORT: u16 = 9000;

/// The client's single-threaded event loop, modelled: a task runs only
/// while it holds the loop's one thread (a FIFO semaphore with one permit).
/// Virtual time cannot see a thread blocked for real, so the model makes
/// blocking visible: a task that keeps the thread while it waits for the
/// network stalls every other task, as `time.sleep` in a coroutine or a
/// blocking HTTP call inside an async task does.
///
/// The stall detector: a task that was ready (to start, or to handle an
/// answer that arrived) but waited longer than [`STALL`] for the thread is
/// reported, with the task that held the thread when its wait began.
struct EventLoop {
    thread: Semaphore,
    holder: Cell<Option<usize>>,
    ctx: Ctx<Record>,
}

impl EventLoop {
    fn new(ctx: Ctx<Record>) -> Self {
        EventLoop {
            thread: Semaphore::new(1).expect("one permit"),
            holder: Cell::new(None),
            ctx,
        }
    }

    /// Takes the thread for task `u`, which was ready at `ready`.
    async fn take(&self, phase: &'static str, u: usize, ready: Duration) -> SemaphorePermit<'_> {
        let blamed = self.holder.get();
        let permit = self.thread.acquire().await.expect("the loop never closes");
        self.holder.set(Some(u));
        let waited = now() - ready;
        if waited > STALL {
            let by = blamed.map_or("?", |b| UPSTREAMS[b]);
            self.ctx.log(format!(
                "STALL {phase}: call to {} was ready at {ready:?} but waited {waited:?} for the event loop, held by the call to {by}",
                UPSTREAMS[u]
            ));
            (self.ctx.record().stalls).push((phase, u, waited, blamed));
        }
        permit
    }
}

/// What a run records, for the checks.
#[derive(Default)]
pub struct Record {
    /// Stalls the detector reported: (phase, the stalled call, how long,
    /// the call that held the thread).
    stalls: Vec<(&'static str, usize, Duration, Option<usize>)>,
    /// (phase, start, end).
    phases: Vec<(&'static str, Duration, Duration)>,
    /// (phase, upstream, ended ok).
    calls: Vec<(&'static str, usize, bool)>,
    /// Upstreams the recovery probe got an answer from.
    probed: [bool; 3],
}

/// How long after the last fault every upstream may take to answer a
/// call again: one call's work (2 s) after a connect, a request and an
/// answer (the slack of the phases' invariants: four longest trips, at most
/// 4 x 14 ms here), plus the probe's 100 ms between rounds. The worst
/// of 1,000 seeds took 2.0 s.
const RECOVERY_BOUND: Duration = Duration::from_millis(2_000 + 4 * 14 + 100);

impl Scenario for SequentialParallel {
    type Record = Record;

    fn name(&self) -> &str {
        "sequential-parallel"
    }

    fn about(&self) -> &str {
        "three 2 s upstream calls: 6 s in sequence, 2 s through gather (exact in virtual time), the gather \
         within its deadline, 4 s with one blocking call and the stall detector naming it, every call \
         ending once"
    }

    fn eventually(&self) -> Vec<Eventually<Record>> {
        vec![Eventually::new(
            "upstreams answer again",
            "a call to each upstream is answered after the last fault",
            RECOVERY_BOUND,
            |r: &Record, _| r.probed.iter().all(|p| *p),
        )]
    }

    fn probe(&self, ctx: &Ctx<Record>) -> Option<Pin<Box<dyn Future<Output = ()>>>> {
        // The workload may be over before the last fault ends: the probe
        // calls every upstream not yet answered, all at once, until each
        // has answered (its calls are not the workload's: the phases'
        // invariants do not see them).
        let ctx = ctx.clone();
        Some(Box::pin(async move {
            let timer = TokioTimer::new();
            loop {
                let calls = (0..3).filter(|u| !ctx.record().probed[*u]).map(|u| {
                    let (ctx, timer) = (ctx.clone(), timer);
                    tokio::task::spawn_local(async move {
                        let call = exchange(UPSTREAMS[u], PORT, "work".into());
                        if let Ok(Ok(_)) = timeout(&timer, CALL_TIMEOUT, call).await {
                            ctx.log(format!("probe: {} answered", UPSTREAMS[u]));
                            ctx.record().probed[u] = true;
                        }
                    })
                });
                join_all(calls.collect()).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }))
    }

    fn points(&self) -> Vec<Point> {
        vec![Point::reachable(
            async_patterns::points::FAN_OUT_PARTIAL,
            "a gather cut a call off at its deadline",
        )]
    }

    fn targets(&self) -> Targets {
        Targets::new()
            .link("client", "b")
            .link("client", "a")
            .host("c", "nothing: it keeps no state")
    }

    fn swarm(&self) -> Swarm {
        // Faults may start in any of the three phases (the sequence takes
        // 6 s, the gathers 2-4 s more): with the default window (0.3-5 s)
        // none reached the gathers, and no seed of 1,000 cut a call off at
        // a gather's deadline (coverage's FAN_OUT_PARTIAL said so).
        classic_swarm("client<->b", "client<->a", "c").starts_within(300, 11_000)
    }

    fn network(&self, seed: u64) -> Network {
        let mut rng = SplitMix64::derive(seed, 4);
        Network::latency_ms(rng.between(1, 3), rng.between(4, 12))
    }

    fn build(&self, ctx: &Ctx<Record>, sim: &mut turmoil::Sim<'_>) {
        for name in UPSTREAMS {
            sim.host(name, || {
                serve(PORT, |_| async {
                    tokio::time::sleep(WORK).await;
                    "done".to_string()
                })
            });
        }

        let ctx = ctx.clone();
        sim.client("client", async move {
            let timer = TokioTimer::new();
            let event_loop = Rc::new(EventLoop::new(ctx.clone()));
            // One call to upstream `u`, on the modelled event loop. A task
            // needs the loop's thread to send its request and to handle the
            // answer; an async call gives the thread back while it waits for
            // the network, a blocking call keeps it.
            let one = |phase: &'static str, u: usize, blocking: bool| {
                let (ctx, event_loop) = (ctx.clone(), event_loop.clone());
                async move {
                    let thread = event_loop.take(phase, u, now()).await;
                    let call = timeout(
                        &timer,
                        CALL_TIMEOUT,
                        exchange(UPSTREAMS[u], PORT, "work".into()),
                    );
                    let ok = if blocking {
                        let ok = matches!(call.await, Ok(Ok(_)));
                        drop(thread);
                        ok
                    } else {
                        drop(thread);
                        let ok = matches!(call.await, Ok(Ok(_)));
                        let _thread = event_loop.take(phase, u, now()).await;
                        ok
                    };
                    ctx.log(format!(
                        "{phase}: call to {} {}",
                        UPSTREAMS[u],
                        if ok { "answered" } else { "failed" }
                    ));
                    ctx.record().calls.push((phase, u, ok));
                    ok
                }
            };
            let phase_done = |phase: &'static str, from: Duration| {
                let end = now();
                ctx.record().phases.push((phase, from, end));
                ctx.latency(end - from);
                ctx.log(format!("{phase}: 3 calls in {:?}", end - from));
                end
            };
            let start = now();
            for u in 0..3 {
                one("sequential", u, false).await;
            }
            let middle = phase_done("sequential", start);
            let limit = std::num::NonZeroUsize::new(3).expect("3 > 0");
            // gather under a deadline: a call still running at it is cut
            // off, and ends there, as a failure.
            let gathered = |phase: &'static str, deadline: Duration, blocking: Option<usize>| {
                let deadline = Deadline::after(&timer, deadline);
                let calls = (0..3).map(move |u| one(phase, u, blocking == Some(u)));
                let ctx = ctx.clone();
                async move {
                    let parts = gather_until(&timer, deadline, calls, limit).await;
                    for (u, part) in parts.iter().enumerate() {
                        if part.is_err() {
                            ctx.record().calls.push((phase, u, false));
                            ctx.log(format!(
                                "{phase}: call to {} cut off at the deadline",
                                UPSTREAMS[u]
                            ));
                        }
                    }
                }
            };
            gathered("parallel", DEADLINE, None).await;
            let blocking_from = phase_done("parallel", middle);
            gathered("blocking", BLOCKING_DEADLINE, Some(BLOCKER)).await;
            phase_done("blocking", blocking_from);
            Ok(())
        });
    }

    fn check(&self, run: &RunInfo, record: &Record) -> Vec<Violation> {
        // One round trip is a connect (SYN, SYN-ACK), the request and the
        // answer: four one-way trips, each at most the longest trip (the
        // maximum latency, delivered on the tick).
        let slack = run.network.longest_trip() * 4;
        check(record, &run.plan, slack)
    }

    fn lanes(&self, _: &RunInfo, record: &Record) -> Vec<Lane> {
        let mut lanes = Vec::new();
        for (phase, from, to) in &record.phases {
            let mut lane = Lane::new(format!("{phase} phase"));
            lane.spans
                .push((*from, *to, GREEN, format!("{phase}: {:?}", *to - *from)));
            lanes.push(lane);
        }
        lanes
    }
}

fn check(r: &Record, plan: &FaultPlan, slack: Duration) -> Vec<Violation> {
    let mut v = Vec::new();
    let overlaps = |from, to| plan.touches(|_| true, from, to, Duration::ZERO);
    let phase = |name: &str| {
        r.phases
            .iter()
            .find(|(p, _, _)| *p == name)
            .map(|(_, a, b)| (*a, *b))
    };
    let (Some((s0, s1)), Some((p0, p1)), Some((b0, b1))) =
        (phase("sequential"), phase("parallel"), phase("blocking"))
    else {
        v.push(Violation::new(
            "every phase finishes",
            format!("a phase never finished: {:?}", r.phases),
        ));
        return v;
    };
    let (seq, par) = (s1 - s0, p1 - p0);
    let exact_sequence = (WORK * 3..=WORK * 3 + slack * 3).contains(&seq);
    if !overlaps(s0, s1) && !exact_sequence {
        v.push(Violation::new(
            "6 s in sequence",
            format!(
                "3 calls in sequence took {seq:?}, not 6 s (+ up to {:?} of network)",
                slack * 3
            ),
        ));
    }
    let exact_gather = (WORK..=WORK + slack).contains(&par);
    if !overlaps(p0, p1) && !exact_gather {
        v.push(Violation::new(
            "2 s through gather",
            format!("3 calls through gather took {par:?}, not 2 s (+ up to {slack:?} of network)"),
        ));
    }
    if par > DEADLINE {
        v.push(Violation::new(
            "gather within its deadline",
            format!("the gather took {par:?}, past its {DEADLINE:?} deadline"),
        ));
    }
    if !overlaps(s0, p1) && par > seq {
        v.push(Violation::new(
            "gather no slower than the sequence",
            format!("the gather ({par:?}) was slower than the sequence ({seq:?})"),
        ));
    }
    // The blocking call holds the loop for its whole 2 s, then the other
    // two run together: 4 s, not 2 s, and the detector reports both.
    let blocked = b1 - b0;
    if !overlaps(b0, b1) && !(WORK * 2..=WORK * 2 + slack * 2).contains(&blocked) {
        v.push(Violation::new(
"4 s with a blocking call", format!(
            "with one blocking call, the gather took {blocked:?}, not 4 s (+ up to {:?} of network)",
            slack * 2
        )));
    }
    for (phase, u, waited, by) in &r.stalls {
        if *phase != "blocking" || *by != Some(BLOCKER) {
            v.push(Violation::new(
"stalls only from a blocking call", format!(
                "{phase}: a stall of the call to {} for {waited:?} that no blocking call caused",
                UPSTREAMS[*u]
            )));
        }
    }
    for u in (0..3).filter(|u| *u != BLOCKER) {
        let stalled = r
            .stalls
            .iter()
            .filter(|(p, x, waited, _)| *p == "blocking" && *x == u && *waited >= WORK)
            .count();
        if stalled != 1 {
            v.push(Violation::new(
"the detector names each stall once", format!(
                "the blocking call stalled the call to {} for 2 s, but the detector reported it {stalled} times",
                UPSTREAMS[u]
            )));
        }
    }
    for phase in ["sequential", "parallel", "blocking"] {
        for (u, name) in UPSTREAMS.iter().enumerate() {
            let n = r
                .calls
                .iter()
                .filter(|(p, x, _)| *p == phase && *x == u)
                .count();
            if n != 1 {
                v.push(Violation::new(
                    "every call ends once",
                    format!("{phase} call to {name} ended {n} times"),
                ));
            }
        }
    }
    v
}

#[cfg(test)]
// A test builds its record a field at a time, as the run would.
#[allow(clippy::field_reassign_with_default)]
mod tests {
    use super::*;
    use async_patterns_sim::Network;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// A run as it should go: 6 s in sequence, 2 s through gather, 4 s
    /// with the blocking call and its two stalls named, every call once.
    fn good() -> Record {
        let mut r = Record::default();
        r.phases = vec![
            ("sequential", ms(0), ms(6_000)),
            ("parallel", ms(6_000), ms(8_000)),
            ("blocking", ms(8_000), ms(12_000)),
        ];
        for phase in ["sequential", "parallel", "blocking"] {
            for u in 0..3 {
                r.calls.push((phase, u, true));
            }
        }
        for u in 1..3 {
            r.stalls.push(("blocking", u, WORK, Some(BLOCKER)));
        }
        r
    }

    fn info() -> RunInfo {
        RunInfo {
            seed: 0,
            plan: FaultPlan::default(),
            network: Network::default(),
        }
    }

    /// The scenario's own check, at its edge: the network allows four
    /// longest trips (4 x 12 ms on the default network) past 2 s, and not
    /// a millisecond more.
    #[test]
    fn the_gather_may_take_four_trips_past_two_seconds_and_no_more() {
        let s = SequentialParallel;
        assert_eq!(s.check(&info(), &good()), vec![]);
        let mut late = good();
        late.phases[1].2 = ms(8_048);
        assert_eq!(s.check(&info(), &late), vec![]);
        late.phases[1].2 = ms(8_049);
        let v = s.check(&info(), &late);
        assert!(
            v.iter().any(|v| v.invariant == "2 s through gather"),
            "{v:?}"
        );
        let mut stray = good();
        stray.stalls.push(("parallel", 2, ms(30), None));
        let v = s.check(&info(), &stray);
        assert!(
            v.iter()
                .any(|v| v.invariant == "stalls only from a blocking call"),
            "{v:?}"
        );
    }
}
