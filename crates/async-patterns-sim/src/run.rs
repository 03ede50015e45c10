//! One run: the seeded simulation, the faults injected into the declared
//! targets as virtual time passes, panic capture, and the run-twice
//! determinism check.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::assert::{RunPoints, check_catalogue, point};
use crate::disk::DiskProfile;
use crate::fault::{DEFAULT_LATENCY_MS, DEFAULT_LOSS_PERCENT};
use crate::fault::{Fault, FaultKind, FaultPlan, PlanError, Resolved, Targets};
use crate::liveness::{Phase, Recovery};
use crate::plot::{Lane, Timeline, fault_lanes};
use crate::scenario::{AnyScenario, Ctx, Network, RunInfo, Scenario};
use crate::site::Firing;
use crate::trace::{Divergence, Trace, Violation, hash_trace};

/// What one run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Every event, in order, stamped with virtual time.
    pub trace: Vec<String>,
    /// A hash of the trace: equal seeds, equal hashes.
    pub trace_hash: u64,
    /// The invariants broken (empty: the run passed).
    pub violations: Vec<Violation>,
    /// Latencies of the requests that succeeded ([`Ctx::latency`]).
    pub latencies: Vec<Duration>,
    /// Faults injected.
    pub faults: usize,
    /// What changed over time, for `replay --plot`.
    pub timeline: Timeline,
    /// The declared points the run reached, in the scenario's order (see
    /// [`assert`](crate::assert)).
    pub points: Vec<String>,
    /// How each [`eventually`](crate::Scenario::eventually) property fared
    /// in the recovery phase (empty when the run had none: see
    /// [`liveness`](crate::liveness)).
    pub recoveries: Vec<Recovery>,
    /// The best value of each [`guide!`](async_patterns_assert::guide) the
    /// run measured, by name.
    pub guides: BTreeMap<String, u64>,
    /// The fault-site entries that fired, as `site: action`, each once.
    pub fired: Vec<String>,
    /// When sites fired (the first 64 firings): the site, what the entry
    /// does, and the instant. A guided search aims its next faults there.
    pub moments: Vec<crate::site::Moment>,
    /// When the run ended (its workload done, and its recovery phase if
    /// any), in virtual time: a planned fault that starts at or after it
    /// never happened ([`Outcome::unstarted`]).
    pub ended: Duration,
}

impl Outcome {
    /// A run that could not start: `why`, and nothing else.
    fn unrun(plan: &FaultPlan, why: Violation) -> Self {
        Outcome::new(plan, Vec::new(), vec![why], Vec::new(), Vec::new())
    }

    fn new(
        plan: &FaultPlan,
        trace: Vec<String>,
        violations: Vec<Violation>,
        latencies: Vec<Duration>,
        lanes: Vec<Lane>,
    ) -> Self {
        let mut timeline = fault_lanes(plan);
        timeline.extend(lanes);
        Outcome {
            trace_hash: hash_trace(&trace),
            trace,
            violations,
            latencies,
            faults: plan.faults.len(),
            timeline: Timeline { lanes: timeline },
            points: Vec::new(),
            recoveries: Vec::new(),
            guides: BTreeMap::new(),
            fired: Vec::new(),
            moments: Vec::new(),
            ended: Duration::ZERO,
        }
    }

    /// How many of `plan`'s faults never started: the run ended first
    /// (they test nothing; a swarm whose start window runs past the
    /// workload draws such faults).
    pub fn unstarted(&self, plan: &FaultPlan) -> usize {
        plan.faults
            .iter()
            .filter(|f| f.for_ms > 0 && f.start() >= self.ended)
            .count()
    }

    /// How many of `plan`'s site entries open (`from_ms`) only after the
    /// run ended: they never fired.
    pub fn unopened(&self, plan: &FaultPlan) -> usize {
        plan.sites
            .iter()
            .filter(|e| {
                e.from_ms
                    .is_some_and(|f| Duration::from_millis(f) >= self.ended)
            })
            .count()
    }
}

