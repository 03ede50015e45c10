//! A client with retry, circuit breaker and rate limiter against a flaky
//! server, while the link between them is partitioned and repaired.
//!
//! Each logical request is one task on the client host: up to 4 attempts
//! (retry with decorrelated jitter and a shared budget), each waiting for
//! the rate limiter, asking the breaker for a permit, and sending over a
//! fresh TCP connection under a 200 ms timeout. The server fails 10% of
//! requests (a seeded choice) and answers after 10 ms.
//!
//! Invariants, checked on every run:
//! * every logical request ends exactly once (a value or a reported error);
//! * the client never sends faster than the limiter's quota (10/s, burst
//!   3, below the offered 20/s) allows, and the server never observes more
//!   than the quota plus the network's jitter (three one-way trips), apart
//!   from what a hold delivers at once when it ends;
//! * no attempt is sent while the breaker is open;
//! * while a partition lasts longer than it takes to fail 3 attempts in a
//!   row, the breaker opens; after the last fault ends it closes within
//!   the longest cool-down plus a probe, once more for each probe the flaky
//!   server fails;
//! * requests recover (the library's recovery phase, `eventually`): after
//!   the last fault ends, a request succeeds within that same bound (4.6 s
//!   a round: the 4 s longest cool-down, a 200 ms attempt timeout, the
//!   400 ms longest wait for a retry's send; one round more per probe the
//!   flaky server fails);
//! * the breaker is closed at the end of the run, read after real requests
//!   to the server (one every quota interval for up to 10 s after the
//!   workload, until one succeeds): a server that is down, or cut off, for
//!   the whole run breaks it;
//! * retries stay within the budget's allowance.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use async_patterns::circuit_breaker::{BreakerConfig, BreakerState, CircuitBreaker, Refused};
use async_patterns::deadline;
use async_patterns::rate_limiter::{Quota, RateLimiter};
use async_patterns::retry::{Decision, Jitter, Retrier, RetryBudget, RetryPolicy};
use async_patterns::rng::SplitMix64;
use async_patterns_sim::plot::{AMBER, BLUE, GREEN, Lane, RED};
use async_patterns_sim::{
    Ctx, Eventually, FaultKind, FaultPlan, Network, Point, RunInfo, Sabotage, Scenario, Swarm,
    Targets, Violation, now,
};
use async_patterns_tokio::TokioTimer;

use crate::wire::{exchange, join_all, serve};
use crate::{classic_swarm, client_server};

/// The scenario.
pub struct ResilientClient;

/// The breaker's refusal is ignored, so attempts go out while it is open.
const BREAKER_NEVER_OPENS: &str = "breaker-never-opens";
/// The limiter's burst is 1,000 instead of 3, so a backlog goes out at once.
const LIMITER_IGNORES_BURST: &str = "limiter-ignores-burst";

const REQUESTS: u64 = 160;
const SPACING: Duration = Duration::from_millis(50);
const PORT: u16 = 9000;
const RATE_PER_SEC: u32 = 10;
const BURST: u32 = 3;
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(200);
const TRIP_AFTER: u32 = 3;
const OPEN_FOR: Duration = Duration::from_millis(500);
const MAX_OPEN: Duration = Duration::from_secs(4);
/// The retry policy's longest delay (the exponential backoff's cap).
const RETRY_CAP: Duration = Duration::from_millis(400);
/// The limiter's interval between sends once its burst is spent.
const QUOTA_INTERVAL: Duration = Duration::from_millis(1_000 / RATE_PER_SEC as u64);
/// How long the end of the run keeps making requests (one every quota
/// interval) until one succeeds: two of the longest recovery rounds (see
/// `check`).
const END_PHASE: Duration = Duration::from_secs(10);

/// What a run records, for the checks.
#[derive(Default)]
pub struct Record {
    /// Logical request outcomes: (id, Ok(latency) or Err(reason)).
    ends: Vec<(u64, Result<Duration, String>)>,
    /// Client send times (every attempt that reached the wire).
    sends: Vec<Duration>,
    /// Server arrival times.
    arrivals: Vec<Duration>,
    /// Breaker transitions: (at, the new state).
    transitions: Vec<(Duration, BreakerState)>,
    retries: u64,
    /// When each logical request (the end of the run's included) ended,
    /// and whether it succeeded.
    ended_at: Vec<(Duration, bool)>,
    /// When the server answered "err" (its seeded 10%).
    server_errors: Vec<Duration>,
}

impl Scenario for ResilientClient {
    type Record = Record;

    fn name(&self) -> &str {
        "resilient-client"
    }

