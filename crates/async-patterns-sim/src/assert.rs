//! Points a scenario must reach: its catalogue, and what one run reached.
//!
//! Service and scenario code mark points with the macros of
//! [`async_patterns_assert`] (re-exported here as [`point`]): *always*,
//! *sometimes*, *reachable*, *unreachable*. A scenario declares the points
//! it cares about in [`Scenario::points`](crate::Scenario::points) before
//! anything runs, so a point no seed reached is visible: a sweep reports
//! how many seeds reached each one, and fails when a point that must be
//! reached never was (see [`coverage`](crate::coverage)).
//!
//! | guarantee | check |
//! |---|---|
//! | a run sees exactly the declared points its thread reaches, and nothing after it ends | `tests/points.rs` `a_run_counts_declared_points_only` |
//! | an `always` that is false once, or an `unreachable` that runs, is a violation named for the point, at the instant it happened | `tests/points.rs` `a_false_always_and_a_reached_unreachable_are_violations` |
//! | a catalogue with a name twice, or an empty name, is refused before any run | `tests/points.rs` `a_catalogue_with_a_name_twice_is_refused` |
//! | a macro of another kind than its point's declaration is not counted, and is a `declared points` violation | `tests/points.rs` `a_false_always_and_a_reached_unreachable_are_violations` |
//!
//! The patterns of `async-patterns` report points of their own
//! ([`async_patterns::points`]): list one in a catalogue to count it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub use async_patterns_assert as point;
pub use async_patterns_assert::Kind;
use serde::{Deserialize, Serialize};

use crate::trace::{Trace, Violation};

/// One declared point: its name (as the macro that marks it gives it), what
/// it asserts, and what reaching it means, for the reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    /// The name the macro gives (`point::reachable!("store full")`).
    pub name: String,
    /// What it asserts.
    #[serde(with = "kind_name")]
    pub kind: Kind,
    /// What it means, in a few words.
    pub about: String,
}

impl Point {
    fn new(kind: Kind, name: &str, about: &str) -> Self {
        Point {
            name: name.to_string(),
            kind,
            about: about.to_string(),
        }
    }

    /// An [`always!`](point::always) point: holds every time, and is
    /// evaluated in some seed.
    pub fn always(name: &str, about: &str) -> Self {
        Point::new(Kind::Always, name, about)
    }

    /// A [`sometimes!`](point::sometimes) point: true in some seed.
    pub fn sometimes(name: &str, about: &str) -> Self {
        Point::new(Kind::Sometimes, name, about)
    }

    /// A [`reachable!`](point::reachable) point (or one of the core's,
    /// [`async_patterns::points`]): run in some seed.
    pub fn reachable(name: &str, about: &str) -> Self {
        Point::new(Kind::Reachable, name, about)
    }

    /// An [`unreachable!`](point::unreachable) point: run in no seed.
    pub fn unreachable(name: &str, about: &str) -> Self {
        Point::new(Kind::Unreachable, name, about)
    }

    /// Whether a sweep must see it reached (all but `unreachable`).
    pub fn must_reach(&self) -> bool {
        self.kind != Kind::Unreachable
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?} ({})", self.kind, self.name, self.about)
    }
}

mod kind_name {
    use super::Kind;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(kind: &Kind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
        let name = String::deserialize(d)?;
        [
            Kind::Always,
            Kind::Sometimes,
            Kind::Reachable,
            Kind::Unreachable,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
        .ok_or_else(|| {
            D::Error::custom(format!(
                "unknown point kind {name:?} (always, sometimes, reachable, unreachable)"
            ))
        })
    }
}

/// Why a catalogue cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogueError {
    /// Two points of one name.
    Twice(String),
    /// A point without a name.
    Unnamed,
}

impl fmt::Display for CatalogueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogueError::Twice(name) => write!(
                f,
                "the point {name:?} is declared twice (a point's name is its identity)"
            ),
            CatalogueError::Unnamed => f.write_str("a point is declared without a name"),
        }
    }
}

impl std::error::Error for CatalogueError {}

/// Checks that `points` is a catalogue: each name once, none empty.
pub fn check_catalogue(points: &[Point]) -> Result<(), CatalogueError> {
    let mut seen = std::collections::BTreeSet::new();
    for p in points {
        if p.name.is_empty() {
            return Err(CatalogueError::Unnamed);
        }
        if !seen.insert(p.name.as_str()) {
            return Err(CatalogueError::Twice(p.name.clone()));
        }
    }
    Ok(())
}

