//! The guided search on the pipeline's deep sabotages (the full table, 10
//! exploration seeds each, is `cargo run -p sim --release --example
//! guided_vs_swarm`; see docs/guided.md).

use async_patterns_sim::explore::{Guided, explore};
use sim::pipeline::Pipeline;

/// Exploration seed 3: guided catches `ack-on-failed-sync` and
/// `torn-line-accepted` in a budget of 24 runs each (at runs 8 and 12: the
/// children it owes put a crash at the very sync that failed or waited,
/// and the torn-write disk under that coincidence); the swarm, on the same
/// fresh seeds, catches neither.
#[test]
fn guided_catches_a_deep_sabotage_in_a_budget_where_the_swarm_does_not() {
    for sabotage in ["ack-on-failed-sync", "torn-line-accepted"] {
        let how = Guided::new(24).sabotage(Some(sabotage));
        let blind = explore(&Pipeline, 3, &how.clone().blind()).unwrap();
        assert!(
            blind.failures.is_empty(),
            "{sabotage}: swarm caught it at run {}",
            blind.failures[0].run
        );
        assert_eq!(blind.runs, 24);
        let guided = explore(&Pipeline, 3, &how).unwrap();
        let found = guided.failures.first().expect("guided catches it");
        assert!(found.run <= 24);
        // The failure replays on its own, from its seed and plan.
        let again = async_patterns_sim::run(&Pipeline, found.seed, &found.plan).unwrap();
        assert_eq!(again.violations, found.violations);
    }
}

/// One exploration seed, the same search on one thread and on two: the
/// same runs, corpus and failures.
#[test]
fn an_exploration_replays_from_its_seed_whatever_the_threads() {
    let how = Guided::new(48).stop_at_first_failure(false);
    let one = explore(&Pipeline, 11, &how.clone().threads(1)).unwrap();
    let two = explore(&Pipeline, 11, &how.threads(2)).unwrap();
    assert_eq!(one, two);
    assert!(one.corpus.len() > 1, "{}", one.corpus.len());
    assert_eq!(one.runs, 48);
}

/// The same in a test: `Checker::guided` fails with the shrunk plan and
/// its replay line; without the sabotage the search passes.
#[test]
fn a_checker_runs_a_guided_search() {
    use async_patterns_sim::testing::Checker;
    let err = Checker::new(&Pipeline)
        .sabotage("ack-on-failed-sync")
        .try_guided(0, 200)
        .unwrap_err();
    assert!(err.contains("failed at run"), "{err}");
    assert!(err.contains("replay: "), "{err}");
    assert!(err.contains("--plan"), "{err}");
    Checker::new(&Pipeline).guided(0, 64);
}

/// A blind search draws a fresh seed for every run (run `r`'s own, the
/// seeds a guided search's fresh runs take too): no seed twice among the
/// failing runs of 40 under a shallow sabotage.
#[test]
fn a_blind_search_draws_a_fresh_seed_for_every_run() {
    let how = Guided::new(40)
        .sabotage(Some("ack-before-store"))
        .stop_at_first_failure(false)
        .blind();
    let x = explore(&Pipeline, 5, &how).unwrap();
    assert_eq!(x.runs, 40);
    let seeds: std::collections::BTreeSet<u64> = x.failures.iter().map(|f| f.seed).collect();
    assert!(x.failures.len() >= 8, "{}", x.failures.len());
    assert_eq!(seeds.len(), x.failures.len());
}

/// `Checker::guided` judges coverage as a sweep does: a search of one run
/// that never dropped a duplicate (the pipeline's declared point) fails,
/// unless told `allow_unreached`; a budget of 0 is refused.
#[test]
fn a_checkers_guided_search_must_reach_the_declared_points() {
    use async_patterns_sim::testing::Checker;
    let seed = (0..20)
        .find(|e| {
            let x = explore(&Pipeline, *e, &Guided::new(1)).unwrap();
            !x.signals.contains_key("duplicate dropped")
        })
        .expect("a one-run search that drops no duplicate");
    let err = Checker::new(&Pipeline).try_guided(seed, 1).unwrap_err();
    assert!(err.contains("never reached"), "{err}");
    assert!(err.contains("duplicate dropped"), "{err}");
    Checker::new(&Pipeline)
        .allow_unreached()
        .try_guided(seed, 1)
        .unwrap();
    let err = Checker::new(&Pipeline).try_guided(0, 0).unwrap_err();
    assert_eq!(
        err,
        "pipeline: a guided search of 0 runs checks nothing (give it a budget of 1 or more)"
    );
}
