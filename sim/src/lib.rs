//! Deterministic simulations of the patterns over turmoil's simulated TCP.
//!
//! A scenario is a pure function of `(seed, fault plan)`: turmoil's RNG,
//! the network's latencies and every workload choice come from the seed;
//! time is turmoil's (tokio's paused clock); nothing iterates a hash map.
//! Each run returns its event trace, a hash of it, a few metrics and the
//! invariant violations it found. A sweep runs every seed twice and
//! compares the trace hashes, so nondeterminism is caught on every run.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod aggregator;
pub mod bulkhead;
pub mod pipeline;
pub mod plot;
pub mod resilient_client;
pub mod sequential_parallel;

/// What kind of fault, mapped by each scenario onto its own hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The scenario's main link drops every message.
    Partition,
    /// The scenario's slow link holds its messages, then delivers them
    /// (a latency spike).
    Hold,
    /// The scenario's crashable host crashes, and comes back at the end.
    Crash,
    /// The scenario's main link (the one a partition cuts) loses messages
    /// at random: turmoil's fail rate, [`LOSS_RATE`] per message sent, each
    /// loss dropping what is in flight on the link at that moment.
    Loss,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 4] = [
        FaultKind::Partition,
        FaultKind::Hold,
        FaultKind::Crash,
        FaultKind::Loss,
    ];
}

/// The chance, per message sent on a lossy link, that the link drops
/// everything in flight (turmoil repairs it at the next message).
pub const LOSS_RATE: f64 = 0.05;

/// One fault: a kind, when it starts and how long it lasts (virtual ms).
///
/// Any `u64` is a valid plan number (a plan is input, and a checker must
/// not panic on it): read the instants through [`Fault::start`] and
/// [`Fault::end`], which saturate, never `at_ms + for_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// What happens.
    pub kind: FaultKind,
    /// When, after the simulation begins.
    pub at_ms: u64,
    /// For how long.
    pub for_ms: u64,
}

impl Fault {
    /// When it starts, after the simulation begins.
    pub fn start(&self) -> Duration {
        Duration::from_millis(self.at_ms)
    }

    /// When it ends (saturating: `for_ms: u64::MAX` lasts for ever).
    pub fn end(&self) -> Duration {
        Duration::from_millis(self.at_ms.saturating_add(self.for_ms))
    }
}

/// The faults a run injects; written by hand (JSON), derived from a seed,
/// or shrunk from a failing one. A field the harness does not know is an
/// error that names it, not silently dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// The faults, in any order.
    pub faults: Vec<Fault>,
    /// The deliberately broken pattern the plan was found under, if any:
    /// `shrink --sabotage` records it and `replay --plan` applies it. A
    /// plan with one is a demonstration, never a regression (the replay of
    /// `sim/regressions/` refuses it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sabotage: Option<Sabotage>,
}

impl FaultPlan {
    /// The plan a seed gets when none is given, in swarm style: each kind
    /// of fault is left out with probability 1/3, so seeds also explore
    /// runs with only some kinds (bugs that all-faults-at-once hides);
    /// each fault starts within 0.3-2.5 s and lasts 0.2-2.5 s. (Kinds are
    /// drawn in [`FaultKind::ALL`] order, so a kind added at the end leaves
    /// every seed's earlier faults as they were.)
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = async_patterns::rng::SplitMix64::derive(seed, 0xfa17);
        let mut faults = Vec::new();
        for kind in FaultKind::ALL {
            if rng.between(0, 2) == 0 {
                continue;
            }
            faults.push(Fault {
                kind,
                at_ms: rng.between(300, 2_500),
                for_ms: rng.between(200, 2_500),
            });
        }
        FaultPlan {
            faults,
            sabotage: None,
        }
    }

    /// The faults of one kind.
    pub fn of(&self, kind: FaultKind) -> impl Iterator<Item = &Fault> {
        self.faults.iter().filter(move |f| f.kind == kind)
    }

    /// Whether a fault of one of `kinds` is on at some instant of
    /// `from..=to`, counting it as lasting `after` beyond its end (for its
    /// aftermath: timeouts still running, held messages delivered).
    pub fn touches(
        &self,
        kinds: &[FaultKind],
        from: Duration,
        to: Duration,
        after: Duration,
    ) -> bool {
        // A 0 ms fault is no fault (see `run_with_faults`).
        self.faults.iter().filter(|f| f.for_ms > 0).any(|f| {
            let end = f.end().saturating_add(after);
            kinds.contains(&f.kind) && f.start() <= to && end >= from
        })
    }
}

