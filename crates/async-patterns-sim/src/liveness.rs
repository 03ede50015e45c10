//! The recovery phase: what must *eventually* hold once the faults have
//! healed, and within what bound (TigerBeetle's VOPR checks the same after
//! its workload).
//!
//! A scenario states its properties in
//! [`Scenario::eventually`](crate::Scenario::eventually): a name, a bound
//! of virtual time after the plan's last fault ends (the *heal*; 0 for a
//! plan without faults), and a predicate over the record. The harness
//! evaluates each predicate after every simulation step from the heal on,
//! and keeps the simulation stepping until every property has held or the
//! longest bound has passed, even when the workload ended first; a probe
//! the scenario supplies ([`Scenario::probe`](crate::Scenario::probe)) runs
//! from the heal on a host the harness adds then ([`RECOVERY_HOST`]), to
//! exercise the system when nothing else does. Everything before the heal
//! runs exactly as it would without the phase. A property that
//! does not hold within its bound is a violation that names it and says how
//! long the run waited. A plan whose faults outlast the run (the heal at or
//! past its end) is not judged.
//!
//! | guarantee | check |
//! |---|---|
//! | a property that holds within its bound passes, and its recovery time (from the heal) is recorded | `tests/liveness.rs` `a_service_that_recovers_passes_with_its_recovery_time` |
//! | one that never holds, or holds only past its bound, is a violation naming it and the wait | `tests/liveness.rs` `a_service_that_never_recovers_fails_the_liveness_phase` |
//! | the run goes on past the workload until the properties hold or the bound passes, and the probe runs from the heal | `tests/liveness.rs` `the_phase_outlives_the_workload_and_runs_the_probe_from_the_heal` |
//! | a sweep reports the worst recovery seen per property | `sweep::tests::the_report_shows_the_worst_recovery_per_property` |

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use crate::scenario::Network;
use crate::trace::Violation;

/// The host the harness adds to keep a run going through its recovery
/// phase, and to run the scenario's probe on.
pub const RECOVERY_HOST: &str = "sim-recovery";

/// A property that must hold within `within` of the last fault's end.
pub struct Eventually<R> {
    pub(crate) name: String,
    pub(crate) about: String,
    pub(crate) within: Duration,
    pub(crate) holds: Holds<R>,
    pub(crate) bound_by: Option<Bound<R>>,
}

/// A property's predicate: `holds(record, heal)`.
type Holds<R> = Box<dyn Fn(&R, Duration) -> bool + Send + Sync>;

/// A property's bound for one run, from its record: `bound(record, heal)`.
type Bound<R> = Box<dyn Fn(&R, Duration) -> Duration + Send + Sync>;

impl<R> Eventually<R> {
    /// `name` (the violation's name), what it means, the bound after the
    /// heal, and the predicate: `holds(record, heal)`, true once the
    /// property holds (`heal` is the instant the last fault ended, so that
    /// "a request succeeded after the heal" can be asked).
    pub fn new(
        name: &str,
        about: &str,
        within: Duration,
        holds: impl Fn(&R, Duration) -> bool + Send + Sync + 'static,
    ) -> Self {
        Eventually {
            name: name.to_string(),
            about: about.to_string(),
            within,
            holds: Box::new(holds),
            bound_by: None,
        }
    }

    /// A bound that depends on what the run recorded (e.g. one more round
    /// for each failure the run can explain): `bound(record, heal)`, read
    /// when the run ends, and never more than
    /// [`within`](Eventually::within), which stays the phase's length.
    #[must_use]
    pub fn bound_by(
        mut self,
        bound: impl Fn(&R, Duration) -> Duration + Send + Sync + 'static,
    ) -> Self {
        self.bound_by = Some(Box::new(bound));
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its bound after the heal.
    pub fn within(&self) -> Duration {
        self.within
    }

    /// Whether it holds for `record`, the last fault having ended at
    /// `heal` (its predicate: for testing a scenario's property on a
    /// record of its own making).
    pub fn holds(&self, record: &R, heal: Duration) -> bool {
        (self.holds)(record, heal)
    }
}

/// How one property fared in one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The property.
    pub name: String,
    /// How long after the heal it first held; `None` if it never did (or
    /// the run was not judged: see [`Recovery::judged`]).
    pub after: Option<Duration>,
    /// Whether the run had a recovery phase (its faults healed before the
    /// run's end).
    pub judged: bool,
}

/// One run's recovery phase: when each property first held, and whether
/// they all have (which ends the phase's host).
pub(crate) struct Phase<R> {
    properties: Vec<Eventually<R>>,
    heal: Duration,
    /// The phase's end: the heal plus the longest bound, within the run.
    until: Duration,
    held: Vec<Option<Duration>>,
    done: Rc<Cell<bool>>,
    ended: Duration,
    /// Whether the probe was asked for (once, at the heal).
    probed: bool,
}

