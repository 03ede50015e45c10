//! Every fault kind does what the table in `fault`'s docs says, on the
//! target it names: two hosts exchange a datagram every 10 ms for a second,
//! each stamped with its send time, and the arrivals show what the network
//! did. Also: a crash restarts the host's closure and keeps the record
//! (durable) while the closure's own state is lost (volatile); overlapping
//! faults combine; undeclared hosts and sabotages are reported.

use std::time::Duration;

use async_patterns_sim::testing::Checker;
use async_patterns_sim::{
    Ctx, Fault, FaultKind, FaultPlan, Network, RunInfo, Sabotage, Scenario, Targets, Violation,
    now, run, run_checked,
};

const PORT: u16 = 1;
const EVERY_MS: u64 = 10;
const COUNT: u64 = 100;

/// Hosts `a` (a client) and `b` (a crashable host) send each other a
/// datagram every 10 ms; both record what arrives.
struct Pingers {
    /// Declare a host that `build` does not make.
    phantom: bool,
}

/// The same, with an idle third host `c` and a second declared link,
/// `a<->c`, declared first (so `a<->b` is the second link).
struct Triangle;

impl Scenario for Triangle {
    type Record = Seen;
    fn name(&self) -> &str {
        "triangle"
    }
    fn about(&self) -> &str {
        "pingers, and an idle host c"
    }
    fn targets(&self) -> Targets {
        Targets::new().link("a", "c").link("a", "b")
    }
    fn network(&self, _: u64) -> Network {
        Network::latency_ms(5, 5)
    }
    fn build(&self, ctx: &Ctx<Seen>, sim: &mut turmoil::Sim<'_>) {
        sim.host("c", || async {
            let _socket = turmoil::net::UdpSocket::bind(("0.0.0.0", PORT)).await?;
            std::future::pending::<()>().await;
            Ok(())
        });
        Pingers { phantom: false }.build(ctx, sim);
    }
    fn check(&self, _: &RunInfo, _: &Seen) -> Vec<Violation> {
        Vec::new()
    }
}

/// Durable state: it lives in the record, outside `b`'s closure.
#[derive(Default)]
struct Seen {
    /// How many times `b`'s closure started (a restart runs it again).
    b_starts: u32,
}

impl Scenario for Pingers {
    type Record = Seen;
    fn name(&self) -> &str {
        "pingers"
    }
    fn about(&self) -> &str {
        "datagrams both ways, every 10 ms"
    }
    fn targets(&self) -> Targets {
        let t = Targets::new()
            .link("a", "b")
            .host("b", "the record; its own counter is lost");
        if self.phantom {
            t.host("c", "nothing")
        } else {
            t
        }
    }
    fn sabotages(&self) -> Vec<Sabotage> {
        vec![Sabotage {
            name: "declared",
            about: "a sabotage the code asks for by another name",
        }]
    }
    fn network(&self, _: u64) -> Network {
        Network::latency_ms(5, 5)
    }
    fn build(&self, ctx: &Ctx<Seen>, sim: &mut turmoil::Sim<'_>) {
        let b = ctx.clone();
        sim.host("b", move || {
            let ctx = b.clone();
            async move {
                let starts = {
                    let mut r = ctx.record();
                    r.b_starts += 1;
                    r.b_starts
                };
                ctx.log(format!("b: start {starts}"));
                if ctx.info().plan.sabotage.is_some() {
                    ctx.sabotaged("undeclared");
                }
                pinger(ctx, 'b', "a", true).await
            }
        });
        let a = ctx.clone();
        sim.client("a", pinger(a, 'a', "b", false));
    }
    fn check(&self, _: &RunInfo, _: &Seen) -> Vec<Violation> {
        Vec::new()
    }
}

