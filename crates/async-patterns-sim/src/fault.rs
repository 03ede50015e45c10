//! Faults over a scenario's declared targets: what can break, the plans that
//! say when, swarm generation from a seed, and validation of hand-written
//! plans.
//!
//! A scenario declares its [`Targets`]: the links between its hosts that
//! faults may cut, hold, make lossy or slow, and the hosts that may crash
//! (with what survives a restart). A [`Fault`] names one of them:
//!
//! | kind | target | effect while on |
//! |---|---|---|
//! | `partition` | link `a<->b` | every message both ways is dropped |
//! | `partition_oneway` | `a->b` (a declared link, one direction) | messages from `a` to `b` are dropped; `b` still reaches `a` |
//! | `hold` | link `a<->b` | messages wait, and are all delivered when it ends (a latency spike) |
//! | `loss` | link `a<->b` | each message sent fails the link with chance `percent`/100 (default 5): it and all in flight are lost, and the next message sent repairs the link (turmoil's model: even 100 loses about every other message) |
//! | `latency` | link `a<->b` | every message takes exactly `latency_ms` (default 100) one way |
//! | `crash` | host | the host stops (its tasks and sockets are gone); it restarts when the fault ends |
//!
//! A fault starts and ends on the simulation's tick ([`Network::tick`](crate::Network),
//! 2 ms by default): one at `at_ms: 1309` begins at 1310, and one shorter
//! than a tick may begin and end between two steps and do nothing. Targets
//! are written either way round (`server<->client` is `client<->server`),
//! spaces around the arrow allowed. Several faults may overlap, on one target or many: a link is cut while
//! any partition of it is on, else held while any hold is on; its loss and
//! latency are the largest of those on. Every number of a plan is valid
//! input (instants saturate: `for_ms: u64::MAX` lasts for ever) and a
//! fault of 0 ms is no fault.
//!
//! ```
//! use async_patterns_sim::{FaultPlan, Targets};
//!
//! let targets = Targets::new()
//!     .link("client", "server")
//!     .host("server", "its database survives; requests in flight are lost");
//! let plan: FaultPlan = serde_json::from_str(
//!     r#"{"faults": [
//!         {"kind": "partition", "target": "client<->server", "at_ms": 500, "for_ms": 1000},
//!         {"kind": "crash", "target": "server", "at_ms": 2000, "for_ms": 300}
//!     ]}"#,
//! )
//! .unwrap();
//! assert!(plan.validate(&targets, &[]).is_ok());
//!
//! // An unknown target is an error that names it and what was declared.
//! let bad: FaultPlan = serde_json::from_str(
//!     r#"{"faults": [{"kind": "crash", "target": "db", "at_ms": 0, "for_ms": 1}]}"#,
//! )
//! .unwrap();
//! let err = bad.validate(&targets, &[]).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "fault 1 (crash): no host \"db\"; the scenario declares: server"
//! );
//! ```

use std::fmt;
use std::time::Duration;

use async_patterns::rng::SplitMix64;
use serde::{Deserialize, Serialize};

use crate::disk::{Disk, DiskError, DiskProfile};
use crate::site::{Site, SiteAction, SiteError, SiteFault};

/// What a fault does to its target (see the [module docs](self) for each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A link drops every message, both ways.
    Partition,
    /// A link holds its messages, then delivers them all at once.
    Hold,
    /// A host crashes, and restarts when the fault ends.
    Crash,
    /// A link loses messages at random (`percent`).
    Loss,
    /// A link drops the messages of one direction (`a->b`).
    PartitionOneway,
    /// A link's one-way latency is fixed at `latency_ms`.
    Latency,
}

impl FaultKind {
    /// Every kind, in the order [`Swarm::over`] draws them for a link, then
    /// a host.
    pub const ALL: [FaultKind; 6] = [
        FaultKind::Partition,
        FaultKind::Hold,
        FaultKind::Crash,
        FaultKind::Loss,
        FaultKind::PartitionOneway,
        FaultKind::Latency,
    ];

    /// Its name in a plan.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Hold => "hold",
            FaultKind::Crash => "crash",
            FaultKind::Loss => "loss",
            FaultKind::PartitionOneway => "partition_oneway",
            FaultKind::Latency => "latency",
        }
    }

    /// What its target must be.
    fn wants(self) -> TargetShape {
        match self {
            FaultKind::Crash => TargetShape::Host,
            FaultKind::PartitionOneway => TargetShape::Direction,
            _ => TargetShape::Link,
        }
    }
}

impl std::str::FromStr for FaultKind {
    type Err = String;

    /// A kind by its name in a plan (`partition`, `partition_oneway`,
    /// `hold`, `loss`, `latency`, `crash`).
    fn from_str(name: &str) -> Result<FaultKind, String> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == name.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                format!("no fault kind {name:?}; the kinds: {}", names.join(", "))
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetShape {
    Link,
    Direction,
    Host,
}

/// A loss fault's chance, in percent, when the plan does not say.
pub const DEFAULT_LOSS_PERCENT: u32 = 5;
/// A latency fault's one-way latency, in ms, when the plan does not say.
pub const DEFAULT_LATENCY_MS: u64 = 100;

/// One fault: a kind, a declared target, when it starts and for how long
/// (virtual ms since the simulation began), and the kind's parameter.
///
/// Read its instants through [`Fault::start`] and [`Fault::end`], which
/// saturate, never `at_ms + for_ms`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// What happens.
    pub kind: FaultKind,
    /// Where: a declared link `a<->b`, a direction `a->b` of one, or a
    /// declared host.
    pub target: String,
    /// When, after the simulation begins.
    pub at_ms: u64,
    /// For how long.
    pub for_ms: u64,
    /// `loss` only: the chance per message sent, in percent (1-100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u32>,
    /// `latency` only: the one-way latency while on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
}

impl Fault {
    /// A fault of `kind` on `target` from `at_ms` for `for_ms`, with the
    /// kind's default parameter.
    pub fn new(kind: FaultKind, target: impl Into<String>, at_ms: u64, for_ms: u64) -> Self {
        Fault {
            kind,
            target: target.into(),
            at_ms,
            for_ms,
            percent: None,
            latency_ms: None,
        }
    }

    /// When it starts, after the simulation begins.
    pub fn start(&self) -> Duration {
        Duration::from_millis(self.at_ms)
    }

