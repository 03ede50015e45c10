//! Fault sites: faults injected *at a point in the code*, where the bugs
//! are, instead of at an instant that hits the code path by luck
//! (FoundationDB's `BUGGIFY`, recorded in a plan that replays and shrinks).
//!
//! Service code marks a site with [`site!`](async_patterns_assert::site)
//! from the dependency-free `async-patterns-assert` crate and acts on what
//! it returns; the scenario declares it among its [`Targets`]
//! ([`Targets::site`]); a plan's `sites` say which sites are on in a run,
//! what they do when they fire, and how often:
//!
//! | `action` | what happens when the site fires | needs |
//! |---|---|---|
//! | `fail` | the code gets [`Fire::Fail`](async_patterns_assert::Fire) and fails the operation | the site [`fails`](Site::fails) |
//! | `delay` | the code gets `Fire::Delay(delay_ms)` and waits that long first | the site [`delays`](Site::delays) |
//! | `crash`, `partition`, `partition_oneway`, `hold`, `loss`, `latency` | that fault starts on `target` at that instant, for `for_ms` (the code sees [`Fire::Pass`](async_patterns_assert::Fire)) | a declared target of the kind's shape |
//!
//! Each time the code reaches a site, each of the plan's entries for it
//! that is on (from `from_ms`, before `until_ms`: the whole run by default)
//! fires with chance `percent`/100 (25 by default, FoundationDB's figure),
//! drawn from a stream of the run's seed and the entry's own site, action
//! and target: removing one entry leaves the others' draws as they were.
//! When two entries that answer (`fail`, `delay`) fire at one reach, the
//! code gets the first in the plan's order; the other does nothing and
//! does not count as fired. A fault an entry started is not started again
//! while it is on. A crash fired by a host's own code takes the host down
//! when the simulation step ends: code after the site runs until it next
//! waits, and the trace's `chaos: crash` line carries that step's end (a
//! tick after the site's instant).
//!
//! ```
//! use async_patterns_sim::{FaultPlan, Site, Targets};
//!
//! let targets = Targets::new()
//!     .link("producer", "consumer")
//!     .host("consumer", "its store")
//!     .site(Site::new("store sync", "the store's sync to disk").fails());
//! let plan: FaultPlan = serde_json::from_str(
//!     r#"{"faults": [], "sites": [
//!         {"site": "store sync", "action": "fail"},
//!         {"site": "store sync", "action": "crash", "target": "consumer", "for_ms": 500, "percent": 10}
//!     ]}"#,
//! )
//! .unwrap();
//! assert!(plan.validate(&targets, &[]).is_ok());
//!
//! let bad: FaultPlan = serde_json::from_str(
//!     r#"{"faults": [], "sites": [{"site": "store sync", "action": "delay"}]}"#,
//! )
//! .unwrap();
//! assert_eq!(
//!     bad.validate(&targets, &[]).unwrap_err().to_string(),
//!     "site entry 1 (delay): the site \"store sync\" does not declare that it delays"
//! );
//! ```

use std::cell::RefCell;
use std::fmt;
use std::time::Duration;

use async_patterns::rng::SplitMix64;
use async_patterns_assert::Fire;
use serde::{Deserialize, Serialize};

use crate::fault::{Fault, FaultError, FaultKind, Resolved, Targets};
use crate::trace::Trace;

/// A site's chance to fire each time it is reached when the plan does not
/// say, in percent.
pub const DEFAULT_SITE_PERCENT: u32 = 25;
/// How long a fault a site starts lasts when the plan does not say.
pub const DEFAULT_SITE_FOR_MS: u64 = 1_000;
/// How long a site's delay lasts when the plan does not say.
pub const DEFAULT_SITE_DELAY_MS: u64 = 500;

/// A fault site a scenario declares: its name (the one its
/// [`site!`](async_patterns_assert::site) names) and what its code does
/// with [`Fire::Fail`] and [`Fire::Delay`]. Every site may also start a
/// fault on a declared target when it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    name: String,
    about: String,
    fails: bool,
    delays: bool,
}