/// Sends `COUNT` datagrams to `peer`, one every 10 ms, while logging what
/// arrives (`arrival FROM SENT_MS ARRIVED_MS #N`, N counted in the host's
/// own memory: volatile); a host (`forever`) keeps listening after.
async fn pinger(ctx: Ctx<Seen>, me: char, peer: &'static str, forever: bool) -> turmoil::Result {
    let socket = std::rc::Rc::new(turmoil::net::UdpSocket::bind(("0.0.0.0", PORT)).await?);
    let listen = {
        let (socket, ctx) = (socket.clone(), ctx.clone());
        tokio::task::spawn_local(async move {
            let mut counted = 0;
            let mut buf = [0u8; 8];
            while let Ok((_, _)) = socket.recv_from(&mut buf).await {
                counted += 1;
                let sent = u64::from_be_bytes(buf);
                let from = if me == 'a' { 'b' } else { 'a' };
                ctx.log(format!(
                    "arrival {from} {sent} {} #{counted}",
                    now().as_millis()
                ));
            }
        })
    };
    if me == 'b' {
        // Half a period after a: the two never send in one step, so each
        // send meets the link as the one before left it.
        tokio::time::sleep(Duration::from_millis(EVERY_MS / 2)).await;
    }
    for _ in 0..COUNT {
        tokio::time::sleep(Duration::from_millis(EVERY_MS)).await;
        let stamp = (now().as_millis() as u64).to_be_bytes();
        socket.send_to(&stamp, (peer, PORT)).await?;
    }
    tokio::time::sleep(Duration::from_millis(if forever { 60_000 } else { 1_000 })).await;
    listen.abort();
    Ok(())
}

fn plan(faults: Vec<Fault>) -> FaultPlan {
    FaultPlan {
        faults,
        sabotage: None,
        sites: Vec::new(),
        disk: None,
    }
}

/// The arrivals of a run of `faults`, from `from` ('a' or 'b'), as (sent,
/// arrived) ms.
fn arrivals(faults: Vec<Fault>, from: char) -> Vec<(u64, u64)> {
    let out = run(&Pingers { phantom: false }, 1, &plan(faults)).unwrap();
    assert_eq!(out.violations, vec![], "{:?}", out.trace);
    let seen = arrivals_of(&out);
    seen.into_iter()
        .filter(|(f, _, _)| *f == from)
        .map(|(_, s, a)| (s, a))
        .collect()
}

/// The arrivals a run logged: (from, sent ms, arrived ms).
fn arrivals_of(out: &async_patterns_sim::Outcome) -> Vec<(char, u64, u64)> {
    out.trace
        .iter()
        .filter_map(|line| {
            let rest = line.split("arrival ").nth(1)?;
            let mut w = rest.split_whitespace();
            let from = w.next()?.chars().next()?;
            Some((from, w.next()?.parse().ok()?, w.next()?.parse().ok()?))
        })
        .collect()
}

fn sent_in(arrivals: &[(u64, u64)], from: u64, to: u64) -> Vec<(u64, u64)> {
    arrivals
        .iter()
        .copied()
        .filter(|(s, _)| (from..to).contains(s))
        .collect()
}

/// Faults on the second declared link land on it, not the first.
#[test]
fn faults_land_on_the_link_they_name() {
    let out = run(
        &Triangle,
        1,
        &plan(vec![link(FaultKind::Partition, "a<->b", 300, 200)]),
    )
    .unwrap();
    assert_eq!(out.violations, vec![]);
    let to_a: Vec<(u64, u64)> = arrivals_of(&out)
        .into_iter()
        .filter(|(f, _, _)| *f == 'b')
        .map(|(_, s, a)| (s, a))
        .collect();
    assert_eq!(sent_in(&to_a, 300, 500), vec![]);
    let cut_c = run(
        &Triangle,
        1,
        &plan(vec![link(FaultKind::Partition, "a<->c", 300, 200)]),
    )
    .unwrap();
    assert_eq!(cut_c.violations, vec![]);
    assert_eq!(arrivals_of(&cut_c).len() as u64, 2 * COUNT);
}

/// A fault of 0 ms is no fault (its end would sort before its start and
/// leave it on for ever).
#[test]
fn a_zero_length_fault_is_no_fault() {
    let got = arrivals(vec![link(FaultKind::Partition, "a<->b", 300, 0)], 'a');
    assert_eq!(got.len() as u64, COUNT);
}

