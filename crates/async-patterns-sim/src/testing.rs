//! For `cargo test`: check a range of seeds, replay a regressions folder.
//!
//! **`cargo test` builds unoptimized, and simulations then run many times
//! slower** (32 seeds run twice: 25.7 s in a debug build, under 1 s in
//! release, for a user's service). Nearly all the time is turmoil's and
//! tokio's; put these lines in your *workspace root* `Cargo.toml` (cargo
//! ignores profiles anywhere else) to optimize just those two:
//!
//! ```toml
//! [profile.dev.package.turmoil]
//! opt-level = 2
//!
//! [profile.dev.package.tokio]
//! opt-level = 2
//! ```
//!
//! (`package."*"` optimizes every dependency, at a much higher build cost,
//! and never reaches your own workspace members, which you name one by
//! one.)
//!
//! ```
//! # use async_patterns_sim::{Ctx, RunInfo, Scenario, Violation};
//! # struct Idle;
//! # impl Scenario for Idle {
//! #     type Record = ();
//! #     fn name(&self) -> &str { "idle" }
//! #     fn about(&self) -> &str { "" }
//! #     fn build(&self, _: &Ctx<()>, sim: &mut turmoil::Sim<'_>) {
//! #         sim.client("c", async { Ok(()) });
//! #     }
//! #     fn check(&self, _: &RunInfo, _: &()) -> Vec<Violation> { vec![] }
//! # }
//! use async_patterns_sim::testing::{Checker, check_seeds};
//!
//! // In a #[test]: every seed of 0..16, each run twice; a failure panics
//! // with the violations, the shrunk plan and the command that replays it.
//! check_seeds(&Idle, 0..16);
//! // The same, naming the binary that replays a failure.
//! Checker::new(&Idle)
//!     .replay_command("cargo run -p my-service --bin sim --")
//!     .seeds(0..16);
//! ```

use crate::explore::{Guided, explore};
use crate::trace::Violation;
use std::path::{Path, PathBuf};

use crate::coverage::{Catalogue, Judge, coverage};
use crate::fault::FaultPlan;
use crate::scenario::AnyScenario;
use crate::shrink::{Keep, save_temporary, shrink_keeping};
use crate::sweep::{SeedRecord, replay_line, sweep};

/// Checks `seeds` of `scenario` (each run twice) and panics on the first
/// failing one: see [`Checker::seeds`]. Its replay line names
/// `YOUR-SIM-BINARY`: with [`Checker::replay_command`] it names yours.
///
/// Slow under `cargo test`? A debug build runs turmoil and tokio
/// unoptimized: see the [module docs](self) for the two profile lines that
/// fix it.
#[track_caller]
pub fn check_seeds(scenario: &dyn AnyScenario, seeds: impl IntoIterator<Item = u64>) {
    Checker::new(scenario).seeds(seeds);
}

/// Seeds of one scenario under `cargo test`, with its settings.
pub struct Checker<'a> {
    scenario: &'a dyn AnyScenario,
    replay: String,
    twice: bool,
    sabotage: Option<String>,
    keep: Keep,
    unreached: Judge,
}

impl<'a> Checker<'a> {
    /// Checks for `scenario`: each seed run twice, no sabotage, replay
    /// lines for a binary made with [`cli::main`](crate::cli::main).
    pub fn new(scenario: &'a dyn AnyScenario) -> Self {
        Checker {
            scenario,
            replay: "YOUR-SIM-BINARY".into(),
            twice: true,
            sabotage: None,
            keep: Keep::Original,
            unreached: Judge::Fail,
        }
    }

    /// The command prefix that runs your `cli::main` binary, for the replay
    /// line of a failure (e.g. `cargo run -p orders --bin orders-sim --`).
    #[must_use]
    pub fn replay_command(mut self, prefix: impl Into<String>) -> Self {
        self.replay = prefix.into();
        self
    }

    /// Runs each seed once: faster, but a scenario that breaks a
    /// determinism rule is no longer caught.
    #[must_use]
    pub fn once(mut self) -> Self {
        self.twice = false;
        self
    }

    /// Runs under the declared sabotage `name` (for a meta-test: see
    /// [`Checker::caught`]).
    #[must_use]
    pub fn sabotage(mut self, name: impl Into<String>) -> Self {
        self.sabotage = Some(name.into());
        self
    }

    /// Passes even when a declared point (see
    /// [`Scenario::points`](crate::Scenario::points)) was reached by none
    /// of the seeds (by default that fails, as a sweep does: a test that
    /// never reached the point proves nothing about it).
    #[must_use]
    pub fn allow_unreached(mut self) -> Self {
        self.unreached = Judge::Warn;
        self
    }