/// What one declared point saw in a run.
#[derive(Debug, Clone, Default)]
struct Seen {
    /// Times it was reached (an `always` / `sometimes` evaluated).
    reached: u64,
    /// Times its condition held.
    held: u64,
    /// The first time an `always` was false or an `unreachable` ran: when
    /// (in virtual time, if inside a host), and its detail.
    first_bad: Option<(Option<Duration>, String)>,
    /// The kind of the first macro that named it with another kind.
    other_kind: Option<Kind>,
}

/// The listener one run installs on its thread: counts the declared
/// points reached, ignores the rest.
pub(crate) struct RunPoints {
    declared: Vec<Point>,
    /// The run's trace: a point's first failure is logged there too.
    trace: Trace,
    index: BTreeMap<String, usize>,
    seen: RefCell<Vec<Seen>>,
}

impl RunPoints {
    pub(crate) fn new(declared: Vec<Point>, trace: Trace) -> Self {
        let index = declared
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.clone(), i))
            .collect();
        RunPoints {
            seen: RefCell::new(vec![Seen::default(); declared.len()]),
            declared,
            trace,
            index,
        }
    }

    /// The declared points this run reached, in catalogue order: an
    /// `always` or `sometimes` evaluated (a `sometimes` only if it held),
    /// a `reachable` or `unreachable` run.
    pub(crate) fn reached(&self) -> Vec<String> {
        let seen = self.seen.borrow();
        self.declared
            .iter()
            .zip(seen.iter())
            .filter(|(p, s)| match p.kind {
                Kind::Sometimes => s.held > 0,
                _ => s.reached > 0,
            })
            .map(|(p, _)| p.name.clone())
            .collect()
    }

    /// A violation for each `always` that was false and each
    /// `unreachable` that ran, named for the point; and one for each point
    /// a macro of another kind named (a scenario's bug, which would
    /// otherwise show only as a point never reached).
    pub(crate) fn violations(&self) -> Vec<Violation> {
        let seen = self.seen.borrow();
        let mismatched = self.declared.iter().zip(seen.iter()).filter_map(|(p, s)| {
            let kind = s.other_kind?;
            Some(Violation::new(
                "declared points",
                format!(
                    "{:?} is declared {} but marked with {kind}!: its macro must be the kind \
                     it is declared with (that mark was not counted)",
                    p.name, p.kind
                ),
            ))
        });
        let mut out: Vec<Violation> = mismatched.collect();
        out.extend(self.declared.iter().zip(seen.iter()).filter_map(|(p, s)| {
            let (at, detail) = s.first_bad.as_ref()?;
            let what = match p.kind {
                Kind::Always => format!(
                    "false {} of {} times it was evaluated",
                    s.reached - s.held,
                    s.reached
                ),
                _ if s.reached == 1 => "reached once".to_string(),
                _ => format!("reached {} times", s.reached),
            };
            let detail = if detail.is_empty() {
                format!("{} ({what})", p.about)
            } else {
                format!("{}: {detail} ({what})", p.about)
            };
            let v = Violation::new(p.name.clone(), detail);
            Some(match at {
                Some(at) => v.at(*at),
                None => v,
            })
        }));
        out
    }
}

impl point::Listener for RunPoints {
    fn hit(&self, kind: Kind, name: &'static str, holds: bool, detail: fmt::Arguments<'_>) {
        let Some(&i) = self.index.get(name) else {
            return;
        };
        let mut seen = self.seen.borrow_mut();
        let s = &mut seen[i];
        // A point is declared with one kind: a macro of another kind with
        // its name does not count, and the run says so.
        if self.declared[i].kind != kind {
            s.other_kind.get_or_insert(kind);
            return;
        }
        s.reached += 1;
        s.held += u64::from(holds);
        let bad = match kind {
            Kind::Always => !holds,
            Kind::Unreachable => true,
            _ => false,
        };
        if bad && s.first_bad.is_none() {
            // The instant, inside a host; none in the check, after the run.
            let at = turmoil::sim_elapsed();
            let detail = detail.to_string();
            if let Some(at) = at {
                let what = if kind == Kind::Always {
                    "false"
                } else {
                    "reached"
                };
                let sep = if detail.is_empty() { "" } else { ": " };
                self.trace
                    .log(at, format!("point: {kind} {name:?} {what}{sep}{detail}"));
            }
            s.first_bad = Some((at, detail));
        }
    }
}