    /// When it ends (saturating: `for_ms: u64::MAX` lasts for ever).
    pub fn end(&self) -> Duration {
        Duration::from_millis(self.at_ms.saturating_add(self.for_ms))
    }

    /// Whether it touches `host`: crashes it, or hits a link to or from it.
    pub fn hits(&self, host: &str) -> bool {
        match split_target(&self.target) {
            Split::Host(h) => h == host,
            Split::Link(a, b) | Split::Direction(a, b) => a == host || b == host,
        }
    }

    /// Whether it is on the link between `a` and `b` (either way round, one
    /// direction or both).
    pub fn on_link(&self, a: &str, b: &str) -> bool {
        match split_target(&self.target) {
            Split::Host(_) => false,
            Split::Link(x, y) | Split::Direction(x, y) => (x, y) == (a, b) || (x, y) == (b, a),
        }
    }
}

/// The faults a run injects; written by hand (JSON), drawn from a seed by a
/// [`Swarm`], or shrunk from a failing one. A field the harness does not
/// know is an error that names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// The faults, in any order (none if left out).
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// The deliberately broken code the plan was found under, if any (one
    /// of the scenario's declared sabotages): `shrink --sabotage` records
    /// it and `replay --plan` applies it. A plan with one is a
    /// demonstration, never a regression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sabotage: Option<String>,
    /// The fault sites on in this run, and what they do when they fire
    /// (see [`site`](crate::site)); none by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<SiteFault>,
    /// The run's disk faults (see [`disk`](crate::disk)); none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskProfile>,
}

impl FaultPlan {
    /// The faults of one kind.
    pub fn of(&self, kind: FaultKind) -> impl Iterator<Item = &Fault> {
        self.faults.iter().filter(move |f| f.kind == kind)
    }

    /// Whether a fault for which `which` holds is on at some instant of
    /// `from..=to`, counting it as lasting `after` beyond its end (for its
    /// aftermath: timeouts still running, held messages delivered). A 0 ms
    /// fault is no fault.
    pub fn touches(
        &self,
        which: impl Fn(&Fault) -> bool,
        from: Duration,
        to: Duration,
        after: Duration,
    ) -> bool {
        self.faults.iter().filter(|f| f.for_ms > 0).any(|f| {
            let end = f.end().saturating_add(after);
            which(f) && f.start() <= to && end >= from
        })
    }

    /// When the last fault ends (zero without faults; a 0 ms fault is no
    /// fault), counting a site entry as on until its
    /// [`end`](SiteFault::end) (for ever without `until_ms`).
    pub fn last_end(&self) -> Duration {
        let sites = self.sites.iter().map(SiteFault::end);
        self.faults
            .iter()
            .filter(|f| f.for_ms > 0)
            .map(Fault::end)
            .chain(sites)
            .max()
            .unwrap_or_default()
    }

    /// The faulted milliseconds: the sum of the faults' lengths and the
    /// site entries' (saturating), the second measure a shrink makes
    /// smaller after the element count.
    pub fn faulted_ms(&self) -> u64 {
        let sites = self.sites.iter().map(SiteFault::length_ms);
        self.faults
            .iter()
            .map(|f| f.for_ms)
            .chain(sites)
            .fold(0, u64::saturating_add)
    }

    /// Its elements: faults, then site entries, then the disk profile (the
    /// count a shrink makes smaller first).
    pub fn elements(&self) -> usize {
        self.faults.len() + self.sites.len() + usize::from(self.disk.is_some())
    }

    /// What its elements are called in a message: `faults`, or `faults,
    /// site entries and disk` when it has more.
    pub fn elements_named(&self) -> &'static str {
        if self.sites.is_empty() && self.disk.is_none() {
            "faults"
        } else {
            "faults, site entries and disk"
        }
    }

    /// The plan without element `i` (a fault, or past them a site entry,
    /// or past them the disk profile).
    pub fn without(&self, i: usize) -> FaultPlan {
        let mut p = self.clone();
        let (faults, sites) = (p.faults.len(), p.sites.len());
        if i < faults {
            p.faults.remove(i);
        } else if i - faults < sites {
            p.sites.remove(i - faults);
        } else if i - faults == sites {
            p.disk = None;
        }
        p
    }

    /// Checks the plan against a scenario's declared targets and sabotages:
    /// each fault's target has the shape its kind needs and was declared,
    /// parameters belong to their kind and are in range.
    pub fn validate(&self, targets: &Targets, sabotages: &[Sabotage]) -> Result<(), PlanError> {
        self.resolve(targets, sabotages).map(drop)
    }

    /// As [`FaultPlan::validate`], returning where each fault lands (the
    /// run injects from these, so a plan is resolved once).
    pub(crate) fn resolve(
        &self,
        targets: &Targets,
        sabotages: &[Sabotage],
    ) -> Result<(Vec<Resolved>, Vec<Option<Resolved>>), PlanError> {
        let resolved = self
            .faults
            .iter()
            .enumerate()
            .map(|(i, f)| {
                targets.resolve(f).map_err(|why| PlanError::Fault {
                    index: i + 1,
                    kind: f.kind,
                    why,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sites = self
            .sites
            .iter()
            .enumerate()
            .map(|(i, e)| {
                crate::site::resolve(e, targets).map_err(|why| PlanError::Site {
                    index: i + 1,
                    action: e.action,
                    why,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(disk) = &self.disk {
            disk.check(targets.declared_disk())
                .map_err(PlanError::Disk)?;
        }
        if let Some(name) = &self.sabotage
            && !sabotages.iter().any(|s| s.name == *name)
        {
            return Err(PlanError::UnknownSabotage {
                name: name.clone(),
                declared: sabotages.iter().map(|s| s.name.to_string()).collect(),
            });
        }
        Ok((resolved, sites))
    }
}

/// Why a plan does not fit its scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// Fault number `index` (1-based) is wrong.
    Fault {
        /// Its position in the plan, from 1.
        index: usize,
        /// Its kind.
        kind: FaultKind,
        /// What is wrong with it.
        why: FaultError,
    },
    /// Site entry number `index` (1-based) is wrong.
    Site {
        /// Its position in the plan's `sites`, from 1.
        index: usize,
        /// Its action.
        action: SiteAction,
        /// What is wrong with it.
        why: SiteError,
    },
    /// The disk profile is wrong.
    Disk(DiskError),
    /// The plan names a sabotage the scenario does not declare.
    UnknownSabotage {
        /// The name given.
        name: String,
        /// The scenario's sabotages.
        declared: Vec<String>,
    },
}

/// What is wrong with one fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultError {
    /// A link kind on a target that is not a declared `a<->b`.
    UnknownLink {
        /// The target given.
        target: String,
        /// The declared links.
        declared: Vec<String>,
    },
    /// `partition_oneway` on a target that is not `a->b` of a declared link.
    UnknownDirection {
        /// The target given.
        target: String,
        /// The directions the declared links allow.
        declared: Vec<String>,
    },
    /// `crash` of a host that is not declared crashable.
    UnknownHost {
        /// The target given.
        target: String,
        /// The declared hosts.
        declared: Vec<String>,
    },
    /// A parameter given to a kind that takes none, or another kind's.
    Parameter {
        /// The parameter's name.
        name: &'static str,
    },
    /// `percent` outside 1-100.
    Percent {
        /// The value given.
        percent: u32,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::Fault { index, kind, why } => {
                write!(f, "fault {index} ({}): {why}", kind.name())
            }
            PlanError::Disk(why) => write!(f, "disk: {why}"),
            PlanError::Site { index, action, why } => {
                write!(f, "site entry {index} ({}): {why}", action.name())
            }
            PlanError::UnknownSabotage { name, declared } => write!(
                f,
                "no sabotage {name:?}; the scenario declares: {}",
                list(declared)
            ),
        }
    }
}

impl fmt::Display for FaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultError::UnknownLink { target, declared } => write!(
                f,
                "no link {target:?}; the scenario declares: {}",
                list(declared)
            ),
            FaultError::UnknownDirection { target, declared } => write!(
                f,
                "no direction {target:?} (write FROM->TO of a declared link); the scenario allows: {}",
                list(declared)
            ),
            FaultError::UnknownHost { target, declared } => write!(
                f,
                "no host {target:?}; the scenario declares: {}",
                list(declared)
            ),
            FaultError::Parameter { name } => {
                write!(
                    f,
                    "takes no {name:?} (percent: loss only; latency_ms: latency only)"
                )
            }
            FaultError::Percent { percent } => {
                write!(f, "percent {percent} is outside 1-100")
            }
        }
    }
}

impl std::error::Error for PlanError {}
impl std::error::Error for FaultError {}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// A deliberately broken version of the code under test, registered by a
/// scenario so that the meta-test can show its invariants catch it ("my
/// suite catches a retry without a budget"). The scenario's code asks
/// [`Ctx::sabotaged`](crate::Ctx::sabotaged) and breaks itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sabotage {
    /// Its name on the command line and in a plan (kebab-case).
    pub name: &'static str,
    /// What it breaks.
    pub about: &'static str,
}