impl Site {
    /// A site called `name` (as its macro names it), doing what `about`
    /// says. Until told otherwise, its code ignores `Fail` and `Delay`, so
    /// a plan may only start faults there.
    pub fn new(name: impl Into<String>, about: impl Into<String>) -> Self {
        Site {
            name: name.into(),
            about: about.into(),
            fails: false,
            delays: false,
        }
    }

    /// Its code fails the operation on [`Fire::Fail`].
    #[must_use]
    pub fn fails(mut self) -> Self {
        self.fails = true;
        self
    }

    /// Its code waits on [`Fire::Delay`].
    #[must_use]
    pub fn delays(mut self) -> Self {
        self.delays = true;
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it does.
    pub fn about(&self) -> &str {
        &self.about
    }

    /// The actions its code takes, for `list`.
    pub fn handles(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.fails {
            out.push("fail");
        }
        if self.delays {
            out.push("delay");
        }
        out
    }
}

/// What a plan's site entry does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteAction {
    /// The code fails the operation.
    Fail,
    /// The code waits `delay_ms` first.
    Delay,
    /// A partition of `target` starts.
    Partition,
    /// A hold of `target` starts.
    Hold,
    /// `target` crashes.
    Crash,
    /// `target` turns lossy.
    Loss,
    /// One direction of `target` is cut.
    PartitionOneway,
    /// `target` turns slow.
    Latency,
}

impl SiteAction {
    /// The fault it starts, if it starts one.
    pub fn fault_kind(self) -> Option<FaultKind> {
        match self {
            SiteAction::Fail | SiteAction::Delay => None,
            SiteAction::Partition => Some(FaultKind::Partition),
            SiteAction::Hold => Some(FaultKind::Hold),
            SiteAction::Crash => Some(FaultKind::Crash),
            SiteAction::Loss => Some(FaultKind::Loss),
            SiteAction::PartitionOneway => Some(FaultKind::PartitionOneway),
            SiteAction::Latency => Some(FaultKind::Latency),
        }
    }

    /// Its name in a plan.
    pub fn name(self) -> &'static str {
        match self {
            SiteAction::Fail => "fail",
            SiteAction::Delay => "delay",
            SiteAction::Partition => "partition",
            SiteAction::Hold => "hold",
            SiteAction::Crash => "crash",
            SiteAction::Loss => "loss",
            SiteAction::PartitionOneway => "partition_oneway",
            SiteAction::Latency => "latency",
        }
    }
}

/// One entry of a plan's `sites`: a declared site on in this run, what it
/// does when it fires, and how often (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteFault {
    /// The declared site.
    pub site: String,
    /// What happens when it fires.
    pub action: SiteAction,
    /// The fault's target (a fault action only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The chance it fires each time the site is reached, in percent
    /// (1-100; default 25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u32>,
    /// How long the fault it starts lasts (a fault action only; default
    /// 1,000 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_ms: Option<u64>,
    /// How long the code waits (`delay` only; default 500 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// The site fires only from this instant on (ms since the run began;
    /// default: from the start). With `until_ms` one ms later and
    /// `percent` 100, the entry fires at one reach of the site: where a
    /// guided search aims a second fault at a moment the first one fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<u64>,
    /// The site fires only before this instant (ms since the run began;
    /// default: for the whole run). The run heals, and its recovery phase
    /// can begin, only once every entry has stopped and what it started
    /// has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
}

impl SiteFault {
    /// `site` on, doing `action` (with no target) at the default chance.
    pub fn new(site: impl Into<String>, action: SiteAction) -> Self {
        SiteFault {
            site: site.into(),
            action,
            target: None,
            percent: None,
            for_ms: None,
            delay_ms: None,
            from_ms: None,
            until_ms: None,
        }
    }

    /// Firing only from `ms` on.
    #[must_use]
    pub fn from(mut self, ms: u64) -> Self {
        self.from_ms = Some(ms);
        self
    }

    /// Firing only before `ms`.
    #[must_use]
    pub fn until(mut self, ms: u64) -> Self {
        self.until_ms = Some(ms);
        self
    }

    /// When what it does is over: its last instant to fire plus its
    /// length (saturating; for ever without `until_ms`).
    pub fn end(&self) -> Duration {
        let until = self.until_ms.unwrap_or(u64::MAX);
        Duration::from_millis(until.saturating_add(self.length_ms()))
    }

