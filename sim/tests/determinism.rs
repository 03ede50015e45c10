//! Every scenario is a pure function of its seed: two runs of a seed give
//! byte-identical traces, and the default seeds break no invariant. (The
//! `sim sweep` command checks the same for every seed it runs.)

use sim::{FaultPlan, scenarios};

#[test]
fn same_seed_same_trace_and_no_violations() {
    for s in scenarios() {
        for seed in 0..3 {
            let plan = FaultPlan::from_seed(seed);
            let a = (s.run)(seed, &plan);
            let b = (s.run)(seed, &plan);
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
        let a = (s.run)(1, &FaultPlan::from_seed(1));
        let b = (s.run)(2, &FaultPlan::from_seed(2));
        assert_ne!(
            a.trace_hash, b.trace_hash,
            "{}: the seed changes nothing",
            s.name
        );
    }
}