/// The targets a scenario lets faults hit: links between its hosts, and
/// hosts that may crash (with what survives a restart).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    links: Vec<(String, String)>,
    hosts: Vec<(String, String)>,
    sites: Vec<Site>,
    disk: Option<Disk>,
}

/// A target's name, split by its shape.
enum Split<'a> {
    Link(&'a str, &'a str),
    Direction(&'a str, &'a str),
    Host(&'a str),
}

fn split_target(target: &str) -> Split<'_> {
    if let Some((a, b)) = target.split_once("<->") {
        Split::Link(a.trim(), b.trim())
    } else if let Some((a, b)) = target.split_once("->") {
        Split::Direction(a.trim(), b.trim())
    } else {
        Split::Host(target.trim())
    }
}

/// A fault's target, resolved against the declarations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Resolved {
    /// Link `i`.
    Link(usize),
    /// Link `i`, from its first host to its second (`true`) or back.
    Direction(usize, bool),
    /// Host `i`.
    Host(usize),
}

impl Sabotage {
    /// A sabotage called `name` (kebab-case), breaking what `about` says.
    pub const fn new(name: &'static str, about: &'static str) -> Self {
        Sabotage { name, about }
    }
}

impl Targets {
    /// No targets: a plan for this scenario must be empty.
    pub fn new() -> Self {
        Targets::default()
    }

    /// Declares the link between hosts `a` and `b`: faults name it
    /// `a<->b` (or `b<->a`), and one direction of it `a->b` or `b->a`.
    #[must_use]
    pub fn link(mut self, a: impl Into<String>, b: impl Into<String>) -> Self {
        self.links.push((a.into(), b.into()));
        self
    }

    /// Declares that `host` may crash. `survives` says what its restart
    /// keeps: state the scenario created outside the host's closure (a
    /// "disk", shared through the record) survives; what the closure
    /// creates (tasks, sockets, memory) is lost. `list` prints it.
    #[must_use]
    pub fn host(mut self, host: impl Into<String>, survives: impl Into<String>) -> Self {
        self.hosts.push((host.into(), survives.into()));
        self
    }

    /// Declares a fault site in the scenario's or the service's code (see
    /// [`site`](crate::site)): a plan may turn it on.
    #[must_use]
    pub fn site(mut self, site: Site) -> Self {
        self.sites.push(site);
        self
    }

    /// Declares that hosts keep state on the simulated disk, and which disk
    /// faults their code must survive (see [`disk`](crate::disk)): a plan's
    /// disk profile may use those.
    #[must_use]
    pub fn disk(mut self, disk: Disk) -> Self {
        self.disk = Some(disk);
        self
    }

    /// The declared disk, if any.
    pub fn declared_disk(&self) -> Option<&Disk> {
        self.disk.as_ref()
    }

    /// The declared fault sites.
    pub fn sites(&self) -> impl Iterator<Item = &Site> {
        self.sites.iter()
    }

    /// The declared links, as `(a, b)`.
    pub fn links(&self) -> impl Iterator<Item = (&str, &str)> {
        self.links.iter().map(|(a, b)| (a.as_str(), b.as_str()))
    }

    /// The declared crashable hosts, with what survives their restart.
    pub fn hosts(&self) -> impl Iterator<Item = (&str, &str)> {
        self.hosts.iter().map(|(h, s)| (h.as_str(), s.as_str()))
    }

    fn link_names(&self) -> Vec<String> {
        self.links().map(|(a, b)| format!("{a}<->{b}")).collect()
    }

    pub(crate) fn link_at(&self, i: usize) -> (&str, &str) {
        let (a, b) = &self.links[i];
        (a, b)
    }

    pub(crate) fn host_name(&self, i: usize) -> &str {
        &self.hosts[i].0
    }