    fn about(&self) -> &str {
        "retry + breaker + limiter vs a flaky server through a partition: exactly-once outcomes, \
         send rate within the quota, nothing sent while open, the breaker opens during and closes after \
         the partition, requests succeed again within 4.6 s a recovery round after the last fault, \
         closed at the end after real requests, retries within budget"
    }

    fn eventually(&self) -> Vec<Eventually<Record>> {
        // Watched for up to six rounds; the bound itself comes from the
        // record: a round, and one more per failed probe something explains.
        vec![
            Eventually::new(
                "requests recover",
                "a request succeeds after the last fault",
                recovery_round() * 6,
                |r: &Record, heal| r.ended_at.iter().any(|(at, ok)| *ok && *at > heal),
            )
            .bound_by(recovery_within),
        ]
    }

    fn points(&self) -> Vec<Point> {
        vec![
            Point::reachable(async_patterns::points::BREAKER_OPENED, "the breaker opened"),
            Point::reachable(
                async_patterns::points::BREAKER_PROBE_REFUSED,
                "a half-open breaker refused a call",
            ),
            Point::reachable(
                async_patterns::points::BREAKER_CLOSED_AGAIN,
                "the breaker closed again after probes",
            ),
            Point::reachable(
                async_patterns::points::LIMITER_MADE_WAIT,
                "the rate limiter made a send wait",
            ),
            Point::reachable(
                async_patterns::points::RETRY_BUDGET_EXHAUSTED,
                "the retry budget ran dry",
            ),
            Point::reachable(async_patterns::points::RETRY_GAVE_UP, "a retrier gave up"),
        ]
    }

    fn targets(&self) -> Targets {
        client_server("client", "server")
    }

    fn swarm(&self) -> Swarm {
        classic_swarm("client<->server", "client<->server", "server")
    }

    fn sabotages(&self) -> Vec<Sabotage> {
        vec![
            Sabotage {
                name: BREAKER_NEVER_OPENS,
                about: "the breaker's refusal is ignored: attempts go out while it is open",
            },
            Sabotage {
                name: LIMITER_IGNORES_BURST,
                about: "the limiter's burst is 1,000 instead of 3: a backlog goes out at once",
            },
        ]
    }

    fn network(&self, seed: u64) -> Network {
        let mut rng = SplitMix64::derive(seed, 1);
        Network::latency_ms(rng.between(1, 5), rng.between(6, 25))
    }

