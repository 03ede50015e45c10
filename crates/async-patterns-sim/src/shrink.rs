//! From a failing seed to the smallest plan that still fails *the same
//! way*: the shrinker, the proptest route, and the regressions folder.
//!
//! # What a shrink keeps
//!
//! A shrink starts from a run that breaks some invariants and keeps, at
//! every step, the failure it started from ([`Keep`]):
//!
//! * by default every invariant the original run broke: a step is taken
//!   only if the smaller plan still breaks each of them (breaking more is
//!   fine). A seed that lost an acknowledged write never shrinks to a plan
//!   that only breaks a weaker invariant;
//! * with [`Keep::Invariant`] (`shrink --invariant NAME`) one named
//!   invariant, which the original run must break.
//!
//! For the catch-all invariants ([`CATCH_ALL`]: a panic, the simulation's
//! own failure) the name says little, so the first line of the detail must
//! match too: a plan that panics elsewhere is a different failure.
//!
//! # How, and why it ends
//!
//! 1. **Drop**: each fault, then each fault-site entry, in turn is removed
//!    if the plan still fails without it; passes repeat until one removes
//!    nothing. A fault of 0 ms
//!    is no fault, so the first pass drops it (unless a check reads the
//!    plan and needs it there), and trimming never makes one: lengths go
//!    down to 1 ms, not 0.
//! 2. **Trim**: each fault's length is bisected with its start fixed (the
//!    shortest that still fails), then its start with its end fixed (the
//!    latest): a partition kept at 2,000 ms where 400 ms fails comes out
//!    near 400 ms, not at the 500 ms halving would stop at. Bisection
//!    assumes that a fault that fails fails longer too, and a run need not
//!    (a breaker trips on the third failure in a row, wherever the window
//!    falls), so each fault then also tries half its length, a quarter, ...
//!    and half its start instant (its length kept). A site entry's length
//!    (its delay, or the fault it starts) is bisected the same way, and
//!    its end (`until_ms`, the earliest that still fails); its chance is
//!    kept (a lower one fires at other reaches, a different run).
//!    Each fault of the disk profile is turned off in turn.
//! 3. If trimming changed anything, back to 1.
//!
//! Every step taken makes the plan smaller in one stated order: fewer
//! elements (faults and site entries) first, then fewer faulted milliseconds (the sum of the lengths),
//! then earlier starts and ends (the sum of the faults' start instants and
//! the site entries' `until_ms`). All three are
//! natural numbers, so the shrink always ends. It ends after a drop pass
//! that removed nothing, so the result is **1-minimal**: removing any one
//! of its faults, wherever it stands, stops the kept failure (on this
//! seed). Where failing is not monotone in a fault's length, the result is
//! a failing plan, not always the shortest one.
//!
//! A regression is a plan file named `SCENARIO-seed-SEED.json` (the format
//! `replay --plan` reads) in a folder that `cargo test` replays with
//! [`testing::replay_regressions`](crate::testing::replay_regressions).
//! Nothing here replaces an existing file: [`save_new`] refuses.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use crate::fault::{Fault, FaultKind, FaultPlan, PlanError, Swarm};
use crate::moves::Move;
use crate::scenario::AnyScenario;
use crate::site::SiteAction;
use crate::trace::Violation;

/// The invariants whose name alone does not say what failed: a panic
/// anywhere (`no panic`) and the simulation's own failure (`simulation`:
/// a host's error, or not finishing in time). A shrink keeps them only
/// with the same first line of detail.
pub const CATCH_ALL: [&str; 2] = ["no panic", "simulation"];

/// Which failure a shrink must keep at every step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Keep {
    /// Every invariant the original run broke (the default).
    #[default]
    Original,
    /// This one invariant, by name; the original run must break it.
    Invariant(String),
}

/// A failure as the shrinker compares it: the invariant's name, and for
/// the [`CATCH_ALL`] ones the first line of the detail.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    invariant: String,
    first_line: Option<String>,
}

