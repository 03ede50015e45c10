//! Fault sites (see `src/site.rs`): a server writes to its store every
//! 50 ms through a site; plans turn the site on to fail the write, delay
//! it, or crash the server at that very instant.

use std::time::Duration;

use async_patterns_assert::{self as point, Fire};
use async_patterns_sim::shrink::{Keep, shrink_keeping};
use async_patterns_sim::{
    Ctx, Fault, FaultKind, FaultPlan, RunInfo, Scenario, Site, SiteAction, SiteFault, Swarm,
    Targets, Violation, now, run,
};

const EVERY: Duration = Duration::from_millis(50);

#[derive(Default)]
struct Seen {
    /// (when the write began, what the site said) for each write.
    writes: Vec<(Duration, Fire)>,
    /// When the server (re)started.
    starts: Vec<Duration>,
}

/// A server that writes every 50 ms through the site "store write" (and
/// reaches "audit" never); its check fails when a write failed.
struct Store;

impl Scenario for Store {
    type Record = Seen;
    fn name(&self) -> &str {
        "store"
    }
    fn about(&self) -> &str {
        "a server writing every 50 ms through a fault site"
    }
    fn targets(&self) -> Targets {
        Targets::new()
            .link("client", "server")
            .host("server", "its store")
            .site(
                Site::new("store write", "a write to the store")
                    .fails()
                    .delays(),
            )
            .site(Site::new("audit", "never reached"))
    }
    fn build(&self, ctx: &Ctx<Seen>, sim: &mut turmoil::Sim<'_>) {
        let c = ctx.clone();
        sim.host("server", move || {
            let ctx = c.clone();
            async move {
                ctx.record().starts.push(now());
                loop {
                    tokio::time::sleep(EVERY).await;
                    let at = now();
                    let fire = point::site!("store write");
                    if let Fire::Delay(d) = fire {
                        tokio::time::sleep(d).await;
                    }
                    ctx.log(format!("server: write {fire:?}"));
                    ctx.record().writes.push((at, fire));
                }
            }
        });
        sim.client("client", async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            Ok(())
        });
    }
    fn check(&self, _: &RunInfo, seen: &Seen) -> Vec<Violation> {
        let failed = seen.writes.iter().filter(|(_, f)| *f == Fire::Fail).count();
        if failed == 0 {
            vec![]
        } else {
            vec![Violation::new("writes succeed", format!("{failed} failed"))]
        }
    }
}

fn plan(sites: Vec<SiteFault>) -> FaultPlan {
    FaultPlan {
        sites,
        ..FaultPlan::default()
    }
}

fn write_site(action: SiteAction) -> SiteFault {
    SiteFault::new("store write", action)
}

#[test]
fn a_failing_site_fails_every_write_at_100_percent_and_says_so_in_the_trace() {
    let out = run(
        &Store,
        1,
        &plan(vec![write_site(SiteAction::Fail).percent(100)]),
    )
    .unwrap();
    assert_eq!(out.violations.len(), 1, "{:?}", out.violations);
    assert!(
        out.trace
            .iter()
            .any(|e| e.contains("site \"store write\" fired: fail")),
        "{:?}",
        &out.trace[..5]
    );
    // Without the entry, no write fails.
    assert!(run(&Store, 1, &plan(vec![])).unwrap().violations.is_empty());
}

/// What the site said to each write of a run, from its trace.
fn writes(sites: Vec<SiteFault>, seed: u64) -> Vec<String> {
    let out = run(&Store, seed, &plan(sites)).unwrap();
    out.trace
        .iter()
        .filter_map(|e| e.split_once("server: write ").map(|(_, w)| w.to_string()))
        .collect()
}

#[test]
fn a_site_fires_at_its_chance_from_a_stream_of_its_own() {
    let fail = write_site(SiteAction::Fail);
    let (mut reached, mut failed) = (0, 0);
    for seed in 0..10 {
        let alone = writes(vec![fail.clone()], seed);
        // An entry before it, for a site never reached, changes nothing:
        // each entry draws from its own stream, not from its position.
        let audit = SiteFault::new("audit", SiteAction::Crash).on("server");
        assert_eq!(
            writes(vec![audit, fail.clone()], seed),
            alone,
            "seed {seed}"
        );
        reached += alone.len();
        failed += alone.iter().filter(|w| *w == "Fail").count();
    }
    // 25% by default: 10 seeds of about 39 writes.
    assert!(reached > 300, "{reached}");
    let percent = failed * 100 / reached;
    assert!((18..=32).contains(&percent), "{failed} of {reached}");
    // A delay makes the next write later by its length.
    let slow = writes(
        vec![write_site(SiteAction::Delay).percent(100).lasting(150)],
        0,
    );
    assert!(slow.iter().all(|w| w == "Delay(150ms)"), "{slow:?}");
    assert_eq!(slow.len(), 2_000 / 200, "{slow:?}");
}