/// Runs `scenario` for `seed` under `plan`: checks the plan against the
/// scenario's declarations, then builds, runs and checks, turning a panic
/// (in turmoil, a host or a check) into a violation. A pure function of its
/// arguments, if the scenario keeps the determinism rules.
///
/// ```
/// # use async_patterns_sim::{Ctx, RunInfo, Scenario, Violation};
/// # struct Idle;
/// # impl Scenario for Idle {
/// #     type Record = ();
/// #     fn name(&self) -> &str { "idle" }
/// #     fn about(&self) -> &str { "" }
/// #     fn build(&self, _: &Ctx<()>, sim: &mut turmoil::Sim<'_>) {
/// #         sim.client("c", async { Ok(()) });
/// #     }
/// #     fn check(&self, _: &RunInfo, _: &()) -> Vec<Violation> { vec![] }
/// # }
/// use async_patterns_sim::{FaultPlan, run};
///
/// let out = run(&Idle, 7, &FaultPlan::default()).unwrap();
/// assert!(out.violations.is_empty());
/// assert_eq!(out.trace_hash, run(&Idle, 7, &FaultPlan::default()).unwrap().trace_hash);
/// ```
pub fn run<S: Scenario + ?Sized>(
    scenario: &S,
    seed: u64,
    plan: &FaultPlan,
) -> Result<Outcome, PlanError> {
    run_traced(scenario, seed, plan, Trace::default())
}

/// As [`run`], the second time: logging to a trace made
/// [`against`](Trace::against) the first run's, and stopping at the first
/// event that differs (the run is then cut short and not checked). Returns
/// the outcome and where the runs differ, if they do.
pub fn run_again<S: Scenario + ?Sized>(
    scenario: &S,
    seed: u64,
    plan: &FaultPlan,
    first: Arc<Vec<String>>,
) -> Result<(Outcome, Option<Divergence>), PlanError> {
    let trace = Trace::against(first.clone());
    let outcome = run_traced(scenario, seed, plan, trace.clone())?;
    let divergence = trace
        .divergence()
        .or_else(|| Divergence::between(&first, &outcome.trace));
    Ok((outcome, divergence))
}

fn run_traced<S: Scenario + ?Sized>(
    scenario: &S,
    seed: u64,
    plan: &FaultPlan,
    trace: Trace,
) -> Result<Outcome, PlanError> {
    let targets = scenario.targets();
    let sabotages = scenario.sabotages();
    let (resolved, site_targets) = plan.resolve(&targets, &sabotages)?;
    let network = scenario.network(seed);
    let declared = scenario.points();
    if let Err(e) = check_catalogue(&declared) {
        // The scenario's bug, the same for every seed: the command line
        // says it once before any run; a run says it as a violation.
        let v = Violation::new("declared points", e.to_string());
        return Ok(Outcome::unrun(plan, v));
    }
    if network.tick.is_zero() || network.duration.is_zero() {
        // A zero tick never reaches the end: a hang, not a run.
        let v = Violation::new(
            "network",
            format!(
                "tick {:?} and duration {:?} must both be above zero",
                network.tick, network.duration
            ),
        );
        return Ok(Outcome::unrun(plan, v));
    }
    let _quiet = InRun::enter();
    // Every host of the run polls on this thread: the points it reaches
    // are this run's, until the guard goes.
    let points = Rc::new(RunPoints::new(declared, trace.clone()));
    let firing = Rc::new(Firing::new(seed, &plan.sites, site_targets, trace.clone()));
    let guides = Rc::new(RefCell::new(BTreeMap::new()));
    let ended = Cell::new(Duration::ZERO);
    let listening = point::listen(Rc::new(Hooks {
        points: points.clone(),
        firing: firing.clone(),
        guides: guides.clone(),
    }));
    let attempt = catch_unwind(AssertUnwindSafe(|| {
        let info = RunInfo {
            seed,
            plan: plan.clone(),
            network,
        };
        let ctx: Ctx<S::Record> = Ctx::new(info.clone(), &sabotages, trace);
        let mut sim = configured(seed, &info.network, plan.disk.as_ref());
        if let Some(disk) = &plan.disk {
            ctx.trace()
                .log(Duration::ZERO, format!("chaos: disk: {disk}"));
        }
        scenario.build(&ctx, &mut sim);
        let missing = undeclared_hosts(&mut sim, &targets);
        if !missing.is_empty() {
            let v = Violation::new(
                "declared targets",
                format!(
                    "the scenario declares {missing:?} as targets, but build() made no such host"
                ),
            );
            return (Vec::new(), vec![v], Vec::new(), Vec::new(), Vec::new());
        }
        // The recovery phase, if the scenario has properties and the plan
        // heals before the run's end.
        let mut phase = Phase::new(scenario.eventually(), plan.last_end(), &info.network);
        let tick = info.network.tick;
        let mut violations = step_with_faults(
            &mut sim,
            plan.faults
                .iter()
                .cloned()
                .zip(resolved.iter().copied())
                .collect(),
            &firing,
            &targets,
            &info.network,
            ctx.trace(),
            &mut |sim| {
                ended.set(sim.elapsed());
                match &mut phase {
                    Some(phase) => {
                        let now = sim.elapsed();
                        phase.observe(now, &ctx.record());
                        phase.start_probe(sim, || scenario.probe(&ctx), tick);
                        phase.open(now)
                    }
                    None => false,
                }
            },
        );
        drop(sim);
        let record = ctx.record();
        let mut recoveries = Vec::new();
        // A second run cut short at a divergence is not checked: its
        // record is of half a run.
        if ctx.trace().divergence().is_none() {
            violations.extend(scenario.check(&info, &record));
            // After the check: a point it marks counts too.
            violations.extend(points.violations());
            if let Some(phase) = &phase {
                let (late, how) = phase.finish(&record);
                violations.extend(late);
                recoveries = how;
            }
        }
        let lanes = scenario.lanes(&info, &record);
        drop(record);
        (
            ctx.trace().events(),
            violations,
            ctx.take_latencies(),
            lanes,
            recoveries,
        )
    }));
    drop(listening);
    Ok(match attempt {
        Ok((trace, violations, latencies, lanes, recoveries)) => {
            let mut out = Outcome::new(plan, trace, violations, latencies, lanes);
            out.points = points.reached();
            out.recoveries = recoveries;
            out.guides = guides.take();
            out.fired = firing.fired();
            out.moments = firing.moments();
            out.ended = ended.get();
            out
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic without a message".into());
            Outcome::new(
                plan,
                vec![format!("panicked: {msg}")],
                vec![Violation::new("no panic", msg)],
                Vec::new(),
                Vec::new(),
            )
        }
    })
}

