//! Every scenario is a pure function of its seed: two runs of a seed give
//! byte-identical traces, and the default seeds break no invariant. (The
//! `sim sweep` command checks the same for every seed it runs.)

use sim::{FaultPlan, scenarios};

#[test]
fn same_seed_same_trace_and_no_violations() {
    for s in scenarios() {
        for seed in 0..3 {
            let plan = FaultPlan::from_seed(seed);
            let a = (s.run)(seed, &plan, None);
            let b = (s.run)(seed, &plan, None);
            assert_eq!(
                a.trace, b.trace,
                "{} seed {seed} is not deterministic",
                s.name
            );
            assert!(
                a.violations.is_empty(),
                "{} seed {seed}: {:?}",
                s.name,
                a.violations
            );
            assert!(!a.trace.is_empty());
        }
    }
}

#[test]
fn different_seeds_differ() {
    for s in scenarios() {
        let a = (s.run)(1, &FaultPlan::from_seed(1), None);
        let b = (s.run)(2, &FaultPlan::from_seed(2), None);
        assert_ne!(
            a.trace_hash, b.trace_hash,
            "{}: the seed changes nothing",
            s.name
        );
    }
}

/// A plan survives the JSON round trip the shrinker and `replay --plan` use.
#[test]
fn fault_plans_round_trip_through_json() {
    for seed in 0..20 {
        let plan = FaultPlan::from_seed(seed);
        let text = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<FaultPlan>(&text).unwrap(), plan);
    }
    // Swarm: some seeds leave some kinds of fault out.
    let sizes: Vec<usize> = (0..20)
        .map(|s| FaultPlan::from_seed(s).faults.len())
        .collect();
    assert!(
        sizes.iter().any(|&n| n < 3) && sizes.contains(&3),
        "{sizes:?}"
    );
}

/// A seed that breaks nothing has nothing to shrink.
#[test]
fn a_passing_seed_has_nothing_to_shrink() {
    let s = &scenarios()[0];
    assert!(sim::shrink(s, 0, &FaultPlan::from_seed(0), None).is_none());
}
