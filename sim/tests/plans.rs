//! The proptest route to fault plans: proptest generates plans (any kinds,
//! any instants, overlapping or not) for a seed it never shrinks, runs every
//! scenario under each, and on a violation shrinks the *plan*. Each failing
//! plan it meets is written to `sim/regressions/SCENARIO-seed-SEED.json`
//! (unless a file of that name was there before the run: a test never
//! replaces a committed regression); proptest only moves on to a smaller
//! failing plan, so the file left behind is the minimal one, in the format
//! `sim replay --plan` and `sim shrink --plan` read. Proptest's own generator-seed file is not
//! kept: it changes meaning when the strategy changes, the plan does not.
//!
//! The property runs from a fixed proptest seed, so CI checks the same
//! plans every time; `PROPTEST_RNG_SEED=N` explores others. Every plan
//! saved in `sim/regressions/` is a regression test: `saved_plans_pass`
//! replays them all, and refuses a plan saved under a sabotage.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use sim::{Fault, FaultKind, FaultPlan, scenarios};

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions")
}

/// Plans of up to 4 faults of any kinds (overlapping or not), their
/// instants and lengths drawn from `at_ms` and `for_ms`.
fn plans_of(
    at_ms: impl Strategy<Value = u64>,
    for_ms: impl Strategy<Value = u64>,
) -> impl Strategy<Value = FaultPlan> {
    let kind = proptest::sample::select(FaultKind::ALL.to_vec());
    let fault = (kind, at_ms, for_ms).prop_map(|(kind, at_ms, for_ms)| Fault {
        kind,
        at_ms,
        for_ms,
    });
    proptest::collection::vec(fault, 0..=4).prop_map(|faults| FaultPlan {
        faults,
        ..FaultPlan::default()
    })
}

fn plans() -> impl Strategy<Value = FaultPlan> {
    plans_of(0u64..4_000, 0u64..3_000)
}

/// Plans at the edges of a plan's numbers: 0, 1, `u64::MAX` and its
/// neighbour, or ordinary; several faults may overlap.
fn extreme_plans() -> impl Strategy<Value = FaultPlan> {
    let number = || {
        prop_oneof![
            Just(0u64),
            Just(1),
            Just(u64::MAX - 1),
            Just(u64::MAX),
            0u64..5_000
        ]
    };
    plans_of(number(), number())
}

/// Every scenario under `plan`: a checker (or the harness) must never
/// panic, whatever the plan's numbers.
fn no_scenario_panics(seed: u64, plan: &FaultPlan) -> Result<(), String> {
    for s in scenarios() {
        let out = sim::run_guarded(&s, seed, plan, None);
        if let Some(v) = out.violations.iter().find(|v| v.contains("panicked")) {
            return Err(format!("{} seed {seed} under {plan:?}: {v}", s.name));
        }
    }
    Ok(())
}

/// Saves a failing plan as `file`, unless the file was there before this
/// test run: proptest rewrites its own file as it shrinks, but a test never
/// replaces a committed regression.
fn save_failing(file: &Path, plan: &FaultPlan) -> String {
    static OURS: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    let mut ours = OURS.lock().unwrap();
    if file.exists() && !ours.contains(file) {
        return format!("not saved: {} already exists", file.display());
    }
    std::fs::write(file, serde_json::to_string(plan).unwrap() + "\n").unwrap();
    ours.insert(file.to_path_buf());
    format!("plan saved to {}", file.display())
}