    fn build(&self, ctx: &Ctx<Record>, sim: &mut turmoil::Sim<'_>) {
        let seed = ctx.seed();
        let server = ctx.clone();
        sim.host("server", move || {
            let ctx = server.clone();
            serve(PORT, move |line| {
                let ctx = ctx.clone();
                async move {
                    let id: u64 = line.trim().parse().unwrap_or(u64::MAX);
                    ctx.record().arrivals.push(now());
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    // A seeded 10% of requests fail, the same on every replay.
                    let n = ctx.record().arrivals.len() as u64;
                    let fails = SplitMix64::derive(seed, n).between(0, 9) == 0;
                    let reply = if fails { "err" } else { "ok" };
                    if fails {
                        ctx.record().server_errors.push(now());
                    }
                    let outcome = if fails { "error" } else { "ok" };
                    ctx.log(format!("server: request {id} -> {outcome}"));
                    reply.to_string()
                }
            })
        });

        let ctx = ctx.clone();
        sim.client("client", async move {
            let timer = TokioTimer::new();
            let never_opens = ctx.sabotaged(BREAKER_NEVER_OPENS);
            let burst = if ctx.sabotaged(LIMITER_IGNORES_BURST) {
                1_000
            } else {
                BURST
            };
            let limiter = Rc::new(RateLimiter::new(
                Quota::per_second(RATE_PER_SEC)
                    .and_then(|q| q.with_burst(burst))
                    .expect("a valid quota"),
                timer,
            ));
            let observer = ctx.clone();
            let breaker = Rc::new(
                CircuitBreaker::new(
                    BreakerConfig::builder()
                        .consecutive_failures(TRIP_AFTER)
                        .open_for(OPEN_FOR)
                        .backoff(2.0)
                        .max_open_for(MAX_OPEN)
                        .build()
                        .expect("a valid breaker"),
                    timer,
                )
                .with_observer(move |tr| {
                    observer.record().transitions.push((now(), tr.to));
                    observer.log(format!("breaker: {:?} -> {:?}", tr.from, tr.to));
                }),
            );
            let budget =
                Arc::new(RetryBudget::new(0.2, 5, Duration::from_secs(1)).expect("a valid budget"));
            let policy = RetryPolicy::builder()
                .max_attempts(4)
                .exponential(Duration::from_millis(20), 2.0, RETRY_CAP)
                .jitter(Jitter::Decorrelated)
                .seed(seed)
                .build()
                .expect("a valid policy");
            // One logical request through the whole stack (retrier, limiter,
            // breaker, timeout, a TCP exchange): Ok(latency) or why it failed.
            let request = {
                let (limiter, breaker, ctx) = (limiter.clone(), breaker.clone(), ctx.clone());
                move |id: u64| {
                    let (limiter, breaker, ctx) = (limiter.clone(), breaker.clone(), ctx.clone());
                    let retrier = Retrier::new(policy.clone(), timer)
                        .with_id(id)
                        .with_budget(budget.clone());
                    async move {
                        let start = now();
                        let result = retrier
                            .run_classified(
                                |attempt| {
                                    let (limiter, breaker, ctx) =
                                        (limiter.clone(), breaker.clone(), ctx.clone());
                                    async move {
                                        if attempt.number > 1 {
                                            ctx.record().retries += 1;
                                        }
                                        limiter.until_ready().await;
                                        let permit = match breaker.try_acquire() {
                                            Ok(p) => Some(p),
                                            Err(_) if never_opens => None,
                                            Err(e) => return Err(AttemptError::Refused(e)),
                                        };
                                        ctx.record().sends.push(now());
                                        ctx.log(format!(
                                            "client: request {id} attempt {}",
                                            attempt.number
                                        ));
                                        let reply =
                                            deadline::timeout(&timer, ATTEMPT_TIMEOUT, call(id))
                                                .await;
                                        match reply {
                                            Ok(Ok(())) => {
                                                if let Some(p) = permit {
                                                    p.success();
                                                }
                                                Ok(())
                                            }
                                            Ok(Err(e)) => {
                                                if let Some(p) = permit {
                                                    p.failure();
                                                }
                                                Err(AttemptError::Downstream(e))
                                            }
                                            Err(_) => {
                                                if let Some(p) = permit {
                                                    p.failure();
                                                }
                                                Err(AttemptError::Downstream("timed out".into()))
                                            }
                                        }
                                    }
                                },
                                // A refusal by our own breaker is not a downstream
                                // failure: an open breaker's is retried no sooner
                                // than it half-opens (within the attempts, the
                                // budget and the deadline), busy probe slots after
                                // the usual delay.
                                |e: &AttemptError| match e {
                                    AttemptError::Refused(r) => Decision::from(r),
                                    AttemptError::Downstream(_) => Decision::Retry,
                                },
                            )
                            .await;
                        let end = match result {
                            Ok(()) => Ok(now() - start),
                            Err(e) => Err(format!(
                                "{} after {} attempt(s), {:?}",
                                e.error, e.attempts, e.gave_up
                            )),
                        };
                        if let Err(e) = &end {
                            ctx.log(format!("client: request {id} failed: {e}"));
                        }
                        ctx.record().ended_at.push((now(), end.is_ok()));
                        end
                    }
                }
            };
            let mut tasks = Vec::new();
            for id in 0..REQUESTS {
                tokio::time::sleep_until(tokio::time::Instant::now() + SPACING).await;
                let (request, ctx) = (request(id), ctx.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    let end = request.await;
                    if let Ok(latency) = end {
                        ctx.latency(latency);
                    }
                    ctx.record().ends.push((id, end));
                }));
            }
            join_all(tasks).await;
            // The end of the run: real requests to the server through the same
            // stack, one every quota interval, until one succeeds or
            // END_PHASE passes. The breaker's state is read after them, so
            // "closed at the end" holds only if the server answers again.
            let give_up = now() + END_PHASE;
            for id in REQUESTS.. {
                ctx.log(format!("client: end-of-run request {id}"));
                if request(id).await.is_ok() || now() >= give_up {
                    break;
                }
                tokio::time::sleep(QUOTA_INTERVAL).await;
            }
            ctx.log(format!("client: done, breaker {:?}", breaker.state()));
            ctx.record().transitions.push((now(), breaker.state()));
            Ok(())
        });
    }

    fn check(&self, run: &RunInfo, record: &Record) -> Vec<Violation> {
        check(record, &run.plan, &run.network)
    }

    fn lanes(&self, _: &RunInfo, record: &Record) -> Vec<Lane> {
        lanes(record)
    }
}

/// Why an attempt failed: our own breaker refused it (saying until when,
/// if it is open), or the server or the network failed it.
#[derive(Debug)]
enum AttemptError {
    Refused(Refused),
    Downstream(String),
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptError::Refused(r) => write!(f, "refused: {r}"),
            AttemptError::Downstream(e) => f.write_str(e),
        }
    }
}

