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
    /// The faults, in any order.
    pub faults: Vec<Fault>,
    /// The deliberately broken code the plan was found under, if any (one
    /// of the scenario's declared sabotages): `shrink --sabotage` records
    /// it and `replay --plan` applies it. A plan with one is a
    /// demonstration, never a regression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sabotage: Option<String>,
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

    /// When the last fault ends (zero without faults).
    pub fn last_end(&self) -> Duration {
        self.faults.iter().map(Fault::end).max().unwrap_or_default()
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
    ) -> Result<Vec<Resolved>, PlanError> {
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
        if let Some(name) = &self.sabotage
            && !sabotages.iter().any(|s| s.name == *name)
        {
            return Err(PlanError::UnknownSabotage {
                name: name.clone(),
                declared: sabotages.iter().map(|s| s.name.to_string()).collect(),
            });
        }
        Ok(resolved)
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

/// How plans are drawn from a seed, swarm style: each entry of the menu (a
/// kind on a target) is left out with chance 1/3, so seeds also explore
/// runs with only some faults (bugs that all-faults-at-once hides); each
/// fault that stays starts in `start_ms` and lasts `length_ms` (both
/// inclusive). Entries are drawn in menu order, so an entry added at the end
/// leaves every seed's earlier faults as they were.
///
/// ```
/// use async_patterns_sim::{FaultKind, Swarm, Targets};
///
/// let targets = Targets::new().link("client", "server").host("server", "nothing");
/// let swarm = Swarm::over(&targets);
/// assert_eq!(swarm.menu.len(), 7); // 6 link faults (two one-way), 1 crash
/// let plan = swarm.plan(42);
/// assert_eq!(plan, swarm.plan(42)); // a pure function of the seed
/// assert!(plan.validate(&targets, &[]).is_ok());
/// assert!(plan.faults.iter().all(|f| (300..=2_500).contains(&f.at_ms)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swarm {
    /// The faults a plan may hold: a kind and its target, in draw order.
    pub menu: Vec<(FaultKind, String)>,
    /// When a fault may start (ms, inclusive).
    pub start_ms: (u64, u64),
    /// How long it may last (ms, inclusive).
    pub length_ms: (u64, u64),
}

impl Swarm {
    /// Every kind on every declared target: per link (in declaration
    /// order) a partition, a hold, loss, both one-way partitions and a
    /// latency fault; then a crash per host. Faults start within 0.3-2.5 s
    /// and last 0.2-2.5 s.
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
        Swarm::new(menu)
    }

    /// The faults of `menu`, with the default windows (start 0.3-2.5 s,
    /// length 0.2-2.5 s).
    pub fn new(menu: Vec<(FaultKind, String)>) -> Self {
        Swarm {
            menu,
            start_ms: (300, 2_500),
            length_ms: (200, 2_500),
        }
    }

    /// The plan `seed` gets when none is given.
    pub fn plan(&self, seed: u64) -> FaultPlan {
        let mut rng = SplitMix64::derive(seed, 0xfa17);
        let mut faults = Vec::new();
        for (kind, target) in &self.menu {
            if rng.between(0, 2) == 0 {
                continue;
            }
            let at_ms = rng.between(self.start_ms.0, self.start_ms.1);
            let for_ms = rng.between(self.length_ms.0, self.length_ms.1);
            faults.push(Fault::new(*kind, target.clone(), at_ms, for_ms));
        }
        FaultPlan {
            faults,
            sabotage: None,
        }
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
        let mut longer = swarm.clone();
        longer.menu.push((FaultKind::Crash, "server".into()));
        for seed in 0..40 {
            let (a, b) = (swarm.plan(seed), longer.plan(seed));
            assert_eq!(a.faults[..], b.faults[..a.faults.len()], "seed {seed}");
        }
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
    }
}
