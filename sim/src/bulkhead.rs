//! Many requests against a server whose latency grows with its load, behind
//! the client's adaptive (AIMD) concurrency limit.
//!
//! The server answers after 20 ms per request in flight (its own included),
//! so it meets the client's 100 ms latency target only while at most
//! C = 5 requests are in flight. The client offers one request every 5 ms
//! (far more than the server can take at that latency) and sheds, with an
//! error, every request its limit does not admit.
//!
//! Invariants, checked on every run:
//! * no admission leaves more requests in flight on the client than the
//!   limit at that moment, and the server never has more in flight than
//!   the highest limit any admission saw (nor than the limit's maximum);
//! * every request ends exactly once: answered, failed, or shed at once —
//!   none queued;
//! * the limit settles near C: its median over the second half of the run
//!   lies within C/2..=2C.

use std::sync::Arc;
use std::time::Duration;

use async_patterns::adaptive::{AdaptiveConfig, AdaptiveLimit};
use async_patterns::deadline;
use async_patterns_sim::plot::{AMBER, BLUE, GREEN, Lane, RED};
use async_patterns_sim::{
    Ctx, Eventually, FaultPlan, Network, Point, RunInfo, Scenario, Swarm, Targets, Violation, now,
};
use async_patterns_tokio::TokioTimer;

use crate::wire::{exchange, join_all, serve};
use crate::{classic_swarm, client_server};

/// The scenario.
pub struct Bulkhead;

const REQUESTS: u64 = 2_400;
const SPACING: Duration = Duration::from_millis(5);
const PER_REQUEST: Duration = Duration::from_millis(20);
const TARGET: Duration = Duration::from_millis(100);
const CAPACITY: u32 = 5;
const MAX_LIMIT: u32 = 50;
const PORT: u16 = 9000;

/// What a run records, for the checks.
#[derive(Default)]
pub struct Record {
    server_in_flight: u32,
    server_max: u32,
    /// (at, limit) whenever the limit changes.
    limits: Vec<(Duration, u32)>,
    /// The highest limit seen at any admission.
    admitted_under: u32,
    /// Requests the client holds a permit for now.
    client_in_flight: u32,
    /// Admissions that left more in flight than the limit then: (at, in
    /// flight, limit).
    over_admitted: Vec<(Duration, u32, u32)>,
    /// (id, at, how it ended).
    ends: Vec<(u64, Duration, End)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Answered,
    Failed,
    Shed,
}

/// How long after the last fault a request may take to be answered again:
/// the 2 s request timeout frees every slot a request held through the
/// fault, and an answer then takes at most the server's latency at the
/// limit's maximum (50 in flight, 20 ms each: 1 s). The worst of 1,000
/// seeds took 2.0 s.
const RECOVERY_BOUND: Duration = Duration::from_millis(2_000 + 50 * 20);

impl Scenario for Bulkhead {
    type Record = Record;

    fn name(&self) -> &str {
        "bulkhead"
    }

    fn about(&self) -> &str {
        "an AIMD concurrency limit in front of a server whose latency grows with load: server in-flight \
         within the limit, overload shed at once (exactly one end per request), the limit settles near \
         the server's capacity"
    }

    fn eventually(&self) -> Vec<Eventually<Record>> {
        vec![Eventually::new(
            "answers again",
            "a request is answered after the last fault",
            RECOVERY_BOUND,
            |r: &Record, heal| {
                r.ends
                    .iter()
                    .any(|(_, at, end)| *end == End::Answered && *at >= heal)
            },
        )]
    }

    fn points(&self) -> Vec<Point> {
        vec![Point::reachable(
            async_patterns::points::ADAPTIVE_SHED,
            "the adaptive limit shed a call",
        )]
    }

    fn targets(&self) -> Targets {
        client_server("client", "server")
    }

    fn swarm(&self) -> Swarm {
        classic_swarm("client<->server", "client<->server", "server")
    }

    fn network(&self, seed: u64) -> Network {
        let mut rng = async_patterns::rng::SplitMix64::derive(seed, 3);
        Network::latency_ms(rng.between(1, 2), rng.between(3, 8))
    }