/// One attempt on a fresh connection: `Ok` if the server said ok.
async fn call(id: u64) -> Result<(), String> {
    match exchange("server", PORT, id.to_string()).await?.as_str() {
        "ok" => Ok(()),
        other => Err(format!("server said {other:?}")),
    }
}

/// How long recovery may take after the last fault ends (at `end`; 0
/// without faults): one round, the longest cool-down (the backoff cap), then
/// a probe (the next send comes within one quota interval: the backlog, or
/// the end of the run's requests, send one at least that often; the probe
/// ends within one attempt timeout). The server fails 10% of requests, so a
/// probe may fail and reopen the breaker: each such failed probe after the
/// fault earns one more round, if something explains it: it was sent while
/// the fault was still on (half-open by `end`), or the server answered
/// "err" meanwhile. A probe that fails on a healthy link with a healthy
/// server is the bug this bound is for.
fn recovery_within(r: &Record, end: Duration) -> Duration {
    let failed_probes = r
        .transitions
        .windows(2)
        .filter(|w| {
            w[1].0 > end
                && matches!(w[0].1, BreakerState::HalfOpen { .. })
                && matches!(w[1].1, BreakerState::Open { .. })
                && (w[0].0 <= end || r.server_errors.iter().any(|e| *e >= w[0].0 && *e <= w[1].0))
        })
        .count() as u32;
    recovery_round() * (1 + failed_probes)
}

/// One recovery round: the longest cool-down, an attempt timeout, and the
/// longest wait for the next send (after the workload, attempts come from
/// retries, which wake at most one jitter cap, 400 ms, apart, not one quota
/// interval): 4.6 s.
fn recovery_round() -> Duration {
    MAX_OPEN + ATTEMPT_TIMEOUT + QUOTA_INTERVAL.max(RETRY_CAP)
}