impl Key {
    fn of(v: &Violation) -> Self {
        let first_line = CATCH_ALL
            .contains(&v.invariant.as_str())
            .then(|| v.detail.lines().next().unwrap_or_default().to_string());
        Key {
            invariant: v.invariant.clone(),
            first_line,
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.first_line {
            None => f.write_str(&self.invariant),
            Some(line) => write!(f, "{} ({line})", self.invariant),
        }
    }
}

/// A shrunk plan, and what it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shrunk {
    /// The smallest failing plan found (1-minimal).
    pub plan: FaultPlan,
    /// Its run's violations (the kept ones, and any others it breaks).
    pub violations: Vec<Violation>,
    /// What every step kept failing, as `invariant` or, for a catch-all,
    /// `invariant (first line of its detail)`.
    pub kept: Vec<String>,
    /// The runs it took, the original's included.
    pub runs: usize,
}

/// Why a plan was not shrunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShrinkError {
    /// The plan does not fit the scenario.
    Plan(PlanError),
    /// The seed breaks no invariant under the plan: nothing to shrink.
    Passes,
    /// [`Keep::Invariant`] names an invariant the run does not break.
    NotBroken {
        /// The name given.
        invariant: String,
        /// The invariants the run does break.
        broken: Vec<String>,
    },
}

impl fmt::Display for ShrinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShrinkError::Plan(e) => e.fmt(f),
            ShrinkError::Passes => f.write_str("the seed breaks no invariant under the plan"),
            ShrinkError::NotBroken { invariant, broken } => write!(
                f,
                "the seed does not break {invariant:?}; it breaks: {}",
                broken.join(", ")
            ),
        }
    }
}

impl std::error::Error for ShrinkError {}

/// Shrinks a failing `plan` for `seed` (the seed, and the plan's sabotage,
/// stay fixed), keeping every invariant the original run broke: see the
/// [module docs](self). `None` if the plan does not fail, or does not fit
/// the scenario; [`shrink_keeping`] says which, and can keep one named
/// invariant instead.
pub fn shrink(
    scenario: &dyn AnyScenario,
    seed: u64,
    plan: &FaultPlan,
) -> Option<(FaultPlan, Vec<Violation>)> {
    shrink_keeping(scenario, seed, plan, &Keep::Original)
        .ok()
        .map(|s| (s.plan, s.violations))
}

