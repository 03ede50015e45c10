//! Declared points in a run: which count, what fails, and how a test that
//! never reached one says so (see `src/assert.rs`'s table).

use std::process::ExitCode;
use std::time::Duration;

use async_patterns::points as core_points;
use async_patterns::{BreakerConfig, CircuitBreaker, ManualClock};
use async_patterns_sim::testing::Checker;
use async_patterns_sim::{Ctx, FaultPlan, Point, RunInfo, Scenario, Violation, point, run};

/// A client that waits `wait_ms`, then marks points; `seed` decides a
/// `sometimes` (true on even seeds).
struct Marks {
    points: Vec<Point>,
}

impl Scenario for Marks {
    type Record = ();
    fn name(&self) -> &str {
        "marks"
    }
    fn about(&self) -> &str {
        "marks points"
    }
    fn points(&self) -> Vec<Point> {
        self.points.clone()
    }
    fn build(&self, ctx: &Ctx<()>, sim: &mut turmoil::Sim<'_>) {
        let even = ctx.seed().is_multiple_of(2);
        sim.client("c", async move {
            point::reachable!("declared");
            point::reachable!("undeclared");
            point::sometimes!("even seed", even);
            point::always!("small", true);
            tokio::time::sleep(Duration::from_millis(30)).await;
            point::always!("small", false, "was {}", 7);
            point::always!("small", false, "was {}", 8);
            // The name of a declared point, under another kind: not
            // counted, and a violation that says why.
            point::reachable!("never");
            Ok(())
        });
    }
    fn check(&self, _: &RunInfo, _: &()) -> Vec<Violation> {
        // Outside the hosts, still in the run: counted too.
        point::unreachable!("in check", "checked");
        point::unreachable!("twice in check");
        point::unreachable!("twice in check");
        Vec::new()
    }
}

fn catalogue() -> Vec<Point> {
    vec![
        Point::reachable("declared", "the client started"),
        Point::sometimes("even seed", "the seed was even"),
        Point::always("small", "the value stays small"),
        Point::unreachable("never", "a line no run may reach"),
        Point::unreachable("in check", "the check ran"),
        Point::unreachable("twice in check", "the check ran it twice"),
    ]
}

#[test]
fn a_run_counts_declared_points_only() {
    let s = Marks {
        points: catalogue(),
    };
    let even = run(&s, 2, &FaultPlan::default()).unwrap();
    assert_eq!(
        even.points,
        [
            "declared",
            "even seed",
            "small",
            "in check",
            "twice in check"
        ]
    );
    let odd = run(&s, 3, &FaultPlan::default()).unwrap();
    assert_eq!(
        odd.points,
        ["declared", "small", "in check", "twice in check"]
    );
    // Nothing declared: nothing counted, nothing violated.
    let none = run(&Marks { points: vec![] }, 2, &FaultPlan::default()).unwrap();
    assert!(none.points.is_empty());
    assert!(none.violations.is_empty(), "{:?}", none.violations);
}

#[test]
fn a_false_always_and_a_reached_unreachable_are_violations() {
    let s = Marks {
        points: catalogue(),
    };
    let out = run(&s, 2, &FaultPlan::default()).unwrap();
    let got: Vec<String> = out.violations.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "declared points: \"never\" is declared unreachable but marked with reachable!: its \
             macro must be the kind it is declared with (that mark was not counted)",
            "small: the value stays small: was 7 (false 2 of 3 times it was evaluated) (at 30ms)",
            "in check: the check ran: checked (reached once)",
            "twice in check: the check ran it twice (reached 2 times)",
        ]
    );
    assert_eq!(out.violations[1].at, Some(Duration::from_millis(30)));
    // The first failure is in the trace, where it happened; the later one
    // (and the check's, outside the run's time) is not.
    let marks: Vec<&String> = out.trace.iter().filter(|e| e.contains("point: ")).collect();
    assert_eq!(marks.len(), 1, "{:?}", out.trace);
    assert!(
        marks[0].ends_with("point: always \"small\" false: was 7"),
        "{}",
        marks[0]
    );
}