fn check(r: &Record, plan: &FaultPlan, network: &Network) -> Vec<Violation> {
    let mut v = Vec::new();
    // Exactly once.
    let mut seen = vec![0u32; REQUESTS as usize];
    for (id, _) in &r.ends {
        seen[*id as usize] += 1;
    }
    for (id, n) in seen.iter().enumerate() {
        if *n != 1 {
            v.push(Violation::new(
                "exactly once",
                format!("request {id} ended {n} times"),
            ));
        }
    }
    // Rate: any window of sends holds at most burst + rate x span.
    let within = |times: &[Duration], slack: Duration| {
        let interval = 1e9 / f64::from(RATE_PER_SEC);
        (0..times.len()).find_map(|i| {
            (i..times.len()).find_map(|j| {
                let span = (times[j] - times[i] + slack).as_nanos() as f64;
                let allowed = f64::from(BURST) + (span / interval).floor();
                ((j - i + 1) as f64 > allowed)
                    .then(|| format!("{} in {:?}", j - i + 1, times[j] - times[i]))
            })
        })
    };
    if let Some(e) = within(&r.sends, Duration::ZERO) {
        v.push(Violation::new(
            "send rate within the quota",
            format!("client sent faster than the quota: {e}"),
        ));
    }
    // A send reaches the server after three one-way trips (SYN, SYN-ACK,
    // then the request), each with its own latency, delivered on the tick.
    let longest = network.longest_trip();
    let spread = (longest - network.min_latency.min(longest)) * 3;
    // A hold delivers what it held at once when it ends, and the end of a
    // latency fault lets later sends overtake slow ones: the network, not
    // the client, bunches those arrivals, so they are left out (up to three
    // trips after, at the slower of the fault's and the network's latency).
    let bunching = |f: &async_patterns_sim::Fault| match f.kind {
        FaultKind::Hold => Some(longest * 3),
        FaultKind::Latency => {
            let slow = Duration::from_millis(
                f.latency_ms
                    .unwrap_or(async_patterns_sim::fault::DEFAULT_LATENCY_MS),
            );
            Some(slow.max(longest) * 3 + network.tick)
        }
        _ => None,
    };
    let mut arrivals: Vec<Duration> = (r.arrivals.iter().copied())
        .filter(|t| {
            !plan.faults.iter().any(|f| {
                bunching(f).is_some_and(|after| {
                    FaultPlan {
                        faults: vec![f.clone()],
                        sabotage: None,
                        sites: Vec::new(),
                        disk: None,
                    }
                    .touches(|_| true, *t, *t, after)
                })
            })
        })
        .collect();
    arrivals.sort();
    if let Some(e) = within(&arrivals, spread) {
        v.push(Violation::new(
            "arrival rate within the quota",
            format!("server saw more than the quota allows: {e}"),
        ));
    }
    // Nothing sent while open.
    let mut open_since: Option<Duration> = None;
    let mut opened_during = Vec::new();
    for (at, state) in &r.transitions {
        // Whatever the new state, the breaker was open until now if it
        // was open before (an Open entry after an Open one included: the
        // end of the run records the state it reads).
        if let Some(from) = open_since.take()
            && let Some(s) = r.sends.iter().find(|s| **s > from && **s < *at)
        {
            v.push(Violation::new(
                "nothing sent while open",
                format!("sent at {s:?} while open since {from:?}"),
            ));
        }
        if let BreakerState::Open { .. } = state {
            open_since = Some(*at);
            opened_during.push(*at);
        }
    }
    // Open at some instant of a long partition, however it got there
    // (opened during it, or already open when it began); closed at the end.
    // (Only while requests are still being made: after the workload ends
    // nothing can fail.)
    let workload_ends = SPACING * REQUESTS as u32;
    // How long the breaker may go without being open during a partition:
    // long enough to fail TRIP_AFTER attempts in a row and then some.
    let long = ATTEMPT_TIMEOUT * (TRIP_AFTER + 2) + SPACING * 4;
    let open_at = |t: Duration| {
        r.transitions
            .iter()
            .rev()
            .find(|(at, _)| *at <= t)
            .is_some_and(|(_, s)| matches!(s, BreakerState::Open { .. }))
    };
    for p in plan.of(FaultKind::Partition) {
        let (start, end) = (p.start(), p.end());
        if end.saturating_sub(start) <= long || end >= workload_ends {
            continue;
        }
        // The stretches of the partition with the breaker not open (closed
        // or half-open): each must end within `long` (a probe cannot
        // succeed while the link is cut, so it reopens).
        let mut edges: Vec<(Duration, bool)> = vec![(start, open_at(start))];
        edges.extend(
            r.transitions
                .iter()
                .filter(|(at, _)| *at > start && *at < end)
                .map(|(at, s)| (*at, matches!(s, BreakerState::Open { .. }))),
        );
        edges.push((end, true));
        let mut since: Option<Duration> = None;
        for (at, open) in edges {
            match (since, open) {
                (None, false) => since = Some(at),
                (Some(from), true) => {
                    if at - from > long {
                        v.push(Violation::new(
                            "opens during a long partition",
                            format!(
                                "the breaker was not open for {:?} ({from:?}..{at:?}) of the partition {start:?}..{end:?}",
                                at - from
                            ),
                        ));
                    }
                    since = None;
                }
                _ => {}
            }
        }
    }
    let end = plan.last_end();
    let bound = end.saturating_add(recovery_within(r, end));
    // The breaker closes by then, if it was not closed when the fault ended
    // (judged only while the workload still makes requests).
    if !plan.faults.is_empty()
        && end.saturating_add(MAX_OPEN + Duration::from_secs(1)) < workload_ends
    {
        // The state when the last fault ended: the latest change before it.
        let open_then = r
            .transitions
            .iter()
            .rev()
            .find(|(at, _)| *at <= end)
            .is_some_and(|(_, s)| !matches!(s, BreakerState::Closed));
        let closed_at = r
            .transitions
            .iter()
            .find(|(at, s)| *at > end && matches!(s, BreakerState::Closed))
            .map(|(at, _)| *at);
        if open_then && closed_at.is_none_or(|c| c > bound) {
            v.push(Violation::new(
"closes after the last fault", format!(
                "the breaker closed at {closed_at:?}, after the {bound:?} bound (last fault ended {end:?})"
            )));
        }
    }
    // Closed at the end, after the end of the run's real requests. (A
    // fault that outlasts them fails this on purpose: a server down for
    // the whole run must fail some invariant.)
    if !matches!(r.transitions.last(), Some((_, BreakerState::Closed))) {
        v.push(Violation::new(
            "closed at the end",
            format!(
                "the breaker is not closed at the end: {:?}",
                r.transitions.last()
            ),
        ));
    }
    // Budget: 20% of the calls plus 5 a second over a sliding second. Each
    // call's deposit counts in at most two disjoint seconds, so over the
    // run: at most 2 x 20% of the calls plus 5 per second elapsed.
    let secs = r.sends.last().map_or(0, |t| t.as_secs() + 1);
    let allowance = 2 * REQUESTS / 5 + 5 * (secs + 1);
    if r.retries > allowance {
        v.push(Violation::new(
            "retries within budget",
            format!("{} retries, allowance {allowance}", r.retries),
        ));
    }
    v
}