    pub(crate) fn link_count(&self) -> usize {
        self.links.len()
    }

    /// Where `f` lands, or why it cannot.
    pub(crate) fn resolve(&self, f: &Fault) -> Result<Resolved, FaultError> {
        if f.latency_ms.is_some() && f.kind != FaultKind::Latency {
            return Err(FaultError::Parameter { name: "latency_ms" });
        }
        if f.percent.is_some() && f.kind != FaultKind::Loss {
            return Err(FaultError::Parameter { name: "percent" });
        }
        if let Some(p) = f.percent
            && !(1..=100).contains(&p)
        {
            return Err(FaultError::Percent { percent: p });
        }
        let find = |a: &str, b: &str| {
            self.links()
                .position(|(x, y)| (x, y) == (a, b) || (x, y) == (b, a))
        };
        match (f.kind.wants(), split_target(&f.target)) {
            (TargetShape::Link, Split::Link(a, b)) => find(a, b).map(Resolved::Link),
            (TargetShape::Direction, Split::Direction(a, b)) => {
                find(a, b).map(|i| Resolved::Direction(i, self.links[i].0 == a))
            }
            (TargetShape::Host, Split::Host(h)) => {
                self.hosts().position(|(x, _)| x == h).map(Resolved::Host)
            }
            _ => None,
        }
        .ok_or_else(|| {
            let target = f.target.clone();
            match f.kind.wants() {
                TargetShape::Link => FaultError::UnknownLink {
                    target,
                    declared: self.link_names(),
                },
                TargetShape::Direction => FaultError::UnknownDirection {
                    target,
                    declared: self
                        .links()
                        .flat_map(|(a, b)| [format!("{a}->{b}"), format!("{b}->{a}")])
                        .collect(),
                },
                TargetShape::Host => FaultError::UnknownHost {
                    target,
                    declared: self.hosts().map(|(h, _)| h.to_string()).collect(),
                },
            }
        })
    }
}

/// A probability as an exact fraction `num/den` (kept in lowest terms), so
/// that a draw against it needs no floating point: [`Swarm::keep`] takes
/// one. Written `2/3` or `25%` on the command line.
///
/// ```
/// use async_patterns_sim::fault::Chance;
///
/// assert_eq!(Chance::new(2, 4).unwrap(), Chance::new(1, 2).unwrap());
/// assert_eq!("25%".parse::<Chance>().unwrap(), Chance::new(1, 4).unwrap());
/// assert_eq!("2/3".parse::<Chance>().unwrap().to_string(), "2/3");
/// assert!(Chance::new(4, 3).is_err() && Chance::new(1, 0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Chance {
    num: u32,
    den: u32,
}

/// Why a [`Chance`] was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChanceError {
    /// `num/den` with `den` 0, or `num` above `den`.
    OutOfRange {
        /// The numerator given.
        num: u32,
        /// The denominator given.
        den: u32,
    },
    /// Text that is neither `N/M` nor `P%`.
    Unreadable(String),
}

impl fmt::Display for ChanceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChanceError::OutOfRange { num, den } => write!(
                f,
                "{num}/{den} is not a chance: need 0 <= N <= M and M >= 1"
            ),
            ChanceError::Unreadable(text) => write!(
                f,
                "{text:?} is not a chance: write N/M (2/3) or a percent (25%)"
            ),
        }
    }
}

impl std::error::Error for ChanceError {}

impl Chance {
    /// Never.
    pub const NEVER: Chance = Chance { num: 0, den: 1 };
    /// Always.
    pub const ALWAYS: Chance = Chance { num: 1, den: 1 };
    /// The swarm's default keep chance: two in three.
    pub const TWO_THIRDS: Chance = Chance { num: 2, den: 3 };

    /// `num/den`, with `den >= 1` and `num <= den`.
    pub const fn new(num: u32, den: u32) -> Result<Chance, ChanceError> {
        if den == 0 || num > den {
            return Err(ChanceError::OutOfRange { num, den });
        }
        let g = gcd(num, den);
        Ok(Chance {
            num: num / g,
            den: den / g,
        })
    }

    /// `percent` in a hundred (0-100).
    pub const fn percent(percent: u32) -> Result<Chance, ChanceError> {
        Chance::new(percent, 100)
    }

    /// The numerator, in lowest terms.
    pub fn num(self) -> u32 {
        self.num
    }

    /// The denominator, in lowest terms.
    pub fn den(self) -> u32 {
        self.den
    }

    /// Whether a draw of `rng` comes out within this chance scaled by
    /// `weight / of` (`of` >= `weight`): a draw in `0..q` against `p` of the
    /// fraction in lowest terms. At 2/3 unscaled this is the draw the swarm
    /// has always made (`between(0, 2)`, 0 leaves the entry out).
    fn draw(self, rng: &mut SplitMix64, weight: u32, of: u32) -> bool {
        if of == 0 {
            return false;
        }
        // p/q need not be in lowest terms: the draw maps a uniform 64-bit
        // value x to floor(x·q / 2^64), and that is at least q - p exactly
        // when x·q / 2^64 is, which scaling p and q alike leaves as it is.
        let (p, q) = (
            u64::from(self.num) * u64::from(weight),
            u64::from(self.den) * u64::from(of),
        );
        rng.between(0, q - 1) >= q - p
    }
}

impl fmt::Display for Chance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

impl std::str::FromStr for Chance {
    type Err = ChanceError;

    fn from_str(text: &str) -> Result<Chance, ChanceError> {
        let bad = || ChanceError::Unreadable(text.to_string());
        let t = text.trim();
        if let Some(p) = t.strip_suffix('%') {
            return Chance::percent(p.trim().parse().map_err(|_| bad())?);
        }
        let (n, d) = t.split_once('/').ok_or_else(bad)?;
        Chance::new(
            n.trim().parse().map_err(|_| bad())?,
            d.trim().parse().map_err(|_| bad())?,
        )
    }
}

const fn gcd(a: u32, b: u32) -> u32 {
    let (mut a, mut b) = (a, b);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    if a == 0 { 1 } else { a }
}