/// How a scenario maps fault kinds onto its hosts: the partitioned pair,
/// the held pair and the host that crashes.
pub struct Targets {
    /// The link a partition cuts, and loss hits.
    pub partition: (&'static str, &'static str),
    /// The link a hold delays.
    pub hold: (&'static str, &'static str),
    /// The host a crash takes down.
    pub crash: &'static str,
}

impl Targets {
    /// A client and its one server: every link fault on the link between
    /// them; a crash takes the server down.
    pub fn client_server(client: &'static str, server: &'static str) -> Self {
        Targets {
            partition: (client, server),
            hold: (client, server),
            crash: server,
        }
    }
}

/// Steps `sim` to the end, applying `plan`'s faults at their instants and
/// logging each to `trace`. Returns the run's first violations: the
/// simulation's own failure (a host's error, or not finishing in time), if
/// any.
pub fn run_with_faults(
    sim: &mut turmoil::Sim<'_>,
    plan: &FaultPlan,
    targets: &Targets,
    trace: &Trace,
) -> Vec<String> {
    // (instant, order, what): at one instant, ends come before starts, so
    // a fault that starts as another ends follows it. A fault of 0 ms is no
    // fault: its end would sort before its own start and leave it on for
    // ever, so it is skipped.
    let mut events: Vec<(Duration, u8, FaultKind, bool)> = Vec::new();
    for f in plan.faults.iter().filter(|f| f.for_ms > 0) {
        events.push((f.start(), 1, f.kind, true));
        events.push((f.end(), 0, f.kind, false));
    }
    events.sort();
    // Faults of one kind may overlap, and a turmoil link has one state: so
    // count what is on, per kind, and act on the counts. A host crashes on
    // the first crash and comes back when the last one ends; a link is
    // partitioned while any partition is on, else held while any hold is
    // on, else healthy (a hold ending under a partition must not repair
    // it); a link is lossy while any loss is on.
    let mut on: std::collections::BTreeMap<FaultKind, u32> = Default::default();
    let mut next = 0;
    loop {
        let now = sim.elapsed();
        while let Some(&(at, _, kind, start)) = events.get(next) {
            if at > now {
                break;
            }
            next += 1;
            let count = on.entry(kind).or_default();
            *count = if start {
                *count + 1
            } else {
                count.saturating_sub(1)
            };
            let (count, first, last) = (*count, start && *count == 1, !start && *count == 0);
            let still = match (start, count) {
                (true, 2..) => " (one is already on)",
                (false, 1..) => " (another is still on)",
                _ => "",
            };
            let what = match kind {
                FaultKind::Crash => {
                    let host = targets.crash;
                    if first {
                        sim.crash(host);
                    } else if last {
                        sim.bounce(host);
                    }
                    let verb = if start { "crash" } else { "bounce" };
                    format!("{verb} {host}{still}")
                }
                FaultKind::Loss => {
                    let (a, b) = targets.partition;
                    sim.set_link_fail_rate(a, b, if count > 0 { LOSS_RATE } else { 0.0 });
                    let verb = if start { "lossy" } else { "lossless" };
                    format!("{verb} {a} <-> {b}{still}")
                }
                FaultKind::Partition | FaultKind::Hold => {
                    for link in [targets.partition, targets.hold] {
                        let cut =
                            targets.partition == link && on.get(&FaultKind::Partition) > Some(&0);
                        let held = targets.hold == link && on.get(&FaultKind::Hold) > Some(&0);
                        match (cut, held) {
                            (true, _) => sim.partition(link.0, link.1),
                            (false, true) => sim.hold(link.0, link.1),
                            // healthy; held messages are delivered
                            (false, false) => sim.release(link.0, link.1),
                        }
                    }
                    let (a, b) = if kind == FaultKind::Partition {
                        targets.partition
                    } else {
                        targets.hold
                    };
                    let verb = match (kind, start) {
                        (FaultKind::Partition, true) => "partition",
                        (FaultKind::Partition, false) => "repair",
                        (_, true) => "hold",
                        (_, false) => "release",
                    };
                    format!("{verb} {a} <-> {b}{still}")
                }
            };
            trace.log(now, format!("chaos: {what}"));
        }
        match sim.step() {
            Ok(true) => return Vec::new(),
            Ok(false) => {}
            Err(e) => return vec![format!("simulation failed: {e}")],
        }
    }
}