    /// With the fault's target.
    #[must_use]
    pub fn on(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Firing with chance `percent`/100 each time.
    #[must_use]
    pub fn percent(mut self, percent: u32) -> Self {
        self.percent = Some(percent);
        self
    }

    /// Its length: how long the fault lasts, or the delay.
    #[must_use]
    pub fn lasting(mut self, ms: u64) -> Self {
        match self.action {
            SiteAction::Delay => self.delay_ms = Some(ms),
            SiteAction::Fail => {}
            _ => self.for_ms = Some(ms),
        }
        self
    }

    /// Its length in ms as a plan's measure counts it: the fault's, or the
    /// delay's (0 for a failure).
    pub fn length_ms(&self) -> u64 {
        match self.action {
            SiteAction::Fail => 0,
            SiteAction::Delay => self.delay_ms.unwrap_or(DEFAULT_SITE_DELAY_MS),
            _ => self.for_ms.unwrap_or(DEFAULT_SITE_FOR_MS),
        }
    }

    fn chance(&self) -> u32 {
        self.percent.unwrap_or(DEFAULT_SITE_PERCENT)
    }

    /// The fault it starts at `at`, if a fault action.
    fn fault_at(&self, at: Duration) -> Option<Fault> {
        let kind = self.action.fault_kind()?;
        let at_ms = u64::try_from(at.as_millis()).unwrap_or(u64::MAX);
        Some(Fault::new(
            kind,
            self.target.clone().unwrap_or_default(),
            at_ms,
            self.length_ms(),
        ))
    }

    /// Its own stream of the run's seed: a hash (FNV-1a) of its site,
    /// action and target, so an entry's draws do not depend on the others.
    fn stream(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let target = self.target.as_deref().unwrap_or("");
        for b in [self.site.as_str(), self.action.name(), target]
            .iter()
            .flat_map(|s| s.bytes().chain(std::iter::once(0)))
        {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        h
    }
}

/// A moment a site entry fired in a run: where a guided search aims a
/// second fault.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Moment {
    /// The site.
    pub site: String,
    /// What the entry that fired does.
    pub action: SiteAction,
    /// When, in ms from the start of the run.
    pub at_ms: u64,
}

/// What is wrong with one site entry of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteError {
    /// No declared site of that name.
    Unknown {
        /// The name given.
        site: String,
        /// The declared sites.
        declared: Vec<String>,
    },
    /// `fail` or `delay` at a site whose code does not act on it.
    NotHandled {
        /// The site.
        site: String,
        /// `fail` or `delay`.
        action: SiteAction,
    },
    /// A fault action without a target.
    NoTarget,
    /// A target, `for_ms` or `delay_ms` on an action that takes none.
    Parameter {
        /// The field.
        name: &'static str,
    },
    /// A percent outside 1-100.
    Percent {
        /// The value given.
        percent: u32,
    },
    /// The fault's target is wrong.
    Target(FaultError),
    /// A window that never opens: `from_ms` not before `until_ms`.
    Window {
        /// `from_ms`.
        from: u64,
        /// `until_ms`.
        until: u64,
    },
}

impl fmt::Display for SiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SiteError::Unknown { site, declared } if declared.is_empty() => {
                write!(f, "no site {site:?}; the scenario declares no sites")
            }
            SiteError::Unknown { site, declared } => write!(
                f,
                "no site {site:?}; the scenario declares: {}",
                declared.join(", ")
            ),
            SiteError::NotHandled { site, action } => {
                let verb = if *action == SiteAction::Fail {
                    "fails"
                } else {
                    "delays"
                };
                write!(f, "the site {site:?} does not declare that it {verb}")
            }
            SiteError::NoTarget => f.write_str("a fault action needs a \"target\""),
            SiteError::Parameter { name } => {
                write!(f, "\"{name}\" does not belong to this action")
            }
            SiteError::Percent { percent } => {
                write!(f, "percent {percent} is not in 1-100")
            }
            SiteError::Target(e) => e.fmt(f),
            SiteError::Window { from, until } => write!(
                f,
                "from_ms {from} is not before until_ms {until}: the entry would never fire"
            ),
        }
    }
}