fn lanes(r: &Record) -> Vec<Lane> {
    let mut breaker = Lane::new("breaker")
        .key(GREEN, "closed")
        .key(RED, "open")
        .key(AMBER, "half-open");
    for pair in r.transitions.windows(2) {
        let ((from, state), (to, _)) = (pair[0], pair[1]);
        let (colour, what) = match state {
            BreakerState::Closed => (GREEN, "closed"),
            BreakerState::Open { .. } => (RED, "open"),
            BreakerState::HalfOpen { .. } => (AMBER, "half-open"),
        };
        breaker.spans.push((from, to, colour, what.to_string()));
    }
    if let Some((first, _)) = r.transitions.first() {
        breaker
            .spans
            .insert(0, (Duration::ZERO, *first, GREEN, "closed".into()));
    }
    let mut sends = Lane::new("attempts sent");
    sends.points = r.sends.iter().map(|t| (*t, BLUE)).collect();
    let mut arrivals = Lane::new("server arrivals");
    arrivals.points = r.arrivals.iter().map(|t| (*t, BLUE)).collect();
    let mut ends = Lane::new("requests ended")
        .key(GREEN, "succeeded")
        .key(RED, "failed");
    ends.points = r
        .ended_at
        .iter()
        .map(|(t, ok)| (*t, if *ok { GREEN } else { RED }))
        .collect();
    vec![breaker, sends, arrivals, ends]
}

#[cfg(test)]
// A test builds its record a field at a time, as the run would.
#[allow(clippy::field_reassign_with_default)]
mod tests {
    use super::*;
    use async_patterns_sim::Fault;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn net() -> Network {
        Network::latency_ms(1, 5)
    }

    fn open_until(t: u64) -> BreakerState {
        BreakerState::Open {
            until: async_patterns::Instant::from_nanos(t * 1_000_000),
        }
    }

    const HALF_OPEN: BreakerState = BreakerState::HalfOpen {
        in_flight: 0,
        successes: 0,
    };

    fn partition(at: u64, len: u64) -> FaultPlan {
        FaultPlan {
            faults: vec![Fault::new(FaultKind::Partition, "client<->server", at, len)],
            ..FaultPlan::default()
        }
    }

    fn broken(v: &[Violation], name: &str) -> bool {
        v.iter().any(|v| v.invariant == name)
    }

    /// Open at some instant is not enough: a breaker that opens just
    /// before a partition and closes again on a probe that cannot have
    /// succeeded, or one that opens only as the partition ends, left the
    /// client unprotected for most of it.
    #[test]
    fn a_breaker_closed_for_most_of_a_long_partition_is_a_violation() {
        let plan = partition(1_969, 1_946);
        let mut r = Record::default();
        r.transitions = vec![
            (ms(1_950), open_until(2_450)),
            (ms(2_450), HALF_OPEN),
            (ms(2_460), BreakerState::Closed),
        ];
        assert!(broken(
            &check(&r, &plan, &net()),
            "opens during a long partition"
        ));
        r.transitions = vec![
            (ms(3_900), open_until(4_400)),
            (ms(4_400), HALF_OPEN),
            (ms(4_410), BreakerState::Closed),
        ];
        assert!(broken(
            &check(&r, &plan, &net()),
            "opens during a long partition"
        ));
        // Tripping within the first 1.2 s, then probing and reopening: fine.
        r.transitions = vec![
            (ms(2_400), open_until(2_900)),
            (ms(2_900), HALF_OPEN),
            (ms(3_150), open_until(4_150)),
        ];
        assert!(!broken(
            &check(&r, &plan, &net()),
            "opens during a long partition"
        ));
    }

    /// A 500 ms partition at 500 ms, then three probes that fail (at 1.4,
    /// 2.6 and 4.8 s) after the link healed, the breaker closing only at
    /// 8.9 s, and every request failing until then.
    fn three_failed_probes() -> (FaultPlan, Record) {
        let plan = partition(500, 500);
        let mut r = Record::default();
        r.transitions = vec![(ms(700), open_until(1_200))];
        for (half, open) in [(1_200, 1_400), (1_500, 2_600), (2_700, 4_800)] {
            r.transitions.push((ms(half), HALF_OPEN));
            r.transitions.push((ms(open), open_until(open + 2_000)));
        }
        r.transitions.push((ms(8_800), HALF_OPEN));
        r.transitions.push((ms(8_900), BreakerState::Closed));
        for k in 0..79 {
            r.ended_at.push((ms(1_000 + 100 * k), false));
        }
        r.ended_at.push((ms(8_900), true));
        (plan, r)
    }