/// How plans are drawn from a seed, swarm style. Each entry of the menu (a
/// kind on a target), in menu order, is kept with the [keep
/// chance](Swarm::keep) (2/3 by default, so seeds also explore runs with
/// only some faults: bugs that all-faults-at-once hides); each fault kept
/// starts within the start window and lasts a length from the length
/// window (both inclusive). An entry added at the end of the menu leaves
/// every seed's earlier faults as they were.
///
/// Density, for a scenario with many targets (3 links and 2 hosts make a
/// menu of 20, so 13 faults a seed by default):
///
/// | setting | default | what it does |
/// |---|---|---|
/// | [`keep`](Swarm::keep) | 2/3 | each entry's chance to be in the plan |
/// | [`weight`](Swarm::weight) | 1 for every kind | relative: the heaviest kind is kept with the keep chance, the others in proportion (0 leaves a kind out) |
/// | [`max_faults`](Swarm::max_faults) | none | at most N faults; when more are drawn, N of them chosen at random |
/// | [`kind_subsets`](Swarm::kind_subsets) | off | each seed enables a random subset of the menu's kinds (each with chance 1/2, at least one), as FoundationDB's simulation does |
/// | [`starts_within`](Swarm::starts_within) | 300-2,500 ms | when a fault may start |
/// | [`lasts_within`](Swarm::lasts_within) | 200-2,500 ms | how long it may last |
///
/// The defaults are the draws the swarm has always made: a seed's plan is
/// the one it had before these settings existed, so a seed number in a bug
/// report, a CI log or a snapshot still means the same faults. The keep
/// draw comes from the seed's stream as before; the subset and the cap
/// draw from a stream of their own, so turning them on only removes faults
/// from the plan the seed would otherwise get. For a scenario whose
/// failing traces are noise, try `.max_faults(3).kind_subsets(true)`.
///
/// ```
/// use async_patterns_sim::{FaultKind, Swarm, Targets};
///
/// let targets = Targets::new().link("client", "server").host("server", "nothing");
/// let swarm = Swarm::over(&targets);
/// assert_eq!(swarm.menu().len(), 7); // 6 link faults (two one-way), 1 crash
/// let plan = swarm.plan(42);
/// assert_eq!(plan, swarm.plan(42)); // a pure function of the seed
/// assert!(plan.validate(&targets, &[]).is_ok());
/// assert!(plan.faults.iter().all(|f| (300..=2_500).contains(&f.at_ms)));
///
/// // Sparser: at most 2 faults, no loss, crashes twice as likely as the rest.
/// let sparse = Swarm::over(&targets)
///     .max_faults(2)
///     .weight(FaultKind::Loss, 0)
///     .weight(FaultKind::Crash, 2);
/// let plan = sparse.plan(42);
/// assert!(plan.faults.len() <= 2 && plan.of(FaultKind::Loss).count() == 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Swarm {
    menu: Vec<(FaultKind, String)>,
    start_ms: (u64, u64),
    length_ms: (u64, u64),
    keep: Chance,
    /// Relative weights by kind; a kind not here weighs 1.
    weights: Vec<(FaultKind, u32)>,
    max_faults: Option<usize>,
    kind_subsets: bool,
    /// The declared targets, when drawn [`over`](Swarm::over) them or
    /// [`with_sites`](Swarm::with_sites): each seed's site entries and disk
    /// profile come from streams of their own.
    sites: Targets,
}

impl Swarm {
    /// Every kind on every declared target: per link (in declaration
    /// order) a partition, a hold, loss, both one-way partitions and a
    /// latency fault; then a crash per host. The default settings (see the
    /// table above).
    pub fn over(targets: &Targets) -> Self {
        let mut menu = Vec::new();
        for (a, b) in targets.links() {
            let link = format!("{a}<->{b}");
            menu.push((FaultKind::Partition, link.clone()));
            menu.push((FaultKind::Hold, link.clone()));
            menu.push((FaultKind::Loss, link.clone()));
            menu.push((FaultKind::PartitionOneway, format!("{a}->{b}")));
            menu.push((FaultKind::PartitionOneway, format!("{b}->{a}")));
            menu.push((FaultKind::Latency, link));
        }
        for (h, _) in targets.hosts() {
            menu.push((FaultKind::Crash, h.to_string()));
        }
        Swarm::new(menu).with_sites(targets)
    }

    /// The faults of `menu`, with the default settings (see the table
    /// above).
    pub fn new(menu: Vec<(FaultKind, String)>) -> Self {
        Swarm {
            menu,
            start_ms: (300, 2_500),
            length_ms: (200, 2_500),
            keep: Chance::TWO_THIRDS,
            weights: Vec::new(),
            max_faults: None,
            kind_subsets: false,
            sites: Targets::new(),
        }
    }

    /// The faults a plan may hold: a kind and its target, in draw order.
    pub fn menu(&self) -> &[(FaultKind, String)] {
        &self.menu
    }

    /// The swarm with `kind` on `target` added at the end of the menu
    /// (every seed's earlier draws stay as they were).
    #[must_use]
    pub fn with_entry(mut self, kind: FaultKind, target: impl Into<String>) -> Self {
        self.menu.push((kind, target.into()));
        self
    }

    /// Each menu entry's chance to be in a seed's plan.
    #[must_use]
    pub fn keep(mut self, chance: Chance) -> Self {
        self.keep = chance;
        self
    }

    /// The relative weight of `kind`: with weights, an entry is kept with
    /// the keep chance times its kind's weight over the heaviest kind's (so
    /// the heaviest keeps the keep chance); 0 leaves the kind out. Every
    /// kind weighs 1 until given another.
    #[must_use]
    pub fn weight(mut self, kind: FaultKind, weight: u32) -> Self {
        self.weights.retain(|(k, _)| *k != kind);
        self.weights.push((kind, weight));
        self
    }

    /// At most `max` faults a plan (0: none at all); when a seed draws
    /// more, `max` of them are chosen at random from a stream of their own.
    #[must_use]
    pub fn max_faults(mut self, max: usize) -> Self {
        self.max_faults = Some(max);
        self
    }

    /// Whether each seed enables a random subset of the menu's kinds
    /// (swarm testing): each kind on with chance 1/2, at least one.
    #[must_use]
    pub fn kind_subsets(mut self, on: bool) -> Self {
        self.kind_subsets = on;
        self
    }

    /// Faults start within `from_ms..=to_ms` (given the wrong way round,
    /// the two are swapped).
    #[must_use]
    pub fn starts_within(mut self, from_ms: u64, to_ms: u64) -> Self {
        self.start_ms = (from_ms.min(to_ms), from_ms.max(to_ms));
        self
    }

