//! The Scenario API: what a user writes to put their own clients and
//! servers under faults.
//!
//! A scenario declares its hosts (in [`Scenario::build`], on the turmoil
//! simulation it is handed), the [`Targets`] faults may hit, and its
//! invariants ([`Scenario::check`], over what the run recorded). The
//! [`Ctx`] it builds with owns what every scenario needs: the seed, virtual
//! [`now`], the [`Trace`], the scenario's own record, the latencies of its
//! requests, and the sabotage (if any) the run is under.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use async_patterns::rng::SplitMix64;

use std::future::Future;
use std::pin::Pin;

use crate::assert::Point;
use crate::fault::{FaultPlan, PlanError, Sabotage, Swarm, Targets};
use crate::liveness::Eventually;
use crate::plot::Lane;
use crate::run::Outcome;
use crate::trace::{Divergence, Trace, Violation};

/// A simulated system and the invariants it must keep under faults.
///
/// The run of one seed: the harness builds a turmoil simulation from
/// [`Scenario::network`], calls [`Scenario::build`] to add the hosts, steps
/// the simulation to its end while injecting the plan's faults into the
/// declared [`Targets`], then hands what the hosts recorded to
/// [`Scenario::check`]. Everything random must come from the seed
/// ([`Ctx::rng`]) and every instant from virtual time ([`now`]); the
/// harness runs each seed twice and compares the traces to catch a slip.
///
/// ```
/// use std::time::Duration;
/// use async_patterns_sim::{Ctx, RunInfo, Scenario, Targets, Violation, now};
///
/// /// A client asks a server for the time once; the answer must arrive.
/// struct Ping;
///
/// #[derive(Default)]
/// struct Seen {
///     answers: u32,
/// }
///
/// impl Scenario for Ping {
///     type Record = Seen;
///     fn name(&self) -> &str {
///         "ping"
///     }
///     fn about(&self) -> &str {
///         "one request, one answer, through a lossy link"
///     }
///     fn targets(&self) -> Targets {
///         Targets::new().link("client", "server")
///     }
///     fn build(&self, ctx: &Ctx<Seen>, sim: &mut turmoil::Sim<'_>) {
///         sim.host("server", || async {
///             let listener = turmoil::net::TcpListener::bind(("0.0.0.0", 80)).await?;
///             loop {
///                 let _ = listener.accept().await?; // accepting is answering
///             }
///         });
///         let ctx = ctx.clone();
///         sim.client("client", async move {
///             let start = now();
///             turmoil::net::TcpStream::connect(("server", 80)).await?;
///             ctx.record().answers += 1;
///             ctx.latency(now() - start);
///             ctx.log("client: answered");
///             Ok(())
///         });
///     }
///     fn check(&self, _: &RunInfo, seen: &Seen) -> Vec<Violation> {
///         if seen.answers == 1 {
///             vec![]
///         } else {
///             vec![Violation::new("answered", format!("{} answers", seen.answers))]
///         }
///     }
/// }
///
/// async_patterns_sim::testing::check_seeds(&Ping, 0..4);
/// ```
pub trait Scenario: Send + Sync + 'static {
    /// What the hosts record for the checks (behind the context's mutex;
    /// it outlives every host, so a crash does not lose it: use it for
    /// durable state too).
    type Record: Default + 'static;

    /// Its name on the command line (kebab-case).
    fn name(&self) -> &str;

    /// What it exercises and which invariants it checks, for `list`.
    fn about(&self) -> &str;

    /// The links and hosts faults may hit (default: none, so a plan must
    /// be empty).
    fn targets(&self) -> Targets {
        Targets::new()
    }

    /// How a seed's plan is drawn (default: every kind on every target,
    /// [`Swarm::over`]). The declared fault sites are always drawn too
    /// ([`Swarm::with_sites`]), whatever this returns.
    fn swarm(&self) -> Swarm {
        Swarm::over(&self.targets())
    }

    /// The deliberately broken versions of its code it can run (default:
    /// none), for the meta-test: each must make some seed fail.
    fn sabotages(&self) -> Vec<Sabotage> {
        Vec::new()
    }

    /// The points a sweep must count (default: none): each named as the
    /// macro that marks it names it ([`point`](crate::point)), or one of
    /// the core's ([`async_patterns::points`]). Declared before anything
    /// runs, so a point no seed reached is visible: a sweep reports how
    /// many seeds reached each, and fails when one that must be reached
    /// never was. A point not listed here counts for nothing, and no point
    /// should spell out a sabotage's condition (it would be found by being
    /// told where to look).
    fn points(&self) -> Vec<Point> {
        Vec::new()
    }

    /// What must eventually hold once the plan's last fault has ended, and
    /// within what bound (default: nothing; see [`liveness`](crate::liveness)).
    fn eventually(&self) -> Vec<Eventually<Self::Record>> {
        Vec::new()
    }

    /// A probe for the recovery phase, run from the last fault's end on
    /// the harness's own host ([`RECOVERY_HOST`](crate::liveness::RECOVERY_HOST))
    /// until every [`eventually`](Scenario::eventually) property has held
    /// or the longest bound has passed (then dropped): requests that
    /// exercise the system when the workload has ended (default: none).
    fn probe(&self, ctx: &Ctx<Self::Record>) -> Option<Pin<Box<dyn Future<Output = ()>>>> {
        let _ = ctx;
        None
    }

    /// The simulated network for `seed` (default: [`Network::default`]).
    fn network(&self, seed: u64) -> Network {
        let _ = seed;
        Network::default()
    }

    /// Adds the hosts and clients to `sim`; each gets a clone of `ctx`.
    ///
    /// A host's closure (`sim.host(name, || …)`) runs again each time the
    /// host restarts after a crash: clone the context *inside* it
    /// (`let c = ctx.clone(); sim.host("s", move || { let ctx = c.clone();
    /// async move { … } })`). What it creates is lost in a crash (volatile);
    /// the record, created by the harness, survives (durable).
    fn build(&self, ctx: &Ctx<Self::Record>, sim: &mut turmoil::Sim<'_>);

    /// The invariants, over what the run recorded: every violation found.
    fn check(&self, run: &RunInfo, record: &Self::Record) -> Vec<Violation>;

    /// Lanes of its own for the timeline plot, drawn below the faults
    /// (default: none).
    fn lanes(&self, run: &RunInfo, record: &Self::Record) -> Vec<Lane> {
        let _ = (run, record);
        Vec::new()
    }
}

