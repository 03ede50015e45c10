//! From a failing seed to the smallest plan that still fails: the greedy
//! shrinker, the proptest route, and the regressions folder.
//!
//! A regression is a plan file named `SCENARIO-seed-SEED.json` (the format
//! `replay --plan` reads) in a folder that `cargo test` replays with
//! [`testing::replay_regressions`](crate::testing::replay_regressions).
//! Nothing here replaces an existing file: [`save_new`] refuses.

use std::path::Path;

use proptest::prelude::*;

use crate::fault::{Fault, FaultKind, FaultPlan, Swarm};
use crate::scenario::AnyScenario;
use crate::trace::Violation;

/// Shrinks a failing `plan` for `seed` (the seed, and the plan's sabotage,
/// stay fixed): greedily drops faults, then halves their lengths and moves
/// them earlier, keeping each change only while the run still breaks an
/// invariant. Returns the smallest plan found and its violations; `None` if
/// the plan does not fail, or does not fit the scenario.
pub fn shrink(
    scenario: &dyn AnyScenario,
    seed: u64,
    plan: &FaultPlan,
) -> Option<(FaultPlan, Vec<Violation>)> {
    let fails = |p: &FaultPlan| {
        let out = scenario.run_plan(seed, p).ok()?;
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
            let f = &best.faults[i];
            for changed in [
                Fault {
                    for_ms: f.for_ms / 2,
                    ..f.clone()
                },
                Fault {
                    at_ms: f.at_ms / 2,
                    ..f.clone()
                },
            ] {
                if changed != *f {
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
    let menu: Vec<(FaultKind, String)> = if swarm.menu.is_empty() {
        // No targets: only the empty plan fits.
        Vec::new()
    } else {
        swarm.menu.clone()
    };
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
    })
}

/// The file a regression of `scenario`'s `seed` is kept in, under `dir`.
pub fn regression_file(dir: &Path, scenario: &str, seed: u64) -> std::path::PathBuf {
    dir.join(format!("{scenario}-seed-{seed}.json"))
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