/// A scenario that reads something outside its seed (here a process-wide
/// counter) gives two different traces: the run-twice check reports it.
#[test]
fn the_run_twice_check_catches_a_nondeterministic_scenario() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static RUNS: AtomicU64 = AtomicU64::new(0);
    struct Leaky;
    impl Scenario for Leaky {
        type Record = ();
        fn name(&self) -> &str {
            "leaky"
        }
        fn about(&self) -> &str {
            ""
        }
        fn build(&self, ctx: &Ctx<()>, sim: &mut turmoil::Sim<'_>) {
            let ctx = ctx.clone();
            sim.client("c", async move {
                ctx.log(format!("run {}", RUNS.fetch_add(1, Ordering::Relaxed)));
                Ok(())
            });
        }
        fn check(&self, _: &RunInfo, _: &()) -> Vec<Violation> {
            Vec::new()
        }
    }
    let checked = run_checked(&Leaky, 0, &FaultPlan::default(), true).unwrap();
    assert!(!checked.deterministic());
    assert_eq!(checked.outcome.violations.len(), 1);
    assert_eq!(checked.outcome.violations[0].invariant, "deterministic");
    // Once, it cannot tell.
    let once = run_checked(&Leaky, 0, &FaultPlan::default(), false).unwrap();
    assert!(once.deterministic() && once.outcome.violations.is_empty());
    // A deterministic one passes twice.
    let steady = run_checked(&Pingers { phantom: false }, 0, &FaultPlan::default(), true).unwrap();
    assert!(
        steady.deterministic() && steady.again.is_some(),
        "{:?}",
        steady.outcome.violations
    );
}

fn link(kind: FaultKind, target: &str, at: u64, len: u64) -> Fault {
    Fault::new(kind, target, at, len)
}

#[test]
fn without_faults_everything_arrives_after_the_latency() {
    for from in ['a', 'b'] {
        let got = arrivals(vec![], from);
        assert_eq!(got.len() as u64, COUNT, "{from}: {got:?}");
        assert!(
            got.iter().all(|(s, a)| (5..=9).contains(&(a - s))),
            "{got:?}"
        );
    }
}

#[test]
fn a_partition_drops_both_ways_while_on() {
    let faults = || vec![link(FaultKind::Partition, "a<->b", 300, 200)];
    for from in ['a', 'b'] {
        let got = arrivals(faults(), from);
        assert_eq!(sent_in(&got, 300, 500), vec![], "{from}");
        assert_eq!(sent_in(&got, 510, 2_000).len(), 50, "{from}: {got:?}");
    }
}

/// Overlapping faults on one target say so in the trace, and the target
/// stays faulty until the last one ends: two crashes of `b` keep it down
/// from the first's start to the second's end.
#[test]
fn overlapping_faults_keep_their_target_faulty_until_the_last_ends() {
    let out = run(
        &Pingers { phantom: false },
        1,
        &plan(vec![
            Fault::new(FaultKind::Crash, "b", 300, 200),
            Fault::new(FaultKind::Crash, "b", 400, 300),
            link(FaultKind::Partition, "a<->b", 900, 200),
            link(FaultKind::Partition, "b<->a", 950, 50),
        ]),
    )
    .unwrap();
    assert_eq!(out.violations, vec![]);
    let chaos: Vec<&str> = out
        .trace
        .iter()
        .filter_map(|l| l.split("chaos: ").nth(1))
        .collect();
    assert_eq!(
        chaos,
        [
            "crash b",
            "crash b (one is already on)",
            "bounce b (another is still on)",
            "bounce b",
            "partition a <-> b",
            "partition a <-> b (one is already on)",
            "repair a <-> b (another is still on)",
            "repair a <-> b",
        ]
    );
    let to_b: Vec<(u64, u64)> = arrivals_of(&out)
        .into_iter()
        .filter(|(f, _, _)| *f == 'a')
        .map(|(_, s, a)| (s, a))
        .collect();
    assert_eq!(
        sent_in(&to_b, 300, 700),
        vec![],
        "b was up before the last crash ended"
    );
    assert_eq!(sent_in(&to_b, 900, 1_100), vec![]);
    assert!(out.trace.iter().any(|l| l.ends_with("b: start 2")));
    assert!(!out.trace.iter().any(|l| l.ends_with("b: start 3")));
}