/// The simulated network and clock of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    /// The least one-way latency of a message.
    pub min_latency: Duration,
    /// The most (turmoil draws each message's latency in between).
    pub max_latency: Duration,
    /// Virtual time per simulation step: every step polls every host, so
    /// the step count is what a run costs.
    pub tick: Duration,
    /// The most virtual time a run may take; a run still going then fails.
    pub duration: Duration,
    /// Each socket's buffer, in messages (a released hold delivers many at
    /// once, and turmoil panics when one overflows).
    pub tcp_capacity: usize,
}

impl Network {
    /// The most a message can take one way: turmoil delivers on the tick,
    /// so a message drawn at the maximum latency arrives on the tick at or
    /// after it, which is at most [`max_latency`](Network::max_latency)
    /// rounded up to the tick, plus one tick for a send made between two
    /// (a bound for invariants: "the answer arrives within 4 trips").
    pub fn longest_trip(&self) -> Duration {
        let tick = self.tick.as_nanos().max(1);
        let ticks = self.max_latency.as_nanos().div_ceil(tick) + 1;
        Duration::from_nanos(u64::try_from(ticks * tick).unwrap_or(u64::MAX))
    }

    /// One-way latencies drawn from `min_ms..=max_ms`, with the defaults
    /// otherwise.
    pub fn latency_ms(min_ms: u64, max_ms: u64) -> Self {
        Network {
            min_latency: Duration::from_millis(min_ms),
            max_latency: Duration::from_millis(max_ms.max(min_ms)),
            ..Network::default()
        }
    }
}