    fn build(&self, ctx: &Ctx<Record>, sim: &mut turmoil::Sim<'_>) {
        let server = ctx.clone();
        sim.host("server", move || {
            // A crash drops the requests in flight without a word: a
            // (re)started server has none.
            server.record().server_in_flight = 0;
            let ctx = server.clone();
            serve(PORT, move |_| {
                let ctx = ctx.clone();
                async move {
                    let load = {
                        let mut r = ctx.record();
                        r.server_in_flight += 1;
                        r.server_max = r.server_max.max(r.server_in_flight);
                        r.server_in_flight
                    };
                    tokio::time::sleep(PER_REQUEST * load).await;
                    ctx.record().server_in_flight -= 1;
                    "ok".to_string()
                }
            })
        });

        let ctx = ctx.clone();
        sim.client("client", async move {
            let timer = TokioTimer::new();
            let config = AdaptiveConfig::builder()
                .limits(1, 10, MAX_LIMIT)
                .latency_target(TARGET)
                .backoff(0.75)
                .build()
                .expect("a valid limit");
            let observer = ctx.clone();
            let limit = Arc::new(AdaptiveLimit::new(config, timer).with_observer(move |l| {
                observer.record().limits.push((now(), l));
                observer.log(format!("limit -> {l}"));
            }));
            let mut tasks = Vec::new();
            for id in 0..REQUESTS {
                tokio::time::sleep(SPACING).await;
                let (limit, ctx) = (limit.clone(), ctx.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    let start = now();
                    let end = match limit.try_acquire() {
                        Err(_) => End::Shed,
                        Ok(permit) => {
                            {
                                let mut r = ctx.record();
                                let now_limit = limit.limit();
                                r.admitted_under = r.admitted_under.max(now_limit);
                                r.client_in_flight += 1;
                                if r.client_in_flight > now_limit {
                                    let n = r.client_in_flight;
                                    r.over_admitted.push((now(), n, now_limit));
                                }
                            }
                            let call = exchange("server", PORT, id.to_string());
                            let end = match deadline::timeout(&timer, Duration::from_secs(2), call)
                                .await
                            {
                                Ok(Ok(_)) => {
                                    permit.success();
                                    End::Answered
                                }
                                _ => {
                                    permit.failure();
                                    End::Failed
                                }
                            };
                            ctx.record().client_in_flight -= 1;
                            end
                        }
                    };
                    if end == End::Answered {
                        ctx.latency(now() - start);
                    }
                    ctx.record().ends.push((id, now(), end));
                }));
            }
            join_all(tasks).await;
            Ok(())
        });
    }

    fn check(&self, run: &RunInfo, record: &Record) -> Vec<Violation> {
        check(record, &run.plan)
    }

    fn lanes(&self, _: &RunInfo, record: &Record) -> Vec<Lane> {
        let mut limit_lane = Lane::new("limit (blue ticks: changes)");
        limit_lane.points = record.limits.iter().map(|(t, _)| (*t, BLUE)).collect();
        let mut ends = Lane::new("requests (green ok, amber shed, red failed)");
        ends.points = record
            .ends
            .iter()
            .map(|(_, t, e)| {
                let colour = match e {
                    End::Answered => GREEN,
                    End::Shed => AMBER,
                    End::Failed => RED,
                };
                (*t, colour)
            })
            .collect();
        vec![limit_lane, ends]
    }
}