    /// Reports the first seed that breaks the invariant `name` (if any
    /// does; else the first failing seed), and shrinks it keeping only
    /// that invariant ([`Keep::Invariant`]). By default the shrink keeps
    /// every invariant the seed broke.
    #[must_use]
    pub fn keep_invariant(mut self, name: impl Into<String>) -> Self {
        self.keep = Keep::Invariant(name.into());
        self
    }

    /// Runs every seed (on every core) and panics if one fails, with its
    /// violations, its plan shrunk to a minimal one (saved to a file in the
    /// temporary folder) and the one line that replays it.
    #[track_caller]
    pub fn seeds(self, seeds: impl IntoIterator<Item = u64>) {
        if let Err(message) = self.try_seeds(seeds) {
            panic!("{message}");
        }
    }

    /// As [`Checker::seeds`], returning the failure message instead of
    /// panicking.
    pub fn try_seeds(&self, seeds: impl IntoIterator<Item = u64>) -> Result<(), String> {
        let name = self.scenario.info().name;
        let records = self.records(seeds)?;
        let failing: Vec<_> = records.iter().filter(|r| r.failed()).collect();
        let breaks = |r: &&&SeedRecord| match &self.keep {
            Keep::Original => true,
            Keep::Invariant(name) => r.violations.iter().any(|v| v.invariant == *name),
        };
        let Some(first) = failing.iter().find(breaks).or(failing.first()) else {
            return self.judge_coverage(&records);
        };
        let message = format!(
            "{name}: {} of {} seeds fail; the first, seed {}:\n",
            failing.len(),
            records.len(),
            first.seed
        );
        Err(self.explain(
            &name,
            first.seed,
            &first.plan,
            &first.violations,
            first.deterministic,
            message,
        ))
    }

    /// Runs a guided search of `budget` runs from `exploration_seed` (see
    /// [`explore`](crate::explore)) and panics if a run fails, as
    /// [`Checker::seeds`] does (the failing plan shrunk and saved, and the
    /// line that replays it). The same exploration seed makes the same
    /// search, on any number of cores.
    #[track_caller]
    pub fn guided(self, exploration_seed: u64, budget: usize) {
        if let Err(message) = self.try_guided(exploration_seed, budget) {
            panic!("{message}");
        }
    }

    /// As [`Checker::guided`], returning the failure message instead of
    /// panicking. A search that fails no run still fails if a declared
    /// point no run reached must be reached (as a sweep does; see
    /// [`Checker::allow_unreached`]), and a budget of 0 runs is refused:
    /// it would check nothing.
    pub fn try_guided(&self, exploration_seed: u64, budget: usize) -> Result<(), String> {
        let info = self.scenario.info();
        let name = info.name;
        if budget == 0 {
            return Err(format!(
                "{name}: a guided search of 0 runs checks nothing (give it a budget of 1 or more)"
            ));
        }
        crate::assert::check_catalogue(&info.points)
            .map_err(|e| format!("{name}: {e} (no run was made)"))?;
        let how = Guided::new(budget).sabotage(self.sabotage.as_deref());
        let found = explore(self.scenario, exploration_seed, &how).map_err(|e| e.to_string())?;
        let Some(first) = found.failures.first() else {
            let unreached = found.unreached(&info.points);
            if unreached.is_empty() || self.unreached != Judge::Fail {
                return Ok(());
            }
            let mut message = format!(
                "{name}: a guided search of {} runs from exploration seed {exploration_seed} \
                 fails no run, but some declared points were never reached:\n",
                found.runs
            );
            for p in unreached {
                message += &format!("  {p}\n");
            }
            message += "  (a larger budget; take a point the scenario cannot reach out of its \
                        points(); or Checker::allow_unreached)";
            return Err(message);
        };
        let message = format!(
            "{name}: a guided search from exploration seed {exploration_seed} failed at run {} \
             (seed {}):\n",
            first.run, first.seed
        );
        Err(self.explain(
            &name,
            first.seed,
            &first.plan,
            &first.violations,
            true,
            message,
        ))
    }