#[test]
fn a_one_way_partition_drops_only_its_direction() {
    for (target, cut, open) in [("a->b", 'a', 'b'), ("b->a", 'b', 'a')] {
        let faults = || vec![link(FaultKind::PartitionOneway, target, 300, 200)];
        assert_eq!(
            sent_in(&arrivals(faults(), cut), 300, 500),
            vec![],
            "{target}"
        );
        assert_eq!(arrivals(faults(), open).len() as u64, COUNT, "{target}");
        let out = run(&Pingers { phantom: false }, 1, &plan(faults())).unwrap();
        let (from, to) = target.split_once("->").unwrap();
        for what in [
            format!("chaos: cut {from} -> {to}"),
            format!("chaos: mend {from} -> {to}"),
        ] {
            assert!(
                out.trace.iter().any(|l| l.ends_with(&what)),
                "{what}: {:?}",
                out.trace
            );
        }
    }
}

/// turmoil's loss, healing a link, marks both ways healthy; the harness
/// puts a one-way cut back, so loss on the same link cannot end it.
#[test]
fn loss_on_the_link_does_not_end_a_one_way_cut() {
    let faults = || {
        vec![
            link(FaultKind::PartitionOneway, "a->b", 200, 400),
            Fault {
                percent: Some(50),
                ..link(FaultKind::Loss, "a<->b", 250, 300)
            },
        ]
    };
    assert_eq!(sent_in(&arrivals(faults(), 'a'), 200, 600), vec![]);
    assert_eq!(sent_in(&arrivals(faults(), 'a'), 610, 2_000).len(), 40);
}

#[test]
fn a_hold_delivers_everything_when_it_ends() {
    let got = arrivals(vec![link(FaultKind::Hold, "b<->a", 300, 200)], 'a');
    assert_eq!(got.len() as u64, COUNT);
    let held = sent_in(&got, 300, 500);
    assert_eq!(held.len(), 20);
    assert!(held.iter().all(|(_, a)| (500..510).contains(a)), "{held:?}");
}

#[test]
fn a_latency_fault_fixes_the_links_latency_and_ends() {
    let slow = Fault {
        latency_ms: Some(100),
        ..link(FaultKind::Latency, "a<->b", 300, 300)
    };
    let got = arrivals(vec![slow], 'a');
    assert_eq!(got.len() as u64, COUNT);
    let during = sent_in(&got, 310, 600);
    assert!(
        !during.is_empty() && during.iter().all(|(s, a)| (100..=104).contains(&(a - s))),
        "{during:?}"
    );
    let after = sent_in(&got, 700, 2_000);
    assert!(
        after.iter().all(|(s, a)| (5..=9).contains(&(a - s))),
        "{after:?}"
    );
}

/// turmoil's loss: each message sent fails the link with the chance, and
/// then it and all in flight are lost; the next message sent repairs it.
/// So even 100% loses about half of what is sent both ways (every other
/// message), and nothing after the fault.
#[test]
fn total_loss_drops_half_the_window_and_heals() {
    let lossy = || Fault {
        percent: Some(100),
        ..link(FaultKind::Loss, "a<->b", 300, 200)
    };
    let (a, b) = (arrivals(vec![lossy()], 'a'), arrivals(vec![lossy()], 'b'));
    let during = sent_in(&a, 300, 500).len() + sent_in(&b, 300, 500).len();
    assert!(
        (5..=20).contains(&during),
        "{during} of 40 arrived: {a:?} {b:?}"
    );
    assert_eq!(
        sent_in(&a, 520, 2_000).len() + sent_in(&b, 520, 2_000).len(),
        98
    );
    // Without the fault, all 40 arrive.
    let clean = arrivals(vec![], 'a');
    assert_eq!(sent_in(&clean, 300, 500).len(), 20);
}