#[test]
fn a_crash_fired_at_a_site_takes_the_host_down_at_that_instant_for_its_length() {
    let entry = write_site(SiteAction::Crash)
        .on("server")
        .percent(100)
        .lasting(300);
    let out = run(&Store, 3, &plan(vec![entry])).unwrap();
    let chaos: Vec<&String> = out.trace.iter().filter(|e| e.contains("chaos:")).collect();
    // The first write is at 50 ms: the server goes down then, restarts
    // 300 ms later, writes again 50 ms after that and goes down again.
    assert!(chaos.len() >= 4, "{chaos:?}");
    assert!(
        chaos[0].contains("crash server (site \"store write\" fired)"),
        "{chaos:?}"
    );
    assert!(chaos[1].contains("bounce server"), "{chaos:?}");
    let at = |e: &str| -> u64 {
        // "   52.000 ms  chaos: ...": the instant, in ms.
        let digits: String = e
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        digits.parse::<f64>().unwrap().round() as u64
    };
    let (down, up, again) = (at(chaos[0]), at(chaos[1]), at(chaos[2]));
    // Reached at 50 ms, inside a step: down when that step ends (the
    // tick, 2 ms), back 300 ms after the site fired.
    assert!((50..=54).contains(&down), "{chaos:?}");
    assert_eq!(up, 350, "{chaos:?}");
    assert!((50..=56).contains(&(again - up)), "{chaos:?}");
}

#[test]
fn plans_with_sites_are_validated_against_the_declared_sites() {
    let targets = Store.targets();
    let cases = [
        (
            SiteFault::new("stor write", SiteAction::Fail),
            "site entry 1 (fail): no site \"stor write\"; the scenario declares: store write, audit",
        ),
        (
            SiteFault::new("audit", SiteAction::Fail),
            "site entry 1 (fail): the site \"audit\" does not declare that it fails",
        ),
        (
            SiteFault::new("audit", SiteAction::Delay),
            "site entry 1 (delay): the site \"audit\" does not declare that it delays",
        ),
        (
            write_site(SiteAction::Crash),
            "site entry 1 (crash): a fault action needs a \"target\"",
        ),
        (
            write_site(SiteAction::Crash).on("client"),
            "site entry 1 (crash): no host \"client\"; the scenario declares: server",
        ),
        (
            write_site(SiteAction::Fail).on("server"),
            "site entry 1 (fail): \"target\" does not belong to this action",
        ),
        (
            write_site(SiteAction::Fail).percent(0),
            "site entry 1 (fail): percent 0 is not in 1-100",
        ),
        (
            write_site(SiteAction::Fail).percent(101),
            "site entry 1 (fail): percent 101 is not in 1-100",
        ),
        (
            write_site(SiteAction::Fail).from(500).until(500),
            "site entry 1 (fail): from_ms 500 is not before until_ms 500: the entry would never fire",
        ),
    ];
    for (entry, says) in cases {
        let err = plan(vec![entry]).validate(&targets, &[]).unwrap_err();
        assert_eq!(err.to_string(), says);
    }
    for entry in [
        write_site(SiteAction::Fail).percent(1),
        write_site(SiteAction::Delay).percent(100).lasting(0),
        write_site(SiteAction::Partition).on("server<->client"),
        SiteFault::new("audit", SiteAction::Crash).on("server"),
        write_site(SiteAction::Fail).from(499).until(500),
        write_site(SiteAction::Fail).from(u64::MAX),
    ] {
        plan(vec![entry.clone()])
            .validate(&targets, &[])
            .unwrap_or_else(|e| panic!("{entry:?}: {e}"));
    }
    // Fields of another action, and unknown ones, are refused when read.
    let text =
        r#"{"faults": [], "sites": [{"site": "store write", "action": "fail", "for_ms": 3}]}"#;
    let p: FaultPlan = serde_json::from_str(text).unwrap();
    assert_eq!(
        p.validate(&targets, &[]).unwrap_err().to_string(),
        "site entry 1 (fail): \"for_ms\" does not belong to this action"
    );
    let text = r#"{"faults": [], "sites": [{"site": "store write", "action": "fail", "when": 3}]}"#;
    let err = serde_json::from_str::<FaultPlan>(text).unwrap_err();
    assert!(err.to_string().contains("unknown field `when`"), "{err}");
    let text = r#"{"faults": [], "sites": [{"site": "store write", "action": "explode"}]}"#;
    let err = serde_json::from_str::<FaultPlan>(text).unwrap_err();
    assert!(
        err.to_string().contains("unknown variant `explode`"),
        "{err}"
    );
}