    /// A probe that fails with the link healthy and the server answering
    /// ok earns no extra recovery round.
    #[test]
    fn unexplained_failed_probes_earn_no_recovery_round() {
        let (plan, mut r) = three_failed_probes();
        let v = check(&r, &plan, &net());
        assert!(broken(&v, "closes after the last fault"), "{v:?}");
        // "requests recover" (the recovery phase's) gets the same bound.
        assert_eq!(recovery_within(&r, plan.last_end()), recovery_round());
        // The same failed probes, each explained by a server error: fine.
        r.server_errors = vec![ms(1_300), ms(2_000), ms(4_000)];
        let v = check(&r, &plan, &net());
        assert!(!broken(&v, "closes after the last fault"), "{v:?}");
        assert_eq!(recovery_within(&r, plan.last_end()), recovery_round() * 4);
    }

    /// Sends between two Open entries (the end of the run records the
    /// state it reads, which may be Open) are checked too.
    #[test]
    fn a_send_between_two_open_entries_is_a_violation() {
        let mut r = Record::default();
        r.transitions = vec![
            (ms(1_000), open_until(1_500)),
            (ms(9_000), open_until(9_500)),
        ];
        r.sends = vec![ms(1_200)];
        assert!(broken(
            &check(&r, &FaultPlan::default(), &net()),
            "nothing sent while open"
        ));
    }

    /// The server-side slack is exactly three trips' spread: with latencies
    /// of 1-5 ms on the 2 ms tick (the longest trip 8 ms), 21 ms. Four
    /// arrivals over 79 ms fit (3 + one interval of 100 ms), over 78 ms
    /// they do not.
    #[test]
    fn the_arrival_slack_is_three_trips_spread() {
        let arrivals = |span: u64| {
            let mut r = Record::default();
            r.arrivals = vec![ms(1_000), ms(1_000), ms(1_000), ms(1_000 + span)];
            check(&r, &FaultPlan::default(), &net())
        };
        assert!(!broken(&arrivals(79), "arrival rate within the quota"));
        assert!(broken(&arrivals(78), "arrival rate within the quota"));
    }

    /// What a hold or a latency fault bunches is left out for three trips
    /// after it ends (at the slower of the fault's and the network's
    /// latency, plus a tick), and not longer.
    #[test]
    fn bunched_arrivals_are_left_out_for_three_trips_and_no_more() {
        let bunch = |kind: FaultKind, after_end: u64| {
            let mut plan = FaultPlan::default();
            let mut f = Fault::new(kind, "client<->server", 1_000, 1_000);
            if kind == FaultKind::Latency {
                f.latency_ms = Some(30);
            }
            plan.faults.push(f);
            let mut r = Record::default();
            let t = 2_000 + after_end;
            r.arrivals = vec![ms(t), ms(t), ms(t), ms(t), ms(t)];
            broken(&check(&r, &plan, &net()), "arrival rate within the quota")
        };
        // A hold: three longest trips, 24 ms.
        assert!(!bunch(FaultKind::Hold, 24));
        assert!(bunch(FaultKind::Hold, 25));
        // A latency fault of 30 ms: 3 x 30 ms and a tick, 92 ms.
        assert!(!bunch(FaultKind::Latency, 92));
        assert!(bunch(FaultKind::Latency, 93));
    }

    /// A stretch not open of exactly the allowance (1.2 s) is allowed, a
    /// millisecond more is not; a long partition that ends after the
    /// workload is not judged.
    #[test]
    fn a_partition_is_judged_to_the_millisecond_and_only_during_the_workload() {
        let closed_through = |plan: &FaultPlan| {
            let mut r = Record::default();
            r.transitions = vec![(ms(100), BreakerState::Closed)];
            broken(&check(&r, plan, &net()), "opens during a long partition")
        };
        assert!(!closed_through(&partition(2_000, 1_200)));
        assert!(closed_through(&partition(2_000, 1_201)));
        // Inside a longer partition, a stretch of exactly 1.2 s before the
        // breaker opens is allowed, 1,201 ms is not.
        let opens_at = |at: u64| {
            let mut r = Record::default();
            r.transitions = vec![
                (ms(100), BreakerState::Closed),
                (ms(at), open_until(at + 500)),
            ];
            broken(
                &check(&r, &partition(2_000, 2_000), &net()),
                "opens during a long partition",
            )
        };
        assert!(!opens_at(3_200));
        assert!(opens_at(3_201));
        // The workload ends at 8 s: a partition past it is not judged.
        assert!(!closed_through(&partition(7_000, 1_300)));
        assert!(closed_through(&partition(6_600, 1_300)));
    }