#[test]
fn a_crash_restarts_the_host_keeping_only_durable_state() {
    let out = run(
        &Pingers { phantom: false },
        1,
        &plan(vec![Fault::new(FaultKind::Crash, "b", 300, 200)]),
    )
    .unwrap();
    assert!(
        out.trace.iter().any(|l| l.ends_with("chaos: crash b")),
        "{:?}",
        out.trace
    );
    assert!(out.trace.iter().any(|l| l.ends_with("chaos: bounce b")));
    let got = arrivals_of(&out);
    let to_b: Vec<(u64, u64)> = got
        .iter()
        .filter(|(f, _, _)| *f == 'a')
        .map(|(_, s, a)| (*s, *a))
        .collect();
    assert_eq!(sent_in(&to_b, 300, 500), vec![], "b received while down");
    assert!(
        !sent_in(&to_b, 520, 2_000).is_empty(),
        "b did not come back"
    );
    // The record (durable) counted both starts; b's own counter (volatile)
    // began again at 1.
    assert!(
        out.trace.iter().any(|l| l.ends_with("b: start 2")),
        "{:?}",
        out.trace
    );
    let first_after = out
        .trace
        .iter()
        .filter(|l| l.contains("arrival a "))
        .find(|l| {
            l.split_whitespace()
                .nth(5)
                .and_then(|t| t.parse::<u64>().ok())
                > Some(500)
        })
        .unwrap();
    assert!(first_after.ends_with(" #1"), "{first_after}");
}

#[test]
fn a_partition_inside_a_hold_drops_what_was_held_and_the_hold_resumes() {
    let faults = vec![
        link(FaultKind::Hold, "a<->b", 200, 400),
        link(FaultKind::Partition, "a<->b", 300, 100),
    ];
    let got = arrivals(faults, 'a');
    // Held before the partition: dropped by it (turmoil's partition clears
    // the link); during it: dropped; after it, while the hold is still on:
    // held, and delivered at its end (600 ms).
    assert_eq!(sent_in(&got, 200, 400), vec![], "{got:?}");
    let held = sent_in(&got, 410, 600);
    assert!(
        !held.is_empty() && held.iter().all(|(_, a)| (600..610).contains(a)),
        "{held:?}"
    );
}

/// Through the command line, a declared target that build() never makes
/// is one error before any seed runs (exit 2), for sweep, replay and
/// shrink alike, not a failure of every seed (exit 1); the same scenario
/// without the phantom host sweeps clean.
#[test]
fn a_declared_target_never_built_is_one_error_up_front() {
    let code = |scenario: &dyn async_patterns_sim::AnyScenario, args: &[&str]| {
        let list = [scenario];
        let args = std::iter::once("sim").chain(args.iter().copied());
        let code = async_patterns_sim::cli::App::new(&list).main_from(args.map(Into::into));
        format!("{code:?}")
    };
    let bad = format!("{:?}", std::process::ExitCode::from(2));
    let ok = format!("{:?}", std::process::ExitCode::SUCCESS);
    let phantom = Pingers { phantom: true };
    // A writable --out: without the check, shrink would run and fail (1).
    let out = std::env::temp_dir().join(format!("phantom-{}.json", std::process::id()));
    let out = out.to_str().expect("a UTF-8 temp path");
    for args in [
        &["sweep", "--seeds", "3"][..],
        &["replay", "pingers", "--seed", "1"][..],
        &["shrink", "pingers", "--seed", "1", "--out", out][..],
    ] {
        assert_eq!(code(&phantom, args), bad, "{args:?}");
    }
    assert!(!std::path::Path::new(out).exists(), "no seed was run");
    assert_eq!(
        code(&Pingers { phantom: false }, &["sweep", "--seeds", "3"]),
        ok
    );
    assert_eq!(
        async_patterns_sim::run::missing_targets(&phantom, 1),
        vec!["c".to_string()]
    );
    assert!(async_patterns_sim::run::missing_targets(&Pingers { phantom: false }, 1).is_empty());
}