    /// Faults last a length within `from_ms..=to_ms` (given the wrong way
    /// round, the two are swapped).
    #[must_use]
    pub fn lasts_within(mut self, from_ms: u64, to_ms: u64) -> Self {
        self.length_ms = (from_ms.min(to_ms), from_ms.max(to_ms));
        self
    }

    /// When a fault may start (ms, inclusive).
    pub fn start_ms(&self) -> (u64, u64) {
        self.start_ms
    }

    /// How long a fault may last (ms, inclusive).
    pub fn length_ms(&self) -> (u64, u64) {
        self.length_ms
    }

    /// The keep chance.
    pub fn keep_chance(&self) -> Chance {
        self.keep
    }

    /// `kind`'s weight.
    pub fn weight_of(&self, kind: FaultKind) -> u32 {
        self.weights
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(1, |(_, w)| *w)
    }

    /// The cap on faults a plan, if any.
    pub fn max_faults_per_plan(&self) -> Option<usize> {
        self.max_faults
    }

    /// Whether each seed enables a random subset of kinds.
    pub fn has_kind_subsets(&self) -> bool {
        self.kind_subsets
    }

    /// The plan `seed` gets when none is given.
    pub fn plan(&self, seed: u64) -> FaultPlan {
        let mut rng = SplitMix64::derive(seed, 0xfa17);
        let heaviest = self
            .menu
            .iter()
            .map(|(k, _)| self.weight_of(*k))
            .max()
            .unwrap_or(0);
        let mut faults = Vec::new();
        for (kind, target) in &self.menu {
            if !self.keep.draw(&mut rng, self.weight_of(*kind), heaviest) {
                continue;
            }
            let at_ms = rng.between(self.start_ms.0, self.start_ms.1);
            let for_ms = rng.between(self.length_ms.0, self.length_ms.1);
            faults.push(Fault::new(*kind, target.clone(), at_ms, for_ms));
        }
        // The new settings draw from a stream of their own: off, the plan
        // is exactly the one above.
        let mut own = SplitMix64::derive(seed, 0xfa18);
        if self.kind_subsets {
            let mut kinds: Vec<FaultKind> = FaultKind::ALL
                .into_iter()
                .filter(|k| self.menu.iter().any(|(m, _)| m == k))
                .collect();
            let on: Vec<FaultKind> = kinds
                .iter()
                .copied()
                .filter(|_| own.between(0, 1) == 1)
                .collect();
            if on.is_empty() && !kinds.is_empty() {
                let one = kinds.swap_remove(own.between(0, kinds.len() as u64 - 1) as usize);
                faults.retain(|f| f.kind == one);
            } else {
                faults.retain(|f| on.contains(&f.kind));
            }
        }
        if let Some(max) = self.max_faults
            && faults.len() > max
        {
            // A uniform choice of `max` of them (a partial Fisher-Yates
            // shuffle of their indices), kept in menu order.
            let mut idx: Vec<usize> = (0..faults.len()).collect();
            for i in 0..max {
                let j = own.between(i as u64, idx.len() as u64 - 1) as usize;
                idx.swap(i, j);
            }
            let mut chosen = idx[..max].to_vec();
            chosen.sort_unstable();
            faults = chosen.into_iter().map(|i| faults[i].clone()).collect();
        }
        // The site entries, from a stream of their own (none without sites).
        let sites = crate::site::draw(seed, &self.sites, self.start_ms, self.length_ms);
        let disk = crate::disk::draw(seed, self.sites.declared_disk());
        FaultPlan {
            faults,
            sabotage: None,
            sites,
            disk,
        }
    }

    /// The swarm drawing site entries for `targets`' declared sites and a
    /// profile for its disk (each seed's from streams of their own, so the
    /// faults it draws stay as they were). The harness calls it on a
    /// scenario's [`swarm`](crate::Scenario::swarm) that has neither: a
    /// declared site or disk is always in the fault space.
    #[must_use]
    pub fn with_sites(mut self, targets: &Targets) -> Self {
        self.sites = targets.clone();
        self
    }

    /// The disk its plans may draw a profile for.
    pub fn disk(&self) -> Option<&Disk> {
        self.sites.declared_disk()
    }

    /// Every site entry it may draw: each site's actions and faults (see
    /// [`site`](crate::site)), at the default chance and length.
    pub fn site_options(&self) -> Vec<SiteFault> {
        self.sites
            .sites()
            .flat_map(|s| crate::site::options(s, &self.sites))
            .collect()
    }