#[test]
fn the_swarm_draws_site_entries_from_a_stream_of_its_own() {
    let with = Swarm::over(&Store.targets());
    let without = Swarm::over(&Targets::new().link("client", "server").host("server", "x"));
    let mut on = [0; 2];
    for seed in 0..400 {
        let (p, q) = (with.plan(seed), without.plan(seed));
        // The faults are the ones the seed draws without sites.
        assert_eq!(p.faults, q.faults, "seed {seed}");
        assert!(q.sites.is_empty());
        p.validate(&Store.targets(), &[])
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let (start, length) = (with.start_ms(), with.length_ms());
        for e in &p.sites {
            on[usize::from(e.site == "audit")] += 1;
            assert_eq!(e.percent, None, "the default chance");
            // On until an instant drawn as a fault's end is.
            let until = e.until_ms.expect("an end");
            assert!(
                (start.0 + length.0..=start.1 + length.1).contains(&until),
                "{e:?}"
            );
        }
    }
    // Each site is on in about a quarter of the seeds.
    for n in on {
        assert!((70..=130).contains(&n), "{on:?}");
    }
}

#[test]
fn a_shrink_drops_the_site_entries_it_does_not_need_and_trims_a_length() {
    let failing = FaultPlan {
        faults: vec![Fault::new(
            FaultKind::Partition,
            "client<->server",
            100,
            400,
        )],
        sites: vec![
            write_site(SiteAction::Delay).percent(50).lasting(700),
            write_site(SiteAction::Fail).percent(20),
            SiteFault::new("audit", SiteAction::Crash)
                .on("server")
                .lasting(900),
        ],
        sabotage: None,
        disk: None,
    };
    // A seed on which the plan fails (the fail entry fires at 20% where
    // the delay entry, first in the plan, did not fire).
    let seed = (0..20)
        .find(|s| !run(&Store, *s, &failing).unwrap().violations.is_empty())
        .expect("a failing seed");
    let small = shrink_keeping(&Store, seed, &failing, &Keep::Original).unwrap();
    assert_eq!(small.plan.faults, vec![]);
    assert_eq!(
        small.plan.sites,
        vec![write_site(SiteAction::Fail).percent(20)]
    );
}

/// A window's end shrinks to the earliest that still fails, and never to
/// a window that does not open: a write every 50 ms, failing from 250 ms.
#[test]
fn a_shrink_trims_a_window_to_the_one_reach_it_needs() {
    let failing = plan(vec![
        write_site(SiteAction::Fail)
            .percent(100)
            .from(250)
            .until(2_000),
    ]);
    let small = shrink_keeping(&Store, 1, &failing, &Keep::Original).unwrap();
    let e = &small.plan.sites[0];
    assert_eq!((e.from_ms, e.until_ms), (Some(250), Some(251)));
    assert_eq!(
        run(&Store, 1, &small.plan).unwrap().moments.len(),
        1,
        "{:?}",
        small.plan
    );
}

#[test]
fn a_run_with_sites_replays_exactly() {
    let sites = vec![
        write_site(SiteAction::Delay).percent(30).lasting(70),
        write_site(SiteAction::Crash)
            .on("server")
            .percent(10)
            .lasting(200),
    ];
    let a = run(&Store, 9, &plan(sites.clone())).unwrap();
    let b = run(&Store, 9, &plan(sites)).unwrap();
    assert_eq!(a.trace, b.trace);
    assert!(a.trace.iter().any(|e| e.contains("fired")), "{:?}", a.trace);
}