/// What one run listens with: the declared points it counts, and the fault
/// sites its plan turns on.
struct Hooks {
    points: Rc<RunPoints>,
    firing: Rc<Firing>,
    guides: Rc<RefCell<BTreeMap<String, u64>>>,
}

impl point::Listener for Hooks {
    fn hit(
        &self,
        kind: point::Kind,
        name: &'static str,
        holds: bool,
        detail: std::fmt::Arguments<'_>,
    ) {
        self.points.hit(kind, name, holds, detail);
    }

    fn site(&self, name: &'static str) -> point::Fire {
        self.firing.reach(name)
    }

    fn guide(&self, name: &'static str, value: u64) {
        let mut guides = self.guides.borrow_mut();
        let best = guides.entry(name.to_string()).or_insert(value);
        *best = (*best).max(value);
    }
}

/// The declared target hosts that `scenario`'s `build` makes no host for,
/// found by building (not running) the simulation of `seed`: a bug in the
/// scenario, which the command line reports once, before any seed runs
/// (exit 2), instead of failing every seed. A build that panics is left to
/// the runs to report.
pub fn missing_targets<S: Scenario + ?Sized>(scenario: &S, seed: u64) -> Vec<String> {
    let targets = scenario.targets();
    let sabotages = scenario.sabotages();
    let network = scenario.network(seed);
    if network.tick.is_zero() || network.duration.is_zero() {
        return Vec::new();
    }
    let _quiet = InRun::enter();
    catch_unwind(AssertUnwindSafe(|| {
        let info = RunInfo {
            seed,
            plan: FaultPlan::default(),
            network,
        };
        let ctx: Ctx<S::Record> = Ctx::new(info.clone(), &sabotages, Trace::default());
        let mut sim = builder(seed, &info.network);
        scenario.build(&ctx, &mut sim);
        undeclared_hosts(&mut sim, &targets)
    }))
    .unwrap_or_default()
}