/// Checks one entry against the declarations: where its fault lands, if it
/// starts one.
pub(crate) fn resolve(entry: &SiteFault, targets: &Targets) -> Result<Option<Resolved>, SiteError> {
    let Some(site) = targets.sites().find(|s| s.name == entry.site) else {
        return Err(SiteError::Unknown {
            site: entry.site.clone(),
            declared: targets.sites().map(|s| s.name.clone()).collect(),
        });
    };
    if let Some(p) = entry.percent
        && !(1..=100).contains(&p)
    {
        return Err(SiteError::Percent { percent: p });
    }
    if let (Some(from), Some(until)) = (entry.from_ms, entry.until_ms)
        && from >= until
    {
        return Err(SiteError::Window { from, until });
    }
    let refuse = |name| Err(SiteError::Parameter { name });
    match entry.action {
        SiteAction::Fail | SiteAction::Delay => {
            let handled = match entry.action {
                SiteAction::Fail => site.fails,
                _ => site.delays,
            };
            if !handled {
                return Err(SiteError::NotHandled {
                    site: site.name.clone(),
                    action: entry.action,
                });
            }
            if entry.target.is_some() {
                return refuse("target");
            }
            if entry.for_ms.is_some() {
                return refuse("for_ms");
            }
            if entry.action == SiteAction::Fail && entry.delay_ms.is_some() {
                return refuse("delay_ms");
            }
            Ok(None)
        }
        _ => {
            if entry.delay_ms.is_some() {
                return refuse("delay_ms");
            }
            if entry.target.is_none() {
                return Err(SiteError::NoTarget);
            }
            let fault = entry.fault_at(Duration::ZERO).expect("a fault action");
            targets.resolve(&fault).map(Some).map_err(SiteError::Target)
        }
    }
}

/// The site entries a swarm draws for `seed` from a stream of their own:
/// each declared site is on with chance 1/4 (FoundationDB's `BUGGIFY`
/// enables a section in a quarter of runs), doing one action chosen
/// uniformly from what it handles and a fault on each declared target
/// (a crash of each host, a partition of each link), firing 25% of the
/// times it is reached, for a length from `length_ms`, until an instant
/// drawn as a fault's end is (a start from `start_ms` plus a length).
pub(crate) fn draw(
    seed: u64,
    targets: &Targets,
    start_ms: (u64, u64),
    length_ms: (u64, u64),
) -> Vec<SiteFault> {
    let mut rng = SplitMix64::derive(seed, 0xfa19);
    let mut out = Vec::new();
    for site in targets.sites() {
        if rng.between(0, 3) != 0 {
            continue;
        }
        let options = options(site, targets);
        let pick = options[rng.between(0, options.len() as u64 - 1) as usize].clone();
        let ms = rng.between(length_ms.0, length_ms.1);
        // On until an instant drawn as a fault's end is.
        let until = rng.between(start_ms.0, start_ms.1) + rng.between(length_ms.0, length_ms.1);
        out.push(pick.lasting(ms).until(until));
    }
    out
}

/// What a site can do in a drawn plan: `fail` and `delay` if it handles
/// them, a crash of each declared host, a partition of each link.
pub(crate) fn options(site: &Site, targets: &Targets) -> Vec<SiteFault> {
    let mut options = Vec::new();
    if site.fails {
        options.push(SiteFault::new(&site.name, SiteAction::Fail));
    }
    if site.delays {
        options.push(SiteFault::new(&site.name, SiteAction::Delay));
    }
    for (h, _) in targets.hosts() {
        options.push(SiteFault::new(&site.name, SiteAction::Crash).on(h));
    }
    for (a, b) in targets.links() {
        options.push(SiteFault::new(&site.name, SiteAction::Partition).on(format!("{a}<->{b}")));
    }
    options
}

/// The sites of one run: decides each firing and queues the faults fired
/// for the step loop.
pub(crate) struct Firing {
    entries: Vec<Armed>,
    /// Faults fired since the step loop last took them (the site, the
    /// fault, where it lands).
    pending: RefCell<Vec<(String, Fault, Resolved)>>,
    /// The entries that fired (by index), for a guided search.
    fired: RefCell<Vec<bool>>,
    /// The first [`MOMENTS`] firings.
    moments: RefCell<Vec<Moment>>,
    trace: Trace,
}