proptest! {
    // A fixed seed, so CI explores the same plans on every run; set
    // PROPTEST_RNG_SEED to explore others.
    #![proptest_config({
        let default = ProptestConfig::default();
        let rng_seed = match default.rng_seed {
            RngSeed::Random => RngSeed::Fixed(0x5eed_f417),
            chosen => chosen,
        };
        ProptestConfig {
            cases: 6,
            failure_persistence: None,
            rng_seed,
            ..default
        }
    })]

    #[test]
    fn no_fault_plan_breaks_an_invariant(seed in any::<u64>().no_shrink(), plan in plans()) {
        for s in scenarios() {
            let out = sim::run_guarded(&s, seed, &plan, None);
            if !out.violations.is_empty() {
                let file = regressions().join(format!("{}-seed-{seed}.json", s.name));
                prop_assert!(
                    false,
                    "{} seed {seed}: {:?}; {}",
                    s.name,
                    out.violations,
                    save_failing(&file, &plan)
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 8,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0xed9e),
        ..ProptestConfig::default()
    })]

    #[test]
    fn extreme_plans_panic_no_scenario(seed in 0u64..4, plan in extreme_plans()) {
        if let Err(e) = no_scenario_panics(seed, &plan) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// The plan from the report: a partition that never ends (`at + for`
/// overflows).
#[test]
fn a_partition_for_u64_max_panics_no_scenario() {
    let plan: FaultPlan = serde_json::from_str(
        r#"{"faults":[{"kind":"partition","at_ms":100,"for_ms":18446744073709551615}]}"#,
    )
    .unwrap();
    no_scenario_panics(1, &plan).unwrap();
}

/// Replays every saved plan (from the shrinker or the property above) for
/// its scenario and seed: each once broke an invariant, and must not again.
#[test]
fn saved_plans_pass() {
    let replayed = replay_saved(&regressions()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        replayed > 0,
        "no saved plans in {}",
        regressions().display()
    );
}

/// Replays every plan in `dir`, returning how many, or the first that fails
/// (named, with why).
fn replay_saved(dir: &Path) -> Result<usize, String> {
    let mut replayed = 0;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let (scenario, seed) = name
            .rsplit_once("-seed-")
            .ok_or_else(|| format!("{}: not SCENARIO-seed-SEED.json", path.display()))?;
        let seed: u64 = seed
            .parse()
            .map_err(|e| format!("{}: the seed: {e}", path.display()))?;
        let s = scenarios()
            .into_iter()
            .find(|s| s.name == scenario)
            .ok_or_else(|| format!("{}: no scenario {scenario}", path.display()))?;
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let plan: FaultPlan = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a fault plan: {e}", path.display()))?;
        if let Some(sabotage) = plan.sabotage {
            return Err(format!(
                "{} was saved under --sabotage {}: a regression must replay without one \
                 (move it out of {}, or shrink again without the sabotage)",
                path.display(),
                sabotage.name(),
                dir.display()
            ));
        }
        let out = sim::run_guarded(&s, seed, &plan, None);
        if !out.violations.is_empty() {
            return Err(format!("{}: {:?}", path.display(), out.violations));
        }
        replayed += 1;
    }
    Ok(replayed)
}

/// A plan shrunk under a sabotage is no regression: replayed without the
/// sabotage it passes and proves nothing, so the replay of the regressions
/// folder refuses it, naming the file.
#[test]
fn a_plan_saved_under_a_sabotage_fails_the_replay() {
    let dir = std::env::temp_dir().join(format!("sim-plans-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pipeline-seed-0.json");
    std::fs::write(
        &file,
        r#"{"faults":[{"kind":"crash","at_ms":59,"for_ms":1}],"sabotage":"ack-before-store"}"#,
    )
    .unwrap();
    let result = replay_saved(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    let err = result.expect_err("a sabotaged plan replayed as a regression");
    assert!(
        err.contains("pipeline-seed-0.json") && err.contains("ack-before-store"),
        "{err}"
    );
}

/// "Closed at the end" and recovery can fail: a server that is down (or cut
/// off) for the whole run breaks an invariant.
#[test]
fn a_server_down_for_the_whole_run_is_a_violation() {
    let s = &scenarios()[0];
    assert_eq!(s.name, "resilient-client");
    for kind in [FaultKind::Crash, FaultKind::Partition] {
        let plan = FaultPlan {
            faults: vec![Fault {
                kind,
                at_ms: 0,
                for_ms: 60_000,
            }],
            ..FaultPlan::default()
        };
        let out = sim::run_guarded(s, 1, &plan, None);
        assert!(
            out.violations
                .iter()
                .any(|v| v.contains("breaker is not closed at the end")),
            "{kind:?} for the whole run: {:?}",
            out.violations
        );
    }
}