    /// A failure's report: `message`, the violations, then the plan
    /// shrunk (saved to a file) and the line that replays it.
    fn explain(
        &self,
        name: &str,
        seed: u64,
        plan: &FaultPlan,
        violations: &[Violation],
        deterministic: bool,
        mut message: String,
    ) -> String {
        for v in violations {
            message += &format!("  {v}\n");
        }
        let keep = match &self.keep {
            Keep::Invariant(name) if violations.iter().any(|v| v.invariant == *name) => {
                self.keep.clone()
            }
            _ => Keep::Original,
        };
        let (plan, file) = match shrink_keeping(self.scenario, seed, plan, &keep) {
            Ok(small) => {
                let file = save_temporary(name, seed, &small.plan).ok();
                message += &format!(
                    "  shrunk from {} {} ({} ms faulted) to {} ({} ms) in {} runs, \
                     still breaking {}:\n",
                    plan.elements(),
                    plan.elements_named(),
                    plan.faulted_ms(),
                    small.plan.elements(),
                    small.plan.faulted_ms(),
                    small.runs,
                    small.kept.join(", ")
                );
                for v in &small.violations {
                    message += &format!("    {v}\n");
                }
                (small.plan, file)
            }
            // Only a nondeterministic seed fails the sweep and not a run:
            // nothing to shrink, and a single replay may pass.
            Err(_) => (plan.clone(), None),
        };
        let json = serde_json::to_string(&plan).unwrap_or_default();
        message += &format!("  plan: {json}\n");
        let line = replay_line(&self.replay, name, seed, None, file.as_deref(), "");
        let line = if deterministic {
            line
        } else {
            crate::sweep::twice(&line)
        };
        message += &format!("  replay: {line}");
        message
    }

    /// A declared point no seed reached fails, unless allowed.
    fn judge_coverage(&self, records: &[SeedRecord]) -> Result<(), String> {
        let info = self.scenario.info();
        let catalogue = Catalogue {
            scenario: info.name.clone(),
            points: info.points,
        };
        let reached = coverage(std::slice::from_ref(&catalogue), records);
        if !crate::coverage::fails(&reached, self.unreached) {
            return Ok(());
        }
        let mut message = format!(
            "{}: {} seeds pass, but some declared points were never reached:\n",
            info.name,
            records.len()
        );
        for r in reached.iter().flat_map(|c| c.unreached()) {
            message += &format!("  {}\n", r.point);
        }
        message += "  (run more seeds or denser plans; take a point the scenario cannot reach \
                    out of its points(); or Checker::allow_unreached)";
        Err(message)
    }

    /// Whether some seed of `seeds` fails: for a meta-test with
    /// [`Checker::sabotage`] ("my invariants catch a retry without a
    /// budget"). Does not shrink.
    pub fn caught(&self, seeds: impl IntoIterator<Item = u64>) -> Result<bool, String> {
        Ok(self.records(seeds)?.iter().any(|r| r.failed()))
    }

    /// The seeds' records, run on every core.
    fn records(&self, seeds: impl IntoIterator<Item = u64>) -> Result<Vec<SeedRecord>, String> {
        // A catalogue that cannot be counted against fails every seed the
        // same way: said once, before any run (nothing shrunk or saved).
        let info = self.scenario.info();
        crate::assert::check_catalogue(&info.points)
            .map_err(|e| format!("{}: {e} (no seed was run)", info.name))?;
        let seeds: Vec<u64> = seeds.into_iter().collect();
        sweep(
            self.scenario,
            &seeds,
            None,
            self.sabotage.as_deref(),
            self.twice,
            &|| {},
        )
        .map_err(|e| format!("{}: {e}", self.scenario.info().name))
    }
}

/// Replays every plan in `dir` (files `SCENARIO-seed-SEED.json`) for its
/// scenario and seed, and panics naming the first that fails: each once
/// broke an invariant, and must not again. A plan saved under a sabotage is
/// refused (it is a demonstration, not a regression). Returns how many
/// plans were replayed.
#[track_caller]
pub fn replay_regressions(scenarios: &[&dyn AnyScenario], dir: impl AsRef<Path>) -> usize {
    try_replay_regressions(scenarios, dir.as_ref()).unwrap_or_else(|e| panic!("{e}"))
}

/// As [`replay_regressions`], returning the failure instead of panicking.
pub fn try_replay_regressions(scenarios: &[&dyn AnyScenario], dir: &Path) -> Result<usize, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut replayed = 0;
    for path in files {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (name, seed) = stem
            .rsplit_once("-seed-")
            .ok_or_else(|| format!("{}: not SCENARIO-seed-SEED.json", path.display()))?;
        let seed: u64 = seed
            .parse()
            .map_err(|e| format!("{}: the seed: {e}", path.display()))?;
        let scenario = scenarios
            .iter()
            .find(|s| s.info().name == name)
            .ok_or_else(|| format!("{}: no scenario {name}", path.display()))?;
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let plan: FaultPlan = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a fault plan: {e}", path.display()))?;
        if let Some(sabotage) = &plan.sabotage {
            return Err(format!(
                "{} was saved under --sabotage {sabotage}: a regression must replay without one \
                 (move it out of {}, or shrink again without the sabotage)",
                path.display(),
                dir.display()
            ));
        }
        let out = scenario
            .run_plan(seed, &plan)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if !out.violations.is_empty() {
            let list: Vec<String> = out.violations.iter().map(|v| v.to_string()).collect();
            return Err(format!("{}: {}", path.display(), list.join("; ")));
        }
        replayed += 1;
    }
    Ok(replayed)
}