fn check(r: &Record, plan: &FaultPlan) -> Vec<Violation> {
    let mut v = Vec::new();
    // At each admission, on the client: what the limit allowed then.
    if let Some((at, n, limit)) = r.over_admitted.first() {
        v.push(
            Violation::new(
                "in flight within the limit",
                format!(
                    "an admission left {n} requests in flight under a limit of {limit} ({} such)",
                    r.over_admitted.len()
                ),
            )
            .at(*at),
        );
    }
    if r.server_max > r.admitted_under.max(1) || r.server_max > MAX_LIMIT {
        v.push(Violation::new(
            "in flight within the limit",
            format!(
                "the server had {} in flight; the limit never exceeded {}",
                r.server_max, r.admitted_under
            ),
        ));
    }
    let mut seen = vec![0u32; REQUESTS as usize];
    for (id, _, _) in &r.ends {
        seen[*id as usize] += 1;
    }
    if let Some((id, n)) = seen.iter().enumerate().find(|(_, n)| **n != 1) {
        v.push(Violation::new(
            "exactly one end",
            format!("request {id} ended {n} times"),
        ));
    }
    // Settling is judged only on runs without faults in the second half.
    let run_end = SPACING * REQUESTS as u32;
    let half = run_end / 2;
    // (A fault that ends at `half` is off for all of it.)
    let quiet = plan.last_end() <= half;
    if quiet {
        // The limit in force at each 10 ms of the second half.
        let mut samples: Vec<u32> = (0..)
            .map(|k| half + Duration::from_millis(10 * k))
            .take_while(|t| *t < run_end)
            .map(|t| {
                r.limits
                    .iter()
                    .rev()
                    .find(|(at, _)| *at <= t)
                    .map_or(10, |(_, l)| *l)
            })
            .collect();
        samples.sort_unstable();
        if let Some(median) = samples.get(samples.len() / 2)
            && !(CAPACITY / 2..=CAPACITY * 2).contains(median)
        {
            v.push(Violation::new(
                "settles near capacity",
                format!("the limit settled at {median}, not near the server's capacity {CAPACITY}"),
            ));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_patterns_sim::{Fault, FaultKind};

    fn broken(v: &[Violation], name: &str) -> bool {
        v.iter().any(|v| v.invariant == name)
    }

    /// 7 in flight under a limit of 5: the run-wide maxima (server 7,
    /// limit 10 at the first admissions) hid it.
    #[test]
    fn an_admission_over_the_limit_then_is_a_violation() {
        let mut r = Record {
            server_max: 7,
            admitted_under: 10,
            ..Record::default()
        };
        r.ends = (0..REQUESTS)
            .map(|id| (id, Duration::ZERO, End::Shed))
            .collect();
        assert!(!broken(
            &check(&r, &FaultPlan::default()),
            "in flight within the limit"
        ));
        r.over_admitted.push((Duration::from_secs(7), 7, 5));
        assert!(broken(
            &check(&r, &FaultPlan::default()),
            "in flight within the limit"
        ));
    }

    /// A fault that ends exactly as the second half begins leaves it quiet:
    /// settling is judged; one that ends a millisecond later does not.
    #[test]
    fn settling_is_judged_when_the_last_fault_ends_by_half_time() {
        let judged = |end_ms: u64| {
            let r = Record {
                ends: (0..REQUESTS)
                    .map(|id| (id, Duration::ZERO, End::Shed))
                    .collect(),
                limits: vec![(Duration::from_secs(6), 40)],
                ..Record::default()
            };
            let plan = FaultPlan {
                faults: vec![Fault::new(
                    FaultKind::Crash,
                    "server",
                    1_000,
                    end_ms - 1_000,
                )],
                sabotage: None,
                sites: Vec::new(),
                disk: None,
            };
            broken(&check(&r, &plan), "settles near capacity")
        };
        assert!(judged(6_000));
        assert!(!judged(6_001));
    }

    /// A 0 ms fault late in the run is no fault: settling is still judged.
    #[test]
    fn a_zero_ms_fault_does_not_switch_off_settling() {
        let r = Record {
            ends: (0..REQUESTS)
                .map(|id| (id, Duration::ZERO, End::Shed))
                .collect(),
            limits: vec![(Duration::from_secs(6), 40)],
            ..Record::default()
        };
        let plan = FaultPlan {
            faults: vec![Fault::new(FaultKind::Crash, "server", 7_000, 0)],
            sabotage: None,
            sites: Vec::new(),
            disk: None,
        };
        assert!(broken(&check(&r, &plan), "settles near capacity"));
    }
}