impl Default for Network {
    /// Latencies of 1-10 ms, a 2 ms tick, 60 s of virtual time, buffers
    /// of 4,096 messages.
    fn default() -> Self {
        Network {
            min_latency: Duration::from_millis(1),
            max_latency: Duration::from_millis(10),
            tick: Duration::from_millis(2),
            duration: Duration::from_secs(60),
            tcp_capacity: 4096,
        }
    }
}

/// What a run is: the seed, the plan (and the sabotage it is under), the
/// network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// The seed.
    pub seed: u64,
    /// The faults injected; `plan.sabotage` is the sabotage, if any.
    pub plan: FaultPlan,
    /// The network the seed got.
    pub network: Network,
}

/// What a scenario's hosts share during one run: cheap to clone (one per
/// host closure).
pub struct Ctx<R> {
    inner: Arc<Inner<R>>,
}

struct Inner<R> {
    info: RunInfo,
    declared: Vec<&'static str>,
    trace: Trace,
    record: Mutex<R>,
    latencies: Mutex<Vec<Duration>>,
}

impl<R> Clone for Ctx<R> {
    fn clone(&self) -> Self {
        Ctx {
            inner: self.inner.clone(),
        }
    }
}

impl<R: Default> Ctx<R> {
    pub(crate) fn new(info: RunInfo, sabotages: &[Sabotage], trace: Trace) -> Self {
        Ctx {
            inner: Arc::new(Inner {
                info,
                declared: sabotages.iter().map(|s| s.name).collect(),
                trace,
                record: Mutex::new(R::default()),
                latencies: Mutex::default(),
            }),
        }
    }
}

impl<R> Ctx<R> {
    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.inner.info.seed
    }

    /// The run: seed, plan, network.
    pub fn info(&self) -> &RunInfo {
        &self.inner.info
    }

    /// A generator for one purpose of this run: `stream` keeps purposes
    /// apart (two streams of one seed are independent), so adding a draw
    /// for one purpose leaves the others as they were.
    pub fn rng(&self, stream: u64) -> SplitMix64 {
        SplitMix64::derive(self.seed(), stream)
    }

    /// The scenario's record, locked (do not hold it across an `.await`:
    /// every host runs on one thread, but the lock is not reentrant).
    ///
    /// # Panics
    ///
    /// If the record is already locked: every host runs on the
    /// simulation's one thread, so a held lock here is a guard kept across
    /// an `.await` (or taken twice), which would hang the run for ever. The
    /// panic says so, and the harness reports it as a violation.
    pub fn record(&self) -> MutexGuard<'_, R> {
        match self.inner.record.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => panic!(
                "Ctx::record() is already locked: a guard held across an .await, or taken twice \
                 (hosts share one thread, so this would hang the run)"
            ),
        }
    }

    /// Logs `event` to the trace at virtual [`now`], with each simulated
    /// host's address in it named ([`net::name_hosts`](crate::net::name_hosts):
    /// a refused connection's `192.168.0.1:7001` reads
    /// `server (192.168.0.1:7001)`).
    pub fn log(&self, event: impl AsRef<str>) {
        self.inner
            .trace
            .log(now(), crate::net::name_hosts(event.as_ref()));
    }

    /// The trace (to hand to code that logs on its own).
    pub fn trace(&self) -> &Trace {
        &self.inner.trace
    }

    /// Records the latency of one successful request, for the sweep's
    /// percentiles and the per-seed JSON.
    pub fn latency(&self, latency: Duration) {
        self.inner
            .latencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(latency);
    }

    /// Whether the run is under the sabotage `name`, which the scenario
    /// must declare in [`Scenario::sabotages`] (a typo panics, and the
    /// harness reports the panic, rather than silently never sabotaging).
    pub fn sabotaged(&self, name: &str) -> bool {
        assert!(
            self.inner.declared.contains(&name),
            "sabotage {name:?} is not declared by the scenario (it declares {:?})",
            self.inner.declared
        );
        self.inner.info.plan.sabotage.as_deref() == Some(name)
    }

    pub(crate) fn take_latencies(&self) -> Vec<Duration> {
        std::mem::take(
            &mut self
                .inner
                .latencies
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}

/// Virtual time since the simulation began, inside a host (zero outside
/// one). Never the wall clock.
pub fn now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

/// What a scenario is, for listings and plans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// Its name on the command line.
    pub name: String,
    /// What it checks.
    pub about: String,
    /// What faults may hit.
    pub targets: Targets,
    /// How a seed's plan is drawn.
    pub swarm: Swarm,
    /// Its sabotages.
    pub sabotages: Vec<Sabotage>,
    /// The points it declares.
    pub points: Vec<Point>,
    /// Its recovery properties: name and bound after the last fault.
    pub eventually: Vec<(String, Duration)>,
}