    /// A recovery round is the longest cool-down, an attempt timeout and a
    /// retry's longest wait: 4.6 s, so after a partition ending at 1 s
    /// requests must succeed by 5.6 s (the recovery phase judges it; a
    /// first success exactly at the bound is in time: `tests/liveness.rs`
    /// in the library).
    #[test]
    fn requests_recover_within_one_round_to_the_millisecond() {
        assert_eq!(recovery_round(), ms(4_600));
        let plan = partition(500, 500);
        let end = plan.last_end();
        assert_eq!(end + recovery_within(&Record::default(), end), ms(5_600));
        let property = &ResilientClient.eventually()[0];
        assert_eq!(property.name(), "requests recover");
        assert_eq!(property.within(), ms(6 * 4_600));
    }

    /// A server error explains a failed probe only if it came between the
    /// probe's half-open and the reopening.
    #[test]
    fn a_server_error_elsewhere_explains_no_failed_probe() {
        let (plan, mut r) = three_failed_probes();
        // Server errors, but none inside a probe's window.
        r.server_errors = vec![ms(1_100), ms(1_450), ms(2_650)];
        let v = check(&r, &plan, &net());
        assert!(broken(&v, "closes after the last fault"), "{v:?}");
    }

    /// Arrivals bunched by the end of a slow-link fault are the network's
    /// doing, not the client's.
    #[test]
    fn arrivals_bunched_by_a_latency_fault_ending_are_left_out() {
        let mut plan = FaultPlan::default();
        plan.faults.push(Fault {
            latency_ms: Some(30),
            ..Fault::new(FaultKind::Latency, "client<->server", 1_000, 2_000)
        });
        let mut r = Record::default();
        r.sends = vec![ms(2_900), ms(2_900), ms(2_900), ms(3_000), ms(3_100)];
        r.arrivals = vec![ms(2_990), ms(2_990), ms(2_990), ms(3_018), ms(3_118)];
        let v = check(&r, &plan, &Network::latency_ms(5, 6));
        assert!(!broken(&v, "arrival rate within the quota"), "{v:?}");
        // Without the fault, four in 28 ms are too many.
        let v = check(&r, &FaultPlan::default(), &Network::latency_ms(5, 6));
        assert!(broken(&v, "arrival rate within the quota"), "{v:?}");
    }

    /// Seed 9001070: the breaker opened at 1.950 s, 20 ms before a
    /// partition of 1.969-3.915 s began, and stayed open through it. It
    /// was open during the partition, as the invariant asks: no violation.
    /// A breaker closed for the whole partition still is one.
    #[test]
    fn a_breaker_already_open_when_the_partition_begins_counts() {
        let plan = FaultPlan {
            faults: vec![Fault::new(
                FaultKind::Partition,
                "client<->server",
                1_969,
                1_946,
            )],
            ..FaultPlan::default()
        };
        let opens = |v: &[Violation]| {
            v.iter()
                .any(|v| v.invariant == "opens during a long partition")
        };
        let mut r = Record::default();
        r.transitions.push((
            ms(1_950),
            BreakerState::Open {
                until: async_patterns::Instant::from_nanos(3_950_000_000),
            },
        ));
        r.transitions.push((
            ms(3_950),
            BreakerState::HalfOpen {
                in_flight: 0,
                successes: 0,
            },
        ));
        r.transitions.push((ms(3_960), BreakerState::Closed));
        assert!(
            !opens(&check(&r, &plan, &net())),
            "{:?}",
            check(&r, &plan, &net())
        );
        // Opened and closed again before the partition: not open during it.
        r.transitions[1].0 = ms(1_960);
        r.transitions[2].0 = ms(1_965);
        assert!(opens(&check(&r, &plan, &net())));
    }

    /// Recovery can fail: a partition ends at 1 s, yet every request fails
    /// until the end of the run at 12 s (the breaker closed throughout):
    /// the recovery property never holds; one success in the round does.
    #[test]
    fn requests_still_failing_long_after_the_last_fault_are_a_violation() {
        let plan = partition(500, 500);
        let heal = plan.last_end();
        let mut r = Record::default();
        for k in 0..110 {
            r.ended_at.push((ms(1_000 + 100 * k), false));
        }
        r.transitions.push((ms(12_000), BreakerState::Closed));
        let property = &ResilientClient.eventually()[0];
        assert!(!property.holds(&r, heal));
        // A success before the heal is not recovery.
        r.ended_at[0] = (heal, true);
        assert!(!property.holds(&r, heal));
        // One success after it is.
        r.ended_at[30].1 = true;
        assert!(property.holds(&r, heal));
    }
}