impl<R> Phase<R> {
    /// The phase of a run under a plan whose last fault ends at `heal`, if
    /// it has one (some property, and a heal before the run's end).
    pub(crate) fn new(
        properties: Vec<Eventually<R>>,
        heal: Duration,
        network: &Network,
    ) -> Option<Self> {
        let end = network.duration.saturating_sub(network.tick);
        if properties.is_empty() || heal >= end {
            return None;
        }
        let longest = properties
            .iter()
            .map(|p| p.within)
            .max()
            .unwrap_or_default();
        Some(Phase {
            held: vec![None; properties.len()],
            until: heal.saturating_add(longest).min(end),
            properties,
            heal,
            done: Rc::new(Cell::new(false)),
            ended: heal,
            probed: false,
        })
    }

    /// At the heal, once: asks for the probe and starts it on a host added
    /// then (so that everything before the heal runs exactly as without a
    /// phase), unless every property already holds.
    pub(crate) fn start_probe(
        &mut self,
        sim: &mut turmoil::Sim<'_>,
        probe: impl FnOnce() -> Option<Pin<Box<dyn Future<Output = ()>>>>,
        tick: Duration,
    ) {
        if self.probed || sim.elapsed() < self.heal || self.done.get() {
            return;
        }
        self.probed = true;
        if let Some(probe) = probe() {
            self.add_host(sim, probe, tick);
        }
    }

    /// Whether the phase is still open at `now` (some property not yet
    /// held, its bound not yet passed): the run goes on even if the
    /// workload is over.
    pub(crate) fn open(&self, now: Duration) -> bool {
        !self.done.get() && now < self.until
    }

    /// Adds the probe's host to `sim` (at the heal): it runs `probe` until
    /// every property has held or the phase ends.
    fn add_host(
        &self,
        sim: &mut turmoil::Sim<'_>,
        probe: Pin<Box<dyn Future<Output = ()>>>,
        tick: Duration,
    ) {
        let (until, done) = (self.until, self.done.clone());
        sim.client(RECOVERY_HOST, async move {
            let mut probe = Some(probe);
            while !done.get() && crate::now() < until {
                match probe.as_mut() {
                    // The probe first, then the check: a probe that ends
                    // (it made its point) is not run again.
                    Some(p) => {
                        if tokio::time::timeout(tick, p.as_mut()).await.is_ok() {
                            probe = None;
                        }
                    }
                    None => tokio::time::sleep(tick).await,
                }
            }
            Ok(())
        });
    }

    /// After a step that ended at `now`: the properties that hold now, from
    /// the heal until the phase ends.
    pub(crate) fn observe(&mut self, now: Duration, record: &R) {
        self.ended = now;
        if self.done.get() || now < self.heal || now > self.until {
            return;
        }
        for (p, held) in self.properties.iter().zip(self.held.iter_mut()) {
            if held.is_none() && (p.holds)(record, self.heal) {
                *held = Some(now);
            }
        }
        if self.held.iter().all(Option::is_some) {
            self.done.set(true);
        }
    }

    /// Its violations, and each property's recovery, given the run's
    /// record (for the bounds that depend on it).
    pub(crate) fn finish(&self, record: &R) -> (Vec<Violation>, Vec<Recovery>) {
        let recoveries = self
            .properties
            .iter()
            .zip(&self.held)
            .map(|(p, at)| Recovery {
                name: p.name.clone(),
                after: at.map(|at| at.saturating_sub(self.heal)),
                judged: true,
            })
            .collect();
        (
            // Watched until the phase's end, or the run's if sooner.
            judge(
                &self.properties,
                record,
                self.heal,
                &self.held,
                self.ended.min(self.until),
            ),
            recoveries,
        )
    }
}

/// The violations of a run's recovery phase: each property not held
/// within its bound after `heal`, given when each first held (`held[i]`,
/// an instant) and when the run ended.
pub(crate) fn judge<R>(
    properties: &[Eventually<R>],
    record: &R,
    heal: Duration,
    held: &[Option<Duration>],
    ended: Duration,
) -> Vec<Violation> {
    properties
        .iter()
        .zip(held)
        .filter_map(|(p, at)| {
            let within = match &p.bound_by {
                Some(bound) => bound(record, heal).min(p.within),
                None => p.within,
            };
            let bound = heal.saturating_add(within);
            match at {
                Some(at) if *at <= bound => None,
                Some(at) => Some(
                    Violation::new(
                        p.name.clone(),
                        format!(
                            "{}: held only {:?} after the last fault's end at {heal:?}, past its \
                             bound of {within:?}",
                            p.about,
                            at.saturating_sub(heal),
                        ),
                    )
                    .at(bound),
                ),
                None => Some(
                    Violation::new(
                        p.name.clone(),
                        format!(
                            "{}: not within {within:?} of the last fault's end at {heal:?} \
                             (watched for {:?}, until {ended:?})",
                            p.about,
                            ended.saturating_sub(heal)
                        ),
                    )
                    .at(bound.min(ended)),
                ),
            }
        })
        .collect()
}