impl Info {
    /// The sabotage called `name`, if the scenario declares it.
    pub fn sabotage(&self, name: &str) -> Option<&Sabotage> {
        self.sabotages.iter().find(|s| s.name == name)
    }
}

/// Any [`Scenario`], its record type erased, so that scenarios of
/// different records sit in one list (`cli::main(&[&A, &B])`). Every
/// `Scenario` is one.
pub trait AnyScenario: Send + Sync {
    /// Its name, targets, swarm and sabotages.
    fn info(&self) -> Info;

    /// Runs `seed` under `plan` (checked against the declarations first),
    /// turning a panic into a violation.
    fn run_plan(&self, seed: u64, plan: &FaultPlan) -> Result<Outcome, PlanError>;

    /// Runs `seed` under `plan` a second time, comparing each event with
    /// the `first` run's as it is logged and stopping at the first that
    /// differs (see [`run_again`](crate::run::run_again)).
    fn run_again(
        &self,
        seed: u64,
        plan: &FaultPlan,
        first: Arc<Vec<String>>,
    ) -> Result<(Outcome, Option<Divergence>), PlanError>;

    /// The declared targets its `build` makes no host for, at `seed`
    /// (see [`missing_targets`](crate::run::missing_targets)).
    fn missing_targets(&self, _seed: u64) -> Vec<String> {
        Vec::new()
    }
}

impl<S: Scenario> AnyScenario for S {
    fn info(&self) -> Info {
        let targets = self.targets();
        let mut swarm = self.swarm();
        if swarm.sites().next().is_none() && swarm.disk().is_none() {
            swarm = swarm.with_sites(&targets);
        }
        Info {
            name: self.name().to_string(),
            about: self.about().to_string(),
            swarm,
            targets,
            sabotages: self.sabotages(),
            points: self.points(),
            eventually: self
                .eventually()
                .iter()
                .map(|e| (e.name().to_string(), e.within()))
                .collect(),
        }
    }

    fn run_plan(&self, seed: u64, plan: &FaultPlan) -> Result<Outcome, PlanError> {
        crate::run::run(self, seed, plan)
    }

    fn run_again(
        &self,
        seed: u64,
        plan: &FaultPlan,
        first: Arc<Vec<String>>,
    ) -> Result<(Outcome, Option<Divergence>), PlanError> {
        crate::run::run_again(self, seed, plan, first)
    }

    fn missing_targets(&self, seed: u64) -> Vec<String> {
        crate::run::missing_targets(self, seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_trip_is_the_maximum_latency_on_the_tick_plus_one() {
        let ms = Duration::from_millis;
        // 5 ms on a 2 ms tick: delivered by the third tick, and a send
        // made between ticks may wait one more.
        assert_eq!(Network::latency_ms(1, 5).longest_trip(), ms(8));
        assert_eq!(Network::latency_ms(1, 6).longest_trip(), ms(8));
        assert_eq!(Network::latency_ms(1, 1).longest_trip(), ms(4));
        let coarse = Network {
            tick: ms(10),
            ..Network::latency_ms(1, 25)
        };
        assert_eq!(coarse.longest_trip(), ms(40));
    }
}