/// A deliberately broken pattern, swapped in only to prove that the
/// scenarios' invariants catch it: the harness's own test (`tests/meta.rs`)
/// and the README's replay example use it. A normal run has none.
/// (Its JSON name, in a saved plan, is its command-line name.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sabotage {
    /// resilient-client: the breaker's refusal is ignored, so attempts go
    /// out while it is open (a breaker that never opens).
    BreakerNeverOpens,
    /// resilient-client: the limiter's burst is 1,000 instead of 3, so a
    /// backlog goes out at once.
    LimiterIgnoresBurst,
    /// aggregator: a call cut off by its timeout never returns its
    /// semaphore permit (a semaphore that leaks on cancel).
    SemaphoreLeaksOnCancel,
    /// pipeline: the consumer acknowledges an item before it stores it, so
    /// a crash in between loses the item.
    AckBeforeStore,
}

impl Sabotage {
    /// The scenario the sabotage breaks.
    pub fn scenario(self) -> &'static str {
        match self {
            Sabotage::BreakerNeverOpens | Sabotage::LimiterIgnoresBurst => "resilient-client",
            Sabotage::SemaphoreLeaksOnCancel => "aggregator",
            Sabotage::AckBeforeStore => "pipeline",
        }
    }

    /// Its name on the command line.
    pub fn name(self) -> String {
        use clap::ValueEnum;
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

/// What one run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Every event, in order, stamped with virtual time.
    pub trace: Vec<String>,
    /// A hash of the trace (fixed-key SipHash): equal seeds, equal hashes.
    pub trace_hash: u64,
    /// Invariant violations, described.
    pub violations: Vec<String>,
    /// Latencies of the logical requests that succeeded.
    pub latencies: Vec<Duration>,
    /// Faults injected.
    pub faults: usize,
    /// What changed over time, for `replay --plot`.
    pub timeline: plot::Timeline,
}

impl Outcome {
    /// A run's outcome: its trace (hashed here), the violations found, the
    /// successful requests' latencies, and a timeline of the plan's faults
    /// above the scenario's own `lanes`.
    pub fn new(
        plan: &FaultPlan,
        trace: &Trace,
        violations: Vec<String>,
        latencies: Vec<Duration>,
        lanes: Vec<plot::Lane>,
    ) -> Self {
        Outcome::of_events(plan, trace.events(), violations, latencies, lanes)
    }

    fn of_events(
        plan: &FaultPlan,
        trace: Vec<String>,
        violations: Vec<String>,
        latencies: Vec<Duration>,
        lanes: Vec<plot::Lane>,
    ) -> Self {
        let mut timeline = plot::fault_lanes(plan);
        timeline.extend(lanes);
        Outcome {
            trace_hash: hash_trace(&trace),
            trace,
            violations,
            latencies,
            faults: plan.faults.len(),
            timeline: plot::Timeline { lanes: timeline },
        }
    }
}

/// A scenario: a name, what it checks, and the run itself.
pub struct Scenario {
    /// Its name on the command line.
    pub name: &'static str,
    /// What it exercises and which invariants it checks.
    pub checks: &'static str,
    /// Runs one seed under a plan (with a sabotage only in the harness's
    /// own tests and demonstrations).
    pub run: fn(u64, &FaultPlan, Option<Sabotage>) -> Outcome,
}

/// Every scenario.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        resilient_client::SCENARIO,
        aggregator::SCENARIO,
        bulkhead::SCENARIO,
        sequential_parallel::SCENARIO,
        pipeline::SCENARIO,
    ]
}

/// An event log shared by the hosts of one simulation.
#[derive(Clone, Default)]
pub struct Trace(Arc<Mutex<Vec<String>>>);

impl Trace {
    /// Records `event` at virtual time `at`.
    pub fn log(&self, at: Duration, event: impl AsRef<str>) {
        self.0.lock().expect("trace lock").push(format!(
            "{:>9.3} ms  {}",
            at.as_secs_f64() * 1e3,
            event.as_ref()
        ));
    }

    /// The events so far.
    pub fn events(&self) -> Vec<String> {
        self.0.lock().expect("trace lock").clone()
    }
}

/// The trace's hash: std's SipHash with fixed keys, stable for a build.
pub fn hash_trace(trace: &[String]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    trace.hash(&mut h);
    h.finish()
}

