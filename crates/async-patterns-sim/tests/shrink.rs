//! The shrinker keeps the failure it started from, ends 1-minimal whatever
//! the place of the faults it drops, never keeps a 0 ms fault, and finds a
//! fault's shortest failing length by bisection (not halving).
//!
//! Two scenarios: `Ledger`, whose checks read the plan itself (so each
//! case knows exactly which faults matter), and `Pings`, a client pinging
//! a server over turmoil's TCP, whose outage invariants see only what the
//! network did.

use std::time::Duration;

use async_patterns_sim::shrink::{Keep, ShrinkError, shrink_keeping};
use async_patterns_sim::testing::Checker;
use async_patterns_sim::{
    Ctx, Fault, FaultKind, FaultPlan, Network, RunInfo, Scenario, Targets, Violation, now, run,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Checks that read the plan: a partition of 400 ms or more covering
/// 1,000 ms "loses a write" (the failure that matters); any partition or
/// hold of 100 ms or more is "slow" (a weaker one). With `panics`, the
/// same two failures are panics with different messages.
struct Ledger {
    panics: bool,
}

const LOST: &str = "acknowledged writes survive";
const SLOW: &str = "answers within 100 ms";

impl Ledger {
    fn failures(plan: &FaultPlan) -> (bool, bool) {
        let lost = plan
            .of(FaultKind::Partition)
            .any(|f| f.for_ms >= 400 && f.at_ms <= 1_000 && f.at_ms + f.for_ms >= 1_000);
        let slow = plan
            .faults
            .iter()
            .any(|f| matches!(f.kind, FaultKind::Partition | FaultKind::Hold) && f.for_ms >= 100);
        (lost, slow)
    }
}

impl Scenario for Ledger {
    type Record = ();
    fn name(&self) -> &str {
        "ledger"
    }
    fn about(&self) -> &str {
        "fails by reading its plan"
    }
    fn targets(&self) -> Targets {
        Targets::new().link("client", "db").host("db", "its log")
    }
    fn build(&self, _: &Ctx<()>, sim: &mut turmoil::Sim<'_>) {
        sim.host("db", || async { Ok(()) });
        sim.client("client", async { Ok(()) });
    }
    fn check(&self, run: &RunInfo, _: &()) -> Vec<Violation> {
        let (lost, slow) = Ledger::failures(&run.plan);
        if self.panics {
            assert!(!lost, "lost write 17\n(details that vary: {:?})", run.plan);
            assert!(!slow, "too slow");
        }
        let mut v = Vec::new();
        if lost {
            v.push(Violation::new(LOST, "write 17 is gone"));
        }
        if slow {
            v.push(Violation::new(SLOW, "an answer took too long"));
        }
        v
    }
}

fn fault(kind: FaultKind, at_ms: u64, for_ms: u64) -> Fault {
    let target = if kind == FaultKind::Crash {
        "db"
    } else {
        "client<->db"
    };
    Fault::new(kind, target, at_ms, for_ms)
}

fn plan(faults: Vec<Fault>) -> FaultPlan {
    FaultPlan {
        faults,
        sabotage: None,
        sites: Vec::new(),
        disk: None,
    }
}

/// The partition that loses the write, and the faults around it that do
/// not matter.
fn needed() -> Fault {
    fault(FaultKind::Partition, 600, 1_500)
}

/// Every fault of `p` is needed: without any one, the run no longer breaks
/// every invariant of `kept`.
fn assert_one_minimal(s: &dyn async_patterns_sim::AnyScenario, p: &FaultPlan, kept: &[&str]) {
    for i in 0..p.faults.len() {
        let mut fewer = p.clone();
        fewer.faults.remove(i);
        let v = s.run_plan(0, &fewer).unwrap().violations;
        assert!(
            !kept.iter().all(|k| v.iter().any(|v| v.invariant == *k)),
            "fault {i} of {p:?} is not needed: {v:?}"
        );
    }
}

#[test]
fn a_shrink_keeps_the_invariant_that_mattered() {
    // The partition first: dropping it leaves a hold that is only slow.
    // A shrinker that keeps "any violation" takes that step and saves a
    // plan that no longer loses the write.
    let s = Ledger { panics: false };
    let original = plan(vec![needed(), fault(FaultKind::Hold, 200, 300)]);
    let out = shrink_keeping(&s, 0, &original, &Keep::Original).unwrap();
    let broken: Vec<&str> = out
        .violations
        .iter()
        .map(|v| v.invariant.as_str())
        .collect();
    assert!(broken.contains(&LOST), "{out:?}");
    assert_eq!(out.plan.faults.len(), 1, "{out:?}");
    assert_eq!(out.plan.faults[0].kind, FaultKind::Partition);
    assert_eq!(out.kept, [LOST, SLOW]);
    // The old entry point keeps the same failure.
    let (small, _) = async_patterns_sim::shrink::shrink(&s, 0, &original).unwrap();
    assert_eq!(small, out.plan);
}

#[test]
fn unneeded_faults_go_wherever_they_stand() {
    let s = Ledger { panics: false };
    let extra = [
        fault(FaultKind::Crash, 50, 100),
        fault(FaultKind::Loss, 700, 200),     // inside the partition
        fault(FaultKind::Crash, 900, 400),    // overlapping it
        fault(FaultKind::Latency, 3_000, 50), // after it
    ];
    for place in 0..=extra.len() {
        let mut faults = extra.to_vec();
        faults.insert(place, needed());
        let out = shrink_keeping(&s, 0, &plan(faults), &Keep::Original).unwrap();
        assert_eq!(out.plan.faults.len(), 1, "needed fault at {place}: {out:?}");
        assert_one_minimal(&s, &out.plan, &[LOST, SLOW]);
        // Trimmed to the least that still loses the write: from its start
        // at 600 ms to 1,000 ms, 400 ms.
        let f = &out.plan.faults[0];
        assert_eq!(
            (f.kind, f.at_ms, f.for_ms),
            (FaultKind::Partition, 600, 400)
        );
    }
}

#[test]
fn each_kept_failure_decides_what_stays() {
    // Losing the write needs the partition; "slow", kept with it, is
    // broken by the partition too, so the hold goes. Keep only "slow" and
    // the partition may go instead: each kept failure decides.
    let s = Ledger { panics: false };
    let p = plan(vec![fault(FaultKind::Hold, 100, 700), needed()]);
    let both = shrink_keeping(&s, 0, &p, &Keep::Original).unwrap();
    assert_eq!(both.plan.faults.len(), 1);
    let slow = shrink_keeping(&s, 0, &p, &Keep::Invariant(SLOW.into())).unwrap();
    assert_eq!(slow.plan.faults.len(), 1);
    // The least slow fault: 100 ms.
    assert_eq!(slow.plan.faults[0].for_ms, 100);
    assert_eq!(slow.kept, [SLOW]);
}

#[test]
fn a_named_invariant_the_seed_does_not_break_is_an_error() {
    let s = Ledger { panics: false };
    let p = plan(vec![fault(FaultKind::Hold, 100, 700)]);
    assert_eq!(
        shrink_keeping(&s, 0, &p, &Keep::Invariant(LOST.into())),
        Err(ShrinkError::NotBroken {
            invariant: LOST.into(),
            broken: vec![SLOW.into()],
        })
    );
    assert_eq!(
        shrink_keeping(&s, 0, &plan(vec![]), &Keep::Original),
        Err(ShrinkError::Passes)
    );
}

#[test]
fn a_panic_is_kept_by_its_first_line() {
    // Both failures are panics ("no panic"): the name alone would let the
    // lost write shrink into the slow one.
    let s = Ledger { panics: true };
    let original = plan(vec![needed(), fault(FaultKind::Hold, 200, 300)]);
    let out = shrink_keeping(&s, 0, &original, &Keep::Original).unwrap();
    assert_eq!(out.kept, ["no panic (lost write 17)"]);
    assert!(
        out.violations[0].detail.starts_with("lost write 17"),
        "{out:?}"
    );
    assert_eq!(out.plan.faults.len(), 1);
}

#[test]
fn a_zero_ms_fault_is_never_kept() {
    let s = Ledger { panics: false };
    let out = shrink_keeping(
        &s,
        0,
        &plan(vec![
            fault(FaultKind::Hold, 1_000, 0),
            needed(),
            fault(FaultKind::Crash, 0, 0),
        ]),
        &Keep::Original,
    )
    .unwrap();
    assert!(out.plan.faults.iter().all(|f| f.for_ms > 0), "{out:?}");
    assert_eq!(out.plan.faults.len(), 1);
}

/// A client pings a server over a fresh TCP connection every 10 ms for
/// 3 s, each ping under a 40 ms timeout; the invariants see only the
/// answers: no gap of 300 ms or more between two (an outage), and none of
/// 60 ms or more (a hiccup).
struct Pings;

const OUTAGE: &str = "no outage of 300 ms";
const HICCUP: &str = "no hiccup of 60 ms";

impl Scenario for Pings {
    type Record = Vec<Duration>;
    fn name(&self) -> &str {
        "pings"
    }
    fn about(&self) -> &str {
        "pings every 10 ms; outages and hiccups"
    }
    fn targets(&self) -> Targets {
        Targets::new()
            .link("client", "server")
            .host("server", "nothing")
    }
    fn network(&self, _: u64) -> Network {
        Network::latency_ms(1, 5)
    }
    fn build(&self, ctx: &Ctx<Vec<Duration>>, sim: &mut turmoil::Sim<'_>) {
        sim.host("server", || async {
            let listener = turmoil::net::TcpListener::bind(("0.0.0.0", 9)).await?;
            loop {
                let (mut s, _) = listener.accept().await?;
                tokio::task::spawn_local(async move {
                    let mut b = [0; 1];
                    if s.read_exact(&mut b).await.is_ok() {
                        let _ = s.write_all(&b).await;
                    }
                });
            }
        });
        let ctx = ctx.clone();
        sim.client("client", async move {
            while now() < Duration::from_secs(3) {
                let ping = async {
                    let mut s = turmoil::net::TcpStream::connect(("server", 9)).await?;
                    s.write_all(&[1]).await?;
                    let mut b = [0; 1];
                    s.read_exact(&mut b).await?;
                    Ok::<_, std::io::Error>(())
                };
                if let Ok(Ok(())) = tokio::time::timeout(Duration::from_millis(40), ping).await {
                    ctx.record().push(now());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(())
        });
    }
    fn check(&self, _: &RunInfo, answers: &Vec<Duration>) -> Vec<Violation> {
        let mut edges = vec![Duration::ZERO, Duration::from_secs(3)];
        edges.extend(answers);
        edges.sort();
        let gap = edges
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default();
        let mut v = Vec::new();
        for (name, limit) in [(OUTAGE, 300), (HICCUP, 60)] {
            if gap >= Duration::from_millis(limit) {
                v.push(Violation::new(name, format!("a gap of {gap:?}")));
            }
        }
        v
    }
}

#[test]
fn bisection_finds_the_shortest_partition_that_still_fails() {
    let partition = Fault::new(FaultKind::Partition, "client<->server", 1_000, 1_700);
    let original = plan(vec![
        Fault::new(FaultKind::Hold, "client<->server", 300, 120),
        partition,
    ]);
    let out = shrink_keeping(&Pings, 0, &original, &Keep::Original).unwrap();
    assert_eq!(out.plan.faults.len(), 1, "{out:?}");
    assert_eq!(out.plan.faults[0].kind, FaultKind::Partition);
    assert!(
        out.violations.iter().any(|v| v.invariant == OUTAGE),
        "{out:?}"
    );
    assert_one_minimal(&Pings, &out.plan, &[OUTAGE]);
    // Near the edge: 20 ms shorter, and there is no outage. (Halving from
    // 1,700 ms stops at 425.)
    let f = &out.plan.faults[0];
    let mut shorter = out.plan.clone();
    shorter.faults[0].for_ms = f.for_ms - 20;
    let v = run(&Pings, 0, &shorter).unwrap().violations;
    assert!(
        !v.iter().any(|v| v.invariant == OUTAGE),
        "{} ms still fails at {} ms: {v:?}",
        f.for_ms,
        f.for_ms - 20
    );
    assert!(out.runs < 80, "{} runs", out.runs);
}

#[test]
fn the_checker_names_what_it_kept_and_can_keep_one_invariant() {
    let err = Checker::new(&Pings).try_seeds(0..4).unwrap_err();
    assert!(err.contains("still breaking "), "{err}");
    let err = Checker::new(&Pings)
        .keep_invariant(HICCUP)
        .try_seeds(0..4)
        .unwrap_err();
    assert!(err.contains(&format!("still breaking {HICCUP}:")), "{err}");
}

/// Every run a shrink reports is a run the scenario made: the count is
/// exact (the check counts its own calls).
#[test]
fn a_shrink_counts_its_runs() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static CHECKS: AtomicUsize = AtomicUsize::new(0);
    struct Counted;
    impl Scenario for Counted {
        type Record = ();
        fn name(&self) -> &str {
            "counted"
        }
        fn about(&self) -> &str {
            ""
        }
        fn targets(&self) -> Targets {
            Ledger { panics: false }.targets()
        }
        fn build(&self, ctx: &Ctx<()>, sim: &mut turmoil::Sim<'_>) {
            Ledger { panics: false }.build(ctx, sim)
        }
        fn check(&self, run: &RunInfo, r: &()) -> Vec<Violation> {
            CHECKS.fetch_add(1, Ordering::Relaxed);
            Ledger { panics: false }.check(run, r)
        }
    }
    let out = shrink_keeping(
        &Counted,
        0,
        &plan(vec![fault(FaultKind::Hold, 10, 0), needed()]),
        &Keep::Original,
    )
    .unwrap();
    assert_eq!(out.runs, CHECKS.load(Ordering::Relaxed));
    assert!(out.runs > 10, "{} runs", out.runs);
}

/// A failure that needs a longer fault the later it starts (at least
/// `at/10 + 100` ms): the first round moves the fault to 0 ms, and only a
/// second round can then shorten it to 100 ms. A shrink that stops after
/// one round that changed something keeps 200 ms.
struct Drift;

impl Scenario for Drift {
    type Record = ();
    fn name(&self) -> &str {
        "drift"
    }
    fn about(&self) -> &str {
        "fails by reading its plan"
    }
    fn targets(&self) -> Targets {
        Ledger { panics: false }.targets()
    }
    fn build(&self, ctx: &Ctx<()>, sim: &mut turmoil::Sim<'_>) {
        Ledger { panics: false }.build(ctx, sim)
    }
    fn check(&self, run: &RunInfo, _: &()) -> Vec<Violation> {
        run.plan
            .of(FaultKind::Partition)
            .filter(|f| f.for_ms >= f.at_ms / 10 + 100)
            .map(|f| Violation::new("drift", format!("{} ms at {}", f.for_ms, f.at_ms)))
            .collect()
    }
}

#[test]
fn rounds_repeat_until_nothing_changes() {
    let out = shrink_keeping(
        &Drift,
        0,
        &plan(vec![fault(FaultKind::Partition, 1_000, 900)]),
        &Keep::Original,
    )
    .unwrap();
    let f = &out.plan.faults[0];
    assert_eq!((f.at_ms, f.for_ms), (0, 100), "{out:?}");
}

/// A check that reads the plan may count a fault of any length, even 0:
/// the shrinker still never makes a 0 ms fault (lengths stop at 1) nor
/// searches starts past the fault's end.
#[test]
fn trimming_never_makes_a_zero_ms_fault() {
    struct AnyHold;
    impl Scenario for AnyHold {
        type Record = ();
        fn name(&self) -> &str {
            "any-hold"
        }
        fn about(&self) -> &str {
            ""
        }
        fn targets(&self) -> Targets {
            Ledger { panics: false }.targets()
        }
        fn build(&self, ctx: &Ctx<()>, sim: &mut turmoil::Sim<'_>) {
            Ledger { panics: false }.build(ctx, sim)
        }
        fn check(&self, run: &RunInfo, _: &()) -> Vec<Violation> {
            run.plan
                .of(FaultKind::Hold)
                .map(|_| Violation::new("no hold", "a hold"))
                .collect()
        }
    }
    let out = shrink_keeping(
        &AnyHold,
        0,
        &plan(vec![fault(FaultKind::Hold, 100, 100)]),
        &Keep::Original,
    )
    .unwrap();
    let f = &out.plan.faults[0];
    assert_eq!((f.at_ms, f.for_ms), (0, 1), "{out:?}");
}

/// `Checker::keep_invariant`: the seed reported is the first that breaks
/// the named invariant (not merely the first that fails), and when no seed
/// breaks it the first failing seed is shrunk keeping what it broke.
#[test]
fn the_checker_reports_the_first_seed_that_breaks_the_kept_invariant() {
    let s = Ledger { panics: false };
    let breaks = |seed: u64, name: &str| {
        run(&s, seed, &s.swarm().plan(seed))
            .unwrap()
            .violations
            .iter()
            .any(|v| v.invariant == name)
    };
    let first_lost = (0..64)
        .find(|seed| breaks(*seed, LOST))
        .expect("a seed loses a write");
    let first_slow = (0..64)
        .find(|seed| breaks(*seed, SLOW))
        .expect("a slow seed");
    assert!(first_slow < first_lost, "the test needs a slow seed first");
    let err = Checker::new(&s)
        .keep_invariant(LOST)
        .try_seeds(0..64)
        .unwrap_err();
    assert!(
        err.contains(&format!("the first, seed {first_lost}:")),
        "{err}"
    );
    assert!(err.contains(&format!("still breaking {LOST}:")), "{err}");
    // Named but never broken: the first failing seed, shrunk as usual.
    let err = Checker::new(&s)
        .keep_invariant("no such invariant")
        .try_seeds(0..64)
        .unwrap_err();
    assert!(
        err.contains(&format!("the first, seed {first_slow}:")) && err.contains("shrunk from "),
        "{err}"
    );
}