/// Shrinks a failing `plan` for `seed`, keeping the failure `keep` names at
/// every step (see the [module docs](self) for the order and the
/// guarantees).
pub fn shrink_keeping(
    scenario: &dyn AnyScenario,
    seed: u64,
    plan: &FaultPlan,
    keep: &Keep,
) -> Result<Shrunk, ShrinkError> {
    let mut runs = 0;
    let mut run = |p: &FaultPlan| {
        runs += 1;
        scenario.run_plan(seed, p).map(|out| out.violations)
    };
    let first = run(plan).map_err(ShrinkError::Plan)?;
    if first.is_empty() {
        return Err(ShrinkError::Passes);
    }
    let required: BTreeSet<Key> = match keep {
        Keep::Original => first.iter().map(Key::of).collect(),
        Keep::Invariant(name) => {
            let named: BTreeSet<Key> = first
                .iter()
                .filter(|v| v.invariant == *name)
                .map(Key::of)
                .collect();
            if named.is_empty() {
                let broken: BTreeSet<&str> = first.iter().map(|v| v.invariant.as_str()).collect();
                return Err(ShrinkError::NotBroken {
                    invariant: name.clone(),
                    broken: broken.into_iter().map(str::to_string).collect(),
                });
            }
            named
        }
    };
    // A candidate is kept if its run breaks every required failure.
    let mut fails = |p: &FaultPlan| -> Option<Vec<Violation>> {
        let v = run(p).ok()?;
        let seen: BTreeSet<Key> = v.iter().map(Key::of).collect();
        required.is_subset(&seen).then_some(v)
    };
    let mut best = plan.clone();
    let mut violations = first;
    loop {
        // 1. Drop, pass after pass, until a pass drops nothing (a 0 ms
        // fault, no fault at all, goes in the first).
        loop {
            let mut dropped = false;
            let mut i = 0;
            while i < best.elements() {
                let fewer = Move::Drop(i).apply(&best);
                match fails(&fewer) {
                    Some(v) => {
                        (best, violations, dropped) = (fewer, v, true);
                    }
                    None => i += 1,
                }
            }
            if !dropped {
                break;
            }
        }
        // 2. Trim each fault: its length (start fixed), then its start (end
        // fixed), then the halving ladder and an earlier start.
        let mut trimmed = false;
        for i in 0..best.faults.len() {
            // `best` with fault i moved to `at_ms` for `for_ms`.
            let with = |best: &FaultPlan, at_ms: u64, for_ms: u64| {
                Move::Place(i, at_ms, for_ms).apply(best)
            };
            let f = best.faults[i].clone();
            if f.for_ms == 0 {
                continue;
            }
            // The shortest failing length in 1..=for_ms.
            if let Some((len, v)) =
                bisect(1, f.for_ms, |len| fails(&with(&best, f.at_ms, len)), true)
            {
                (best, violations, trimmed) = (with(&best, f.at_ms, len), v, true);
            }
            let f = best.faults[i].clone();
            let end = f.at_ms.saturating_add(f.for_ms);
            // The latest failing start in at_ms..end (the end stays).
            if let Some((at, v)) = bisect(
                f.at_ms,
                end - 1,
                |at| fails(&with(&best, at, end - at)),
                false,
            ) {
                (best, violations, trimmed) = (with(&best, at, end - at), v, true);
            }
            // Bisection assumes that what fails longer fails shorter, and a
            // run need not: a ladder of lengths it may have skipped (1, 2,
            // 4, ... ms, the shortest failing one kept), then of earlier
            // starts (0, then ..., a quarter, half the instant, the length
            // kept), which may let the next round cut more.
            let f = best.faults[i].clone();
            let shorter = ladder(f.for_ms)
                .into_iter()
                .find_map(|len| fails(&with(&best, f.at_ms, len)).map(|v| (len, v)));
            if let Some((len, v)) = shorter {
                (best, violations, trimmed) = (with(&best, f.at_ms, len), v, true);
            }
            let f = best.faults[i].clone();
            let earlier = std::iter::once(0)
                .chain(ladder(f.at_ms))
                .filter(|at| *at < f.at_ms)
                .find_map(|at| fails(&with(&best, at, f.for_ms)).map(|v| (at, v)));
            if let Some((at, v)) = earlier {
                (best, violations, trimmed) = (with(&best, at, f.for_ms), v, true);
            }
        }
        // The disk profile's faults, one by one.
        for k in 0..4 {
            let p = Move::DiskOff(k).apply(&best);
            if p != best
                && let Some(v) = fails(&p)
            {
                (best, violations, trimmed) = (p, v, true);
            }
        }
        // Each site entry's length (a delay, or the fault it starts): the
        // shortest that still fails.
        for i in 0..best.sites.len() {
            let len = best.sites[i].length_ms();
            if len <= 1 || best.sites[i].action == SiteAction::Fail {
                continue;
            }
            let with = |best: &FaultPlan, ms: u64| Move::SiteLength(i, ms).apply(best);
            if let Some((ms, v)) = bisect(1, len, |ms| fails(&with(&best, ms)), true) {
                (best, violations, trimmed) = (with(&best, ms), v, true);
            }
        }
        // Each site entry's end (`until_ms`): the earliest that still fails.
        for i in 0..best.sites.len() {
            let Some(until) = best.sites[i].until_ms else {
                continue;
            };
            let with = |best: &FaultPlan, ms: u64| Move::SiteUntil(i, ms).apply(best);
            if let Some((ms, v)) = bisect(0, until, |ms| fails(&with(&best, ms)), true) {
                (best, violations, trimmed) = (with(&best, ms), v, true);
            }
        }
        if !trimmed {
            break;
        }
    }
    Ok(Shrunk {
        plan: best,
        violations,
        kept: required.iter().map(Key::to_string).collect(),
        runs,
    })
}