/// Shrinks a failing `plan` for `seed` (the seed stays fixed): greedily
/// drops faults, then halves their durations and moves them earlier, keeping
/// each change only while the run still breaks an invariant. Returns the
/// smallest plan found and its violations; `None` if the plan does not fail.
pub fn shrink(
    scenario: &Scenario,
    seed: u64,
    plan: &FaultPlan,
    sabotage: Option<Sabotage>,
) -> Option<(FaultPlan, Vec<String>)> {
    let fails = |p: &FaultPlan| {
        let out = run_guarded(scenario, seed, p, sabotage);
        (!out.violations.is_empty()).then_some(out.violations)
    };
    let mut best = plan.clone();
    let mut violations = fails(&best)?;
    loop {
        let mut candidates = Vec::new();
        for i in 0..best.faults.len() {
            let mut fewer = best.clone();
            fewer.faults.remove(i);
            candidates.push(fewer);
        }
        for i in 0..best.faults.len() {
            let f = best.faults[i];
            for changed in [
                Fault {
                    for_ms: f.for_ms / 2,
                    ..f
                },
                Fault {
                    at_ms: f.at_ms / 2,
                    ..f
                },
            ] {
                if changed != f {
                    let mut smaller = best.clone();
                    smaller.faults[i] = changed;
                    candidates.push(smaller);
                }
            }
        }
        match candidates
            .into_iter()
            .find_map(|c| fails(&c).map(|v| (c, v)))
        {
            Some((smaller, v)) => {
                best = smaller;
                violations = v;
            }
            None => return Some((best, violations)),
        }
    }
}

/// Waits for every task of a host's workload; a task's panic fails the
/// host (and so the run).
pub async fn join_all(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        task.await.expect("a workload task panicked");
    }
}

/// The scenarios' wire protocol: one line out, one line back, on a fresh
/// turmoil TCP connection to `host:port`. An empty answer (the peer closed)
/// is an error.
pub async fn exchange(host: &str, port: u16, request: String) -> Result<String, String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let stream = turmoil::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    let (read, mut write) = stream.into_split();
    write
        .write_all(format!("{request}\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(read)
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    if line.is_empty() {
        return Err("connection closed".into());
    }
    Ok(line.trim_end().to_string())
}

/// Runs `scenario` for `seed` under `plan`, turning a panic (in turmoil or
/// in a host) into a reported violation instead of ending the sweep.
pub fn run_guarded(
    scenario: &Scenario,
    seed: u64,
    plan: &FaultPlan,
    sabotage: Option<Sabotage>,
) -> Outcome {
    let run = scenario.run;
    match std::panic::catch_unwind(|| run(seed, plan, sabotage)) {
        Ok(out) => out,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic without a message".into());
            let trace = vec![format!("panicked: {msg}")];
            Outcome::of_events(
                plan,
                trace,
                vec![format!("the simulation panicked: {msg}")],
                Vec::new(),
                Vec::new(),
            )
        }
    }
}

/// Virtual time per simulation step. Every step polls every host's runtime,
/// so the step count is what a run costs: 2 ms halves it against turmoil's
/// default 1 ms and still resolves the 1-25 ms message latencies the
/// scenarios draw (a sweep runs about twice as many seeds per second).
pub const TICK: Duration = Duration::from_millis(2);

/// A simulation configured from `seed`: turmoil's RNG, a fixed epoch (not
/// the wall clock), 60 s of virtual time in [`TICK`] steps, message
/// latencies drawn from `latency_ms`, and socket buffers large enough for a
/// released hold (turmoil panics when one overflows).
pub fn sim_builder<'a>(seed: u64, latency_ms: (u64, u64)) -> turmoil::Sim<'a> {
    turmoil::Builder::new()
        .rng_seed(seed)
        .epoch(std::time::UNIX_EPOCH)
        .simulation_duration(Duration::from_secs(60))
        .tcp_capacity(4096)
        .tick_duration(TICK)
        .min_message_latency(Duration::from_millis(latency_ms.0))
        .max_message_latency(Duration::from_millis(latency_ms.1))
        .build()
}

/// The server side of [`exchange`]: accepts on `port` forever, and answers
/// each connection's one request line (newline included) with the line
/// `handle` returns, each connection in its own task.
pub async fn serve<F, Fut>(port: u16, handle: F) -> turmoil::Result
where
    F: Fn(String) -> Fut + 'static,
    Fut: std::future::Future<Output = String> + 'static,
{
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let handle = std::rc::Rc::new(handle);
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", port)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let handle = handle.clone();
        tokio::task::spawn_local(async move {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            if BufReader::new(read).read_line(&mut line).await.is_err() {
                return;
            }
            let reply = handle(line).await;
            let _ = write.write_all(format!("{reply}\n").as_bytes()).await;
        });
    }
}