#[test]
fn a_catalogue_with_a_name_twice_is_refused() {
    let mut points = catalogue();
    points.push(Point::sometimes("declared", "again"));
    let out = run(&Marks { points }, 0, &FaultPlan::default()).unwrap();
    assert_eq!(out.violations.len(), 1);
    assert_eq!(out.violations[0].invariant, "declared points");
    assert!(
        out.violations[0]
            .detail
            .contains("\"declared\" is declared twice")
    );
    let unnamed = vec![Point::reachable("", "no name")];
    let out = run(&Marks { points: unnamed }, 0, &FaultPlan::default()).unwrap();
    assert_eq!(out.violations[0].invariant, "declared points");
    // A test and the command line refuse it before any run: nothing run,
    // shrunk or saved, whatever the command.
    let mut twice = catalogue();
    twice.push(Point::sometimes("declared", "again"));
    let twice = Marks { points: twice };
    let err = Checker::new(&twice).try_seeds(0..2).unwrap_err();
    assert_eq!(
        err,
        "marks: the point \"declared\" is declared twice (a point's name is its identity) \
         (no seed was run)"
    );
    assert!(Checker::new(&twice).caught(0..2).is_err());
    for args in [
        &["sim", "list"][..],
        &["sim", "replay", "marks", "--seed", "0"],
        &[
            "sim",
            "shrink",
            "marks",
            "--seed",
            "0",
            "--out",
            "/nonexistent/x.json",
        ],
        &["sim", "sweep", "--seeds", "1"],
    ] {
        let code =
            async_patterns_sim::cli::App::new(&[&twice]).main_from(args.iter().map(Into::into));
        assert_eq!(code, ExitCode::from(2), "{args:?}");
    }
}

/// A breaker in a host that opens on seeds divisible by 3 only.
struct Opens;

impl Scenario for Opens {
    type Record = ();
    fn name(&self) -> &str {
        "opens"
    }
    fn about(&self) -> &str {
        "a breaker that opens on some seeds"
    }
    fn points(&self) -> Vec<Point> {
        vec![Point::reachable(
            core_points::BREAKER_OPENED,
            "the breaker opened",
        )]
    }
    fn build(&self, ctx: &Ctx<()>, sim: &mut turmoil::Sim<'_>) {
        let fail = ctx.seed().is_multiple_of(3);
        sim.client("c", async move {
            let config = BreakerConfig::builder()
                .consecutive_failures(1)
                .build()
                .unwrap();
            let breaker = CircuitBreaker::new(config, ManualClock::new());
            let permit = breaker.try_acquire().unwrap();
            if fail {
                permit.failure();
            } else {
                permit.success();
            }
            Ok(())
        });
    }
    fn check(&self, _: &RunInfo, _: &()) -> Vec<Violation> {
        Vec::new()
    }
}

#[test]
fn the_cores_points_count_and_a_test_that_never_reached_one_fails() {
    assert_eq!(
        run(&Opens, 3, &FaultPlan::default()).unwrap().points,
        [core_points::BREAKER_OPENED]
    );
    assert!(
        run(&Opens, 4, &FaultPlan::default())
            .unwrap()
            .points
            .is_empty()
    );
    Checker::new(&Opens).try_seeds(0..2).unwrap();
    let err = Checker::new(&Opens).try_seeds(1..3).unwrap_err();
    assert!(
        err.starts_with("opens: 2 seeds pass, but some declared points were never reached:"),
        "{err}"
    );
    assert!(err.contains("reachable \"async-patterns: breaker opened\" (the breaker opened)"));
    Checker::new(&Opens)
        .allow_unreached()
        .try_seeds(1..3)
        .unwrap();
}