/// `x` halved again and again (x/2, x/4, ... 1), ascending, without
/// repeats: the values a halving shrinker would try.
fn ladder(x: u64) -> Vec<u64> {
    let mut steps: Vec<u64> = std::iter::successors(Some(x / 2), |v| (*v > 1).then(|| v / 2))
        .filter(|v| *v > 0)
        .collect();
    steps.reverse();
    steps.dedup();
    steps
}

/// Binary search over `lo..=hi` for the smallest (`lowest`) or largest
/// value at which `fails` holds, knowing it holds at `hi` (when `lowest`)
/// or at `lo` (when not): the value found and what `fails` returned
/// there, or `None` if it holds at no value other than the known one.
fn bisect<V>(
    lo: u64,
    hi: u64,
    mut fails: impl FnMut(u64) -> Option<V>,
    lowest: bool,
) -> Option<(u64, V)> {
    let (mut lo, mut hi) = (lo, hi);
    let mut found = None;
    if lowest {
        // Invariant: fails(hi); find the least.
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match fails(mid) {
                Some(v) => {
                    found = Some((mid, v));
                    hi = mid;
                }
                None => lo = mid + 1,
            }
        }
    } else {
        // Invariant: fails(lo); find the greatest.
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            match fails(mid) {
                Some(v) => {
                    found = Some((mid, v));
                    lo = mid;
                }
                None => hi = mid - 1,
            }
        }
    }
    found
}

/// The proptest route: plans of up to `max` faults drawn from the swarm's
/// menu (any of its kinds and targets, overlapping or not), instants from
/// `at_ms` and lengths from `for_ms`. Proptest shrinks a failing plan by
/// dropping faults and shrinking the numbers.
///
/// ```
/// use async_patterns_sim::{Swarm, Targets, shrink::plans};
/// use proptest::strategy::{Strategy, ValueTree};
///
/// let targets = Targets::new().link("a", "b");
/// let strategy = plans(&Swarm::over(&targets), 0u64..5_000, 0u64..3_000, 4);
/// let mut runner = proptest::test_runner::TestRunner::deterministic();
/// let plan = strategy.new_tree(&mut runner).unwrap().current();
/// assert!(plan.faults.len() <= 4 && plan.validate(&targets, &[]).is_ok());
/// ```
pub fn plans<A, F>(
    swarm: &Swarm,
    at_ms: A,
    for_ms: F,
    max: usize,
) -> impl Strategy<Value = FaultPlan> + use<A, F>
where
    A: Strategy<Value = u64>,
    F: Strategy<Value = u64>,
{
    let menu: Vec<(FaultKind, String)> = swarm.menu().to_vec();
    let max = if menu.is_empty() { 0 } else { max };
    let pick = proptest::sample::select(if menu.is_empty() {
        vec![(FaultKind::Partition, String::new())]
    } else {
        menu
    });
    let fault = (pick, at_ms, for_ms)
        .prop_map(|((kind, target), at_ms, for_ms)| Fault::new(kind, target, at_ms, for_ms));
    proptest::collection::vec(fault, 0..=max).prop_map(|faults| FaultPlan {
        faults,
        sabotage: None,
        sites: Vec::new(),
        disk: None,
    })
}

/// The file a regression of `scenario`'s `seed` is kept in, under `dir`.
pub fn regression_file(dir: &Path, scenario: &str, seed: u64) -> std::path::PathBuf {
    dir.join(format!("{scenario}-seed-{seed}.json"))
}