/// How many firings a run keeps the instants of, for a guided search to
/// aim at.
const MOMENTS: usize = 64;

struct Armed {
    entry: SiteFault,
    target: Option<Resolved>,
    rng: RefCell<SplitMix64>,
    /// Until when the fault it last started is on.
    busy_until: RefCell<Duration>,
}

impl Firing {
    /// The plan's entries (validated, with their targets), armed for `seed`.
    pub(crate) fn new(
        seed: u64,
        entries: &[SiteFault],
        targets: Vec<Option<Resolved>>,
        trace: Trace,
    ) -> Self {
        let entries: Vec<Armed> = entries
            .iter()
            .zip(targets)
            .map(|(e, target)| Armed {
                rng: RefCell::new(SplitMix64::derive(seed, e.stream())),
                entry: e.clone(),
                target,
                busy_until: RefCell::new(Duration::ZERO),
            })
            .collect();
        Firing {
            fired: RefCell::new(vec![false; entries.len()]),
            moments: RefCell::new(Vec::new()),
            entries,
            pending: RefCell::new(Vec::new()),
            trace,
        }
    }

    /// The code reached `name`: every entry for it draws; the first
    /// `fail` or `delay` that fires is what the code does, and each fault
    /// that fires is queued. An entry that fires and does nothing (a
    /// second answer, a fault still on from its last firing) is not
    /// counted as fired, and makes no moment.
    pub(crate) fn reach(&self, name: &str) -> Fire {
        let now = turmoil::sim_elapsed().unwrap_or_default();
        let mut answer = Fire::Pass;
        let on = |e: &SiteFault| {
            e.from_ms.is_none_or(|f| now >= Duration::from_millis(f))
                && e.until_ms.is_none_or(|u| now < Duration::from_millis(u))
        };
        for (i, armed) in self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, a)| a.entry.site == name && on(&a.entry))
        {
            let e = &armed.entry;
            let fires = armed.rng.borrow_mut().between(1, 100) <= u64::from(e.chance());
            if !fires {
                continue;
            }
            match e.action {
                SiteAction::Fail | SiteAction::Delay => {
                    if answer != Fire::Pass {
                        continue;
                    }
                    answer = if e.action == SiteAction::Fail {
                        Fire::Fail
                    } else {
                        Fire::Delay(Duration::from_millis(e.length_ms()))
                    };
                    let what = match answer {
                        Fire::Delay(d) => format!("delay {} ms", d.as_millis()),
                        _ => "fail".to_string(),
                    };
                    self.trace.log(now, format!("site {name:?} fired: {what}"));
                }
                _ => {
                    if *armed.busy_until.borrow() > now {
                        continue;
                    }
                    let fault = e.fault_at(now).expect("a fault action");
                    *armed.busy_until.borrow_mut() = fault.end();
                    let target = armed.target.expect("validated: a fault has a target");
                    self.pending
                        .borrow_mut()
                        .push((e.site.clone(), fault, target));
                }
            }
            self.fired.borrow_mut()[i] = true;
            let mut moments = self.moments.borrow_mut();
            if moments.len() < MOMENTS {
                moments.push(Moment {
                    site: name.to_string(),
                    action: e.action,
                    at_ms: now.as_millis() as u64,
                });
            }
        }
        answer
    }

    /// The entries that fired at least once, as `site: action`, in plan
    /// order without repeats.
    pub(crate) fn fired(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (armed, fired) in self.entries.iter().zip(self.fired.borrow().iter()) {
            let name = format!("{}: {}", armed.entry.site, armed.entry.action.name());
            if *fired && !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }

    /// The first firings: each one's site, action, and when.
    pub(crate) fn moments(&self) -> Vec<Moment> {
        self.moments.borrow().clone()
    }

    /// The faults fired since the last call, in the order they fired.
    pub(crate) fn take(&self) -> Vec<(String, Fault, Resolved)> {
        std::mem::take(&mut self.pending.borrow_mut())
    }
}