#[test]
fn an_undeclared_host_or_sabotage_is_reported() {
    let out = run(&Pingers { phantom: true }, 1, &FaultPlan::default()).unwrap();
    assert_eq!(out.violations.len(), 1, "{:?}", out.violations);
    assert_eq!(out.violations[0].invariant, "declared targets");
    assert!(
        out.violations[0].detail.contains("[\"c\"]"),
        "{}",
        out.violations[0]
    );

    let sabotaged = FaultPlan {
        sabotage: Some("declared".into()),
        ..FaultPlan::default()
    };
    let out = run(&Pingers { phantom: false }, 1, &sabotaged).unwrap();
    assert!(
        out.violations
            .iter()
            .any(|v| v.detail.contains("undeclared")
                && v.detail.contains("is not declared by the scenario")),
        "{:?}",
        out.violations
    );
}

/// A scenario that fails whenever its link is partitioned for longer than
/// 300 ms: check_seeds names the seed, shrinks the plan to that one fault,
/// saves it, and prints the replay line.
struct Fragile;

impl Scenario for Fragile {
    type Record = ();
    fn name(&self) -> &str {
        "fragile"
    }
    fn about(&self) -> &str {
        "breaks under a long partition"
    }
    fn targets(&self) -> Targets {
        Targets::new().link("x", "y").host("y", "nothing")
    }
    fn build(&self, _: &Ctx<()>, sim: &mut turmoil::Sim<'_>) {
        sim.host("y", || async { Ok(()) });
        sim.client("x", async { Ok(()) });
    }
    fn check(&self, run: &RunInfo, _: &()) -> Vec<Violation> {
        run.plan
            .of(FaultKind::Partition)
            .filter(|f| f.for_ms > 300)
            .map(|f| {
                Violation::new("short partitions only", format!("{} ms", f.for_ms)).at(f.start())
            })
            .collect()
    }
}

#[test]
fn check_seeds_reports_the_shrunk_plan_and_the_replay_line() {
    let err = Checker::new(&Fragile)
        .replay_command("cargo run --bin fragile-sim --")
        .try_seeds(0..16)
        .unwrap_err();
    assert!(err.starts_with("fragile: "), "{err}");
    assert!(err.contains("short partitions only: "), "{err}");
    // Shrunk to the one partition, its length bisected down to the
    // shortest that fails, 301 ms (halving stopped anywhere in 301-600),
    // and its start moved to 0.
    assert!(
        err.contains("shrunk from 7 faults (9570 ms faulted) to 1 (301 ms) in ")
            && err.contains("still breaking short partitions only:")
            && err.contains(
                r#"plan: {"faults":[{"kind":"partition","target":"x<->y","at_ms":0,"for_ms":301}]}"#
            ),
        "{err}"
    );
    let line = err.lines().last().unwrap().trim();
    assert!(
        line.starts_with("replay: cargo run --bin fragile-sim -- replay fragile --seed "),
        "{line}"
    );
    assert!(
        line.contains(" --plan ") && line.ends_with(" --trace"),
        "{line}"
    );
    let file = line
        .split(" --plan ")
        .nth(1)
        .unwrap()
        .trim_end_matches(" --trace");
    let saved: FaultPlan = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(saved.faults.len(), 1);
    assert_eq!(Checker::new(&Fragile).caught(0..16), Ok(true));
    // With no partition long enough in a seed's plan, it passes.
    Checker::new(&Fragile).seeds([]);
}

/// A network that would never end (a zero tick) is a violation, not a
/// hang.
#[test]
fn a_zero_tick_is_refused_not_a_hang() {
    struct Stuck;
    impl Scenario for Stuck {
        type Record = ();
        fn name(&self) -> &str {
            "stuck"
        }
        fn about(&self) -> &str {
            ""
        }
        fn network(&self, _: u64) -> Network {
            Network {
                tick: Duration::ZERO,
                ..Network::default()
            }
        }
        fn build(&self, _: &Ctx<()>, sim: &mut turmoil::Sim<'_>) {
            sim.client("c", async { Ok(()) });
        }
        fn check(&self, _: &RunInfo, _: &()) -> Vec<Violation> {
            Vec::new()
        }
    }
    let out = run(&Stuck, 0, &FaultPlan::default()).unwrap();
    assert_eq!(out.violations.len(), 1);
    assert_eq!(out.violations[0].invariant, "network");
}