/// Saves `plan` for `scenario`'s `seed` in the temporary folder
/// (`async-patterns-sim/SCENARIO-seed-SEED.json`), for a replay line: the
/// file the same plan was saved in before, else a new one (`-1`, `-2`...
/// after the name), never over a different plan (a guided search's runs
/// share seeds, and two searches may find the same one).
pub(crate) fn save_temporary(
    scenario: &str,
    seed: u64,
    plan: &FaultPlan,
) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join("async-patterns-sim");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let json = serde_json::to_string(plan).map_err(|e| e.to_string())? + "\n";
    let mut file = regression_file(&dir, scenario, seed);
    for k in 1.. {
        let same = std::fs::read_to_string(&file).is_ok_and(|text| text == json);
        if !file.exists() || same {
            break;
        }
        file = dir.join(format!("{scenario}-seed-{seed}-{k}.json"));
    }
    std::fs::write(&file, json).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(file)
}

/// Writes `plan` to `file` as a plan file, unless `file` exists (it may be
/// a committed regression): then nothing is written and the error says so.
pub fn save_new(file: &Path, plan: &FaultPlan) -> Result<(), String> {
    use std::io::Write;
    let text = serde_json::to_string(plan).map_err(|e| e.to_string())? + "\n";
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(file)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", file.display()))
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_temporary_plan_is_never_saved_over_a_different_one() {
        use crate::fault::{Fault, FaultKind};
        // A scenario name of this test's own, so other tests' files do
        // not meet these.
        let name = format!("save-test-{}", std::process::id());
        let plan = |ms| FaultPlan {
            faults: vec![Fault::new(FaultKind::Crash, "h", ms, 1)],
            ..FaultPlan::default()
        };
        let a = save_temporary(&name, 7, &plan(1)).unwrap();
        let b = save_temporary(&name, 7, &plan(2)).unwrap();
        assert_ne!(a, b);
        assert_eq!(save_temporary(&name, 7, &plan(1)).unwrap(), a);
        assert_eq!(save_temporary(&name, 7, &plan(2)).unwrap(), b);
        let read = |f: &Path| {
            serde_json::from_str::<FaultPlan>(&std::fs::read_to_string(f).unwrap()).unwrap()
        };
        assert_eq!((read(&a), read(&b)), (plan(1), plan(2)));
        for f in [a, b] {
            std::fs::remove_file(f).unwrap();
        }
    }

    use super::*;

    #[test]
    fn bisection_finds_the_edge_from_either_side() {
        // Fails from 400 up: the least failing length in 1..=2000.
        let mut calls = 0;
        let least = bisect(
            1,
            2_000,
            |x| {
                calls += 1;
                (x >= 400).then_some(x)
            },
            true,
        );
        assert_eq!(least, Some((400, 400)));
        assert!(calls <= 11, "{calls} runs");
        // Fails up to 1300: the greatest failing start in 500..=2499.
        let greatest = bisect(500, 2_499, |x| (x <= 1_300).then_some(()), false);
        assert_eq!(greatest.map(|g| g.0), Some(1_300));
        // Only the known end fails: nothing new.
        assert_eq!(bisect(1, 10, |x| (x == 10).then_some(()), true), None);
        assert_eq!(bisect(5, 10, |x| (x == 5).then_some(()), false), None);
        // One value: nothing to search.
        assert_eq!(bisect(7, 7, |_| Some(()), true), None);
    }

    #[test]
    fn the_ladder_halves_down_to_one_ascending() {
        assert_eq!(ladder(1_000), [1, 3, 7, 15, 31, 62, 125, 250, 500]);
        assert_eq!(ladder(2), [1]);
        assert!(ladder(1).is_empty() && ladder(0).is_empty());
        assert_eq!(ladder(u64::MAX).len(), 63);
    }

    #[test]
    fn catch_all_failures_compare_their_first_line() {
        let panic = |d: &str| Key::of(&Violation::new("no panic", d));
        assert_eq!(panic("boom\nat line 3"), panic("boom\nat line 9"));
        assert_ne!(panic("boom"), panic("bang"));
        let named = |d: &str| Key::of(&Violation::new("exactly-once", d));
        assert_eq!(named("order 1 twice"), named("order 7 twice"));
        assert_eq!(panic("boom\nx").to_string(), "no panic (boom)");
        assert_eq!(named("x").to_string(), "exactly-once");
    }
}