#[test]
fn a_site_says_what_it_handles_and_an_entry_when_it_is_over() {
    let site = Site::new("store write", "a write").fails();
    assert_eq!((site.name(), site.about()), ("store write", "a write"));
    assert_eq!(site.handles(), ["fail"]);
    assert_eq!(
        Site::new("x", "y").delays().fails().handles(),
        ["fail", "delay"]
    );
    assert!(Site::new("x", "y").handles().is_empty());
    let ms = Duration::from_millis;
    let crash = write_site(SiteAction::Crash)
        .on("server")
        .lasting(300)
        .until(1_000);
    assert_eq!(crash.end(), ms(1_300));
    assert_eq!(write_site(SiteAction::Fail).until(1_000).end(), ms(1_000));
    assert_eq!(write_site(SiteAction::Delay).until(10).end(), ms(510));
    assert_eq!(write_site(SiteAction::Fail).end(), ms(u64::MAX));
    // A plan heals when its last site entry is over.
    let p = plan(vec![crash]);
    assert_eq!(p.last_end(), ms(1_300));
}

/// A window of one ms at 100% fires at the one write inside it (the
/// server writes every 50 ms: at 250 ms here), and no other.
#[test]
fn an_entry_fires_only_inside_its_window() {
    let ats = |entry: SiteFault| -> Vec<u64> {
        let out = run(&Store, 1, &plan(vec![entry])).unwrap();
        out.moments.iter().map(|m| m.at_ms).collect()
    };
    let at = ats(write_site(SiteAction::Fail).percent(100));
    assert_eq!(at[..3], [50, 100, 150], "{at:?}");
    assert_eq!(
        ats(write_site(SiteAction::Fail)
            .percent(100)
            .from(250)
            .until(251)),
        [250]
    );
    assert!(
        ats(write_site(SiteAction::Fail)
            .percent(100)
            .from(251)
            .until(300))
        .is_empty()
    );
    let later = ats(write_site(SiteAction::Fail).percent(100).from(1_001));
    assert_eq!(later.first(), Some(&1_050), "{later:?}");
}

#[test]
fn an_entry_fires_only_before_its_end_and_the_trace_says_what_it_did() {
    let out = run(
        &Store,
        1,
        &plan(vec![write_site(SiteAction::Fail).percent(100).until(500)]),
    )
    .unwrap();
    let writes: Vec<&String> = out
        .trace
        .iter()
        .filter(|e| e.contains("server: write"))
        .collect();
    // Writes at 50, 100, ... 450 fail; from 500 on they pass.
    assert_eq!(
        writes.iter().filter(|e| e.ends_with("Fail")).count(),
        9,
        "{writes:?}"
    );
    assert!(
        writes[9..].iter().all(|e| e.ends_with("Pass")),
        "{writes:?}"
    );
    let slow = run(
        &Store,
        1,
        &plan(vec![
            write_site(SiteAction::Delay).percent(100).lasting(150),
        ]),
    )
    .unwrap();
    assert!(
        slow.trace
            .iter()
            .any(|e| e.ends_with("site \"store write\" fired: delay 150 ms")),
        "{:?}",
        &slow.trace[..6]
    );
}

#[test]
fn a_fault_an_entry_started_is_not_started_again_while_it_is_on() {
    let cut = write_site(SiteAction::Partition)
        .on("client<->server")
        .percent(100)
        .lasting(300);
    let out = run(&Store, 1, &plan(vec![cut])).unwrap();
    let starts: Vec<&String> = out
        .trace
        .iter()
        .filter(|e| e.contains("chaos: partition"))
        .collect();
    // The server writes every 50 ms and the site fires every time, but a
    // partition starts only when the last one is over: at 50, 350+, ...
    assert!(out.trace.iter().all(|e| !e.contains("one is already on")));
    assert!((5..=7).contains(&starts.len()), "{starts:?}");
}

#[test]
fn fail_and_delay_need_the_site_to_handle_each() {
    let delays_only = Targets::new()
        .host("server", "x")
        .site(Site::new("s", "a site").delays());
    let err = plan(vec![SiteFault::new("s", SiteAction::Fail)])
        .validate(&delays_only, &[])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "site entry 1 (fail): the site \"s\" does not declare that it fails"
    );
    assert!(
        plan(vec![SiteFault::new("s", SiteAction::Delay)])
            .validate(&delays_only, &[])
            .is_ok()
    );
}