    /// The sites its plans may turn on.
    pub fn sites(&self) -> impl Iterator<Item = &Site> {
        self.sites.sites()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> Targets {
        Targets::new()
            .link("client", "server")
            .host("server", "nothing")
    }

    fn check(f: Fault) -> Result<(), String> {
        FaultPlan {
            faults: vec![f],
            sabotage: None,
            sites: Vec::new(),
            disk: None,
        }
        .validate(&targets(), &[])
        .map_err(|e| e.to_string())
    }

    #[test]
    fn targets_must_be_declared_and_of_the_kinds_shape() {
        use FaultKind::*;
        for (kind, target) in [
            (Partition, "client<->server"),
            (Partition, "server<->client"),
            (Hold, " client <-> server "),
            (Loss, "client<->server"),
            (Latency, "client<->server"),
            (PartitionOneway, "client->server"),
            (PartitionOneway, "server->client"),
            (Crash, "server"),
        ] {
            assert_eq!(
                check(Fault::new(kind, target, 0, 1)),
                Ok(()),
                "{kind:?} {target}"
            );
        }
        for (kind, target, says) in [
            (
                Partition,
                "client<->db",
                "no link \"client<->db\"; the scenario declares: client<->server",
            ),
            (Partition, "server", "no link \"server\""),
            (
                PartitionOneway,
                "client<->server",
                "allows: client->server, server->client",
            ),
            (
                Crash,
                "client",
                "no host \"client\"; the scenario declares: server",
            ),
            (Crash, "client<->server", "no host"),
        ] {
            let err = check(Fault::new(kind, target, 0, 1)).unwrap_err();
            assert!(err.contains(says), "{kind:?} {target}: {err}");
            assert!(
                err.starts_with(&format!("fault 1 ({})", kind.name())),
                "{err}"
            );
        }
    }

    #[test]
    fn parameters_belong_to_their_kind_and_are_in_range() {
        let loss = |p| Fault {
            percent: Some(p),
            ..Fault::new(FaultKind::Loss, "client<->server", 0, 1)
        };
        assert_eq!(check(loss(1)), Ok(()));
        assert_eq!(check(loss(100)), Ok(()));
        assert!(
            check(loss(0))
                .unwrap_err()
                .contains("percent 0 is outside 1-100")
        );
        assert!(check(loss(101)).unwrap_err().contains("percent 101"));
        let late = Fault {
            latency_ms: Some(5),
            ..Fault::new(FaultKind::Latency, "client<->server", 0, 1)
        };
        assert_eq!(check(late.clone()), Ok(()));
        let wrong = Fault {
            kind: FaultKind::Hold,
            ..late
        };
        assert!(
            check(wrong)
                .unwrap_err()
                .contains("takes no \"latency_ms\"")
        );
        let wrong = Fault {
            percent: Some(5),
            ..Fault::new(FaultKind::Crash, "server", 0, 1)
        };
        assert!(check(wrong).unwrap_err().contains("takes no \"percent\""));
    }

    #[test]
    fn an_unknown_field_or_sabotage_is_refused_by_name() {
        let err = serde_json::from_str::<FaultPlan>(
            r#"{"faults":[{"kind":"crash","target":"server","at_ms":0,"for_ms":1,"host":"x"}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `host`"), "{err}");
        let plan = FaultPlan {
            faults: vec![],
            sabotage: Some("nope".into()),
            sites: Vec::new(),
            disk: None,
        };
        let declared = [Sabotage {
            name: "leak",
            about: "x",
        }];
        assert_eq!(
            plan.validate(&targets(), &declared)
                .unwrap_err()
                .to_string(),
            "no sabotage \"nope\"; the scenario declares: leak"
        );
    }

    #[test]
    fn swarm_plans_leave_kinds_out_and_keep_earlier_draws() {
        let swarm = Swarm::over(&targets());
        let sizes: Vec<usize> = (0..40).map(|s| swarm.plan(s).faults.len()).collect();
        assert!(
            sizes.iter().any(|&n| n < 4) && sizes.iter().any(|&n| n >= 6),
            "{sizes:?}"
        );
        let longer = swarm.clone().with_entry(FaultKind::Crash, "server");
        for seed in 0..40 {
            let (a, b) = (swarm.plan(seed), longer.plan(seed));
            assert_eq!(a.faults[..], b.faults[..a.faults.len()], "seed {seed}");
        }
    }

    /// The draws the swarm made before it had settings, written out
    /// plainly: per entry, a draw in 0..=2 leaves it out on 0, then its
    /// start and its length.
    fn classic(menu: &[(FaultKind, String)], seed: u64) -> Vec<Fault> {
        let mut rng = SplitMix64::derive(seed, 0xfa17);
        let mut faults = Vec::new();
        for (kind, target) in menu {
            if rng.between(0, 2) == 0 {
                continue;
            }
            let at_ms = rng.between(300, 2_500);
            let for_ms = rng.between(200, 2_500);
            faults.push(Fault::new(*kind, target.clone(), at_ms, for_ms));
        }
        faults
    }

    /// 3 links and 2 hosts: a menu of 20.
    fn three_links_two_hosts() -> Targets {
        Targets::new()
            .link("a", "b")
            .link("b", "c")
            .link("a", "c")
            .host("b", "x")
            .host("c", "y")
    }

    #[test]
    fn default_settings_draw_exactly_the_classic_plans() {
        let targets = three_links_two_hosts();
        let swarm = Swarm::over(&targets);
        assert_eq!(swarm.menu().len(), 20);
        for seed in 0..2_000 {
            assert_eq!(
                swarm.plan(seed).faults,
                classic(swarm.menu(), seed),
                "seed {seed}"
            );
        }
        // Equal weights other than 1, and 4/6 written for 2/3: the same.
        let same = Swarm::over(&targets)
            .keep(Chance::new(4, 6).unwrap())
            .weight(FaultKind::Partition, 5)
            .weight(FaultKind::Hold, 5)
            .weight(FaultKind::Loss, 5)
            .weight(FaultKind::PartitionOneway, 5)
            .weight(FaultKind::Latency, 5)
            .weight(FaultKind::Crash, 5);
        for seed in 0..200 {
            assert_eq!(same.plan(seed), swarm.plan(seed), "seed {seed}");
        }
    }

    #[test]
    fn density_settings_thin_the_plans_as_they_say() {
        let targets = three_links_two_hosts();
        let seeds = 0..2_000u64;
        let count = |s: &Swarm, kind: Option<FaultKind>| -> usize {
            seeds
                .clone()
                .map(|seed| {
                    let p = s.plan(seed);
                    kind.map_or(p.faults.len(), |k| p.of(k).count())
                })
                .sum()
        };
        // 20 entries: 2/3 keeps about 13.3 a plan, 1/4 about 5.
        let base = Swarm::over(&targets);
        let quarter = base.clone().keep(Chance::percent(25).unwrap());
        let n = count(&quarter, None) as f64 / 2_000.0;
        assert!((4.7..5.3).contains(&n), "{n} faults a plan");
        assert_eq!(count(&base.clone().keep(Chance::ALWAYS), None), 40_000);
        assert_eq!(count(&base.clone().keep(Chance::NEVER), None), 0);
        // A cap: never more, and the plan is a subset of the uncapped one.
        let capped = base.clone().max_faults(3);
        assert_eq!(
            (capped.max_faults_per_plan(), base.max_faults_per_plan()),
            (Some(3), None)
        );
        for seed in 0..300 {
            let (c, full) = (capped.plan(seed), base.plan(seed));
            assert_eq!(c.faults.len(), full.faults.len().min(3));
            assert!(c.faults.iter().all(|f| full.faults.contains(f)));
        }
        assert_eq!(count(&base.clone().max_faults(0), None), 0);
        // Weights: 0 leaves a kind out; a kind weighing half the heaviest
        // is kept half as often.
        let no_loss = base.clone().weight(FaultKind::Loss, 0);
        assert_eq!(count(&no_loss, Some(FaultKind::Loss)), 0);
        assert!(count(&no_loss, Some(FaultKind::Hold)) > 0);
        let light = base
            .clone()
            .weight(FaultKind::Crash, 1)
            .weight(FaultKind::Hold, 2);
        let (crashes, holds) = (
            count(&light, Some(FaultKind::Crash)) as f64 / 4_000.0,
            count(&light, Some(FaultKind::Hold)) as f64 / 6_000.0,
        );
        // Per entry: holds 2/3 (the heaviest), crashes 1/3.
        assert!((0.30..0.37).contains(&crashes), "{crashes}");
        assert!((0.63..0.70).contains(&holds), "{holds}");
        let none = base
            .clone()
            .weight(FaultKind::Partition, 0)
            .weight(FaultKind::Hold, 0)
            .weight(FaultKind::Loss, 0)
            .weight(FaultKind::PartitionOneway, 0)
            .weight(FaultKind::Latency, 0)
            .weight(FaultKind::Crash, 0);
        assert_eq!(count(&none, None), 0);
        // Kind subsets: seeds see only some kinds (never none of the menu's
        // when the full plan had faults), and only faults they would have
        // had anyway.
        let subsets = base.clone().kind_subsets(true);
        let mut kinds_seen = std::collections::BTreeMap::new();
        for seed in 0..640 {
            let (p, full) = (subsets.plan(seed), base.plan(seed));
            assert!(p.faults.iter().all(|f| full.faults.contains(f)));
            let kinds: std::collections::BTreeSet<FaultKind> =
                p.faults.iter().map(|f| f.kind).collect();
            *kinds_seen.entry(kinds.len()).or_insert(0) += 1;
        }
        // All six kinds on in about 1 seed of 64 (each with chance 1/2);
        // one kind alone in about 6 of 64 plus the seeds that drew none.
        assert!(
            kinds_seen.get(&6).copied().unwrap_or(0) < 25,
            "{kinds_seen:?}"
        );
        assert!(
            kinds_seen.get(&1).copied().unwrap_or(0) > 30,
            "{kinds_seen:?}"
        );
        // Most seeds somewhere between.
        assert!(
            (2..=5)
                .map(|k| kinds_seen.get(&k).copied().unwrap_or(0))
                .sum::<u32>()
                > 300,
            "{kinds_seen:?}"
        );
        assert!(subsets.has_kind_subsets() && !base.has_kind_subsets());
        // A menu of one kind: that kind is always on (drawn, or else the
        // one kind left), so subsets change no plan.
        let one_kind = Swarm::new(
            ["a<->b", "b<->c", "a<->c"]
                .map(|t| (FaultKind::Partition, t.to_string()))
                .to_vec(),
        );
        let with_subsets = one_kind.clone().kind_subsets(true);
        for seed in 0..200 {
            assert_eq!(with_subsets.plan(seed), one_kind.plan(seed), "seed {seed}");
        }
        // Windows given the wrong way round are swapped.
        let w = base.clone().starts_within(900, 100).lasts_within(50, 10);
        assert_eq!((w.start_ms(), w.length_ms()), ((100, 900), (10, 50)));
    }

    #[test]
    fn chances_are_exact_fractions_and_bad_ones_are_named() {
        assert_eq!(Chance::new(6, 9), Chance::new(2, 3));
        let c = Chance::new(6, 9).unwrap();
        assert_eq!((c.num(), c.den(), c.to_string()), (2, 3, "2/3".to_string()));
        assert_eq!(Chance::percent(100), Ok(Chance::ALWAYS));
        assert_eq!(Chance::new(0, 7), Ok(Chance::NEVER));
        assert_eq!(
            Chance::new(1, 0),
            Err(ChanceError::OutOfRange { num: 1, den: 0 })
        );
        assert!(Chance::percent(101).is_err());
        for bad in ["", "1", "a/b", "1/2/3", "-1/2", "2/1", "150%", "%"] {
            assert!(bad.parse::<Chance>().is_err(), "{bad}");
        }
        assert_eq!(" 1 / 4 ".parse::<Chance>(), Chance::new(1, 4));
        assert_eq!(
            "0.5".parse::<Chance>().unwrap_err().to_string(),
            "\"0.5\" is not a chance: write N/M (2/3) or a percent (25%)"
        );
    }

    #[test]
    fn touches_counts_the_aftermath_and_ignores_empty_faults() {
        let ms = Duration::from_millis;
        let plan = FaultPlan {
            faults: vec![
                Fault::new(FaultKind::Crash, "server", 100, 100),
                Fault::new(FaultKind::Hold, "client<->server", 50, 0),
            ],
            sabotage: None,
            sites: Vec::new(),
            disk: None,
        };
        let crash = |f: &Fault| f.kind == FaultKind::Crash;
        assert!(plan.touches(crash, ms(200), ms(300), ms(0)));
        assert!(!plan.touches(crash, ms(201), ms(300), ms(0)));
        assert!(plan.touches(crash, ms(250), ms(300), ms(50)));
        assert!(!plan.touches(crash, ms(0), ms(99), ms(0)));
        assert!(!plan.touches(|f| f.kind == FaultKind::Hold, ms(0), ms(100), ms(0)));
        assert!(plan.faults[0].hits("server") && !plan.faults[0].hits("client"));
        assert!(plan.faults[1].on_link("server", "client"));
        assert!(plan.faults[1].on_link("client", "server"));
        assert!(
            !plan.faults[1].on_link("client", "db") && !plan.faults[0].on_link("client", "server")
        );
        assert!(plan.faults[1].hits("client") && plan.faults[1].hits("server"));
        assert!(!plan.faults[1].hits("db"));
        let one_way = Fault::new(FaultKind::PartitionOneway, "server->client", 0, 1);
        assert!(one_way.hits("client") && one_way.hits("server") && !one_way.hits("db"));
        assert!(one_way.on_link("client", "server") && !one_way.on_link("server", "db"));
        assert_eq!(plan.last_end(), ms(200));
        // A 0 ms fault later still is no fault.
        let mut later = plan.clone();
        later
            .faults
            .push(Fault::new(FaultKind::Crash, "server", 900, 0));
        assert_eq!(later.last_end(), ms(200));
        assert_eq!(later.faulted_ms(), 100);
    }

    #[test]
    fn kinds_parse_by_their_plan_names() {
        for kind in FaultKind::ALL {
            assert_eq!(kind.name().parse::<FaultKind>(), Ok(kind));
            assert_eq!(format!(" {} ", kind.name()).parse::<FaultKind>(), Ok(kind));
        }
        assert_eq!(
            "flood".parse::<FaultKind>(),
            Err(
                "no fault kind \"flood\"; the kinds: partition, hold, crash, loss, \
                 partition_oneway, latency"
                    .to_string()
            )
        );
    }
}
