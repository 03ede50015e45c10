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

use async_patterns_sim::shrink::regression_file;
use async_patterns_sim::testing::try_replay_regressions;
use async_patterns_sim::{AnyScenario, Fault, FaultKind, FaultPlan};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use sim::CATALOGUE;

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions")
}

/// Up to 4 faults, each an entry of a scenario's swarm menu (by index: the
/// same draw lands on each scenario's own targets), with instants and
/// lengths drawn from `at_ms` and `for_ms`.
type Shape = Vec<(usize, u64, u64)>;

fn shapes_of(
    at_ms: impl Strategy<Value = u64>,
    for_ms: impl Strategy<Value = u64>,
) -> impl Strategy<Value = Shape> {
    proptest::collection::vec((0usize..4, at_ms, for_ms), 0..=4)
}

/// A shape's plan for scenario `s`.
fn plan_for(s: &dyn AnyScenario, shape: &Shape) -> FaultPlan {
    let menu = s.info().swarm.menu().to_vec();
    FaultPlan {
        faults: shape
            .iter()
            .map(|(i, at, len)| {
                let (kind, target) = &menu[i % menu.len()];
                Fault::new(*kind, target.clone(), *at, *len)
            })
            .collect(),
        sabotage: None,
        sites: Vec::new(),
        disk: None,
    }
}

fn shapes() -> impl Strategy<Value = Shape> {
    shapes_of(0u64..4_000, 0u64..3_000)
}

/// Shapes at the edges of a plan's numbers: 0, 1, `u64::MAX` and its
/// neighbour, or ordinary; several faults may overlap.
fn extreme_shapes() -> impl Strategy<Value = Shape> {
    let number = || {
        prop_oneof![
            Just(0u64),
            Just(1),
            Just(u64::MAX - 1),
            Just(u64::MAX),
            0u64..5_000
        ]
    };
    shapes_of(number(), number())
}

/// Every scenario under `shape`: a checker (or the harness) must never
/// panic, whatever the plan's numbers.
fn no_scenario_panics(seed: u64, shape: &Shape) -> Result<(), String> {
    for s in CATALOGUE {
        let plan = plan_for(s, shape);
        let out = s.run_plan(seed, &plan).map_err(|e| e.to_string())?;
        if let Some(v) = out.violations.iter().find(|v| v.invariant == "no panic") {
            return Err(format!("{} seed {seed} under {plan:?}: {v}", s.info().name));
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
    fn no_fault_plan_breaks_an_invariant(seed in any::<u64>().no_shrink(), shape in shapes()) {
        for s in CATALOGUE {
            let plan = plan_for(s, &shape);
            let out = s.run_plan(seed, &plan).unwrap();
            if !out.violations.is_empty() {
                let name = s.info().name;
                let file = regression_file(&regressions(), &name, seed);
                prop_assert!(
                    false,
                    "{name} seed {seed}: {:?}; {}",
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
    fn extreme_plans_panic_no_scenario(seed in 0u64..4, shape in extreme_shapes()) {
        if let Err(e) = no_scenario_panics(seed, &shape) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// The plan from the report: a partition that never ends (`at + for`
/// overflows).
#[test]
fn a_partition_for_u64_max_panics_no_scenario() {
    no_scenario_panics(1, &vec![(0, 100, u64::MAX)]).unwrap();
}

/// Replays every saved plan (from the shrinker or the property above) for
/// its scenario and seed: each once broke an invariant, and must not again.
#[test]
fn saved_plans_pass() {
    let replayed =
        try_replay_regressions(&CATALOGUE, &regressions()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        replayed > 0,
        "no saved plans in {}",
        regressions().display()
    );
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
        r#"{"faults":[{"kind":"crash","target":"consumer","at_ms":59,"for_ms":1}],"sabotage":"ack-before-store"}"#,
    )
    .unwrap();
    let result = try_replay_regressions(&CATALOGUE, &dir);
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
    let s = CATALOGUE[0];
    assert_eq!(s.info().name, "resilient-client");
    for (kind, target) in [
        (FaultKind::Crash, "server"),
        (FaultKind::Partition, "client<->server"),
    ] {
        let plan = FaultPlan {
            faults: vec![Fault::new(kind, target, 0, 60_000)],
            ..FaultPlan::default()
        };
        let out = s.run_plan(1, &plan).unwrap();
        assert!(
            out.violations
                .iter()
                .any(|v| v.detail.contains("breaker is not closed at the end")),
            "{kind:?} for the whole run: {:?}",
            out.violations
        );
    }
}
