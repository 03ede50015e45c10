//! Every scenario is a pure function of its seed: two runs of a seed give
//! byte-identical traces, and the default seeds break no invariant. (The
//! `sim sweep` command checks the same for every seed it runs.)

use async_patterns_sim::FaultPlan;
use sim::CATALOGUE;

#[test]
fn same_seed_same_trace_and_no_violations() {
    for s in CATALOGUE {
        let info = s.info();
        for seed in 0..3 {
            let plan = info.swarm.plan(seed);
            let a = s.run_plan(seed, &plan).unwrap();
            let b = s.run_plan(seed, &plan).unwrap();
            assert_eq!(
                a.trace, b.trace,
                "{} seed {seed} is not deterministic",
                info.name
            );
            assert!(
                a.violations.is_empty(),
                "{} seed {seed}: {:?}",
                info.name,
                a.violations
            );
            assert!(!a.trace.is_empty());
        }
    }
}

#[test]
fn different_seeds_differ() {
    for s in CATALOGUE {
        let info = s.info();
        let a = s.run_plan(1, &info.swarm.plan(1)).unwrap();
        let b = s.run_plan(2, &info.swarm.plan(2)).unwrap();
        assert_ne!(
            a.trace_hash, b.trace_hash,
            "{}: the seed changes nothing",
            info.name
        );
    }
}

/// A plan survives the JSON round trip the shrinker and `replay --plan` use.
#[test]
fn fault_plans_round_trip_through_json() {
    let swarm = CATALOGUE[0].info().swarm;
    for seed in 0..20 {
        let plan = swarm.plan(seed);
        let text = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<FaultPlan>(&text).unwrap(), plan);
    }
    // Swarm: some seeds leave some kinds of fault out.
    let sizes: Vec<usize> = (0..20).map(|s| swarm.plan(s).faults.len()).collect();
    assert!(
        sizes.iter().any(|&n| n < 3) && sizes.contains(&3),
        "{sizes:?}"
    );
}

/// A seed that breaks nothing has nothing to shrink.
#[test]
fn a_passing_seed_has_nothing_to_shrink() {
    let s = CATALOGUE[0];
    assert!(async_patterns_sim::shrink::shrink(s, 0, &s.info().swarm.plan(0)).is_none());
}