#[test]
fn a_run_says_which_entries_fired_each_once() {
    let out = run(
        &Store,
        1,
        &plan(vec![
            SiteFault::new("audit", SiteAction::Crash).on("server"),
            write_site(SiteAction::Fail).percent(100),
            write_site(SiteAction::Fail).percent(50),
            write_site(SiteAction::Delay).percent(1).until(1),
            write_site(SiteAction::Delay).percent(100),
        ]),
    )
    .unwrap();
    // "audit" is never reached, the first delay is over before the first
    // write, and the second is drawn at every write but the failure before
    // it in the plan answers first: only the failure fired (twice in the
    // plan, once here), one moment a write.
    assert_eq!(out.fired, ["store write: fail"]);
    assert!(
        out.moments.iter().all(|m| m.action == SiteAction::Fail),
        "{:?}",
        out.moments
    );
    assert!(run(&Store, 1, &plan(vec![])).unwrap().fired.is_empty());
}

#[test]
fn a_run_says_when_its_sites_fired_the_first_64_times() {
    let one = run(
        &Store,
        1,
        &plan(vec![write_site(SiteAction::Fail).percent(100)]),
    )
    .unwrap();
    let at: Vec<u64> = one
        .moments
        .iter()
        .map(|m| {
            assert_eq!(
                (m.site.as_str(), m.action),
                ("store write", SiteAction::Fail)
            );
            m.at_ms
        })
        .collect();
    // A write every 50 ms, each one a moment.
    assert_eq!(at[..3], [50, 100, 150]);
    assert!((30..64).contains(&at.len()), "{}", at.len());
    // Two entries acting at every write (a failure, and a partition of
    // 1 ms, over before the next write): two moments a write, the first 64
    // kept.
    let fail = write_site(SiteAction::Fail).percent(100);
    let cut = write_site(SiteAction::Partition)
        .on("server<->client")
        .percent(100)
        .lasting(1);
    let two = run(&Store, 1, &plan(vec![fail, cut])).unwrap();
    assert_eq!(two.moments.len(), 64);
    assert_eq!(two.moments[0].at_ms, two.moments[1].at_ms);
    assert_eq!(
        (two.moments[0].action, two.moments[1].action),
        (SiteAction::Fail, SiteAction::Partition)
    );
    assert_eq!(two.moments[63].at_ms, 32 * 50);
    // Nothing fired, no moment.
    assert!(run(&Store, 1, &plan(vec![])).unwrap().moments.is_empty());
}

/// A run's end, and the faults it never reached (`replay` notes them).
#[test]
fn a_run_says_when_it_ended_and_which_faults_never_started() {
    use async_patterns_sim::{Fault, FaultKind};
    let plan = FaultPlan {
        faults: vec![
            Fault::new(FaultKind::Crash, "server", 100, 50),
            Fault::new(FaultKind::Crash, "server", 1_999, 50),
            Fault::new(FaultKind::Crash, "server", 2_000, 50),
            Fault::new(FaultKind::Crash, "server", 60_000, 50),
        ],
        ..FaultPlan::default()
    };
    let out = run(&Store, 1, &plan).unwrap();
    // The client's 2 s are the workload: the run ends a tick or two
    // later.
    assert!(
        (2_000..2_010).contains(&out.ended.as_millis()),
        "{:?}",
        out.ended
    );
    // Three crashes started (the last two at the end's first tick); the
    // one at 60 s never did.
    let crashes = out
        .trace
        .iter()
        .filter(|e| e.contains("chaos: crash"))
        .count();
    assert_eq!(crashes, 3, "{:?}", out.trace);
    assert_eq!(out.unstarted(&plan), 1);
    // Site entries: one opening before the end, one exactly at it (the
    // run has ended: it never fired), one long after.
    let end = out.ended.as_millis() as u64;
    let entries = FaultPlan {
        sites: vec![
            write_site(SiteAction::Fail).from(end - 1),
            write_site(SiteAction::Delay).from(end),
            write_site(SiteAction::Fail).from(u64::MAX),
        ],
        ..FaultPlan::default()
    };
    let again = run(&Store, 1, &entries).unwrap();
    assert_eq!(again.ended, out.ended);
    assert_eq!(again.unopened(&entries), 2);
    assert_eq!(out.unopened(&plan), 0);
}