/// The declared target hosts `sim` does not have (turmoil panics on a
/// fault for one, in the middle of a run: this says why, before it).
fn undeclared_hosts(sim: &mut turmoil::Sim<'_>, targets: &Targets) -> Vec<String> {
    let mut names: Vec<&str> = targets.links().flat_map(|(a, b)| [a, b]).collect();
    names.extend(targets.hosts().map(|(h, _)| h));
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .filter(|h| catch_unwind(AssertUnwindSafe(|| sim.is_host_running(*h))).is_err())
        .map(str::to_string)
        .collect()
}

thread_local! {
    /// Whether this thread is inside [`run`] (whose panics become violations).
    static IN_RUN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks this thread as inside a run until dropped.
struct InRun(bool);

impl InRun {
    fn enter() -> Self {
        InRun(IN_RUN.with(|r| r.replace(true)))
    }
}

impl Drop for InRun {
    fn drop(&mut self) {
        IN_RUN.with(|r| r.set(self.0));
    }
}

/// Installs (once) a panic hook that stays silent for panics inside a run
/// (each becomes a violation with its message, so a sweep over a panicking
/// scenario does not print a backtrace per seed) and prints every other
/// panic as before. The command line installs it; a test need not.
pub fn quiet_panics_in_runs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let before = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_RUN.with(|r| r.get()) {
                before(info);
            }
        }));
    });
}

/// A turmoil simulation configured from `seed`: turmoil's RNG, a fixed
/// epoch (never the wall clock), and `network`'s latencies, tick, length
/// and buffers.
pub fn builder<'a>(seed: u64, network: &Network) -> turmoil::Sim<'a> {
    configured(seed, network, None)
}

/// As [`builder`], with the run's disk faults.
fn configured<'a>(seed: u64, network: &Network, disk: Option<&DiskProfile>) -> turmoil::Sim<'a> {
    let mut b = turmoil::Builder::new();
    if let Some(disk) = disk {
        disk.configure(&mut b);
    }
    b.rng_seed(seed)
        .epoch(std::time::UNIX_EPOCH)
        .simulation_duration(network.duration)
        .tcp_capacity(network.tcp_capacity)
        .tick_duration(network.tick)
        .min_message_latency(network.min_latency)
        .max_message_latency(network.max_latency)
        .build()
}

/// A seed run twice: the first run's outcome, and whether the second gave
/// the same trace (a `nondeterministic` violation is added if not).
#[derive(Debug, Clone)]
pub struct Checked {
    /// The first run.
    pub outcome: Outcome,
    /// The second run's trace hash, if it ran (of its trace up to where it
    /// stopped, if it differed).
    pub again: Option<u64>,
    /// Where the second run first differed from the first, if it did.
    pub divergence: Option<Divergence>,
}

impl Checked {
    /// Whether both runs gave the same trace (true if only one ran).
    pub fn deterministic(&self) -> bool {
        self.divergence.is_none()
    }
}

/// Runs `seed` under `plan`, twice when `twice` (the default everywhere:
/// a scenario that breaks a determinism rule fails here, on the seed that
/// shows it). The second run compares its events with the first's as it
/// logs them and stops at the first difference, which the `deterministic`
/// violation then shows (both lines, and the two before).
pub fn run_checked(
    scenario: &dyn AnyScenario,
    seed: u64,
    plan: &FaultPlan,
    twice: bool,
) -> Result<Checked, PlanError> {
    let mut outcome = scenario.run_plan(seed, plan)?;
    if !twice {
        return Ok(Checked {
            outcome,
            again: None,
            divergence: None,
        });
    }
    let first = Arc::new(std::mem::take(&mut outcome.trace));
    let (second, divergence) = scenario.run_again(seed, plan, first.clone())?;
    outcome.trace = Arc::try_unwrap(first).unwrap_or_else(|shared| shared.as_ref().clone());
    if let Some(d) = &divergence {
        let mut v = Violation::new("deterministic", d.to_string());
        if let Some(at) = d.at {
            v = v.at(at);
        }
        outcome.violations.push(v);
    }
    Ok(Checked {
        outcome,
        again: Some(second.trace_hash),
        divergence,
    })
}

/// The state of one declared link, from the faults on it now.
#[derive(Default)]
struct LinkFaults {
    partition: u32,
    oneway: [u32; 2],
    hold: u32,
    /// Loss percents on (a multiset: the largest applies).
    loss: Vec<u32>,
    /// Latencies on (the largest applies).
    latency: Vec<u64>,
}