/// A record guard held across an `.await` would hang the run (every host
/// shares one thread): the second lock panics instead, with why, and the
/// run reports it.
#[test]
fn a_record_held_across_an_await_is_reported_not_a_hang() {
    struct Holder;
    impl Scenario for Holder {
        type Record = u32;
        fn name(&self) -> &str {
            "holder"
        }
        fn about(&self) -> &str {
            ""
        }
        fn build(&self, ctx: &Ctx<u32>, sim: &mut turmoil::Sim<'_>) {
            let (a, b) = (ctx.clone(), ctx.clone());
            // The bug under test, on purpose: a guard across an .await.
            #[allow(clippy::await_holding_lock)]
            sim.client("a", async move {
                let mut n = a.record();
                tokio::time::sleep(Duration::from_millis(10)).await;
                *n += 1;
                Ok(())
            });
            sim.client("b", async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                *b.record() += 1;
                Ok(())
            });
        }
        fn check(&self, _: &RunInfo, _: &u32) -> Vec<Violation> {
            Vec::new()
        }
    }
    // Under a watchdog: a plain lock() here would deadlock the test.
    let (tx, rx) = std::sync::mpsc::channel();
    // The watchdog's thread runs the whole simulation; it is outside it.
    #[allow(clippy::disallowed_methods)]
    std::thread::spawn(move || {
        // The receiver may have given up: nothing to send to then.
        let _ = tx.send(run(&Holder, 0, &FaultPlan::default()).unwrap());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the run hung on the record's lock");
    assert!(
        out.violations
            .iter()
            .any(|v| v.detail.contains("already locked")),
        "{:?}",
        out.violations
    );
}

/// Two scenarios of one name, or a name with a space, could never be
/// replayed: the command line refuses them before anything runs.
#[test]
fn scenario_names_are_unique_command_line_words() {
    use async_patterns_sim::AnyScenario;
    struct Named(&'static str);
    impl Scenario for Named {
        type Record = ();
        fn name(&self) -> &str {
            self.0
        }
        fn about(&self) -> &str {
            ""
        }
        fn build(&self, _: &Ctx<()>, sim: &mut turmoil::Sim<'_>) {
            sim.client("c", async { Ok(()) });
        }
        fn check(&self, _: &RunInfo, _: &()) -> Vec<Violation> {
            Vec::new()
        }
    }
    let code = |list: &[&dyn AnyScenario]| {
        let code = async_patterns_sim::cli::App::new(list).main_from(["sim".into(), "list".into()]);
        format!("{code:?}")
    };
    let ok = format!("{:?}", std::process::ExitCode::SUCCESS);
    let bad = format!("{:?}", std::process::ExitCode::from(2));
    assert_eq!(code(&[&Named("a"), &Named("b")]), ok);
    assert_eq!(code(&[&Named("a"), &Named("a")]), bad);
    assert_eq!(code(&[&Named("has space")]), bad);
    assert_eq!(code(&[&Named("")]), bad);
}

/// turmoil's refused connection reads as a bare address (`192.168.0.1:7`):
/// the trace names the host beside it.
#[test]
fn a_refused_connection_names_the_host_in_the_trace() {
    struct Refused;
    impl Scenario for Refused {
        type Record = ();
        fn name(&self) -> &str {
            "refused"
        }
        fn about(&self) -> &str {
            "a client connects to a host that listens on nothing"
        }
        fn build(&self, ctx: &Ctx<()>, sim: &mut turmoil::Sim<'_>) {
            sim.host("server", || async {
                std::future::pending::<()>().await;
                Ok(())
            });
            let ctx = ctx.clone();
            sim.client("client", async move {
                if let Err(e) = turmoil::net::TcpStream::connect(("server", 7)).await {
                    ctx.log(format!("client: connect failed: {e}"));
                }
                Ok(())
            });
        }
        fn check(&self, _: &RunInfo, _: &()) -> Vec<Violation> {
            Vec::new()
        }
    }
    let out = run(&Refused, 0, &FaultPlan::default()).unwrap();
    let line = out
        .trace
        .iter()
        .find(|l| l.contains("connect failed"))
        .unwrap();
    assert!(
        line.ends_with("client: connect failed: server (192.168.0.1:7)"),
        "{line}"
    );
}