/// Steps `sim` to its end, applying the `planned` faults (each with where
/// it lands) at their instants, and those `firing`'s sites fire at theirs,
/// logging each to `trace`.
/// Calls `after_step` after each step (the recovery phase's observer),
/// which says whether the run must go on when the workload is over.
/// Returns the simulation's own failure (a host's error, or not finishing
/// in time), if any.
fn step_with_faults(
    sim: &mut turmoil::Sim<'_>,
    planned: Vec<(Fault, Resolved)>,
    firing: &Firing,
    targets: &Targets,
    network: &Network,
    trace: &Trace,
    after_step: &mut dyn FnMut(&mut turmoil::Sim<'_>) -> bool,
) -> Vec<Violation> {
    // The plan's faults, then those its sites fire as the run goes (with
    // the site that fired each).
    let mut faults: Vec<(Fault, Resolved, Option<String>)> =
        planned.into_iter().map(|(f, r)| (f, r, None)).collect();
    // (instant, order, index, starts), soonest first: at one instant, ends
    // come before starts, so a fault that starts as another ends follows
    // it. A fault of 0 ms is no fault: its end would sort before its own
    // start and leave it on for ever.
    let mut events: BinaryHeap<Reverse<(Duration, u8, usize, bool)>> = BinaryHeap::new();
    let schedule = |events: &mut BinaryHeap<_>, i: usize, f: &Fault| {
        if f.for_ms > 0 {
            events.push(Reverse((f.start(), 1, i, true)));
            events.push(Reverse((f.end(), 0, i, false)));
        }
    };
    for (i, (f, _, _)) in faults.iter().enumerate() {
        schedule(&mut events, i, f);
    }
    let mut links: Vec<LinkFaults> = (0..targets.link_count())
        .map(|_| LinkFaults::default())
        .collect();
    let mut crashes: BTreeMap<usize, u32> = BTreeMap::new();
    // Faults of one kind on one target may overlap: count what is on.
    let mut on: BTreeMap<(FaultKind, Resolved), u32> = BTreeMap::new();
    loop {
        let now = sim.elapsed();
        for (site, f, target) in firing.take() {
            schedule(&mut events, faults.len(), &f);
            faults.push((f, target, Some(site)));
        }
        while let Some(&Reverse((at, _, i, start))) = events.peek() {
            if at > now {
                break;
            }
            events.pop();
            let (f, target, site) = &faults[i];
            let count = on.entry((f.kind, *target)).or_default();
            *count = if start {
                *count + 1
            } else {
                count.saturating_sub(1)
            };
            let still = match (start, *count) {
                (true, 2..) => " (one is already on)",
                (false, 1..) => " (another is still on)",
                _ => "",
            };
            let what = apply(
                sim,
                targets,
                network,
                &mut links,
                &mut crashes,
                f,
                *target,
                start,
            );
            let by = match site {
                Some(site) if start => format!(" (site {site:?} fired)"),
                _ => String::new(),
            };
            trace.log(now, format!("chaos: {what}{still}{by}"));
        }
        // turmoil's random loss, when it heals a link, marks both directions
        // healthy: a one-way cut on a lossy link would silently end. Put it
        // back before each step (only links with both on pay for this).
        for (l, state) in links.iter().enumerate() {
            if !state.loss.is_empty() && state.oneway != [0, 0] && state.partition == 0 {
                let (a, b) = targets.link_at(l);
                set_link(sim, a, b, state);
            }
        }
        let stepped = sim.step();
        let go_on = after_step(sim);
        match stepped {
            // Past the workload only while the recovery phase is open, and
            // never past the run's length (a phase ends before it).
            Ok(true) if go_on && sim.elapsed() < network.duration => {}
            Ok(true) => return Vec::new(),
            // A second run that already differs from the first: stop here
            // (the divergence is the report).
            Ok(false) if trace.divergence().is_some() => return Vec::new(),
            Ok(false) => {}
            Err(e) => {
                let e = e.to_string();
                let named = crate::net::name_hosts_with(&e, |ip| sim.reverse_lookup(ip));
                return vec![
                    Violation::new("simulation", format!("failed: {named}")).at(sim.elapsed()),
                ];
            }
        }
    }
}

/// Applies the start or end of `f` (on `target`) and says what happened.
#[allow(clippy::too_many_arguments)]
fn apply(
    sim: &mut turmoil::Sim<'_>,
    targets: &Targets,
    network: &Network,
    links: &mut [LinkFaults],
    crashes: &mut BTreeMap<usize, u32>,
    f: &Fault,
    target: Resolved,
    start: bool,
) -> String {
    let step = |n: &mut u32| *n = if start { *n + 1 } else { n.saturating_sub(1) };
    match target {
        Resolved::Host(h) => {
            let host = targets.host_name(h);
            let n = crashes.entry(h).or_default();
            step(n);
            // A host crashes on the first crash, and comes back when the
            // last one ends.
            if start && *n == 1 {
                sim.crash(host);
            } else if !start && *n == 0 {
                sim.bounce(host);
            }
            let verb = if start { "crash" } else { "bounce" };
            format!("{verb} {host}")
        }
        Resolved::Link(l) | Resolved::Direction(l, _) => {
            let (a, b) = targets.link_at(l);
            let state = &mut links[l];
            let verb = match (f.kind, target) {
                (FaultKind::Loss, _) => {
                    let percent = f.percent.unwrap_or(DEFAULT_LOSS_PERCENT);
                    toggle(&mut state.loss, percent, start);
                    let rate = state
                        .loss
                        .iter()
                        .max()
                        .map_or(0.0, |p| f64::from(*p) / 100.0);
                    sim.set_link_fail_rate(a, b, rate);
                    return format!("{} {a} <-> {b}", if start { "lossy" } else { "lossless" });
                }
                (FaultKind::Latency, _) => {
                    let ms = f.latency_ms.unwrap_or(DEFAULT_LATENCY_MS);
                    toggle(&mut state.latency, ms, start);
                    return match state.latency.iter().max() {
                        Some(ms) => {
                            sim.set_link_latency(a, b, Duration::from_millis(*ms));
                            format!("slow {a} <-> {b} ({ms} ms one way)")
                        }
                        None => {
                            // turmoil cannot forget a link's own latency:
                            // set the network's range back explicitly.
                            sim.set_link_latency(a, b, network.min_latency);
                            sim.set_link_max_message_latency(a, b, network.max_latency);
                            format!("normal latency {a} <-> {b}")
                        }
                    };
                }
                (FaultKind::Partition, _) => {
                    step(&mut state.partition);
                    if start { "partition" } else { "repair" }
                }
                (FaultKind::Hold, _) => {
                    step(&mut state.hold);
                    if start { "hold" } else { "release" }
                }
                (_, Resolved::Direction(_, forward)) => {
                    step(&mut state.oneway[usize::from(!forward)]);
                    if start { "cut" } else { "mend" }
                }
                _ => unreachable!("validated: a crash targets a host"),
            };
            set_link(sim, a, b, state);
            match target {
                Resolved::Direction(_, true) => format!("{verb} {a} -> {b}"),
                Resolved::Direction(_, false) => format!("{verb} {b} -> {a}"),
                _ => format!("{verb} {a} <-> {b}"),
            }
        }
    }
}

/// Adds `value` to the multiset `on` at a start, removes one at an end.
fn toggle<T: PartialEq>(on: &mut Vec<T>, value: T, start: bool) {
    if start {
        on.push(value);
    } else if let Some(i) = on.iter().position(|v| *v == value) {
        on.swap_remove(i);
    }
}

/// Puts a link in the state its partitions and holds say: a direction is
/// cut while a partition of the link, or a one-way one of that direction,
/// is on; else the link is held while a hold is on; else healthy (held
/// messages are then delivered).
fn set_link(sim: &mut turmoil::Sim<'_>, a: &str, b: &str, s: &LinkFaults) {
    let cut = [
        s.partition > 0 || s.oneway[0] > 0,
        s.partition > 0 || s.oneway[1] > 0,
    ];
    match cut {
        [true, true] => sim.partition(a, b),
        _ if s.hold > 0 => sim.hold(a, b),
        _ => sim.release(a, b),
    }
    match cut {
        [true, false] => sim.partition_oneway(a, b),
        [false, true] => sim.partition_oneway(b, a),
        _ => {}
    }
}
